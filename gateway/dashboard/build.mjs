// Bundles the dashboard into dist/ (git-ignored), which the gateway serves at /dashboard.
// `npm run build`; `make setup` runs it when a source changed. Everything is local: no CDN.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = fileURLToPath(new URL('.', import.meta.url));
const dist = `${here}dist`;

await rm(dist, { recursive: true, force: true });
await mkdir(`${dist}/assets`, { recursive: true });
await esbuild.build({
  entryPoints: [`${here}src/main.js`],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: ['es2020'],
  legalComments: 'linked', // ECharts' and zrender's licence notes, beside the bundle
  outfile: `${dist}/assets/dashboard.js`, // and dashboard.css, from the imported style sheet
  logLevel: 'warning',
});
await copyFile(`${here}src/index.html`, `${dist}/index.html`);
console.log(`dashboard built into ${dist}`);

"""The browser dashboard at ``/dashboard``: the static bundle ``gateway/dashboard/`` builds.

``make setup`` builds it (``npm ci`` and ``npm run build`` in ``gateway/dashboard``) into
``gateway/dashboard/dist``; the gateway only serves those files, and says how to build them
when they are missing. The page holds no data and no secret: it reads the analytics API with
the bearer token the user gives it (``/dashboard#token=...``; the fragment never reaches a server).
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response

DIST_DIR = Path(__file__).parent / "dashboard" / "dist"

# Everything the page loads comes from this gateway; ECharts draws on a canvas and styles its
# tooltips inline, hence 'unsafe-inline' for styles only.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

MISSING = """<!doctype html><meta charset="utf-8"><title>dashboard not built</title>
<body style="font: 15px system-ui, sans-serif; margin: 3em; max-width: 46em">
<h1>The dashboard is not built</h1>
<p>This gateway serves the dashboard from <code>{dist}</code>, which does not hold a build.
Build it from the repository with <code>make setup</code> (it runs <code>npm ci</code> and
<code>npm run build</code> in <code>gateway/dashboard</code>; Node.js 18+ and npm are needed),
then reload this page. The analytics API under <code>/v1/analytics</code> works without it.</p>
"""


def add_dashboard(app: FastAPI, dist_dir: Path = DIST_DIR) -> None:
    """Serve ``dist_dir``'s ``index.html`` at ``/dashboard`` and its ``assets/`` below it; a
    missing build answers 503 with how to make it (the rest of the gateway is unaffected)."""
    index = dist_dir / "index.html"
    assets = (dist_dir / "assets").resolve()

    async def page(_request: Request) -> Response:
        if not index.is_file():
            return HTMLResponse(MISSING.format(dist=html.escape(str(dist_dir))), status_code=503, headers=HEADERS)
        return FileResponse(index, media_type="text/html", headers=HEADERS)

    async def asset(request: Request) -> Response:
        path = (assets / request.path_params["name"]).resolve()
        if not path.is_relative_to(assets) or not path.is_file():  # no way out of assets/
            return PlainTextResponse("no such dashboard asset", status_code=404)
        return FileResponse(path, headers=HEADERS)

    async def slash(_request: Request) -> Response:
        return RedirectResponse("/dashboard", status_code=308)

    app.add_route("/dashboard", page, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route("/dashboard/", slash, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route("/dashboard/assets/{name:path}", asset, methods=["GET", "HEAD"], include_in_schema=False)

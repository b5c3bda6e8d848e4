import { formatValue } from './format.js';

// What the dashboard shows: KPI tiles from /overview, and one chart per figure (or pair of
// figures) from /timeseries/{figure}. `kind` picks the number format when the API's unit does not.

export const RANGES = {
  '15m': 15 * 60,
  '1h': 3600,
  '6h': 6 * 3600,
  '24h': 24 * 3600,
  '7d': 7 * 24 * 3600,
};

export const KPIS = [
  { key: 'active_users', label: 'Active users' },
  { key: 'conversations', label: 'Conversations' },
  { key: 'messages', label: 'Messages' },
  { key: 'sessions', label: 'Sessions', sub: (o) => `avg ${fmtSession(o.avg_session_s)}` },
  { key: 'feedback_ratio', label: 'Feedback ratio (up)', kind: 'percent', sub: (o) => `${formatValue(o.feedback_up)} up · ${formatValue(o.feedback_down)} down` },
  { key: 'regenerations', label: 'Regenerations', sub: (o) => `${o.generations_stopped ?? 0} stopped` },
  { key: 'ai_requests', label: 'AI requests', sub: (o) => `${o.ai_failed ?? 0} failed` },
  { key: 'error_rate', label: 'Error rate', kind: 'percent' },
  { key: 'tokens', label: 'Tokens', value: (o) => sumOrNull(o.prompt_tokens, o.completion_tokens), sub: (o) => `${formatValue(o.prompt_tokens)} in · ${formatValue(o.completion_tokens)} out` },
  { key: 'cost_usd', label: 'Cost', kind: 'usd' },
  { key: 'latency_p50_ms', label: 'Latency p50', kind: 'ms', sub: (o) => `p95 ${fmtMs(o.latency_p95_ms)} · p99 ${fmtMs(o.latency_p99_ms)}` },
  { key: 'ttft_p50_ms', label: 'TTFT p50', kind: 'ms', sub: (o) => `p95 ${fmtMs(o.ttft_p95_ms)}` },
];

export const CHARTS = [
  { id: 'active_users', title: 'Active users', figures: ['active_users'] },
  { id: 'conversations', title: 'Conversations', figures: ['conversations'] },
  { id: 'messages', title: 'Messages per minute', figures: ['messages'], perMinute: true, kind: 'rate' },
  { id: 'sessions', title: 'Sessions started', figures: ['sessions'] },
  { id: 'feedback_ratio', title: 'Feedback ratio (share of thumbs up)', figures: ['feedback_ratio'], kind: 'percent' },
  { id: 'regenerations', title: 'Regenerations', figures: ['regenerations'] },
  { id: 'model_mix', title: 'Model mix', figures: ['model_mix'], stack: true },
  { id: 'tokens_by_model', title: 'Tokens by model', figures: ['tokens_by_model'], stack: true },
  { id: 'cost_by_model', title: 'Cost by model', figures: ['cost_by_model'], stack: true, kind: 'usd' },
  { id: 'cost_by_tenant', title: 'Cost by tenant', figures: ['cost_by_tenant'], stack: true, kind: 'usd' },
  { id: 'latency', title: 'Latency p50 / p95', figures: ['latency_p50', 'latency_p95'], names: ['p50', 'p95'], kind: 'ms' },
  { id: 'ttft', title: 'Time to first token p50 / p95', figures: ['ttft_p50', 'ttft_p95'], names: ['p50', 'p95'], kind: 'ms' },
  { id: 'ai_requests', title: 'AI requests', figures: ['ai_requests'] },
  { id: 'error_rate', title: 'AI error rate', figures: ['error_rate'], kind: 'percent' },
];

function sumOrNull(a, b) {
  return a == null && b == null ? null : (a ?? 0) + (b ?? 0);
}

function fmtMs(v) {
  return formatValue(v, 'ms');
}

function fmtSession(s) {
  if (s == null) return '–';
  return s >= 120 ? `${(s / 60).toFixed(1)} min` : `${Math.round(s)} s`;
}

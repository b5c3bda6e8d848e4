// The analytics API's annotations ({"anomalies": [...], "scaling": [...]}) as chart markers
// ({at: epoch ms, label}). Items may name their time in any of a few fields, as epoch
// milliseconds, epoch seconds or ISO 8601; items without a readable time are left out.

const TIME_FIELDS = ['at', 'occurred_at', 'detected_at', 'window_end', 'timestamp', 'time'];
const LABEL_FIELDS = ['label', 'kind', 'metric', 'reason', 'description'];
const GROUPS = { anomalies: 'anomaly', scaling: 'scaling' };

export function annotationTime(item) {
  const raw = TIME_FIELDS.map((f) => item?.[f]).find((v) => v !== undefined && v !== null);
  if (typeof raw === 'number') return Number.isFinite(raw) ? (raw < 1e12 ? raw * 1000 : raw) : null;
  if (typeof raw !== 'string') return null;
  const parsed = /^\d+(\.\d+)?$/.test(raw) ? annotationTime({ at: Number(raw) }) : Date.parse(raw);
  return Number.isNaN(parsed) ? null : parsed;
}

export function normalizeAnnotations(answer) {
  const out = {};
  for (const [group, fallback] of Object.entries(GROUPS)) {
    const items = Array.isArray(answer?.[group]) ? answer[group] : [];
    out[group] = items
      .map((item) => ({
        at: annotationTime(item),
        label: String(LABEL_FIELDS.map((f) => item?.[f]).find((v) => v !== undefined && v !== null) ?? fallback),
      }))
      .filter((item) => item.at !== null);
  }
  return out;
}

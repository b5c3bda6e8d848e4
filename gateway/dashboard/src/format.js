// Number formats by kind: counts, percentages of a 0..1 ratio, milliseconds, US dollars.

const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });

export function formatValue(value, kind = 'count') {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  switch (kind) {
    case 'percent':
      return `${decimal.format(value * 100)}%`;
    case 'ms':
      return value >= 10_000 ? `${decimal.format(value / 1000)} s` : `${whole.format(value)} ms`;
    case 's':
      return value >= 120 ? `${decimal.format(value / 60)} min` : `${decimal.format(value)} s`;
    case 'usd':
      if (value === 0) return '$0';
      return value >= 100 ? `$${whole.format(value)}` : `$${value < 1 ? Number(value.toPrecision(2)) : decimal.format(value)}`;
    case 'rate':
      return decimal.format(value);
    default:
      return Math.abs(value) >= 10_000 ? compact.format(value) : decimal.format(value);
  }
}

// The kind a time series' `unit` names (the API's words; unknown units read as plain numbers).
export function kindOfUnit(unit) {
  const u = String(unit ?? '').toLowerCase();
  if (u === 'ratio' || u === 'fraction' || u === 'share') return 'percent';
  if (u === 'ms' || u === 'milliseconds') return 'ms';
  if (u === 'usd' || u === '$' || u === 'dollars') return 'usd';
  return 'count';
}

export function formatTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// The dashboard: filters → a refresh of the panels → the next refresh a few seconds after this
// one finished (never two at once; a filter change aborts the one in flight and starts anew).
// Panels keep their last data while a refresh runs, so the page does not flicker.
import './style.css';
import { normalizeAnnotations } from './annotations.js';
import { AnalyticsClient, ApiError } from './api.js';
import { createCard, drawFunnel, drawTimeSeries, EMPTY_TEXT, setCardState } from './charts.js';
import { CHARTS, KPIS, RANGES } from './figures.js';
import { formatTime, formatValue, kindOfUnit } from './format.js';
import { forgetToken, saveToken, takeTokenFromLocation } from './token.js';

const REFRESH_MS = 5000;
// the heavier panels (rankings, funnel, retention, filter lists) every third refresh, and
// whenever the filters change
const FULL_EVERY = 3;
const $ = (selector) => document.querySelector(selector);

const filters = { tenant: $('#f-tenant'), model: $('#f-model'), range: $('#f-range'), by: $('#f-by') };
let client = null;
let inFlight = null; // the AbortController of the running refresh
let timer = null;
let annotations = { anomalies: [], scaling: [] };
let refreshes = 0; // since the last full refresh

const cards = new Map();
for (const spec of CHARTS) cards.set(spec.id, createCard($('#charts'), spec.id, spec.title));
for (const kpi of KPIS) {
  const tile = document.createElement('div');
  tile.className = 'kpi';
  tile.dataset.kpi = kpi.key;
  tile.innerHTML = '<div class="label"></div><div class="value">–</div><div class="sub"></div>';
  tile.querySelector('.label').textContent = kpi.label;
  $('#kpis').appendChild(tile);
}

function readFiltersFromUrl() {
  const params = new URLSearchParams(location.search);
  for (const [name, select] of Object.entries(filters)) {
    const value = params.get(name);
    if (value !== null) ensureOption(select, value).selected = true;
  }
}

function writeFiltersToUrl() {
  const params = new URLSearchParams();
  for (const [name, select] of Object.entries(filters)) if (select.value) params.set(name, select.value);
  history.replaceState(null, '', `${location.pathname}?${params}${location.hash}`);
}

function ensureOption(select, value, label = value) {
  let option = [...select.options].find((o) => o.value === value);
  if (!option) {
    option = new Option(label, value);
    select.add(option);
  }
  return option;
}

function query() {
  const to = Math.floor(Date.now() / 1000);
  const from = to - (RANGES[filters.range.value] ?? 3600);
  return { from, to, tenant: filters.tenant.value, model: filters.model.value };
}

function showBanner(message) {
  const banner = $('#banner');
  banner.hidden = !message;
  banner.textContent = message ?? '';
}

function showTokenForm(show, why) {
  $('#token-form').hidden = !show;
  if (show) {
    showBanner(why);
    $('#token-input').focus();
  }
}

function showPanels(show) {
  $('#main').hidden = !show; // without a token there is nothing to show, only the form
}

function schedule() {
  clearTimeout(timer);
  if (!document.hidden && client) timer = setTimeout(() => refresh(refreshes % FULL_EVERY === 0), REFRESH_MS);
}

async function refresh(full = true) {
  clearTimeout(timer);
  inFlight?.abort();
  if (!client) return;
  refreshes = full ? 1 : refreshes + 1;
  const controller = new AbortController();
  inFlight = controller;
  const q = query();
  const signal = controller.signal;
  $('#live').dataset.state = 'busy';
  const failures = [];
  const guard = (task) => task.catch((err) => {
    if (err.name !== 'AbortError') failures.push(err);
  });
  annotations = await guard(loadAnnotations(q, signal)) ?? annotations;
  const heavy = full
    ? [
        guard(loadDimensions(q, signal)),
        ...['users', 'models', 'tenants'].map((what) => guard(loadTop(what, q, signal))),
        guard(loadFunnel(q, signal)),
        guard(loadRetention(q, signal)),
      ]
    : [];
  await Promise.all([guard(loadOverview(q, signal)), ...CHARTS.map((spec) => guard(loadChart(spec, q, signal))), ...heavy]);
  if (inFlight !== controller) return; // a newer refresh took over
  inFlight = null;
  $('#live').dataset.state = failures.length ? 'error' : 'ok';
  const refused = failures.find((e) => e instanceof ApiError && e.status === 401);
  if (refused) {
    client = null;
    showPanels(false);
    showTokenForm(true, `The API refused the token: ${refused.message}. Give a fresh one.`);
    return;
  }
  const first = failures[0];
  showBanner(first ? `Some panels could not load: ${first.message}` : null);
  $('#updated').textContent = `updated ${formatTime(Date.now())}`;
  schedule();
}

async function loadDimensions(q, signal) {
  const dims = await client.get('dimensions', { from: q.from, to: q.to }, signal);
  for (const [name, values] of [['tenant', dims.tenants ?? []], ['model', dims.models ?? []]]) {
    for (const value of values) ensureOption(filters[name], value);
  }
}

async function loadOverview(q, signal) {
  const section = $('#kpis');
  try {
    const o = await client.get('overview', q, signal);
    for (const kpi of KPIS) {
      const tile = section.querySelector(`[data-kpi="${kpi.key}"]`);
      const value = kpi.value ? kpi.value(o) : o[kpi.key];
      tile.querySelector('.value').textContent = formatValue(value, kpi.kind);
      tile.querySelector('.value').dataset.raw = value ?? '';
      tile.querySelector('.sub').textContent = kpi.sub ? kpi.sub(o) : '';
    }
    section.dataset.state = (o.messages ?? 0) + (o.ai_requests ?? 0) + (o.active_users ?? 0) > 0 ? 'ready' : 'empty';
    section.title = section.dataset.state === 'empty' ? EMPTY_TEXT : '';
  } catch (err) {
    if (err.name !== 'AbortError') section.dataset.state = 'error';
    throw err;
  }
}

async function loadChart(spec, q, signal) {
  const card = cards.get(spec.id);
  try {
    const answers = await Promise.all(spec.figures.map((figure) => client.get(`timeseries/${figure}`, q, signal)));
    const series = [];
    answers.forEach((answer, i) => {
      const perMinute = spec.perMinute && answer.step_s ? 60 / answer.step_s : 1;
      for (const s of answer.series ?? []) {
        const name = spec.names ? spec.names[i] : s.name === 'all' ? spec.title : s.name;
        series.push({ name, points: s.points.map(([t, v]) => [t, v === null ? null : v * perMinute]) });
      }
    });
    const kind = spec.kind ?? kindOfUnit(answers[0]?.unit);
    drawTimeSeries(card, { series, kind, stack: spec.stack, fromMs: q.from * 1000, toMs: q.to * 1000, annotations });
    // counts come 0-filled over the range: only a non-zero count is data; a ratio or a
    // percentile is there only where there was something to divide or rank, 0 included
    const counted = kind === 'count' || kind === 'rate' || kind === 'usd';
    const hasData = series.some((s) => s.points.some(([, v]) => v !== null && (!counted || v !== 0)));
    setCardState(card, hasData ? 'ready' : 'empty');
  } catch (err) {
    if (err.name !== 'AbortError') setCardState(card, 'error', err.message);
    throw err;
  }
}

const TOP_COLUMNS = [
  ['messages', 'messages', 'count'],
  ['ai_requests', 'requests', 'count'],
  ['tokens', 'tokens', 'count'],
  ['cost_usd', 'cost', 'usd'],
];

async function loadTop(what, q, signal) {
  const card = $(`#top-${what}`);
  try {
    const by = filters.by.value;
    const answer = await client.get(`top/${what}`, { ...q, by, limit: 10 }, signal);
    const rows = answer.rows ?? [];
    const table = document.createElement('table');
    const head = table.createTHead().insertRow();
    for (const label of [what.replace(/s$/, ''), ...TOP_COLUMNS.map(([, l]) => l)]) {
      const th = document.createElement('th');
      th.textContent = label;
      th.className = label === by ? 'sorted' : '';
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      const key = tr.insertCell();
      key.textContent = row.key;
      key.title = row.tenant ? `${row.key} (${row.tenant})` : row.key;
      for (const [field, , kind] of TOP_COLUMNS) {
        const td = tr.insertCell();
        td.textContent = formatValue(row[field], kind);
        td.className = 'num';
      }
    }
    fill(card, rows.length ? table : null);
  } catch (err) {
    failed(card, err);
  }
}

async function loadFunnel(q, signal) {
  const card = $('#funnel');
  try {
    const answer = await client.get('funnel', q, signal);
    const steps = answer.steps ?? [];
    const hasData = steps.some((s) => s.conversations > 0);
    drawFunnel(card, hasData ? steps : []);
    setCardState(card, hasData ? 'ready' : 'empty');
  } catch (err) {
    failed(card, err);
  }
}

async function loadRetention(q, signal) {
  const card = $('#retention');
  try {
    const answer = await client.get('retention', { ...q, days: '1,7,30' }, signal);
    const days = answer.days ?? [1, 7, 30];
    const cohorts = answer.cohorts ?? [];
    const table = document.createElement('table');
    const head = table.createTHead().insertRow();
    for (const label of ['first active day', 'users', ...days.map((d) => `day ${d}`)]) {
      const th = document.createElement('th');
      th.textContent = label;
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const cohort of cohorts) {
      const tr = body.insertRow();
      tr.insertCell().textContent = cohort.day;
      const users = tr.insertCell();
      users.textContent = formatValue(cohort.users);
      users.className = 'num';
      (cohort.retained ?? []).forEach((n) => {
        const td = tr.insertCell();
        const share = cohort.users ? n / cohort.users : 0;
        td.textContent = `${formatValue(share, 'percent')} (${formatValue(n)})`;
        td.className = 'num heat';
        td.style.setProperty('--heat', String(share));
      });
    }
    fill(card, cohorts.length ? table : null);
  } catch (err) {
    failed(card, err);
  }
}

async function loadAnnotations(q, signal) {
  const out = normalizeAnnotations(await client.get('annotations', q, signal));
  const note = $('#annotations');
  const count = out.anomalies.length + out.scaling.length;
  note.hidden = count === 0;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  note.textContent = count
    ? `Marked on the charts: ${plural(out.anomalies.length, 'anomaly', 'anomalies')} (red), ` +
      `${plural(out.scaling.length, 'scaling signal', 'scaling signals')} (purple).`
    : '';
  return out;
}

function fill(card, content) {
  const body = card.querySelector('.body');
  body.replaceChildren(content ?? emptyNote());
  card.dataset.state = content ? 'ready' : 'empty';
}

function emptyNote() {
  const p = document.createElement('p');
  p.className = 'note';
  p.textContent = EMPTY_TEXT;
  return p;
}

function failed(card, err) {
  if (err.name === 'AbortError') throw err;
  card.dataset.state = 'error';
  const p = document.createElement('p');
  p.className = 'note error';
  p.textContent = err.message;
  card.querySelector('.body').replaceChildren(p);
  throw err;
}

function useToken(token) {
  client = token ? new AnalyticsClient(token) : null;
  showTokenForm(!client, null);
  showPanels(Boolean(client));
  if (client) refresh();
}

readFiltersFromUrl();
for (const select of Object.values(filters)) {
  select.addEventListener('change', () => {
    writeFiltersToUrl();
    for (const card of cards.values()) if (card.dataset.state !== 'ready') setCardState(card, 'loading');
    refresh();
  });
}
$('#token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('#token-input').value.trim();
  if (!token) return;
  saveToken(sessionStorage, token);
  $('#token-input').value = '';
  useToken(token);
});
$('#token-forget').addEventListener('click', () => {
  forgetToken(sessionStorage);
  inFlight?.abort();
  useToken(null);
});
$('#token-button').addEventListener('click', () => showTokenForm($('#token-form').hidden, null));
document.addEventListener('visibilitychange', () => (document.hidden ? clearTimeout(timer) : refresh(false)));
useToken(takeTokenFromLocation(location, history, sessionStorage));

// ECharts, tree-shaken to what the dashboard draws: line/area time series with annotation
// markers, and the funnel. Each chart lives in a card whose `data-state` says loading, ready,
// empty or error (the browser test reads it too).
import { FunnelChart, LineChart } from 'echarts/charts';
import { AriaComponent, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import { formatValue } from './format.js';

echarts.use([LineChart, FunnelChart, AriaComponent, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent, CanvasRenderer]);

const PALETTE = ['#3b6fd8', '#e0803a', '#3aa37a', '#c54b6c', '#8a63c9', '#4fa6c2', '#b59a2e', '#6b7280', '#d1619e', '#2f8f5b'];
const ANNOTATION_COLORS = { anomalies: '#d64545', scaling: '#7a5cc2' };
export const EMPTY_TEXT = 'no data in this range yet';

export function createCard(parent, id, title) {
  const card = document.createElement('div');
  card.className = 'card';
  card.id = `chart-${id}`;
  card.dataset.state = 'loading';
  card.innerHTML = `<h2></h2><div class="body chart"></div><div class="overlay">loading…</div>`;
  card.querySelector('h2').textContent = title;
  parent.appendChild(card);
  return card;
}

export function setCardState(card, state, message = '') {
  card.dataset.state = state;
  const overlay = card.querySelector('.overlay');
  if (!overlay) return;
  overlay.textContent = state === 'empty' ? EMPTY_TEXT : state === 'error' ? message : state === 'loading' ? 'loading…' : '';
  overlay.title = state === 'error' ? message : '';
}

function chartOf(card) {
  const el = card.querySelector('.chart');
  let chart = echarts.getInstanceByDom(el);
  if (!chart) {
    chart = echarts.init(el, null, { renderer: 'canvas' });
    new ResizeObserver(() => chart.resize()).observe(el);
  }
  return chart;
}

// series: [{name, points: [[ms, value], ...]}]; annotations: {anomalies: [{at, label}], scaling: [...]}
export function drawTimeSeries(card, { series, kind, stack, fromMs, toMs, annotations }) {
  const chart = chartOf(card);
  const points = series.reduce((n, s) => n + s.points.length, 0);
  card.dataset.points = String(points);
  const marks = [];
  for (const [group, items] of Object.entries(annotations ?? {})) {
    for (const item of items) {
      if (item.at >= fromMs && item.at <= toMs) {
        marks.push({ xAxis: item.at, name: item.label, lineStyle: { color: ANNOTATION_COLORS[group] ?? '#999' } });
      }
    }
  }
  chart.setOption(
    {
      color: PALETTE,
      animation: false,
      aria: { enabled: true, label: { description: describe(card, series, kind) } }, // for screen readers
      grid: { left: 56, right: 16, top: 28, bottom: 28 },
      legend: { show: series.length > 1, type: 'scroll', top: 0, textStyle: { fontSize: 11 } },
      tooltip: {
        trigger: 'axis',
        valueFormatter: (v) => formatValue(v, kind),
      },
      xAxis: { type: 'time', min: fromMs, max: toMs, axisLabel: { hideOverlap: true, fontSize: 11 } },
      yAxis: { type: 'value', min: 0, axisLabel: { formatter: (v) => formatValue(v, kind), fontSize: 11 } },
      series: series.map((s, i) => ({
        name: s.name,
        type: 'line',
        data: s.points,
        showSymbol: s.points.length < 3,
        connectNulls: false,
        stack: stack ? 'total' : undefined,
        areaStyle: stack ? { opacity: 0.35 } : undefined,
        lineStyle: { width: 1.5 },
        markLine: i === 0 && marks.length
          ? { symbol: 'none', silent: false, data: marks, label: { formatter: '{b}', fontSize: 10, position: 'insideEndTop' } }
          : undefined,
      })),
    },
    { notMerge: true },
  );
}

// "Messages per minute: all latest 42.5 (60 points)" — what a screen reader says for a chart.
function describe(card, series, kind) {
  const title = card.querySelector('h2')?.textContent ?? '';
  const latest = series.map((s) => {
    const last = [...s.points].reverse().find(([, v]) => v !== null);
    return `${s.name} latest ${last ? formatValue(last[1], kind) : 'none'} (${s.points.length} points)`;
  });
  return `${title}: ${latest.join('; ') || 'no data'}`;
}

export function drawFunnel(card, steps) {
  const chart = chartOf(card);
  const top = Math.max(1, ...steps.map((s) => s.conversations));
  chart.setOption(
    {
      color: PALETTE,
      animation: false,
      aria: { enabled: true },
      tooltip: { trigger: 'item', formatter: (p) => `${p.name}: ${formatValue(p.value)} (${((100 * p.value) / top).toFixed(1)}%)` },
      series: [
        {
          type: 'funnel',
          sort: 'none',
          left: '8%',
          width: '84%',
          top: 8,
          bottom: 8,
          min: 0,
          max: top,
          minSize: '18%', // a small last step still has room for its label
          gap: 2,
          label: { position: 'inside', formatter: (p) => `${p.name}  ${formatValue(p.value)}`, fontSize: 11, color: '#fff' },
          data: steps.map((s) => ({ name: s.name, value: s.conversations })),
        },
      ],
    },
    { notMerge: true },
  );
}

// Inline-SVG charts (no library): per-minute bars for counts, lines for latencies.
import { h } from './ui.js';

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const W = 360;
const H = 150;
const PAD = { l: 38, r: 8, t: 10, b: 22 };

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtTick(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(v % 1000 ? 1 : 0)}k`;
  if (v < 1 && v > 0) return v.toFixed(2);
  return String(Math.round(v * 10) / 10);
}

function hhmm(t) {
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/**
 * A chart in a <figure> with a <figcaption>; the <svg> has role="img" and `ariaLabel`.
 * @param {string} caption
 * @param {string} ariaLabel
 * @param {number[]} times      minute starts (ms)
 * @param {{name: string, values: (number|null)[], kind: 'bar'|'line', cls: string}[]} series
 */
export function chart(caption, ariaLabel, times, series, { integer = false } = {}) {
  const n = times.length;
  const all = series.flatMap((x) => x.values).filter((v) => v !== null && v !== undefined);
  const max = niceMax(Math.max(0, ...all));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  // Each minute is a band; bars and points sit at its centre.
  const x = (i) => PAD.l + ((i + 0.5) * iw) / Math.max(1, n);
  const y = (v) => PAD.t + ih - (v / max) * ih;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': ariaLabel, class: 'chart', preserveAspectRatio: 'none' });
  const grid = s('g', { class: 'grid-lines' });
  for (const f of [0, 0.5, 1]) {
    if (integer && f === 0.5 && !Number.isInteger(max * f)) continue;
    const yy = y(max * f);
    grid.append(s('line', { x1: PAD.l, x2: W - PAD.r, y1: yy, y2: yy }));
    grid.append(s('text', { x: PAD.l - 4, y: yy + 3, 'text-anchor': 'end', class: 'tick' }, fmtTick(max * f)));
  }
  if (n) {
    for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
      grid.append(s('text', { x: x(i), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle', class: 'tick' }, hhmm(times[i])));
    }
  }
  svg.append(grid);
  const bw = Math.max(1, (iw / Math.max(1, n)) * 0.7);
  for (const ser of series) {
    if (ser.kind === 'bar') {
      const g = s('g', { class: `bars ${ser.cls}` });
      ser.values.forEach((v, i) => {
        if (!v) return;
        const top = y(v);
        g.append(s('rect', { x: x(i) - bw / 2, y: top, width: bw, height: PAD.t + ih - top }, s('title', {}, `${hhmm(times[i])}: ${v}`)));
      });
      svg.append(g);
    } else {
      let d = '';
      let pen = false;
      ser.values.forEach((v, i) => {
        if (v === null || v === undefined) {
          pen = false;
          return;
        }
        d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      });
      const g = s('g', { class: `line ${ser.cls}` });
      if (d) g.append(s('path', { d }));
      ser.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        g.append(s('circle', { cx: x(i), cy: y(v), r: 1.8 }, s('title', {}, `${hhmm(times[i])} ${ser.name}: ${v.toFixed(2)} ms`)));
      });
      svg.append(g);
    }
  }
  const legend =
    series.length > 1
      ? h('ul', { class: 'legend' }, series.map((ser) => h('li', { class: ser.cls }, h('span', { class: 'swatch', 'aria-hidden': 'true' }), ser.name)))
      : null;
  return h('figure', { class: 'chart-card' }, h('figcaption', {}, caption), svg, legend);
}

const sum = (vals) => vals.reduce((a, b) => a + (b || 0), 0);
const maxOf = (vals) => vals.reduce((a, b) => (b !== null && b !== undefined && b > a ? b : a), 0);
const fmtMs = (v) => `${Math.round(v * 100) / 100} ms`;

/** A count chart: "Invocations: 3 in the last 60 minutes". */
export function countChart(caption, times, values, minutes, cls = 'c1') {
  return chart(caption, `${caption}: ${sum(values)} in the last ${minutes} minutes`, times, [{ name: caption, values, kind: 'bar', cls }], { integer: true });
}

/** A gauge chart summarised by its maximum: "Concurrent executions: max 2 in the last 60 minutes". */
export function maxChart(caption, times, values, minutes, cls = 'c1') {
  return chart(caption, `${caption}: max ${maxOf(values)} in the last ${minutes} minutes`, times, [{ name: caption, values, kind: 'bar', cls }], { integer: true });
}

/** p50/p99 lines: "Duration p50 / p99 (ms): highest p99 12.3 ms in the last 60 minutes". */
export function latencyChart(caption, times, p50, p99, minutes) {
  const any = p99.some((v) => v !== null && v !== undefined) || p50.some((v) => v !== null && v !== undefined);
  const label = any
    ? `${caption}: highest p50 ${fmtMs(maxOf(p50))}, highest p99 ${fmtMs(maxOf(p99))} in the last ${minutes} minutes`
    : `${caption}: no data in the last ${minutes} minutes`;
  return chart(caption, label, times, [
    { name: 'p50', values: p50, kind: 'line', cls: 'c1' },
    { name: 'p99', values: p99, kind: 'line', cls: 'c2' },
  ]);
}

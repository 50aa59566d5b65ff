// #/costs: what this account's usage since Portico started would cost on AWS, at editable prices.
import { apigw, consoleApi } from '../api.js';
import { field, fmtMoney, fmtNum, fmtTime, h, loading, section, table } from '../ui.js';

const KEY = 'portico.console.prices';
const PRICES = [
  ['httpApi', 'HTTP API, per million requests ($)', '1.00', 'any'],
  ['lambdaRequests', 'Lambda, per million requests ($)', '0.20', 'any'],
  ['x86', 'Lambda x86_64, per GB-second ($)', '0.0000166667', 'any'],
  ['arm', 'Lambda arm64, per GB-second ($)', '0.0000133334', 'any'],
];

function loadPrices() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(KEY) || '{}') || {};
  } catch {
    saved = {};
  }
  const out = {};
  for (const [k, , d] of PRICES) out[k] = typeof saved[k] === 'string' && Number(saved[k]) >= 0 && saved[k].trim() !== '' ? saved[k] : d;
  return out;
}

export async function render(page, _params, ctx) {
  // Usage first: the heading appears with the prices and the tables.
  const wait = loading('Loading usage…');
  page.append(wait);
  let usage = null;
  let apis = [];
  let failure = null;
  try {
    [usage, apis] = await Promise.all([consoleApi.usage(), apigw.listApis().catch(() => [])]);
  } catch (e) {
    failure = e;
  }
  if (!ctx.isCurrent()) return;
  wait.remove();
  page.append(h('h1', {}, 'Costs'), h('p', { class: 'muted' }, 'Estimated AWS charges for the requests and compute this account has used in this region since Portico started, at the prices below (AWS us-east-1 on-demand list prices by default; free tier not deducted).'));
  const prices = loadPrices();
  const inputs = {};
  const form = h(
    'form',
    { class: 'grid-2', onsubmit: (e) => e.preventDefault() },
    PRICES.map(([k, label, , step]) => {
      const input = h('input', { type: 'number', min: 0, step, value: String(prices[k]), inputmode: 'decimal' });
      inputs[k] = input;
      return field(label, input);
    }),
  );
  let draw = () => {};
  const reset = h('button', {
    type: 'button',
    class: 'secondary',
    onclick: () => {
      localStorage.removeItem(KEY);
      for (const [k, , d] of PRICES) inputs[k].value = String(d);
      draw();
    },
  }, 'Reset prices');
  const out = h('div', {});
  page.append(section('Prices', form, h('p', { class: 'hint' }, 'Kept in this browser.'), h('div', { class: 'actions' }, reset)), out);
  if (failure) {
    out.replaceChildren(h('div', { class: 'alert', role: 'alert' }, failure.message));
    return;
  }
  const apiNames = new Map(apis.map((a) => [a.apiId, a.name]));
  draw = () => {
    const p = {};
    for (const [k] of PRICES) {
      const v = Number(inputs[k].value);
      p[k] = Number.isFinite(v) && v >= 0 ? v : 0;
    }
    const kept = {};
    for (const [k] of PRICES) kept[k] = inputs[k].value;
    localStorage.setItem(KEY, JSON.stringify(kept));
    let total = 0;
    const fnRows = (usage.functions || []).map((f) => {
      const perGb = f.architecture === 'arm64' ? p.arm : p.x86;
      const cost = (f.requests / 1e6) * p.lambdaRequests + f.gbSeconds * perGb;
      total += cost;
      return [h('a', { href: `#/functions/${encodeURIComponent(f.functionName)}` }, f.functionName), f.architecture, fmtNum(f.memoryMb), fmtNum(f.requests), fmtNum(f.gbSeconds, 3), fmtMoney(cost)];
    });
    const apiRows = (usage.apis || []).map((a) => {
      const cost = (a.requests / 1e6) * p.httpApi;
      total += cost;
      return [h('a', { href: `#/apis/${encodeURIComponent(a.apiId)}` }, apiNames.get(a.apiId) || a.apiId), h('code', {}, a.apiId), fmtNum(a.requests), fmtMoney(cost)];
    });
    out.replaceChildren(
      h('p', { class: 'total' }, 'Estimated total since ', fmtTime(usage.since), ': ', h('strong', {}, fmtMoney(total))),
      section('Functions', table('Estimated cost per function', ['Function', 'Architecture', 'Memory (MB)', 'Requests', 'GB-seconds', 'Estimated cost'], fnRows, 'No function has run yet.')),
      section('APIs', table('Estimated cost per API', ['API', 'ID', 'Requests', 'Estimated cost'], apiRows, 'No API has been called yet.')),
    );
  };
  for (const k of Object.keys(inputs)) inputs[k].addEventListener('input', draw);
  draw();
}

// #/apis: the account's HTTP APIs in the current region.
import { apigw } from '../api.js';
import { go } from '../app.js';
import { fmtTime, h, loading, table } from '../ui.js';

export async function render(page, _params, ctx) {
  const create = h('button', { type: 'button', class: 'primary', onclick: () => go('/apis/new') }, 'Create API');
  // The heading appears with the table, so a page with its h1 is a page with its rows.
  const wait = loading('Loading APIs…');
  page.append(wait);
  let apis;
  try {
    apis = await apigw.listApis();
  } catch (e) {
    if (!ctx.isCurrent()) return;
    wait.replaceWith(h('h1', {}, 'APIs'), h('div', { class: 'alert', role: 'alert' }, e.message));
    return;
  }
  if (!ctx.isCurrent()) return;
  const body = h('div', {});
  wait.replaceWith(h('div', { class: 'page-head' }, h('h1', {}, 'APIs'), h('div', { class: 'actions' }, create)), body);
  apis.sort((a, b) => (a.name || '').localeCompare(b.name || ''));
  body.replaceChildren(
    h('p', { class: 'muted' }, `${apis.length} API${apis.length === 1 ? '' : 's'}`),
    table(
      'APIs',
      ['Name', 'ID', 'Protocol', 'Created'],
      apis.map((a) => [h('a', { href: `#/apis/${encodeURIComponent(a.apiId)}` }, a.name), h('code', {}, a.apiId), a.protocolType, fmtTime(a.createdDate)]),
      'No APIs yet. Create one to put a function behind a URL.',
    ),
  );
}

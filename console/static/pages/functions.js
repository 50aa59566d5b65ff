// #/functions: the account's functions in the current region.
import { lambda } from '../api.js';
import { go } from '../app.js';
import { fmtTime, h, loading, table } from '../ui.js';

export async function render(page, _params, ctx) {
  const create = h('button', { type: 'button', class: 'primary', onclick: () => go('/functions/new') }, 'Create function');
  const refresh = h('button', { type: 'button', class: 'secondary', 'aria-label': 'Refresh functions', onclick: () => go('/functions') }, 'Refresh');
  // The heading appears with the table, so a page with its h1 is a page with its rows.
  const wait = loading('Loading functions…');
  page.append(wait);
  let fns;
  try {
    fns = await lambda.listFunctions();
  } catch (e) {
    if (!ctx.isCurrent()) return;
    wait.replaceWith(h('h1', {}, 'Functions'), h('div', { class: 'alert', role: 'alert' }, e.message));
    return;
  }
  if (!ctx.isCurrent()) return;
  const body = h('div', {});
  wait.replaceWith(h('div', { class: 'page-head' }, h('h1', {}, 'Functions'), h('div', { class: 'actions' }, refresh, create)), body);
  fns.sort((a, b) => a.FunctionName.localeCompare(b.FunctionName));
  body.replaceChildren(
    h('p', { class: 'muted' }, `${fns.length} function${fns.length === 1 ? '' : 's'}`),
    table(
      'Functions',
      ['Function name', 'Runtime', 'Architecture', 'Last modified', 'State'],
      fns.map((f) => [
        h('a', { href: `#/functions/${encodeURIComponent(f.FunctionName)}` }, f.FunctionName),
        f.Runtime || '',
        (f.Architectures || ['x86_64']).join(', '),
        fmtTime(f.LastModified),
        h('span', { class: `state state-${String(f.State || '').toLowerCase()}` }, f.State || ''),
      ]),
      'No functions yet. Create one to get started.',
    ),
  );
}

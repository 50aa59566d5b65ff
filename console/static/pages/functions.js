// #/functions: the account's functions in the current region.
import { lambda } from '../api.js';
import { go } from '../app.js';
import { fmtTime, h, loading, table } from '../ui.js';

export async function render(page, _params, ctx) {
  const create = h('button', { type: 'button', class: 'primary', onclick: () => go('/functions/new') }, 'Create function');
  const refresh = h('button', { type: 'button', class: 'secondary', 'aria-label': 'Refresh functions', onclick: () => go('/functions') }, 'Refresh');
  const body = h('div', {}, loading('Loading functions…'));
  page.append(h('div', { class: 'page-head' }, h('h1', {}, 'Functions'), h('div', { class: 'actions' }, refresh, create)), body);
  const fns = await lambda.listFunctions();
  if (!ctx.isCurrent()) return;
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

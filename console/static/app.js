// The Portico console: session handling, top bar, hash router, flash messages.
import { request, session } from './api.js';
import { h } from './ui.js';

const REGION_KEY = 'portico.console.region';

const main = () => document.getElementById('main');
const topbar = () => document.getElementById('topbar');
const statusEl = () => document.getElementById('flash');

let pendingFlash = null;
let renderToken = 0;

/** Shows a message in the page's one role=status element; `next` waits for the next page. */
export function flash(message, { next = false } = {}) {
  if (next) {
    pendingFlash = message;
    return;
  }
  const el = statusEl();
  el.textContent = message;
}

function clearFlash() {
  statusEl().textContent = '';
}

/** Navigates to a hash route, e.g. go('/functions/hello-api'). */
export function go(path) {
  const target = `#${path}`;
  if (window.location.hash === target) route();
  else window.location.hash = target;
}

/** Replaces the current hash without re-rendering (tabs keep their place in the URL). */
export function replacePath(path) {
  history.replaceState(null, '', `#${path}`);
}

const routes = [
  [/^\/signin$/, () => import('./pages/signin.js'), []],
  [/^\/functions\/?$/, () => import('./pages/functions.js'), []],
  [/^\/functions\/new$/, () => import('./pages/function-new.js'), []],
  [/^\/functions\/([^/]+)(?:\/([a-z]+))?$/, () => import('./pages/function.js'), ['name', 'tab']],
  [/^\/apis\/?$/, () => import('./pages/apis.js'), []],
  [/^\/apis\/new$/, () => import('./pages/api-new.js'), []],
  [/^\/apis\/([^/]+)(?:\/([a-z]+))?$/, () => import('./pages/api.js'), ['apiId', 'tab']],
  [/^\/costs$/, () => import('./pages/costs.js'), []],
];

function renderTopbar() {
  const bar = topbar();
  bar.replaceChildren();
  const s = session.current;
  const brand = h('a', { href: '#/functions', class: 'brand', 'aria-label': 'Portico console home' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, 'λ'), 'Portico');
  if (!s) {
    bar.append(brand);
    return;
  }
  const here = window.location.hash;
  const nav = h(
    'nav',
    { 'aria-label': 'Main' },
    h('ul', {}, [
      ['Functions', '#/functions'],
      ['APIs', '#/apis'],
      ['Costs', '#/costs'],
    ].map(([label, href]) => h('li', {}, h('a', { href, 'aria-current': here.startsWith(href) ? 'page' : null }, label)))),
  );
  const regions = s.regions && s.regions.length ? s.regions : [s.region];
  const select = h(
    'select',
    {
      id: 'region-select',
      onchange: () => {
        session.region = select.value;
        localStorage.setItem(REGION_KEY, select.value);
        route();
      },
    },
    regions.map((r) => h('option', { value: r, selected: r === session.region }, r)),
  );
  const signOut = h('button', { type: 'button', class: 'secondary', onclick: signOutNow }, 'Sign out');
  bar.append(
    brand,
    nav,
    h(
      'div',
      { class: 'account' },
      h('div', { class: 'region' }, h('label', { for: 'region-select' }, 'Region'), select),
      h('span', { class: 'account-id', title: `Access key ${s.accessKeyId}` }, `Account ${s.accountId}`),
      signOut,
    ),
  );
}

async function signOutNow() {
  try {
    await request('DELETE', '/session');
  } catch {
    // Signed out either way.
  }
  session.current = null;
  go('/signin');
}

/** Called by the sign-in page once the backend accepted the key. */
export function signedIn(doc) {
  session.current = doc;
  const saved = localStorage.getItem(REGION_KEY);
  session.region = saved && (doc.regions || []).includes(saved) ? saved : doc.region;
  if (session.region !== doc.region && !(doc.regions || []).includes(session.region)) session.region = doc.region;
  const back = sessionStorage.getItem('portico.console.after');
  sessionStorage.removeItem('portico.console.after');
  go(back && !back.startsWith('/signin') ? back : '/functions');
}

async function route() {
  const token = ++renderToken;
  let path = window.location.hash.replace(/^#/, '') || '/functions';
  if (!session.current && path !== '/signin') {
    sessionStorage.setItem('portico.console.after', path);
    path = '/signin';
    history.replaceState(null, '', '#/signin');
  }
  if (session.current && path === '/signin') {
    path = '/functions';
    history.replaceState(null, '', '#/functions');
  }
  renderTopbar();
  let match = null;
  let entry = null;
  for (const r of routes) {
    match = path.match(r[0]);
    if (match) {
      entry = r;
      break;
    }
  }
  const root = main();
  if (!entry) {
    clearFlash();
    root.replaceChildren(h('h1', {}, 'Page not found'), h('p', {}, `Nothing lives at #${path}. `, h('a', { href: '#/functions' }, 'Go to Functions')));
    return;
  }
  const params = {};
  entry[2].forEach((k, i) => {
    params[k] = match[i + 1] !== undefined ? decodeURIComponent(match[i + 1]) : undefined;
  });
  const mod = await entry[1]();
  if (token !== renderToken) return;
  if (pendingFlash) {
    flash(pendingFlash);
    pendingFlash = null;
  } else {
    clearFlash();
  }
  const page = h('div', { class: 'page' });
  root.replaceChildren(page);
  try {
    await mod.render(page, params, { isCurrent: () => token === renderToken });
  } catch (e) {
    if (token !== renderToken) return;
    if (e && e.status === 401) return;
    page.querySelectorAll('.loading').forEach((el) => el.remove());
    page.append(h('div', { class: 'alert', role: 'alert' }, e.message || String(e)));
  }
  if (token === renderToken) {
    const h1 = page.querySelector('h1');
    // A new page moves keyboard focus to its title unless the page focused a control itself.
    if (h1 && !page.contains(document.activeElement)) {
      h1.tabIndex = -1;
      h1.focus({ preventScroll: true });
    }
    document.title = h1 ? `${h1.textContent} – Portico` : 'Portico';
  }
}

session.onSignedOut = () => {
  if (!window.location.hash.startsWith('#/signin')) {
    sessionStorage.setItem('portico.console.after', window.location.hash.replace(/^#/, ''));
    window.location.hash = '#/signin';
  }
};

async function start() {
  try {
    const doc = await request('GET', '/session');
    session.current = doc;
    const saved = localStorage.getItem(REGION_KEY);
    session.region = saved && (doc.regions || []).includes(saved) ? saved : doc.region;
  } catch {
    session.current = null;
  }
  window.addEventListener('hashchange', route);
  route();
}

start();

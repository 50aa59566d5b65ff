// DOM helpers shared by the pages: element builder, tabs (WAI-ARIA), alerts, tables, formats.

/**
 * h('button', {class: 'primary', onclick: fn}, 'Deploy') — attributes starting with "on" are
 * listeners; `null`/`false` attributes and children are skipped; strings become text nodes.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let uid = 0;
/** A unique element id with a readable prefix. */
export function id(prefix = 'id') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form field: <div class="field"><label for>…</label><control></div>. */
export function field(label, control, hint) {
  const cid = control.id || id('f');
  control.id = cid;
  const hintEl = hint ? h('p', { class: 'hint', id: `${cid}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: cid }, label), control, hintEl);
}

/** A section with an h2 that names it (role=region). */
export function section(title, ...children) {
  const hid = id('h');
  return h('section', { class: 'panel', 'aria-labelledby': hid }, h('h2', { id: hid }, title), ...children);
}

/** An element to show errors in: `alertBox.show(message)` / `.clear()`. */
export function alertBox() {
  const el = h('div', { class: 'alert', role: 'alert', hidden: true });
  el.show = (msg) => {
    el.textContent = msg;
    el.hidden = false;
  };
  el.clear = () => {
    el.textContent = '';
    el.hidden = true;
  };
  return el;
}

/** Runs an async action with its button disabled; errors go to `alert`. */
export async function busy(button, alert, fn) {
  if (alert) alert.clear();
  const wasDisabled = button ? button.disabled : false;
  if (button) {
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
  }
  try {
    return await fn();
  } catch (e) {
    if (alert) alert.show(e.message || String(e));
    else throw e;
  } finally {
    if (button && button.isConnected !== false) {
      button.disabled = wasDisabled;
      button.removeAttribute('aria-busy');
    }
  }
}

/** A form whose submit runs `action` with `button` busy; errors go to `alert`. */
export function submitForm(button, alert, action, ...children) {
  const submit = (e) => {
    e.preventDefault();
    busy(button, alert, action);
  };
  return h('form', { novalidate: true, onsubmit: submit }, ...children);
}

/**
 * A modal dialog that asks before `action` runs (its errors are shown in the dialog):
 * `confirm` is the danger button's text; with `typed`, that text must be typed first.
 */
export function confirmDialog(page, { title, text, confirm, typed, action }) {
  const alert = alertBox();
  const input = typed ? h('input', { type: 'text', autocomplete: 'off' }) : null;
  const yes = h('button', { type: 'submit', class: 'danger' }, confirm);
  const heading = id('confirm');
  const submit = (e) => {
    e.preventDefault();
    busy(yes, alert, async () => {
      if (typed && input.value !== typed) throw new Error(`Type ${typed} to confirm.`);
      await action();
      dialog.close();
    });
  };
  const dialog = h(
    'dialog',
    { class: 'dialog', 'aria-labelledby': heading },
    h(
      'form',
      { method: 'dialog', onsubmit: submit },
      h('h2', { id: heading }, title),
      h('p', {}, text),
      typed ? field(`To confirm, type ${typed}`, input) : null,
      alert,
      h('div', { class: 'actions end' }, h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Cancel'), yes),
    ),
  );
  dialog.addEventListener('close', () => dialog.remove());
  page.append(dialog);
  dialog.showModal();
}

/**
 * A table with a caption (visually hidden unless `showCaption`), column headers and rows.
 * `rows` are arrays of cells (strings or nodes).
 */
export function table(caption, headers, rows, empty = 'Nothing here yet.') {
  const t = h(
    'table',
    { class: 'grid' },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h(
      'tbody',
      {},
      rows.length
        ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))
        : h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, empty)),
    ),
  );
  return h('div', { class: 'table-wrap' }, t);
}

/**
 * WAI-ARIA tabs: arrow keys, Home and End move between tabs (automatic activation).
 * @param {string} label  accessible name of the tablist
 * @param {{id: string, label: string, render: (panel: HTMLElement) => any}[]} tabs
 * @param {string} initial  id of the first selected tab
 * @param {(id: string) => void} onchange
 */
export function tabs(label, list, initial, onchange) {
  const tablist = h('div', { role: 'tablist', 'aria-label': label, class: 'tabs' });
  const panels = h('div', { class: 'tabpanels' });
  const buttons = [];
  const panelEls = [];
  const rendered = new Set();
  const select = (i, focus) => {
    buttons.forEach((b, j) => {
      const on = i === j;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
      panelEls[j].hidden = !on;
    });
    if (focus) buttons[i].focus();
    const t = list[i];
    if (!rendered.has(t.id)) {
      rendered.add(t.id);
      t.render(panelEls[i]);
    } else if (t.onshow) {
      t.onshow(panelEls[i]);
    }
    if (onchange) onchange(t.id);
  };
  list.forEach((t, i) => {
    const tid = id(`tab-${t.id}`);
    const pid = id(`panel-${t.id}`);
    const b = h('button', {
      role: 'tab',
      id: tid,
      type: 'button',
      'aria-controls': pid,
      'aria-selected': 'false',
      tabindex: '-1',
      onclick: () => select(i, false),
      onkeydown: (e) => {
        let j = null;
        if (e.key === 'ArrowRight') j = (i + 1) % list.length;
        else if (e.key === 'ArrowLeft') j = (i - 1 + list.length) % list.length;
        else if (e.key === 'Home') j = 0;
        else if (e.key === 'End') j = list.length - 1;
        if (j !== null) {
          e.preventDefault();
          select(j, true);
        }
      },
    }, t.label);
    const p = h('div', { role: 'tabpanel', id: pid, 'aria-labelledby': tid, hidden: true, class: 'tabpanel' });
    buttons.push(b);
    panelEls.push(p);
    tablist.append(b);
    panels.append(p);
  });
  const start = Math.max(0, list.findIndex((t) => t.id === initial));
  const root = h('div', { class: 'tabset' }, tablist, panels);
  // Render the first tab once the tabset is in the document.
  queueMicrotask(() => select(start, false));
  root.select = (tabId) => select(Math.max(0, list.findIndex((t) => t.id === tabId)), true);
  return root;
}

/** "2026-11-26 16:25:03" in local time, from ms or an ISO string. */
export function fmtTime(t) {
  if (t === null || t === undefined || t === '') return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Number(n).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtMoney(n) {
  if (n === 0) return '$0.00';
  if (n < 0.000001) return `$${n.toFixed(10).replace(/0+$/, '')}`;
  if (n < 0.01) return `$${n.toFixed(6)}`;
  return `$${n.toFixed(n < 1 ? 4 : 2)}`;
}

/** Pretty-prints a JSON text; returns it unchanged if it is not JSON. */
export function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** A button that copies `text` to the clipboard. */
export function copyButton(label, text) {
  const b = h('button', { type: 'button', class: 'link-button', 'aria-label': label }, 'Copy');
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
      setTimeout(() => (b.textContent = 'Copy'), 1500);
    } catch {
      b.textContent = 'Copy failed';
    }
  });
  return b;
}

/** A spinner-free loading line (not a live region: the page's one status is the flash). */
export function loading(what = 'Loading…') {
  return h('p', { class: 'loading' }, what);
}

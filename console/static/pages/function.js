// #/functions/{name}[/{tab}]: one function with tabs Code, Test, Monitor, Configuration.
import { consoleApi, lambda, logs } from '../api.js';
import { flash, go, replacePath } from '../app.js';
import { countChart, latencyChart, maxChart } from '../charts.js';
import { createEditor } from '../editor.js';
import { alertBox, busy, confirmDialog, copyButton, field, fmtTime, h, id, loading, pretty, section, submitForm, table, tabs } from '../ui.js';
import { readZip, toBase64, writeZip } from '../zip.js';
import { apiGatewayEvent } from './events.js';

const TABS = ['code', 'test', 'monitor', 'configuration'];

export async function render(page, { name, tab }, ctx) {
  const head = h('div', { class: 'page-head' }, h('h1', {}, name));
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/functions' }, 'All functions'), ' › ', name);
  const summary = h('div', {}, loading('Loading the function…'));
  page.append(crumbs, head, summary);
  const doc = await lambda.getFunction(name);
  if (!ctx.isCurrent()) return;
  const state = { doc, cfg: doc.Configuration };
  const del = h('button', { type: 'button', class: 'danger', onclick: () => confirmDelete(page, name) }, 'Delete');
  head.append(h('div', { class: 'actions' }, del));
  summary.replaceChildren(overview(state));
  // While the function is Pending or an update is InProgress, follow it until it settles.
  let watching = false;
  const settle = async () => {
    if (watching) return;
    watching = true;
    try {
      for (let i = 0; i < 40 && ctx.isCurrent(); i++) {
        const busyNow = state.cfg.State === 'Pending' || state.cfg.LastUpdateStatus === 'InProgress';
        if (!busyNow) break;
        await new Promise((r) => setTimeout(r, 250));
        try {
          state.cfg = (await lambda.getFunction(name)).Configuration;
        } catch {
          break;
        }
        summary.replaceChildren(overview(state));
      }
    } finally {
      watching = false;
    }
  };
  state.updated = (cfg) => {
    if (cfg) state.cfg = { ...state.cfg, ...cfg };
    summary.replaceChildren(overview(state));
    settle();
  };
  settle();
  const set = tabs(
    'Function',
    [
      { id: 'code', label: 'Code', render: (p) => codeTab(p, name, state) },
      { id: 'test', label: 'Test', render: (p) => testTab(p, name, state) },
      { id: 'monitor', label: 'Monitor', render: (p) => monitorTab(p, name), onshow: (p) => p.refresh && p.refresh() },
      { id: 'configuration', label: 'Configuration', render: (p) => configTab(p, name, state) },
    ],
    TABS.includes(tab) ? tab : 'code',
    (t) => replacePath(`/functions/${encodeURIComponent(name)}${t === 'code' ? '' : `/${t}`}`),
  );
  page.append(set);
}

function overview({ cfg }) {
  const item = (k, v, cls) => h('div', { class: cls }, h('dt', {}, k), h('dd', {}, v));
  return h(
    'section',
    { class: 'panel overview', 'aria-label': 'Function overview' },
    h(
      'dl',
      { class: 'facts' },
      item('Runtime', cfg.Runtime),
      item('Handler', h('code', {}, cfg.Handler)),
      item('Architecture', (cfg.Architectures || []).join(', ')),
      item('Memory', `${cfg.MemorySize} MB`),
      item('Timeout', `${cfg.Timeout} s`),
      item('State', `${cfg.State}${cfg.LastUpdateStatus && cfg.LastUpdateStatus !== 'Successful' ? ` (update ${cfg.LastUpdateStatus})` : ''}`),
      item('Last modified', fmtTime(cfg.LastModified)),
      item('Function ARN', h('span', { class: 'arn' }, h('code', {}, cfg.FunctionArn), ' ', copyButton('Copy function ARN', cfg.FunctionArn)), 'span2'),
    ),
    cfg.StateReason && cfg.State !== 'Active' ? h('p', { class: 'warning' }, cfg.StateReason) : null,
  );
}

function confirmDelete(page, name) {
  confirmDialog(page, {
    title: `Delete ${name}`,
    text: 'Deleting a function removes its code, versions, aliases and permissions. Its logs stay.',
    confirm: 'Delete function',
    typed: name,
    action: async () => {
      await lambda.deleteFunction(name);
      flash(`Successfully deleted the function ${name}.`, { next: true });
      go('/functions');
    },
  });
}

// --- Code -------------------------------------------------------------------------------

/** The file holding the handler: index.handler → index.mjs/.js/.cjs, a.b.handler → a/b.py. */
function handlerFile(cfg, names) {
  const rt = cfg.Runtime || '';
  const handler = cfg.Handler || '';
  const mod = handler.includes('.') ? handler.slice(0, handler.lastIndexOf('.')) : handler;
  let candidates;
  if (rt.startsWith('nodejs')) candidates = ['.mjs', '.js', '.cjs'].map((e) => `${mod}${e}`);
  else if (rt.startsWith('python')) candidates = [`${mod.replace(/\./g, '/')}.py`];
  else candidates = ['bootstrap'];
  return candidates.find((c) => names.includes(c)) || names.find((n) => isText(n)) || names[0];
}

function isText(n) {
  return /\.(m?js|cjs|ts|py|json|txt|md|sh|ya?ml|html|css|toml|cfg|ini)$/.test(n) || n === 'bootstrap' || !n.includes('.');
}

async function codeTab(panel, name, state) {
  const alert = alertBox();
  const fileSelect = h('select', {});
  const editorHost = h('div', { class: 'editor' });
  const deploy = h('button', { type: 'button', class: 'primary', disabled: true }, 'Deploy');
  const note = h('p', { class: 'muted' });
  const fileField = field('File', fileSelect);
  panel.append(
    h('div', { class: 'toolbar' }, h('h2', {}, 'Code source'), h('div', { class: 'actions' }, deploy)),
    alert,
    h('div', { class: 'toolbar' }, fileField, note),
    editorHost,
    h('p', { class: 'hint' }, 'Tab and Shift+Tab move focus into and out of the editor; indent with Ctrl+] and outdent with Ctrl+[.'),
  );
  let entries = [];
  const edits = new Map();
  let current = null;
  let editor = null;
  try {
    const bytes = await lambda.downloadCode(name, state.doc.Code && state.doc.Code.Location);
    entries = await readZip(bytes);
  } catch (e) {
    alert.show(`The function's deployment package could not be loaded: ${e.message}`);
    return;
  }
  const names = entries.map((e) => e.name);
  const texts = names.filter(isText);
  const first = handlerFile(state.cfg, names);
  fileSelect.replaceChildren(...(texts.length ? texts : names).map((n) => h('option', { value: n, selected: n === first }, n)));
  const dec = new TextDecoder('utf-8', { fatal: true });
  const textOf = (n) => {
    if (edits.has(n)) return edits.get(n);
    const e = entries.find((x) => x.name === n);
    try {
      return dec.decode(e.data);
    } catch {
      return null;
    }
  };
  const show = (n) => {
    if (current !== null && editor) edits.set(current, editor.getValue());
    const t = textOf(n);
    current = n;
    if (t === null) {
      note.textContent = `${n} is a binary file (${entries.find((x) => x.name === n).data.length} bytes): it is deployed unchanged.`;
      editor.setValue('', n);
      current = null;
      return;
    }
    note.textContent = `${dirty ? 'Changes not deployed. ' : ''}${entries.length} file${entries.length === 1 ? '' : 's'} in the package; handler ${state.cfg.Handler}.`;
    editor.setValue(t, n);
  };
  let loadingFile = false;
  let dirty = false;
  const markDirty = () => {
    if (loadingFile) return;
    dirty = true;
    if (!note.textContent.startsWith('Changes not deployed')) note.textContent = `Changes not deployed. ${note.textContent}`;
  };
  editor = await createEditor(editorHost, { doc: '', fileName: first, label: 'Code editor', onChange: markDirty });
  const setValue = editor.setValue;
  editor.setValue = (text, fileName) => {
    loadingFile = true;
    try {
      setValue(text, fileName);
    } finally {
      loadingFile = false;
    }
  };
  show(first);
  fileSelect.addEventListener('change', () => show(fileSelect.value));
  deploy.disabled = false;
  deploy.addEventListener('click', () =>
    busy(deploy, alert, async () => {
      if (current !== null) edits.set(current, editor.getValue());
      const enc = new TextEncoder();
      const files = entries.map((e) => ({ name: e.name, data: edits.has(e.name) ? enc.encode(edits.get(e.name)) : e.data, mode: e.mode }));
      const zip = writeZip(files);
      state.updated(await lambda.updateCode(name, toBase64(zip)));
      entries = files;
      edits.clear();
      dirty = false;
      note.textContent = note.textContent.replace(/^Changes not deployed\. /, '');
      flash(`Successfully updated the function ${name}.`);
    }),
  );
}

// --- Test -------------------------------------------------------------------------------

const TEMPLATES = {
  'hello-world': () => ({ key1: 'value1', key2: 'value2', key3: 'value3' }),
  'API Gateway HTTP API (payload 2.0)': () => apiGatewayEvent('2.0'),
  'API Gateway HTTP API (payload 1.0)': () => apiGatewayEvent('1.0'),
};

function parseReport(log) {
  const line = (log || '').split('\n').find((l) => l.startsWith('REPORT '));
  if (!line) return null;
  const out = {};
  for (const [key, label] of [
    ['RequestId', 'Request ID'],
    ['Duration', 'Duration'],
    ['Billed Duration', 'Billed Duration'],
    ['Memory Size', 'Memory Size'],
    ['Max Memory Used', 'Max Memory Used'],
    ['Init Duration', 'Init Duration'],
  ]) {
    const m = line.match(new RegExp(`(?:^|\\t|REPORT )${key}: ([^\\t]+)`));
    if (m) out[label] = m[1].trim();
  }
  return out;
}

function testTab(panel, name) {
  const alert = alertBox();
  const template = h('select', {}, Object.keys(TEMPLATES).map((k) => h('option', { value: k }, k)));
  const event = h('textarea', { class: 'code-area', rows: 14, spellcheck: 'false', autocapitalize: 'off' });
  event.value = JSON.stringify(TEMPLATES['hello-world'](), null, 2);
  template.addEventListener('change', () => {
    event.value = JSON.stringify(TEMPLATES[template.value](), null, 2);
  });
  const run = h('button', { type: 'button', class: 'primary' }, 'Test');
  const format = h('button', { type: 'button', class: 'secondary' }, 'Format JSON');
  const result = h('div', {});
  format.addEventListener('click', () => {
    alert.clear();
    try {
      event.value = JSON.stringify(JSON.parse(event.value), null, 2);
    } catch (e) {
      alert.show(`The event is not valid JSON: ${e.message}`);
    }
  });
  run.addEventListener('click', () =>
    busy(run, alert, async () => {
      const text = event.value.trim() || '{}';
      try {
        JSON.parse(text);
      } catch (e) {
        throw new Error(`The event is not valid JSON: ${e.message}`);
      }
      const out = await lambda.invoke(name, text);
      result.replaceChildren(executionResult(out));
      result.querySelector('h2').focus();
    }),
  );
  panel.append(
    section(
      'Test event',
      h('div', { class: 'grid-2' }, field('Template', template)),
      field('Event JSON', event),
      h('div', { class: 'actions' }, format, run),
      alert,
    ),
    result,
  );
}

function executionResult(out) {
  const failed = Boolean(out.functionError);
  const hid = id('exec');
  const report = parseReport(out.logResult);
  return h(
    'section',
    { class: `panel result ${failed ? 'failed' : 'succeeded'}`, 'aria-labelledby': hid },
    h('h2', { id: hid, tabindex: '-1' }, 'Execution result'),
    h('p', { class: `outcome ${failed ? 'bad' : 'good'}` }, `Execution result: ${failed ? 'failed' : 'succeeded'}`),
    failed ? h('p', {}, `The function returned an error (X-Amz-Function-Error: ${out.functionError}).`) : null,
    h('h3', {}, 'Response'),
    h('pre', { class: 'code', tabindex: '0', 'aria-label': 'Response' }, out.payload === '' ? 'null' : pretty(out.payload)),
    report
      ? h('div', {}, h('h3', {}, 'Summary'), h('dl', { class: 'facts' }, Object.entries(report).map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v)))))
      : null,
    h(
      'section',
      { 'aria-labelledby': `${hid}-logs` },
      h('h3', { id: `${hid}-logs` }, 'Function Logs'),
      h('pre', { class: 'code logs', tabindex: '0', 'aria-label': 'Function Logs' }, out.logResult === null ? '(no log tail returned)' : out.logResult),
    ),
  );
}

// --- Monitor ----------------------------------------------------------------------------

function monitorTab(panel, name) {
  const alert = alertBox();
  const minutesSel = h('select', {}, [15, 60, 180].map((m) => h('option', { value: m, selected: m === 60 }, `Last ${m} minutes`)));
  const refresh = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  const charts = h('div', { class: 'charts' }, loading('Loading metrics…'));
  const logsBox = h('div', {}, loading('Loading logs…'));
  const logsAlert = alertBox();
  const loadLogs = async () => {
    logsAlert.clear();
    try {
      logsBox.replaceChildren(logTable(await logs.filter(`/aws/lambda/${name}`, { startFromHead: false, limit: 50 }), name));
    } catch (e) {
      logsBox.replaceChildren();
      logsAlert.show(e.message);
    }
  };
  const load = () =>
    busy(refresh, alert, async () => {
      const minutes = Number(minutesSel.value);
      const logsDone = loadLogs();
      try {
        const m = await consoleApi.functionMetrics(name, minutes);
        const pts = m.points || [];
        const t = pts.map((p) => p.t);
        charts.replaceChildren(
          countChart('Invocations', t, pts.map((p) => p.invocations), minutes, 'c1'),
          countChart('Errors', t, pts.map((p) => p.errors), minutes, 'c3'),
          countChart('Throttles', t, pts.map((p) => p.throttles), minutes, 'c4'),
          latencyChart('Duration p50 / p99 (ms)', t, pts.map((p) => p.durationP50Ms), pts.map((p) => p.durationP99Ms), minutes),
          maxChart('Concurrent executions', t, pts.map((p) => p.concurrencyMax), minutes, 'c5'),
        );
      } catch (e) {
        charts.replaceChildren();
        throw e;
      } finally {
        await logsDone;
      }
    });
  panel.refresh = load;
  minutesSel.addEventListener('change', load);
  const rid = id('range');
  minutesSel.id = rid;
  panel.append(
    h('div', { class: 'toolbar' }, h('h2', {}, 'Metrics'), h('div', { class: 'actions' }, h('label', { for: rid, class: 'sr-only' }, 'Time range'), minutesSel, refresh)),
    alert,
    charts,
    section('Recent logs', h('p', { class: 'muted' }, `The newest 50 events of /aws/lambda/${name}, newest first.`), logsAlert, logsBox),
  );
  load();
}

export function logTable(events, name) {
  if (events === null) return h('p', { class: 'muted' }, `No logs yet: the log group /aws/lambda/${name} is created when the function first runs.`);
  const sorted = [...events].sort((a, b) => b.timestamp - a.timestamp || (b.eventId > a.eventId ? 1 : -1));
  return table(
    'Log events',
    ['Time', 'Message'],
    sorted.map((e) => [h('span', { class: 'nowrap' }, fmtTime(e.timestamp)), h('pre', { class: 'log-line' }, e.message.replace(/\n$/, ''))]),
    'No log events.',
  );
}

// --- Configuration ----------------------------------------------------------------------

function configTab(panel, name, state) {
  const saved = (cfg) => {
    state.updated(cfg);
    flash(`Successfully updated the function ${name}.`);
  };
  panel.append(general(name, state, saved), environment(name, state, saved), concurrency(name), permissions(name));
}

function numberInput(value, min, max, step = 1) {
  return h('input', { type: 'number', value: String(value), min, max, step, inputmode: 'numeric', required: true });
}

function general(name, state, saved) {
  const alert = alertBox();
  const memory = numberInput(state.cfg.MemorySize, 128, 10240);
  const timeout = numberInput(state.cfg.Timeout, 1, 900);
  const storage = numberInput((state.cfg.EphemeralStorage || {}).Size || 512, 512, 10240);
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const form = submitForm(
    save,
    alert,
    async () => {
      const m = Number(memory.value);
      const t = Number(timeout.value);
      const s = Number(storage.value);
      // Ranges are the service's to check (its message is shown as it is); only non-numbers stop here.
      for (const [v, label] of [[m, 'Memory (MB)'], [t, 'Timeout (seconds)'], [s, 'Ephemeral storage (MB)']]) {
        if (!Number.isInteger(v)) throw new Error(`${label} must be a whole number.`);
      }
      saved(await lambda.updateConfiguration(name, { MemorySize: m, Timeout: t, EphemeralStorage: { Size: s } }));
    },
    h('div', { class: 'grid-3' }, field('Memory (MB)', memory, '128 to 10240 MB.'), field('Timeout (seconds)', timeout, '1 to 900 seconds.'), field('Ephemeral storage (MB)', storage, '512 to 10240 MB of /tmp.')),
    alert,
    h('div', { class: 'actions' }, save),
  );
  return section('General configuration', form);
}

function environment(name, state, saved) {
  const alert = alertBox();
  const rows = h('div', { class: 'env-rows' });
  const addRow = (k = '', v = '') => {
    const key = h('input', { type: 'text', value: k, 'aria-label': 'Key', spellcheck: 'false', autocapitalize: 'off', placeholder: 'Key' });
    const val = h('input', { type: 'text', value: v, 'aria-label': 'Value', spellcheck: 'false', autocapitalize: 'off', placeholder: 'Value' });
    const row = h('div', { class: 'env-row' }, key, val);
    const remove = h('button', { type: 'button', class: 'secondary', 'aria-label': 'Remove this variable', onclick: () => row.remove() }, 'Remove');
    row.append(remove);
    rows.append(row);
    return key;
  };
  for (const [k, v] of Object.entries((state.cfg.Environment || {}).Variables || {})) addRow(k, v);
  const add = h('button', { type: 'button', class: 'secondary', onclick: () => addRow().focus() }, 'Add environment variable');
  const save = h('button', { type: 'button', class: 'primary' }, 'Save');
  save.addEventListener('click', () =>
    busy(save, alert, async () => {
      const vars = {};
      for (const row of rows.querySelectorAll('.env-row')) {
        const [k, v] = row.querySelectorAll('input');
        const key = k.value.trim();
        if (!key && !v.value) continue;
        if (!key) throw new Error('Every environment variable needs a key.');
        if (key in vars) throw new Error(`The key ${key} appears twice.`);
        vars[key] = v.value;
      }
      saved(await lambda.updateConfiguration(name, { Environment: { Variables: vars } }));
    }),
  );
  return section('Environment variables', h('p', { class: 'muted' }, 'Set in the environment of every new execution environment.'), rows, h('div', { class: 'actions' }, add, save), alert);
}

function concurrency(name) {
  const alert = alertBox();
  const input = h('input', { type: 'number', min: 0, step: 1, inputmode: 'numeric', placeholder: 'Unreserved' });
  const save = h('button', { type: 'button', class: 'primary' }, 'Save');
  const info = h('p', { class: 'muted' });
  (async () => {
    try {
      const [c, acct] = await Promise.all([lambda.getConcurrency(name), lambda.accountSettings().catch(() => null)]);
      if (c && c.ReservedConcurrentExecutions !== undefined) input.value = String(c.ReservedConcurrentExecutions);
      if (acct) {
        info.textContent = `Account concurrency limit ${acct.AccountLimit.ConcurrentExecutions}; unreserved ${acct.AccountLimit.UnreservedConcurrentExecutions}. Leave empty to use the unreserved pool.`;
      }
    } catch (e) {
      alert.show(e.message);
    }
  })();
  save.addEventListener('click', () =>
    busy(save, alert, async () => {
      if (input.value.trim() === '') {
        await lambda.deleteConcurrency(name);
        flash(`Successfully updated the function ${name}.`);
        return;
      }
      const n = Number(input.value);
      if (!Number.isInteger(n) || n < 0) throw new Error('Reserved concurrency must be a whole number, 0 or more (0 stops all invocations).');
      await lambda.putConcurrency(name, n);
      flash(`Successfully updated the function ${name}.`);
    }),
  );
  return section('Concurrency', field('Reserved concurrency', input), info, h('div', { class: 'actions' }, save), alert);
}

function permissions(name) {
  const body = h('div', {}, loading('Loading the resource policy…'));
  (async () => {
    try {
      const p = await lambda.getPolicy(name);
      if (!p) {
        body.replaceChildren(h('p', { class: 'muted' }, 'No resource-based policy: no service or other account may invoke this function.'));
        return;
      }
      body.replaceChildren(h('pre', { class: 'code', tabindex: '0', 'aria-label': 'Resource-based policy' }, pretty(p.Policy)));
    } catch (e) {
      body.replaceChildren(h('div', { class: 'alert', role: 'alert' }, e.message));
    }
  })();
  return section('Permissions', h('h3', {}, 'Resource-based policy statements'), body);
}

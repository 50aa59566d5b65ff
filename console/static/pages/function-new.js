// #/functions/new: "Author from scratch" with AWS's starter handler.
import { lambda, session } from '../api.js';
import { flash, go } from '../app.js';
import { alertBox, field, h, id, submitForm } from '../ui.js';
import { toBase64, writeZip } from '../zip.js';

export const RUNTIMES = [
  ['nodejs22.x', 'Node.js 22.x'],
  ['nodejs20.x', 'Node.js 20.x'],
  ['python3.14', 'Python 3.14'],
  ['python3.13', 'Python 3.13'],
  ['python3.12', 'Python 3.12'],
  ['python3.11', 'Python 3.11'],
  ['python3.10', 'Python 3.10'],
  ['provided.al2023', 'Amazon Linux 2023'],
  ['provided.al2', 'Amazon Linux 2'],
];

const NODE_STARTER = `export const handler = async (event) => {
  // TODO implement
  const response = {
    statusCode: 200,
    body: JSON.stringify('Hello from Lambda!'),
  };
  return response;
};
`;

const PYTHON_STARTER = `import json

def lambda_handler(event, context):
    # TODO implement
    return {
        'statusCode': 200,
        'body': json.dumps('Hello from Lambda!')
    }
`;

// An OS-only runtime runs the package's own \`bootstrap\`: this one speaks the Runtime API
// with bash and curl and answers every event with the starter's response.
const BOOTSTRAP_STARTER = `#!/bin/bash
# A custom runtime: fetch the next event, answer it, repeat.
set -euo pipefail
API="http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation"
while true; do
  HEADERS="$(mktemp)"
  EVENT="$(curl -sS -LD "$HEADERS" "$API/next")"
  REQUEST_ID="$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)"
  RESPONSE='{"statusCode":200,"body":"\\"Hello from Lambda!\\""}'
  curl -sS -X POST "$API/$REQUEST_ID/response" -d "$RESPONSE" >/dev/null
  rm -f "$HEADERS"
done
`;

/** The starter package of a runtime: files, handler, and the file to show in the editor. */
export function starter(runtime) {
  if (runtime.startsWith('nodejs')) return { files: [{ name: 'index.mjs', data: NODE_STARTER }], handler: 'index.handler' };
  if (runtime.startsWith('python')) {
    return { files: [{ name: 'lambda_function.py', data: PYTHON_STARTER }], handler: 'lambda_function.lambda_handler' };
  }
  return { files: [{ name: 'bootstrap', data: BOOTSTRAP_STARTER, mode: 0o755 }], handler: 'function.handler' };
}

export async function render(page) {
  const alert = alertBox();
  const name = h('input', { type: 'text', required: true, maxlength: 64, spellcheck: 'false', autocapitalize: 'off', pattern: '[a-zA-Z0-9_-]+' });
  // The session lists each runtime and whether this host can run it: others stay listed, disabled.
  const known = new Map(((session.current && session.current.runtimes) || []).map((r) => [r.id, r]));
  const missing = RUNTIMES.filter(([v]) => known.has(v) && !known.get(v).available);
  const runtime = h(
    'select',
    {},
    RUNTIMES.map(([v, label]) => {
      const info = known.get(v);
      return h('option', { value: v, selected: v === 'nodejs22.x', disabled: info && !info.available && v !== 'nodejs22.x', title: info && info.reason ? info.reason : null }, label);
    }),
  );
  const archName = id('arch');
  const radio = (value, checked) => {
    const rid = id(`arch-${value}`);
    return h('div', { class: 'radio' }, h('input', { type: 'radio', name: archName, id: rid, value, checked }), h('label', { for: rid }, value));
  };
  const modeId = id('mode');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create function');
  const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => go('/functions') }, 'Cancel');
  const form = submitForm(
    submit,
    alert,
    async () => {
      const fn = name.value.trim();
      if (!fn) throw new Error('Enter a function name.');
      if (!/^[a-zA-Z0-9_-]{1,64}$/.test(fn)) {
        throw new Error('The function name must be 1 to 64 characters: letters, numbers, hyphens (-) and underscores (_) only.');
      }
      const rt = runtime.value;
      const arch = form.querySelector(`input[name="${archName}"]:checked`).value;
      const st = starter(rt);
      const zip = writeZip(st.files);
      await lambda.createFunction({
        FunctionName: fn,
        Runtime: rt,
        Role: `arn:aws:iam::${session.current.accountId}:role/service-role/${fn}-role`,
        Handler: st.handler,
        Architectures: [arch],
        Code: { ZipFile: toBase64(zip) },
      });
      flash(`Successfully created the function ${fn}.`, { next: true });
      go(`/functions/${encodeURIComponent(fn)}`);
    },
    h(
      'section',
      { class: 'panel' },
      h('fieldset', { class: 'choice-cards' },
        h('legend', { class: 'sr-only' }, 'How to create the function'),
        h('div', { class: 'choice-card selected' },
          h('input', { type: 'radio', name: modeId, id: `${modeId}-scratch`, value: 'scratch', checked: true }),
          h('label', { for: `${modeId}-scratch` }, h('strong', {}, 'Author from scratch')),
          h('p', { class: 'muted' }, 'Start with a simple Hello World example.'),
        ),
      ),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'basic-h' },
      h('h2', { id: 'basic-h' }, 'Basic information'),
      field('Function name', name, 'Letters, numbers, hyphens and underscores; 1 to 64 characters.'),
      field('Runtime', runtime, 'The language of the starter handler. Runtimes this host cannot run are listed but disabled.'),
      missing.length
        ? h('details', { class: 'hint' }, h('summary', {}, `${missing.length} runtime${missing.length === 1 ? ' is' : 's are'} not available on this host`),
            h('ul', {}, missing.map(([v, label]) => h('li', {}, h('strong', {}, label), ` (${v}): `, known.get(v).reason || 'not available'))))
        : null,
      h('fieldset', { class: 'radios' }, h('legend', {}, 'Architecture'), radio('arm64', false), radio('x86_64', true)),
      h('p', { class: 'hint' }, 'Portico runs both on this machine\u2019s CPU; the architecture sets the price in Costs.'),
    ),
    alert,
    h('div', { class: 'actions end' }, cancel, submit),
  );
  page.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/functions' }, 'All functions'), ' › ', 'Create function'), h('h1', {}, 'Create function'), form);
  name.focus();
}

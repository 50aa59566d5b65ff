// #/apis/{apiId}[/{tab}]: one HTTP API with tabs Routes, Integrations, Stages, CORS,
// Authorizers, Monitor, Diagnostics.
import { apigw, consoleApi, lambda, logs } from '../api.js';
import { flash, go, replacePath } from '../app.js';
import { countChart, latencyChart } from '../charts.js';
import { alertBox, busy, confirmDialog, copyButton, field, fmtTime, h, id, loading, section, submitForm, table, tabs } from '../ui.js';
import { METHODS, checkPath, functionNameOf, grantInvoke, invokeUrls } from './apigw-util.js';
import { logTable } from './function.js';

const TABS = ['routes', 'integrations', 'stages', 'cors', 'authorizers', 'monitor', 'diagnostics'];

export async function render(page, { apiId, tab }, ctx) {
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/apis' }, 'All APIs'), ' › ', apiId);
  page.append(crumbs, loading('Loading the API…'));
  const api = await apigw.getApi(apiId);
  if (!ctx.isCurrent()) return;
  page.querySelector('.loading').remove();
  crumbs.lastChild.textContent = api.name;
  const state = { api };
  const urls = invokeUrls(api, '$default');
  const del = h('button', { type: 'button', class: 'danger', onclick: () => confirmDelete(page, api) }, 'Delete');
  page.append(
    h('div', { class: 'page-head' }, h('h1', {}, api.name), h('div', { class: 'actions' }, del)),
    h(
      'section',
      { class: 'panel overview', 'aria-label': 'API details' },
      h(
        'dl',
        { class: 'facts' },
        h('div', {}, h('dt', {}, 'API ID'), h('dd', {}, h('code', {}, api.apiId))),
        h('div', {}, h('dt', {}, 'Protocol'), h('dd', {}, api.protocolType)),
        h('div', {}, h('dt', {}, 'Created'), h('dd', {}, fmtTime(api.createdDate))),
        h(
          'div',
          { class: 'wide' },
          h('dt', { id: 'invoke-url-label' }, 'Invoke URL'),
          h(
            'dd',
            {},
            h('a', { href: urls.host, target: '_blank', rel: 'noopener', 'aria-describedby': 'invoke-url-label' }, urls.host),
            ' ',
            copyButton('Copy invoke URL', urls.host),
            h('br'),
            h('span', { class: 'muted' }, 'Path form, for clients that do not resolve *.localhost: '),
            h('a', { href: urls.path, target: '_blank', rel: 'noopener' }, urls.path),
          ),
        ),
      ),
    ),
  );
  page.append(
    tabs(
      'API',
      [
        { id: 'routes', label: 'Routes', render: (p) => routesTab(p, state) },
        { id: 'integrations', label: 'Integrations', render: (p) => integrationsTab(p, state) },
        { id: 'stages', label: 'Stages', render: (p) => stagesTab(p, state) },
        { id: 'cors', label: 'CORS', render: (p) => corsTab(p, state) },
        { id: 'authorizers', label: 'Authorizers', render: (p) => authorizersTab(p, state) },
        { id: 'monitor', label: 'Monitor', render: (p) => monitorTab(p, state), onshow: (p) => p.refresh && p.refresh() },
        { id: 'diagnostics', label: 'Diagnostics', render: (p) => diagnosticsTab(p, state), onshow: (p) => p.refresh && p.refresh() },
      ],
      TABS.includes(tab) ? tab : 'routes',
      (t) => replacePath(`/apis/${encodeURIComponent(apiId)}${t === 'routes' ? '' : `/${t}`}`),
    ),
  );
}

function confirmDelete(page, api) {
  confirmDialog(page, {
    title: `Delete ${api.name}`,
    text: 'Deleting the API removes its routes, integrations, stages and authorizers. Its functions stay.',
    confirm: 'Delete API',
    action: async () => {
      await apigw.deleteApi(api.apiId);
      flash(`Successfully deleted the API ${api.name}.`, { next: true });
      go('/apis');
    },
  });
}

/** A panel that (re)loads its content with `load()`; errors go to its alert. */
function loader(panel, fill) {
  const alert = alertBox();
  const body = h('div', {}, loading());
  panel.append(alert, body);
  const load = async () => {
    alert.clear();
    try {
      await fill(body, load, alert);
    } catch (e) {
      alert.show(e.message);
    }
  };
  load();
  return load;
}

function targetLabel(target, integrations) {
  if (!target) return '–';
  const iid = target.replace(/^integrations\//, '');
  const integ = integrations.find((i) => i.integrationId === iid);
  if (!integ) return target;
  return integ.integrationType === 'AWS_PROXY' ? `${functionNameOf(integ.integrationUri)} (Lambda, ${iid})` : `${integ.integrationUri} (${iid})`;
}

// --- Routes -----------------------------------------------------------------------------

function routesTab(panel, state) {
  const apiId = state.api.apiId;
  loader(panel, async (body, reload, alert) => {
    const [routes, integrations, authorizers] = await Promise.all([apigw.list(apiId, 'routes'), apigw.list(apiId, 'integrations'), apigw.list(apiId, 'authorizers')]);
    routes.sort((a, b) => a.routeKey.localeCompare(b.routeKey));
    const authName = (r) => {
      if (r.authorizationType === 'NONE' || !r.authorizationType) return 'None';
      const a = authorizers.find((x) => x.authorizerId === r.authorizerId);
      return `${r.authorizationType}${a ? ` (${a.name})` : ''}`;
    };
    const rows = routes.map((r) => {
      const remove = deleteButton('route', r.routeKey, alert, reload, () => apigw.remove(apiId, 'routes', r.routeId));
      return [h('code', {}, r.routeKey), targetLabel(r.target, integrations), authName(r), remove];
    });
    // Create-route form.
    const method = h('select', {}, METHODS.map((m) => h('option', { value: m }, m)));
    method.value = 'GET';
    const path = h('input', { type: 'text', value: '/', spellcheck: 'false', autocapitalize: 'off' });
    const target = h(
      'select',
      {},
      h('option', { value: '' }, 'No integration (attach later)'),
      integrations.map((i) => h('option', { value: i.integrationId }, targetLabel(`integrations/${i.integrationId}`, integrations))),
    );
    if (integrations.length) target.value = integrations[0].integrationId;
    const create = h('button', { type: 'submit', class: 'primary' }, 'Create route');
    const formAlert = alertBox();
    const form = submitForm(
      create,
      formAlert,
      async () => {
        const p = path.value.trim();
        const bad = checkPath(p);
        if (bad) throw new Error(bad);
        const routeKey = `${method.value} ${p}`;
        const input = { routeKey };
        if (target.value) input.target = `integrations/${target.value}`;
        await apigw.create(apiId, 'routes', input);
        const integ = integrations.find((i) => i.integrationId === target.value);
        if (integ && integ.integrationType === 'AWS_PROXY') {
          try {
            await grantInvoke(integ.integrationUri, apiId, routeKey);
          } catch (err) {
            throw new Error(`The route ${routeKey} was created, but API Gateway could not be given permission to invoke ${functionNameOf(integ.integrationUri)}: ${err.message}`);
          }
        }
        flash(`Created the route ${routeKey}.`);
        reload();
      },
      h('div', { class: 'route-row' }, field('Method', method), field('Resource path', path, 'e.g. /hello, /items/{id}, /{proxy+}'), field('Integration target', target), h('div', { class: 'row-end' }, create)),
      formAlert,
    );
    body.replaceChildren(
      section('Routes', table('Routes', ['Route', 'Integration', 'Authorization', 'Actions'], rows, 'No routes yet.')),
      section('Create a route', form),
    );
  });
}

// --- Integrations -----------------------------------------------------------------------

function integrationsTab(panel, state) {
  const apiId = state.api.apiId;
  loader(panel, async (body, reload, alert) => {
    const [integrations, functions] = await Promise.all([apigw.list(apiId, 'integrations'), lambda.listFunctions()]);
    const rows = integrations.map((i) => {
      const remove = deleteButton('integration', i.integrationId, alert, reload, () =>
        apigw.remove(apiId, 'integrations', i.integrationId),
      );
      const fn = functionNameOf(i.integrationUri);
      return [
        h('code', {}, i.integrationId),
        i.integrationType === 'AWS_PROXY' ? 'Lambda' : i.integrationType,
        i.integrationType === 'AWS_PROXY' ? h('a', { href: `#/functions/${encodeURIComponent(fn)}` }, fn) : i.integrationUri || '',
        i.payloadFormatVersion,
        `${i.timeoutInMillis} ms`,
        remove,
      ];
    });
    const fn = h('select', {}, functions.map((f) => h('option', { value: f.FunctionArn }, f.FunctionName)));
    const version = h('select', {}, h('option', { value: '2.0' }, '2.0'), h('option', { value: '1.0' }, '1.0'));
    const timeout = h('input', { type: 'number', min: 50, max: 30000, value: '30000', step: 1 });
    const create = h('button', { type: 'submit', class: 'primary' }, 'Create integration');
    const formAlert = alertBox();
    const form = submitForm(
      create,
      formAlert,
      async () => {
        if (!fn.value) throw new Error('There are no functions in this region: create a function first.');
        const out = await apigw.create(apiId, 'integrations', {
          integrationType: 'AWS_PROXY',
          integrationUri: fn.value,
          payloadFormatVersion: version.value,
          timeoutInMillis: Number(timeout.value),
        });
        flash(`Created the integration ${out.integrationId}.`);
        reload();
      },
      h('div', { class: 'route-row' }, field('Lambda function', fn), field('Payload format version', version), field('Timeout (ms)', timeout), h('div', { class: 'row-end' }, create)),
      h('p', { class: 'hint' }, 'A route that targets the integration also needs permission to invoke the function; creating the route here grants it.'),
      formAlert,
    );
    body.replaceChildren(
      section('Integrations', table('Integrations', ['ID', 'Type', 'Target', 'Payload format', 'Timeout', 'Actions'], rows, 'No integrations yet.')),
      section('Create an integration', form),
    );
  });
}

// --- Stages -----------------------------------------------------------------------------

function stagesTab(panel, state) {
  const apiId = state.api.apiId;
  loader(panel, async (body, reload) => {
    const stages = await apigw.list(apiId, 'stages');
    stages.sort((a, b) => a.stageName.localeCompare(b.stageName));
    const name = h('input', { type: 'text', spellcheck: 'false', autocapitalize: 'off', value: stages.some((s) => s.stageName === '$default') ? '' : '$default' });
    const cid = id('auto');
    const auto = h('input', { type: 'checkbox', id: cid, checked: true });
    const create = h('button', { type: 'submit', class: 'primary' }, 'Create stage');
    const formAlert = alertBox();
    const form = submitForm(
      create,
      formAlert,
      async () => {
        const n = name.value.trim();
        if (!n) throw new Error('Enter a stage name.');
        await apigw.create(apiId, 'stages', { stageName: n, autoDeploy: auto.checked });
        if (!auto.checked) await apigw.create(apiId, 'deployments', { stageName: n });
        flash(`Created the stage ${n}.`);
        reload();
      },
      h('div', { class: 'route-row' }, field('Stage name', name), h('div', { class: 'check' }, auto, h('label', { for: cid }, 'Auto-deploy')), h('div', { class: 'row-end' }, create)),
      formAlert,
    );
    body.replaceChildren(
      ...(stages.length
        ? stages.map((s) => stageEditor(state.api, s, reload))
        : [section('Stages', h('p', { class: 'muted' }, 'No stages: the API serves nothing until it has one.'))]),
      section('Create a stage', form),
    );
  });
}

/** "Stage variable name", then "Stage variable name 2", … so each row's fields have a name of their own. */
const nth = (label, n) => (n === 1 ? label : `${label} ${n}`);

/** "Delete" for one `kind` of sub-resource named `name`: runs `remove` (errors go to `alert`), then says so and reloads. */
function deleteButton(kind, name, alert, reload, remove) {
  return h('button', {
    type: 'button',
    class: 'secondary',
    'aria-label': `Delete ${kind} ${name}`,
    onclick: (e) =>
      busy(e.currentTarget, alert, async () => {
        await remove();
        flash(`Deleted the ${kind} ${name}.`);
        reload();
      }),
  }, 'Delete');
}

/** One stage: its facts, Deploy and Delete, and the form that saves its settings (UpdateStage). */
function stageEditor(api, s, reload) {
  const apiId = api.apiId;
  const alert = alertBox();
  const u = invokeUrls(api, s.stageName);
  const deploy = s.autoDeploy
    ? null
    : h('button', {
        type: 'button',
        class: 'secondary',
        'aria-label': `Deploy to stage ${s.stageName}`,
        onclick: (e) =>
          busy(e.currentTarget, alert, async () => {
            await apigw.create(apiId, 'deployments', { stageName: s.stageName });
            flash(`Deployed to the stage ${s.stageName}.`);
            reload();
          }),
      }, 'Deploy');
  const remove = deleteButton('stage', s.stageName, alert, reload, () => apigw.remove(apiId, 'stages', s.stageName));

  // Stage variables: key/value rows, renumbered whenever one is added or removed.
  const rows = h('div', { class: 'env-rows' });
  const renumber = () =>
    [...rows.children].forEach((row, i) => {
      const [k, v, x] = row.children;
      k.setAttribute('aria-label', nth('Stage variable name', i + 1));
      v.setAttribute('aria-label', nth('Stage variable value', i + 1));
      x.setAttribute('aria-label', nth('Remove stage variable', i + 1));
    });
  const addRow = (k = '', v = '') => {
    const key = h('input', { type: 'text', value: k, spellcheck: 'false', autocapitalize: 'off', placeholder: 'Name' });
    const val = h('input', { type: 'text', value: v, spellcheck: 'false', autocapitalize: 'off', placeholder: 'Value' });
    const drop = h('button', { type: 'button', class: 'secondary' }, 'Remove');
    const row = h('div', { class: 'env-row' }, key, val, drop);
    drop.addEventListener('click', () => {
      row.remove();
      renumber();
    });
    rows.append(row);
    renumber();
    return key;
  };
  for (const [k, v] of Object.entries(s.stageVariables || {})) addRow(k, v);
  const add = h('button', { type: 'button', class: 'secondary', onclick: () => addRow().focus() }, 'Add stage variable');

  const settings = s.defaultRouteSettings || {};
  const burst = h('input', { type: 'number', min: 0, step: 1, inputmode: 'numeric', value: settings.throttlingBurstLimit ?? '', placeholder: 'Account limit' });
  const rate = h('input', { type: 'number', min: 0, step: 'any', inputmode: 'decimal', value: settings.throttlingRateLimit ?? '', placeholder: 'Account limit' });
  const autoId = id('auto');
  const auto = h('input', { type: 'checkbox', id: autoId, checked: s.autoDeploy });
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save stage');
  const form = submitForm(
    save,
    alert,
    async () => {
      // The whole map goes out: UpdateStage replaces it, so a removed row removes its variable.
      const vars = {};
      for (const row of rows.children) {
        const [k, v] = row.querySelectorAll('input');
        const key = k.value.trim();
        if (!key && !v.value) continue;
        if (!key) throw new Error('Every stage variable needs a name.');
        if (key in vars) throw new Error(`The stage variable ${key} appears twice.`);
        vars[key] = v.value;
      }
      // An empty limit is left unset: the route then has the account's limit.
      const limits = { detailedMetricsEnabled: Boolean(settings.detailedMetricsEnabled) };
      if (burst.value.trim() !== '') {
        const n = Number(burst.value);
        if (!Number.isInteger(n) || n < 0) throw new Error('Burst limit must be a whole number of requests, 0 or more.');
        limits.throttlingBurstLimit = n;
      }
      if (rate.value.trim() !== '') {
        const x = Number(rate.value);
        if (!Number.isFinite(x) || x < 0) throw new Error('Rate limit must be a number of requests per second, 0 or more.');
        limits.throttlingRateLimit = x;
      }
      await apigw.update(apiId, 'stages', s.stageName, { stageVariables: vars, defaultRouteSettings: limits, autoDeploy: auto.checked });
      flash(`Successfully updated stage ${s.stageName}.`);
      reload();
    },
    h('h3', {}, 'Stage variables'),
    h('p', { class: 'muted' }, 'Passed to the functions in the event (stageVariables) and usable in an integration URI as ${stageVariables.name}.'),
    rows,
    h('div', { class: 'actions' }, add),
    h('h3', {}, 'Throttling'),
    h('p', { class: 'muted' }, 'Default route settings: past the burst, the stage answers 429 until the rate refills it. Leave a limit empty for the account\u2019s.'),
    h('div', { class: 'grid-2' }, field('Burst limit', burst, 'Requests at once.'), field('Rate limit', rate, 'Requests per second.')),
    h('h3', {}, 'Deployment'),
    h('div', { class: 'check' }, auto, h('label', { for: autoId }, 'Auto-deploy')),
    h('p', { class: 'hint' }, 'With auto-deploy every change to the API is deployed to the stage at once; without it, the stage serves its deployment until you deploy again.'),
    alert,
    h('div', { class: 'actions' }, save),
  );
  const hid = id('stage');
  return h(
    'section',
    { class: 'panel', 'aria-labelledby': hid },
    h('div', { class: 'toolbar' }, h('h2', { id: hid }, s.stageName), h('div', { class: 'actions' }, deploy, remove)),
    h(
      'dl',
      { class: 'facts' },
      h('div', { class: 'wide' }, h('dt', {}, 'Invoke URL'), h('dd', {}, h('a', { href: u.host, target: '_blank', rel: 'noopener' }, u.host))),
      h('div', {}, h('dt', {}, 'Deployment ID'), h('dd', {}, s.deploymentId ? h('code', {}, s.deploymentId) : 'Not deployed')),
      h('div', {}, h('dt', {}, 'Last updated'), h('dd', {}, fmtTime(s.lastUpdatedDate))),
      h('div', {}, h('dt', {}, 'Auto-deploy'), h('dd', {}, s.autoDeploy ? 'Enabled' : 'Disabled')),
    ),
    form,
  );
}

// --- CORS -------------------------------------------------------------------------------

const CORS_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', '*'];

function corsTab(panel, state) {
  const apiId = state.api.apiId;
  const cors = state.api.corsConfiguration || {};
  const alert = alertBox();
  let origins = [...(cors.allowOrigins || [])];
  const originInput = h('input', { type: 'text', spellcheck: 'false', autocapitalize: 'off', placeholder: 'https://app.example.com' });
  const originList = h('ul', { class: 'tokens', 'aria-label': 'Allowed origins' });
  const drawOrigins = () => {
    originList.replaceChildren(
      ...origins.map((o) =>
        h(
          'li',
          {},
          h('code', {}, o),
          h('button', {
            type: 'button',
            class: 'token-remove',
            'aria-label': `Remove origin ${o}`,
            onclick: () => {
              origins = origins.filter((x) => x !== o);
              drawOrigins();
              originInput.focus();
            },
          }, '×'),
        ),
      ),
    );
    if (!origins.length) originList.append(h('li', { class: 'muted' }, 'No origins: browsers on other sites get no CORS headers.'));
  };
  drawOrigins();
  const addOrigin = h('button', {
    type: 'button',
    class: 'secondary',
    onclick: () => {
      alert.clear();
      const o = originInput.value.trim();
      if (!o) {
        alert.show('Enter an origin such as https://app.example.com, or * for any origin.');
        return;
      }
      if (o !== '*' && !/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/i.test(o)) {
        alert.show(`${o} is not an origin: use scheme://host[:port] with no path, e.g. https://app.example.com, or *.`);
        return;
      }
      if (!origins.includes(o)) origins.push(o);
      originInput.value = '';
      drawOrigins();
    },
  }, 'Add origin');
  originInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      addOrigin.click();
    }
  });
  const methods = new Set(cors.allowMethods || []);
  const methodBoxes = CORS_METHODS.map((m) => {
    const cid = id('m');
    const box = h('input', { type: 'checkbox', id: cid, value: m, checked: methods.has(m) });
    return { m, box, el: h('div', { class: 'check' }, box, h('label', { for: cid }, m)) };
  });
  const allowHeaders = h('input', { type: 'text', spellcheck: 'false', autocapitalize: 'off', value: (cors.allowHeaders || []).join(', '), placeholder: 'content-type, authorization' });
  const exposeHeaders = h('input', { type: 'text', spellcheck: 'false', autocapitalize: 'off', value: (cors.exposeHeaders || []).join(', ') });
  const maxAge = h('input', { type: 'number', min: -1, max: 86400, step: 1, value: cors.maxAge !== undefined ? String(cors.maxAge) : '0' });
  const credId = id('cred');
  const credentials = h('input', { type: 'checkbox', id: credId, checked: Boolean(cors.allowCredentials) });
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
  const form = submitForm(
    save,
    alert,
    async () => {
      if (originInput.value.trim()) {
        throw new Error(`The origin ${originInput.value.trim()} is typed but not added: press Add origin, or clear the field.`);
      }
      const age = maxAge.value.trim() === '' ? undefined : Number(maxAge.value);
      if (age !== undefined && (!Number.isInteger(age) || age < -1 || age > 86400)) throw new Error('Access-Control-Max-Age must be a whole number of seconds from -1 to 86400.');
      const config = {
        allowOrigins: origins,
        allowMethods: methodBoxes.filter((x) => x.box.checked).map((x) => x.m),
        allowHeaders: list(allowHeaders.value),
        exposeHeaders: list(exposeHeaders.value),
        allowCredentials: credentials.checked,
      };
      if (age !== undefined) config.maxAge = age;
      const empty = !config.allowOrigins.length && !config.allowMethods.length && !config.allowHeaders.length && !config.exposeHeaders.length && !config.allowCredentials && !age;
      if (empty) {
        if (state.api.corsConfiguration) await apigw.deleteCors(apiId);
        state.api = { ...state.api, corsConfiguration: undefined };
      } else {
        state.api = await apigw.updateApi(apiId, { corsConfiguration: config });
      }
      flash('CORS configuration saved.');
    },
    h('p', { class: 'muted' }, 'API Gateway answers preflight (OPTIONS) requests itself and adds these headers to every response of the API.'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: (originInput.id = id('origin')) }, 'Access-Control-Allow-Origin'),
      h('div', { class: 'inline' }, originInput, addOrigin),
      originList,
    ),
    h('fieldset', { class: 'checks' }, h('legend', {}, 'Access-Control-Allow-Methods'), methodBoxes.map((x) => x.el)),
    field('Access-Control-Allow-Headers', allowHeaders, 'Comma separated, e.g. content-type, authorization.'),
    field('Access-Control-Expose-Headers', exposeHeaders, 'Comma separated.'),
    field('Access-Control-Max-Age', maxAge, 'Seconds a browser may cache the preflight answer (-1 to 86400).'),
    h('div', { class: 'check' }, credentials, h('label', { for: credId }, 'Access-Control-Allow-Credentials')),
    alert,
    h('div', { class: 'actions' }, save),
  );
  panel.append(section('Configure CORS', form));
}

// --- Authorizers ------------------------------------------------------------------------

function authorizersTab(panel, state) {
  const apiId = state.api.apiId;
  loader(panel, async (body, reload, alert) => {
    const [authorizers, routes, functions] = await Promise.all([apigw.list(apiId, 'authorizers'), apigw.list(apiId, 'routes'), lambda.listFunctions()]);
    const rows = authorizers.map((a) => {
      const remove = deleteButton('authorizer', a.name, alert, reload, () =>
        apigw.remove(apiId, 'authorizers', a.authorizerId),
      );
      const detail =
        a.authorizerType === 'JWT'
          ? `Issuer ${(a.jwtConfiguration || {}).issuer || '–'}; audience ${((a.jwtConfiguration || {}).audience || []).join(', ') || '–'}`
          : `Function ${functionNameOf((a.authorizerUri || '').replace(/^.*functions\//, '').replace(/\/invocations$/, ''))}; payload ${a.authorizerPayloadFormatVersion || '–'}${a.enableSimpleResponses ? ', simple responses' : ''}`;
      return [a.name, h('code', {}, a.authorizerId), a.authorizerType === 'REQUEST' ? 'Lambda' : a.authorizerType, (a.identitySource || []).join(', '), detail, remove];
    });
    // Create: JWT or Lambda.
    const type = h('select', {}, h('option', { value: 'JWT' }, 'JWT'), h('option', { value: 'REQUEST' }, 'Lambda'));
    const name = h('input', { type: 'text' });
    const source = h('input', { type: 'text', value: '$request.header.Authorization', spellcheck: 'false' });
    const issuer = h('input', { type: 'text', placeholder: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc', spellcheck: 'false' });
    const audience = h('input', { type: 'text', placeholder: 'client id, comma separated', spellcheck: 'false' });
    const fn = h('select', {}, functions.map((f) => h('option', { value: f.FunctionArn }, f.FunctionName)));
    const simpleId = id('simple');
    const simple = h('input', { type: 'checkbox', id: simpleId, checked: true });
    const jwtFields = h('div', { class: 'grid-2' }, field('Issuer URL', issuer), field('Audience', audience));
    const lambdaFields = h('div', { class: 'grid-2', hidden: true }, field('Lambda function', fn), h('div', { class: 'check' }, simple, h('label', { for: simpleId }, 'Simple responses (payload 2.0)')));
    type.addEventListener('change', () => {
      jwtFields.hidden = type.value !== 'JWT';
      lambdaFields.hidden = type.value === 'JWT';
    });
    const create = h('button', { type: 'submit', class: 'primary' }, 'Create authorizer');
    const formAlert = alertBox();
    const form = submitForm(
      create,
      formAlert,
      async () => {
        if (!name.value.trim()) throw new Error('Enter a name for the authorizer.');
        const input = { name: name.value.trim(), authorizerType: type.value, identitySource: source.value.split(',').map((x) => x.trim()).filter(Boolean) };
        if (type.value === 'JWT') {
          input.jwtConfiguration = { issuer: issuer.value.trim(), audience: audience.value.split(',').map((x) => x.trim()).filter(Boolean) };
        } else {
          if (!fn.value) throw new Error('There are no functions in this region to authorize with.');
          input.authorizerUri = `arn:aws:apigateway:${fn.value.split(':')[3]}:lambda:path/2015-03-31/functions/${fn.value}/invocations`;
          input.authorizerPayloadFormatVersion = '2.0';
          input.enableSimpleResponses = simple.checked;
        }
        const out = await apigw.create(apiId, 'authorizers', input);
        if (type.value !== 'JWT') {
          const base = `arn:aws:execute-api:${fn.value.split(':')[3]}:${fn.value.split(':')[4]}:${apiId}`;
          try {
            await lambda.addPermission(functionNameOf(fn.value), {
              StatementId: `apigw-auth-${out.authorizerId}`,
              Action: 'lambda:InvokeFunction',
              Principal: 'apigateway.amazonaws.com',
              SourceArn: `${base}/authorizers/${out.authorizerId}`,
            });
          } catch (err) {
            throw new Error(`The authorizer ${out.name} was created, but API Gateway could not be given permission to invoke ${functionNameOf(fn.value)}: ${err.message}`);
          }
        }
        flash(`Created the authorizer ${out.name}.`);
        reload();
      },
      h('div', { class: 'grid-3' }, field('Authorizer type', type), field('Name', name), field('Identity source', source)),
      jwtFields,
      lambdaFields,
      formAlert,
      h('div', { class: 'actions' }, create),
    );
    // Attach to a route.
    const route = h('select', {}, routes.map((r) => h('option', { value: r.routeId }, r.routeKey)));
    // AWS_IAM is no authorizer of its own: callers sign with a Portico key of this account.
    const IAM = 'AWS_IAM';
    const which = h(
      'select',
      {},
      h('option', { value: '' }, 'None'),
      h('option', { value: IAM }, 'IAM (AWS_IAM: SigV4-signed callers)'),
      authorizers.map((a) => h('option', { value: a.authorizerId }, a.name)),
    );
    const attach = h('button', { type: 'submit', class: 'primary' }, 'Attach');
    const attachAlert = alertBox();
    const attachForm = submitForm(
      attach,
      attachAlert,
      async () => {
        if (!route.value) throw new Error('The API has no routes to attach an authorizer to.');
        const a = authorizers.find((x) => x.authorizerId === which.value);
        const iam = which.value === IAM;
        const input = a
          ? { authorizationType: a.authorizerType === 'JWT' ? 'JWT' : 'CUSTOM', authorizerId: a.authorizerId }
          : { authorizationType: iam ? IAM : 'NONE' };
        await apigw.update(apiId, 'routes', route.value, input);
        const rk = routes.find((r) => r.routeId === route.value).routeKey;
        flash(a ? `Attached the authorizer ${a.name} to ${rk}.` : iam ? `${rk} now takes IAM-signed requests only.` : `Removed the authorizer of ${rk}.`);
        reload();
      },
      h('div', { class: 'route-row' }, field('Route', route), field('Authorizer', which), h('div', { class: 'row-end' }, attach)),
      attachAlert,
    );
    const attached = routes.filter((r) => r.authorizationType && r.authorizationType !== 'NONE');
    body.replaceChildren(
      section('Authorizers', table('Authorizers', ['Name', 'ID', 'Type', 'Identity source', 'Configuration', 'Actions'], rows, 'No authorizers: every route is public.')),
      section('Create an authorizer', form),
      section(
        'Attach an authorizer to a route',
        attachForm,
        table('Routes with authorizers', ['Route', 'Authorization', 'Authorizer'], attached.map((r) => [r.routeKey, r.authorizationType, (authorizers.find((a) => a.authorizerId === r.authorizerId) || {}).name || r.authorizerId || '–']), 'No route has an authorizer.'),
      ),
    );
  });
}

// --- Monitor ----------------------------------------------------------------------------

function monitorTab(panel, state) {
  const apiId = state.api.apiId;
  const alert = alertBox();
  const minutesSel = h('select', { id: id('range') }, [15, 60, 180].map((m) => h('option', { value: m, selected: m === 60 }, `Last ${m} minutes`)));
  const refresh = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  const charts = h('div', { class: 'charts' }, loading('Loading metrics…'));
  const load = () =>
    busy(refresh, alert, async () => {
      const minutes = Number(minutesSel.value);
      const m = await consoleApi.apiMetrics(apiId, minutes);
      const pts = m.points || [];
      const t = pts.map((p) => p.t);
      charts.replaceChildren(
        countChart('Requests', t, pts.map((p) => p.requests), minutes, 'c1'),
        countChart('4xx', t, pts.map((p) => p.count4xx), minutes, 'c4'),
        countChart('5xx', t, pts.map((p) => p.count5xx), minutes, 'c3'),
        latencyChart('Latency p50 / p99 (ms)', t, pts.map((p) => p.latencyP50Ms), pts.map((p) => p.latencyP99Ms), minutes),
      );
    });
  panel.refresh = load;
  minutesSel.addEventListener('change', load);
  panel.append(
    h('div', { class: 'toolbar' }, h('h2', {}, 'Metrics'), h('div', { class: 'actions' }, h('label', { for: minutesSel.id, class: 'sr-only' }, 'Time range'), minutesSel, refresh)),
    alert,
    charts,
  );
  load();
}

// --- Diagnostics ------------------------------------------------------------------------

function diagnosticsTab(panel, state) {
  const apiId = state.api.apiId;
  const alert = alertBox();
  const refresh = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  const list = h('div', {}, loading('Loading recent failures…'));
  const logsBox = h('div', { class: 'diag-logs' });
  const load = () =>
    busy(refresh, alert, async () => {
      const doc = await consoleApi.failures(apiId);
      const failures = doc.failures || [];
      list.replaceChildren(
        table(
          'Recent 5xx answers',
          ['Time', 'Request ID', 'Route', 'Status', 'Reason', 'Function', 'Logs'],
          failures.map((f) => [
            h('span', { class: 'nowrap' }, fmtTime(f.time)),
            h('code', {}, f.requestId),
            h('span', {}, h('code', {}, f.routeKey || `${f.method} ${f.path}`), f.routeKey ? h('span', { class: 'muted' }, ` (${f.method} ${f.path})`) : null),
            String(f.status),
            h('span', { class: 'reason' }, f.reason),
            f.functionName ? h('a', { href: `#/functions/${encodeURIComponent(f.functionName)}` }, f.functionName) : '–',
            f.functionName
              ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Show logs of ${f.functionName} for request ${f.requestId}`, onclick: () => showLogs(f) }, 'Show logs')
              : h('span', { class: 'muted' }, 'No function ran'),
          ]),
          'No failed requests: the gateway has answered no 500, 502, 503 or 504 for this API since Portico started (it keeps the last 100).',
        ),
      );
    });
  const showLogs = async (f) => {
    const name = f.functionName;
    const group = `/aws/lambda/${name}`;
    const hid = id('dl');
    const out = h('section', { class: 'panel', 'aria-labelledby': hid }, h('h2', { id: hid, tabindex: '-1' }, `Logs of ${name} for request ${f.requestId}`), loading('Searching the function\u2019s logs…'));
    logsBox.replaceChildren(out);
    out.querySelector('h2').focus();
    try {
      // The function logged the gateway's request id only if it printed its event.
      let events = await logs.filter(group, { filterPattern: `"${f.requestId}"`, startTime: f.time - 5 * 60_000, endTime: f.time + 5 * 60_000, limit: 100 });
      let note;
      if (events && events.length) {
        // Widen to the whole invocation(s): every line between START and REPORT of the matched Lambda request ids.
        const ids = new Set();
        for (const e of events) {
          const m = /RequestId: ([0-9a-f-]{36})/.exec(e.message) || /^\S+\t([0-9a-f-]{36})\t/.exec(e.message);
          if (m) ids.add(m[1]);
        }
        if (ids.size) {
          const all = [];
          for (const lid of ids) all.push(...((await logs.filter(group, { filterPattern: `"${lid}"`, startTime: f.time - 5 * 60_000, endTime: f.time + 5 * 60_000, limit: 100 })) || []));
          events = all;
        }
        note = `Events of ${group} that mention the request id ${f.requestId}.`;
      } else {
        events = await logs.filter(group, { startTime: f.time - 60_000, endTime: f.time + 10_000, limit: 100 });
        note = `The gateway's request id ${f.requestId} differs from the function's own request id, and the function did not log it: these are all events of ${group} from one minute before to ten seconds after the failure (${fmtTime(f.time)}).`;
      }
      const title = out.querySelector('h2');
      out.replaceChildren(title, h('p', { class: 'muted' }, note), logTable(events, name));
      title.focus();
    } catch (e) {
      out.replaceChildren(out.querySelector('h2'), h('div', { class: 'alert', role: 'alert' }, e.message));
    }
  };
  panel.refresh = load;
  panel.append(
    h('div', { class: 'toolbar' }, h('h2', {}, 'Recent failures'), h('div', { class: 'actions' }, refresh)),
    h('p', { class: 'muted' }, 'The last 100 requests of this API that the gateway answered with 500, 502, 503 or 504, newest first, with the exact reason.'),
    alert,
    list,
    logsBox,
  );
  load();
}

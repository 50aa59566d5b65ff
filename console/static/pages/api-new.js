// #/apis/new: choose "HTTP API", then the AWS console's four steps: integrations, routes,
// stages, review. Create makes the API, its integrations, routes and stage, and grants
// API Gateway permission to invoke each function (AddPermission per route).
import { apigw, lambda } from '../api.js';
import { flash, go } from '../app.js';
import { alertBox, busy, field, h, id, table } from '../ui.js';
import { METHODS, checkPath, grantInvoke } from './apigw-util.js';

export async function render(page, _params, ctx) {
  page.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/apis' }, 'All APIs'), ' › ', 'Create API'),
    h('h1', {}, 'Create API'),
  );
  const body = h('div', {});
  page.append(body);
  const build = h('button', { type: 'button', class: 'primary' }, 'Build');
  const hid = id('card');
  body.append(
    h(
      'div',
      { class: 'cards' },
      h(
        'article',
        { class: 'card', 'aria-labelledby': hid },
        h('h2', { id: hid }, 'HTTP API'),
        h('p', {}, 'Build low-latency and cost-effective REST APIs with built-in features such as OIDC and OAuth2, and native CORS support.'),
        h('p', { class: 'muted' }, 'Works with the following: Lambda, HTTP backends'),
        h('div', { class: 'actions' }, build),
      ),
    ),
  );
  build.addEventListener('click', async () => {
    const functions = await busy(build, null, () => lambda.listFunctions()).catch((e) => {
      const a = alertBox();
      body.append(a);
      a.show(e.message);
      return null;
    });
    if (!functions || !ctx.isCurrent()) return;
    wizard(body, functions.map((f) => ({ name: f.FunctionName, arn: f.FunctionArn })).sort((a, b) => a.name.localeCompare(b.name)));
  });
}

function wizard(body, functions) {
  const model = {
    integrations: [], // {key, fnName}
    name: '',
    routes: null, // {method, path, target(fnName)}
    stageName: '$default',
    autoDeploy: true,
  };
  const steps = ['Create and configure integrations', 'Configure routes', 'Define stages', 'Review and create'];
  const alert = alertBox();
  const content = h('div', { class: 'wizard-step' });
  const stepList = h('ol', { class: 'steps', 'aria-label': 'Steps' });
  const root = h('div', { class: 'wizard' }, stepList, h('div', { class: 'wizard-main' }, content, alert));
  body.replaceChildren(root);

  const show = (i) => {
    alert.clear();
    stepList.replaceChildren(...steps.map((s, j) => h('li', { class: j === i ? 'current' : j < i ? 'done' : '', 'aria-current': j === i ? 'step' : null }, h('span', { class: 'step-no' }, `Step ${j + 1}`), s)));
    content.replaceChildren();
    [step1, step2, step3, step4][i](content, i);
    const h2 = content.querySelector('h2');
    if (h2) {
      h2.tabIndex = -1;
      h2.focus();
    }
  };
  const nav = (i, nextLabel, onNext) => {
    const prev = i > 0 ? h('button', { type: 'button', class: 'secondary', onclick: () => show(i - 1) }, 'Previous') : null;
    const cancel = h('button', { type: 'button', class: 'link-button', onclick: () => go('/apis') }, 'Cancel');
    const next = h('button', { type: 'button', class: 'primary' }, nextLabel);
    next.addEventListener('click', () => busy(next, alert, onNext));
    return h('div', { class: 'actions end' }, cancel, prev, next);
  };

  // Step 1: integrations and the API name.
  const step1 = (el, i) => {
    const list = h('div', { class: 'integrations' });
    const fnOptions = () => functions.map((f) => h('option', { value: f.name }, f.name));
    const addIntegration = (preset) => {
      const key = preset ? preset.key : id('int');
      const item = preset || { key, fnName: functions[0] ? functions[0].name : '' };
      if (!preset) model.integrations.push(item);
      const type = h('select', {}, h('option', { value: 'lambda' }, 'Lambda'));
      const fn = h('select', { onchange: () => (item.fnName = fn.value) }, fnOptions());
      fn.value = item.fnName;
      const remove = h('button', {
        type: 'button',
        class: 'secondary',
        'aria-label': 'Remove this integration',
        onclick: () => {
          model.integrations = model.integrations.filter((x) => x.key !== key);
          row.remove();
        },
      }, 'Remove');
      const row = h('div', { class: 'integration-row' }, field('Integration type', type), field('Lambda function', fn), h('div', { class: 'row-end' }, remove));
      list.append(row);
      return fn;
    };
    model.integrations.forEach((x) => addIntegration(x));
    const add = h('button', {
      type: 'button',
      class: 'secondary',
      onclick: () => {
        if (!functions.length) {
          alert.show('There are no functions in this region to integrate with: create a function first.');
          return;
        }
        addIntegration().focus();
      },
    }, 'Add integration');
    const apiName = h('input', { type: 'text', value: model.name, maxlength: 128, oninput: () => (model.name = apiName.value) });
    el.append(
      h('h2', {}, steps[0]),
      h('section', { class: 'panel' }, h('h3', {}, 'Integrations'), h('p', { class: 'muted' }, 'Specify the Lambda functions your API calls.'), list, h('div', { class: 'actions' }, add)),
      h('section', { class: 'panel' }, field('API name', apiName, 'A name for your API, e.g. my-http-api.')),
      nav(i, 'Next', async () => {
        model.name = apiName.value.trim();
        if (!model.name) throw new Error('Enter an API name.');
        if (model.routes === null || model.routes.length === 0) {
          model.routes = model.integrations.map((x) => ({ method: 'ANY', path: `/${x.fnName}`, target: x.fnName }));
        }
        const names = new Set(model.integrations.map((x) => x.fnName));
        model.routes = model.routes.filter((r) => names.has(r.target) || !r.target);
        show(1);
      }),
    );
  };

  // Step 2: routes.
  const step2 = (el, i) => {
    const list = h('div', { class: 'routes' });
    const targets = [...new Set(model.integrations.map((x) => x.fnName))];
    const addRoute = (r) => {
      const method = h('select', { onchange: () => (r.method = method.value) }, METHODS.map((m) => h('option', { value: m }, m)));
      method.value = r.method;
      const path = h('input', { type: 'text', value: r.path, spellcheck: 'false', autocapitalize: 'off', oninput: () => (r.path = path.value) });
      const target = h(
        'select',
        { onchange: () => (r.target = target.value) },
        targets.length ? targets.map((t) => h('option', { value: t }, t)) : h('option', { value: '' }, 'No integration'),
      );
      target.value = r.target || targets[0] || '';
      r.target = target.value;
      const remove = h('button', {
        type: 'button',
        class: 'secondary',
        'aria-label': 'Remove this route',
        onclick: () => {
          model.routes = model.routes.filter((x) => x !== r);
          row.remove();
        },
      }, 'Remove');
      const row = h('div', { class: 'route-row' }, field('Method', method), field('Resource path', path), field('Integration target', target), h('div', { class: 'row-end' }, remove));
      list.append(row);
      return method;
    };
    model.routes.forEach(addRoute);
    const add = h('button', {
      type: 'button',
      class: 'secondary',
      onclick: () => {
        const r = { method: 'GET', path: '/', target: targets[0] || '' };
        model.routes.push(r);
        addRoute(r).focus();
      },
    }, 'Add route');
    el.append(
      h('h2', {}, steps[1]),
      h('section', { class: 'panel' }, h('p', { class: 'muted' }, 'API Gateway sends a request to the integration of the route that matches its method and path.'), list, h('div', { class: 'actions' }, add)),
      nav(i, 'Next', async () => {
        const seen = new Set();
        for (const r of model.routes) {
          r.path = r.path.trim();
          const bad = checkPath(r.path);
          if (bad) throw new Error(bad);
          if (!r.target) throw new Error(`The route ${r.method} ${r.path} has no integration target: add an integration in step 1.`);
          const key = `${r.method} ${r.path}`;
          if (seen.has(key)) throw new Error(`The route ${key} appears twice.`);
          seen.add(key);
        }
        show(2);
      }),
    );
  };

  // Step 3: stage.
  const step3 = (el, i) => {
    const stage = h('input', { type: 'text', value: model.stageName, spellcheck: 'false', autocapitalize: 'off' });
    const cid = id('auto');
    const auto = h('input', { type: 'checkbox', id: cid, checked: model.autoDeploy });
    el.append(
      h('h2', {}, steps[2]),
      h(
        'section',
        { class: 'panel' },
        h('p', { class: 'muted' }, 'A stage is where your API is deployed. The $default stage is served at the API\u2019s base URL.'),
        field('Stage name', stage),
        h('div', { class: 'check' }, auto, h('label', { for: cid }, 'Auto-deploy')),
        h('p', { class: 'hint' }, 'Deploy every change to the API to this stage automatically.'),
      ),
      nav(i, 'Next', async () => {
        model.stageName = stage.value.trim();
        model.autoDeploy = auto.checked;
        if (!model.stageName) throw new Error('Enter a stage name ($default for the base URL).');
        show(3);
      }),
    );
  };

  // Step 4: review and create.
  const step4 = (el, i) => {
    el.append(
      h('h2', {}, steps[3]),
      h('section', { class: 'panel' }, h('h3', {}, 'API name and integrations'), h('p', {}, h('strong', {}, model.name)),
        table('Integrations', ['Integration type', 'Lambda function'], model.integrations.map((x) => ['Lambda', x.fnName]), 'No integrations.')),
      h('section', { class: 'panel' }, h('h3', {}, 'Routes'), table('Routes', ['Method', 'Resource path', 'Integration target'], model.routes.map((r) => [r.method, r.path, r.target]), 'No routes.')),
      h('section', { class: 'panel' }, h('h3', {}, 'Stages'), table('Stages', ['Stage name', 'Auto-deploy'], [[model.stageName, model.autoDeploy ? 'Enabled' : 'Disabled']])),
      nav(i, 'Create', create),
    );
  };

  const create = async () => {
    const byName = new Map(functions.map((f) => [f.name, f.arn]));
    const api = await apigw.createApi({ name: model.name, protocolType: 'HTTP' });
    const apiId = api.apiId;
    const done = (what) => `The API ${model.name} (${apiId}) was created, but ${what}`;
    const integrationIds = new Map();
    for (const fnName of new Set(model.integrations.map((x) => x.fnName))) {
      try {
        const integ = await apigw.create(apiId, 'integrations', {
          integrationType: 'AWS_PROXY',
          integrationUri: byName.get(fnName),
          payloadFormatVersion: '2.0',
        });
        integrationIds.set(fnName, integ.integrationId);
      } catch (e) {
        throw new Error(`${done(`its integration with ${fnName} was refused`)}: ${e.message}`);
      }
    }
    for (const r of model.routes) {
      const routeKey = `${r.method} ${r.path}`;
      try {
        await apigw.create(apiId, 'routes', { routeKey, target: `integrations/${integrationIds.get(r.target)}` });
      } catch (e) {
        throw new Error(`${done(`its route ${routeKey} was refused`)}: ${e.message}`);
      }
      try {
        await grantInvoke(byName.get(r.target), apiId, routeKey);
      } catch (e) {
        throw new Error(`${done(`API Gateway could not be given permission to invoke ${r.target} for ${routeKey}`)}: ${e.message}`);
      }
    }
    try {
      await apigw.create(apiId, 'stages', { stageName: model.stageName, autoDeploy: model.autoDeploy });
      if (!model.autoDeploy) await apigw.create(apiId, 'deployments', { stageName: model.stageName });
    } catch (e) {
      throw new Error(`${done(`its stage ${model.stageName} was refused`)}: ${e.message}`);
    }
    flash(`Successfully created the API ${model.name}.`, { next: true });
    go(`/apis/${encodeURIComponent(apiId)}`);
  };

  show(0);
}

// The tutorial, through the web console, in headless Chromium: every element is found by its
// role and accessible name (the console's wording, which console/README.md calls a contract
// with these tests). Sign in, create hello-api (Node.js 22.x, arm64), deploy the tutorial's
// code from the editor, build the HTTP API hello-http-api (Lambda integration, GET /hello,
// $default auto-deploy), set its CORS, call it, test the function from the Test tab, read the
// Monitor charts, Costs, Configuration, Region, sign out. The steps run in order, each on the
// state the previous ones left; after a failure the rest are skipped.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ACCOUNT, REPO, Portico, aws, launchBrowser, makeZip, request, screenshot, waitFor, watchPage } from './helpers.mjs';

const CODE = readFileSync(path.join(REPO, 'examples/hello-api/index.mjs'), 'utf8');
const ORIGIN = 'https://app.example.com';
const T = 15_000; // the longest any single UI step may take

describe('the tutorial through the console', { timeout: 240_000 }, () => {
  const server = new Portico();
  let browser, page, errors, apiId, invokeUrl;
  let invocations = 0; // invocations of hello-api this test made

  before(async () => {
    await server.start();
    browser = await launchBrowser({ width: 1280, height: 800 });
    page = browser.pages()[0] ?? await browser.newPage();
    page.setDefaultTimeout(T);
    errors = watchPage(page);
  });

  after(async () => {
    if (errors && (broken || errors.pageErrors.length)) {
      console.log(`# browser page errors: ${JSON.stringify(errors.pageErrors)}\n# console errors: ${JSON.stringify(errors.consoleErrors)}`);
    }
    await browser?.close();
    await server.stop();
  });

  // Each step runs on the state the previous ones left: after a failure the rest are skipped.
  let broken = null;
  const step = (name, fn) => it(name, async (t) => {
    if (broken) { t.skip(`an earlier step failed: ${broken}`); return; }
    try { await fn(t); } catch (e) { broken = name; throw e; }
  });
  // A top-bar link (a page may repeat the name, e.g. in a breadcrumb: the top bar comes first).
  const topLink = (name) => page.getByRole('link', { name, exact: true }).first();
  const h1 = (name) => page.getByRole('heading', { level: 1, name, exact: true });
  const h2 = (name) => page.getByRole('heading', { level: 2, name, exact: true });
  const button = (name) => page.getByRole('button', { name, exact: true });
  const chartLabel = (caption) => page.getByRole('figure', { name: caption, exact: true }).getByRole('img').getAttribute('aria-label');
  // Waits (clicking "Refresh") until the chart's aria-label "{caption}: N in the last 60 minutes" has N >= min.
  const chartCountAtLeast = async (caption, min) => {
    let label = '';
    await waitFor(async () => {
      label = (await chartLabel(caption)) ?? '';
      const n = Number(new RegExp(`^${caption}: (\\d+) in the last 60 minutes$`).exec(label)?.[1] ?? -1);
      if (n >= min) return true;
      await button('Refresh').click();
      await page.waitForTimeout(300);
      return false;
    }, 10_000, `the ${caption} chart to count at least ${min} (aria-label "${label}")`);
  };
  // The trimmed texts of `locator`'s elements once `ready(texts)` holds (lists load asynchronously).
  const texts = (locator, ready, what) => waitFor(async () => {
    const t = (await locator.allTextContents()).map((x) => x.trim());
    return ready(t) && t;
  }, T, what);
  const flash = (text) => page.getByRole('status').filter({ hasText: text });

  step('the sign-in page: a wrong secret shows an alert with the server\'s message', async () => {
    await page.goto(server.consoleUrl());
    await h1('Sign in to Portico').waitFor();
    await screenshot(page, 'signin');
    await page.getByRole('textbox', { name: 'Access key ID', exact: true }).fill(server.accessKeyId);
    const secret = page.getByLabel('Secret access key', { exact: true });
    assert.equal(await secret.getAttribute('type'), 'password');
    await secret.fill('not-the-secret');
    await button('Sign in').click();
    const alert = page.getByRole('alert').filter({ hasText: 'The access key ID or secret access key is not valid.' });
    await alert.waitFor();
    assert.equal(await h1('Sign in to Portico').count(), 1, 'still on the sign-in page');
  });

  step('signs in with the administrator key: top bar with the account id, links, Region, Sign out', async () => {
    await page.getByRole('textbox', { name: 'Access key ID', exact: true }).fill(server.accessKeyId);
    await page.getByLabel('Secret access key', { exact: true }).fill(server.secretAccessKey);
    await button('Sign in').click();
    await button('Sign out').waitFor();
    await page.getByText(ACCOUNT).first().waitFor();
    for (const name of ['Functions', 'APIs', 'Costs']) {
      await topLink(name).waitFor();
    }
    const region = page.getByRole('combobox', { name: 'Region', exact: true });
    assert.equal(await region.inputValue(), 'us-east-1');
    assert.equal(await page.getByRole('alert').filter({ hasText: /\S/ }).count(), 0, 'the alert is gone');
  });

  step('Functions → Create function: hello-api, Node.js 22.x, arm64', async () => {
    await topLink('Functions').click();
    await h1('Functions').waitFor();
    await button('Create function').click();
    await h1('Create function').waitFor();
    assert.equal(await page.getByRole('radio', { name: 'Author from scratch' }).isChecked(), true);
    await page.getByRole('textbox', { name: 'Function name', exact: true }).fill('hello-api');
    const runtime = page.getByRole('combobox', { name: 'Runtime', exact: true });
    const labels = await texts(runtime.locator('option'), (t) => t.includes('Node.js 22.x'), 'the runtime options');
    for (const l of ['Node.js 22.x', 'Node.js 20.x', 'Python 3.11', 'Amazon Linux 2023']) {
      assert.ok(labels.includes(l), `runtime option ${l} in ${JSON.stringify(labels)}`);
    }
    assert.equal(await runtime.inputValue(), 'nodejs22.x', 'Node.js 22.x is the default runtime');
    await runtime.selectOption({ label: 'Node.js 22.x' });
    const arch = page.getByRole('group', { name: 'Architecture', exact: true });
    assert.equal(await arch.getByRole('radio', { name: 'x86_64', exact: true }).isChecked(), true, 'x86_64 is the default');
    await arch.getByRole('radio', { name: 'arm64', exact: true }).check();
    await screenshot(page, 'create-function');
    await button('Create function').click();
    await h1('hello-api').waitFor();
    await flash('Successfully created the function hello-api.').waitFor();
    assert.match(page.url(), /#\/functions\/hello-api$/);
  });

  step('Code tab: the tutorial\'s code goes into the editor, Deploy updates the function', async () => {
    await page.getByRole('tab', { name: 'Code', exact: true }).click();
    const editor = page.getByLabel('Code editor', { exact: true });
    await editor.waitFor();
    await waitFor(async () => (await editor.innerText()).includes('Hello from Lambda!'), T,
      'the starter handler ("Hello from Lambda!") in the editor');
    await editor.click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.insertText(CODE);
    await waitFor(async () => norm(await editor.innerText()) === norm(CODE), 5_000, 'the editor to hold the tutorial\'s code');
    await screenshot(page, 'function-code');
    await button('Deploy').click();
    await flash('Successfully updated the function hello-api.').waitFor();
  });

  step('the Functions list shows hello-api with nodejs22.x and arm64', async () => {
    await topLink('Functions').click();
    await h1('Functions').waitFor();
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'hello-api', exact: true }) });
    await row.waitFor();
    const headers = (await page.getByRole('columnheader').allTextContents()).map((s) => s.trim());
    for (const h of ['Function name', 'Runtime', 'Architecture', 'Last modified', 'State']) {
      assert.ok(headers.includes(h), `column ${h} in ${JSON.stringify(headers)}`);
    }
    const cells = (await row.getByRole('cell').allTextContents()).map((s) => s.trim());
    assert.equal(cells[headers.indexOf('Runtime')], 'nodejs22.x', JSON.stringify(cells));
    assert.equal(cells[headers.indexOf('Architecture')], 'arm64', JSON.stringify(cells));
    await screenshot(page, 'functions');
  });

  step('Create API → HTTP API → Build: Lambda integration, GET /hello, $default auto-deploy, Create', async () => {
    await topLink('APIs').click();
    await h1('APIs').waitFor();
    await button('Create API').click();
    await h1('Create API').waitFor();
    await page.getByText('HTTP API', { exact: true }).first().waitFor();
    await button('Build').click();

    await h2('Create and configure integrations').waitFor();
    await button('Add integration').click();
    await page.getByRole('combobox', { name: 'Integration type', exact: true }).selectOption({ label: 'Lambda' });
    await page.getByRole('combobox', { name: 'Lambda function', exact: true }).selectOption('hello-api');
    await page.getByRole('textbox', { name: 'API name', exact: true }).fill('hello-http-api');
    await screenshot(page, 'create-api-integrations');
    await button('Next').click();

    await h2('Configure routes').waitFor();
    await button('Add route').waitFor();
    if (await page.getByRole('combobox', { name: 'Method', exact: true }).count() === 0) await button('Add route').click();
    assert.equal(await page.getByRole('combobox', { name: 'Method', exact: true }).count(), 1, 'one route row');
    await page.getByRole('combobox', { name: 'Method', exact: true }).selectOption('GET');
    await page.getByRole('textbox', { name: 'Resource path', exact: true }).fill('/hello');
    const target = page.getByRole('combobox', { name: 'Integration target', exact: true });
    const targets = (await texts(target.locator('option'), (t) => t.some((x) => x.includes('hello-api')), 'the integration targets'))
      .filter((x) => x.includes('hello-api'));
    assert.equal(targets.length, 1, `one integration target naming hello-api: ${JSON.stringify(await target.locator('option').allTextContents())}`);
    await target.selectOption({ label: targets[0] });
    await screenshot(page, 'create-api-routes');
    await button('Next').click();

    await h2('Define stages').waitFor();
    assert.equal(await page.getByRole('textbox', { name: 'Stage name', exact: true }).inputValue(), '$default');
    assert.equal(await page.getByRole('checkbox', { name: 'Auto-deploy', exact: true }).isChecked(), true);
    await button('Next').click();

    await h2('Review and create').waitFor();
    await button('Create').click();
    await h1('hello-http-api').waitFor();
    apiId = /#\/apis\/([a-z0-9]+)$/.exec(page.url())?.[1];
    assert.ok(apiId, `an API page URL: ${page.url()}`);
    // Creating granted the API the right to invoke the function, as the AWS console does.
    const policy = JSON.parse((await aws(server, ['lambda', 'get-policy', '--function-name', 'hello-api'])).Policy);
    const grants = policy.Statement.filter((st) => st.Principal?.Service === 'apigateway.amazonaws.com');
    assert.equal(grants.length, 1, JSON.stringify(policy));
    assert.equal(grants[0].Condition?.ArnLike?.['AWS:SourceArn'], `arn:aws:execute-api:us-east-1:${ACCOUNT}:${apiId}/*/*/hello`,
      JSON.stringify(grants[0]));
  });

  step('the APIs list shows hello-http-api', async () => {
    await topLink('APIs').click();
    await h1('APIs').waitFor();
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'hello-http-api', exact: true }) });
    await row.waitFor();
    const headers = (await page.getByRole('columnheader').allTextContents()).map((t) => t.trim());
    for (const h of ['Name', 'ID', 'Protocol', 'Created']) assert.ok(headers.includes(h), `column ${h} in ${JSON.stringify(headers)}`);
    const cells = (await row.getByRole('cell').allTextContents()).map((t) => t.trim());
    assert.equal(cells[headers.indexOf('ID')], apiId, JSON.stringify(cells));
    assert.equal(cells[headers.indexOf('Protocol')], 'HTTP', JSON.stringify(cells));
    await page.getByRole('link', { name: 'hello-http-api', exact: true }).click();
    await h1('hello-http-api').waitFor();
  });

  step('the API page shows the Invoke URL of the $default stage and the tabs', async () => {
    // "Invoke URL" label followed by a link to the $default stage's URL.
    const link = page.locator('xpath=//*[normalize-space(text())="Invoke URL"]/following::a[1]');
    const href = await link.getAttribute('href');
    const host = `http://${apiId}.execute-api.localhost:${server.port}/`;
    const pathStyle = server.pathUrl(apiId, '/');
    assert.ok(href === host || href === pathStyle, `Invoke URL link ${href}, expected ${host} or ${pathStyle}`);
    invokeUrl = href;
    const text = await page.locator('body').innerText();
    assert.ok(text.includes(host), `the host-style URL ${host} is shown`);
    assert.ok(text.includes(pathStyle), `the path-style URL ${pathStyle} is shown`);
    for (const tab of ['Routes', 'Integrations', 'Stages', 'CORS', 'Authorizers', 'Monitor', 'Diagnostics']) {
      await page.getByRole('tab', { name: tab, exact: true }).waitFor(); // strict: exactly one
    }
    await screenshot(page, 'api');
  });

  step('CORS tab: allow https://app.example.com with GET, POST, OPTIONS, Save', async () => {
    await page.getByRole('tab', { name: 'CORS', exact: true }).click();
    await h2('Configure CORS').waitFor();
    await page.getByRole('textbox', { name: 'Access-Control-Allow-Origin', exact: true }).fill(ORIGIN);
    await button('Add origin').click();
    await page.getByText(ORIGIN, { exact: true }).first().waitFor();
    const methods = page.getByRole('group', { name: 'Access-Control-Allow-Methods', exact: true });
    for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', '*']) {
      await methods.getByRole('checkbox', { name: m, exact: true }).waitFor(); // strict: exactly one
    }
    for (const m of ['GET', 'POST', 'OPTIONS']) await methods.getByRole('checkbox', { name: m, exact: true }).check();
    await page.getByRole('textbox', { name: 'Access-Control-Expose-Headers', exact: true }).waitFor();
    await page.getByRole('spinbutton', { name: 'Access-Control-Max-Age', exact: true }).waitFor();
    await page.getByRole('checkbox', { name: 'Access-Control-Allow-Credentials', exact: true }).waitFor();
    // The tutorial's AllowHeaders="content-type".
    await page.getByRole('textbox', { name: 'Access-Control-Allow-Headers', exact: true }).fill('content-type');
    await screenshot(page, 'api-cors');
    await button('Save').click();
    await flash('CORS configuration saved.').waitFor();
  });

  step('the API answers {"message":"Hello, Dev!"} and a preflight from https://app.example.com is allowed', async () => {
    const r = await request(server.pathUrl(apiId, '/hello?name=Dev'));
    invocations++;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, '{"message":"Hello, Dev!"}');
    const pre = await request(server.pathUrl(apiId, '/hello?name=Dev'), {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'content-type' },
    });
    assert.ok(pre.status === 200 || pre.status === 204, `preflight ${pre.status}: ${pre.text}`);
    assert.equal(pre.headers['access-control-allow-origin'], ORIGIN);
    const allowed = (pre.headers['access-control-allow-methods'] ?? '').split(',').map((s) => s.trim());
    for (const m of ['GET', 'POST', 'OPTIONS']) assert.ok(allowed.includes(m), `${m} in ${allowed}`);
    assert.match(pre.headers['access-control-allow-headers'] ?? '', /content-type/i);
    // Another origin gets no CORS headers.
    const other = await request(server.pathUrl(apiId, '/hello?name=Dev'), {
      method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'GET' },
    });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    // The Invoke URL link, opened in the browser (Chromium resolves *.execute-api.localhost).
    const tab = await browser.newPage();
    try {
      const res = await tab.goto(`${invokeUrl}hello?name=Dev`);
      invocations++;
      assert.equal(res.status(), 200);
      assert.equal(await res.text(), '{"message":"Hello, Dev!"}');
    } finally {
      await tab.close();
    }
  });

  step('the API\'s Monitor tab counts its requests', async () => {
    await page.goto(server.consoleUrl(`#/apis/${apiId}`));
    await h1('hello-http-api').waitFor();
    await page.getByRole('tab', { name: 'Monitor', exact: true }).click();
    for (const caption of ['Requests', '4xx', '5xx', 'Latency p50 / p99 (ms)']) {
      await page.getByRole('figure', { name: caption, exact: true }).waitFor();
    }
    await chartCountAtLeast('Requests', 2); // the two GET /hello above (preflights may count too)
    assert.equal(await chartLabel('5xx'), '5xx: 0 in the last 60 minutes');
    await screenshot(page, 'api-monitor');
  });

  step('Test tab: the "API Gateway HTTP API (payload 2.0)" template succeeds and shows the REPORT line', async () => {
    await page.goto(server.consoleUrl('#/functions/hello-api'));
    await h1('hello-api').waitFor();
    await page.getByRole('tab', { name: 'Test', exact: true }).click();
    const template = page.getByRole('combobox', { name: 'Template', exact: true });
    const options = await texts(template.locator('option'), (t) => t.length >= 3, 'the templates');
    for (const o of ['hello-world', 'API Gateway HTTP API (payload 2.0)', 'API Gateway HTTP API (payload 1.0)']) {
      assert.ok(options.includes(o), `template ${o} in ${JSON.stringify(options)}`);
    }
    await template.selectOption({ label: 'API Gateway HTTP API (payload 2.0)' });
    await page.getByLabel('Event JSON', { exact: true }).waitFor();
    await waitFor(async () => /"routeKey"|"requestContext"/.test(await page.getByLabel('Event JSON', { exact: true }).evaluate(eventText)),
      5_000, 'the payload 2.0 event in "Event JSON"');
    await button('Test').click();
    invocations++;
    // A region with the heading "Execution result": the outcome, the response, "Function Logs".
    const result = page.getByRole('region', { name: 'Execution result', exact: true });
    await result.getByRole('heading', { name: 'Execution result', exact: true }).waitFor();
    await result.getByText('Execution result: succeeded').waitFor();
    await result.getByText('Function Logs').first().waitFor();
    await result.getByText(/START RequestId: [0-9a-f-]+/).first().waitFor();
    await result.getByText(/REPORT RequestId: [0-9a-f-]+\s+Duration: [\d.]+ ms/).first().waitFor();
    const body = await page.locator('body').innerText();
    assert.match(body, /Hello, [^!]*!/, 'the response JSON is shown');
    assert.ok(!body.includes('Execution result: failed'));
    await screenshot(page, 'function-test');
  });

  step('Monitor tab: the Invocations chart counts the invocations made', async () => {
    await page.getByRole('tab', { name: 'Monitor', exact: true }).click();
    for (const caption of ['Invocations', 'Errors', 'Throttles', 'Duration p50 / p99 (ms)', 'Concurrent executions']) {
      await page.getByRole('figure', { name: caption, exact: true }).waitFor();
    }
    await chartCountAtLeast('Invocations', invocations);
    assert.equal(await chartLabel('Errors'), 'Errors: 0 in the last 60 minutes');
    await page.getByText('Recent logs').first().waitFor();
    await screenshot(page, 'function-monitor');
  });

  step('the Costs page and a narrow (420 px) window', async (t) => {
    await topLink('Costs').click();
    await h1('Costs').waitFor();
    const prices = { 'HTTP API, per million requests ($)': 1, 'Lambda, per million requests ($)': 0.2,
      'Lambda x86_64, per GB-second ($)': 0.0000166667, 'Lambda arm64, per GB-second ($)': 0.0000133334 };
    for (const [name, value] of Object.entries(prices)) {
      const input = page.getByRole('spinbutton', { name, exact: true });
      assert.equal(Number(await input.inputValue()), value, name);
    }
    await page.getByRole('cell', { name: 'hello-api', exact: true }).first().waitFor();
    await screenshot(page, 'costs');
    await page.setViewportSize({ width: 420, height: 800 });
    await page.goto(server.consoleUrl('#/functions/hello-api'));
    await h1('hello-api').waitFor();
    await button('Sign out').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await screenshot(page, 'function-narrow');
    // Not in the contract, so only reported: a page wider than the window scrolls sideways.
    if (overflow > 0) t.diagnostic(`at 420 px the function page is ${overflow} px wider than the window`);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  step('Configuration tab: Memory 256 MB and an environment variable, saved to the function', async () => {
    await page.goto(server.consoleUrl('#/functions/hello-api'));
    await h1('hello-api').waitFor();
    await page.getByRole('tab', { name: 'Configuration', exact: true }).click();
    const general = page.getByRole('region', { name: 'General configuration', exact: true });
    const memory = general.getByRole('spinbutton', { name: 'Memory (MB)', exact: true });
    assert.equal(await memory.inputValue(), '128');
    for (const name of ['Timeout (seconds)', 'Ephemeral storage (MB)']) await general.getByRole('spinbutton', { name, exact: true }).waitFor();
    await memory.fill('256');
    await general.getByRole('button', { name: 'Save', exact: true }).click();
    await waitFor(async () => (await aws(server, ['lambda', 'get-function-configuration', '--function-name', 'hello-api'])).MemorySize === 256,
      T, 'MemorySize 256');
    await flash('Successfully updated the function hello-api.').waitFor();
    const env = page.getByRole('region', { name: 'Environment variables', exact: true });
    await env.getByRole('button', { name: 'Add environment variable', exact: true }).click();
    await env.getByRole('textbox', { name: 'Key', exact: true }).last().fill('STAGE');
    await env.getByRole('textbox', { name: 'Value', exact: true }).last().fill('dev');
    await env.getByRole('button', { name: 'Save', exact: true }).click();
    await waitFor(async () => (await aws(server, ['lambda', 'get-function-configuration', '--function-name', 'hello-api'])).Environment?.Variables?.STAGE === 'dev',
      T, 'the environment variable STAGE=dev');
    await page.getByRole('region', { name: 'Concurrency', exact: true }).getByRole('spinbutton', { name: 'Reserved concurrency', exact: true }).waitFor();
    await page.getByRole('region', { name: 'Permissions', exact: true }).getByText('apigateway.amazonaws.com').first().waitFor();
    await screenshot(page, 'function-configuration');
    // The API still answers (the new configuration's environment).
    const r = await request(server.pathUrl(apiId, '/hello?name=Dev'));
    assert.equal(r.text, '{"message":"Hello, Dev!"}');
  });

  step('Region: another region has its own Functions list; back in us-east-1 hello-api is there', async () => {
    await topLink('Functions').click();
    await page.getByRole('link', { name: 'hello-api', exact: true }).waitFor();
    const region = page.getByRole('combobox', { name: 'Region', exact: true });
    const regions = await texts(region.locator('option'), (t) => t.length > 1, 'more than one region');
    const other = regions.find((r) => r !== 'us-east-1');
    // A function of that region (made with the AWS CLI) shows the list has loaded.
    const zip = path.join(server.base, 'elsewhere.zip');
    writeFileSync(zip, makeZip({ 'index.mjs': 'export const handler = async () => "hi";\n' }));
    await aws(server, ['lambda', 'create-function', '--region', other, '--function-name', 'elsewhere', '--runtime', 'nodejs22.x',
      '--handler', 'index.handler', '--zip-file', `fileb://${zip}`, '--role', `arn:aws:iam::${ACCOUNT}:role/r`]);
    await region.selectOption(other);
    await h1('Functions').waitFor();
    await page.getByRole('link', { name: 'elsewhere', exact: true }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'hello-api', exact: true }).count(), 0, `hello-api is not in ${other}`);
    await region.selectOption('us-east-1');
    await page.getByRole('link', { name: 'hello-api', exact: true }).waitFor();
  });

  step('Sign out returns to the sign-in page, and the session is gone', async () => {
    await button('Sign out').click();
    await h1('Sign in to Portico').waitFor();
    await page.reload();
    await h1('Sign in to Portico').waitFor();
    assert.equal(await button('Sign out').count(), 0);
    assert.deepEqual(errors.pageErrors, [], 'no uncaught exception in the console\'s page');
  });
});

function norm(s) {
  return s.replace(/\u00a0/g, ' ').replace(/\s+$/g, '').split('\n').map((l) => l.replace(/\s+$/, '')).join('\n');
}

// The text of the "Event JSON" control: a textarea's value or an editor's text.
function eventText(el) {
  return 'value' in el && typeof el.value === 'string' ? el.value : el.innerText;
}

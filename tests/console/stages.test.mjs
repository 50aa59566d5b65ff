// The API page's Stages tab in Chromium: the $default stage's edit form (region named after the
// stage) sets a stage variable and the throttling limits; GetStage (the real AWS CLI) reads
// them back and the gateway honours them: the function, which echoes its event, gets
// stageVariables, and a burst past the limit is answered 429. Removing the variable in the form
// removes it from the stage and the event. The function and API are made with the AWS CLI.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { aws, launchBrowser, Portico, quickApi, request, screenshot, signIn, waitFor, watchPage } from './helpers.mjs';

const ECHO = `export const handler = async (event) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(event),
});
`;
const TOO_MANY = '{"message":"Too Many Requests"}';

describe('Stages tab: stage variables, throttling and auto-deploy of a stage', { timeout: 120_000 }, () => {
  const server = new Portico();
  let browser, page, errors, apiId;

  before(async () => {
    await server.start();
    apiId = await quickApi(server, { functionName: 'stage-echo', apiName: 'stages-api', code: ECHO });
    browser = await launchBrowser();
    page = browser.pages()[0] ?? await browser.newPage();
    page.setDefaultTimeout(15_000);
    errors = watchPage(page);
  });

  after(async () => {
    if (errors?.pageErrors.length) console.log(`# browser page errors: ${JSON.stringify(errors.pageErrors)}`);
    await browser?.close();
    await server.stop();
  });

  const getStage = () => aws(server, ['apigatewayv2', 'get-stage', '--api-id', apiId, '--stage-name', '$default']);
  const event = async () => {
    const r = await request(server.pathUrl(apiId, '/hi'));
    assert.equal(r.status, 200, r.text);
    return r.json();
  };

  it('sets greeting=hi and burst 5 / rate 10 on $default: GetStage and the gateway agree; removing the variable removes it', async () => {
    await signIn(page, server);
    await page.goto(server.consoleUrl(`#/apis/${apiId}`));
    await page.getByRole('heading', { level: 1, name: 'stages-api', exact: true }).waitFor();
    await page.getByRole('tab', { name: 'Stages', exact: true }).click();

    const stage = page.getByRole('region', { name: '$default', exact: true });
    await stage.getByRole('heading', { name: '$default', exact: true }).waitFor();
    assert.equal(await stage.getByRole('checkbox', { name: 'Auto-deploy', exact: true }).isChecked(), true);
    assert.equal(await stage.getByRole('button', { name: 'Deploy to stage $default', exact: true }).count(), 0,
      'no Deploy for an auto-deploy stage');
    const before = await getStage();
    assert.ok(before.DeploymentId, JSON.stringify(before));
    await stage.getByText(before.DeploymentId, { exact: true }).waitFor();

    await stage.getByRole('button', { name: 'Add stage variable', exact: true }).click();
    const name = stage.getByRole('textbox', { name: 'Stage variable name', exact: true });
    assert.equal(await name.evaluate((el) => el === document.activeElement), true, 'the new row\'s name has the focus');
    await name.fill('greeting');
    await stage.getByRole('textbox', { name: 'Stage variable value', exact: true }).fill('hi');
    await stage.getByRole('spinbutton', { name: 'Burst limit', exact: true }).fill('5');
    await stage.getByRole('spinbutton', { name: 'Rate limit', exact: true }).fill('10');
    await stage.getByRole('button', { name: 'Save stage', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Successfully updated stage $default.' }).waitFor();
    assert.equal(await page.getByRole('alert').filter({ hasText: /\S/ }).count(), 0, 'no error shown');

    const saved = await getStage();
    assert.deepEqual(saved.StageVariables, { greeting: 'hi' });
    assert.equal(saved.DefaultRouteSettings.ThrottlingBurstLimit, 5);
    assert.equal(saved.DefaultRouteSettings.ThrottlingRateLimit, 10);
    assert.equal(saved.AutoDeploy, true);
    // The form, reloaded from the stage, shows what was saved.
    await waitFor(async () => (await stage.getByRole('spinbutton', { name: 'Burst limit', exact: true }).inputValue()) === '5'
      && (await stage.getByRole('spinbutton', { name: 'Rate limit', exact: true }).inputValue()) === '10'
      && (await stage.getByRole('textbox', { name: 'Stage variable name', exact: true }).inputValue()) === 'greeting',
    15_000, 'the saved values in the reloaded form');
    await stage.getByRole('heading', { name: '$default', exact: true }).evaluate((el) => el.closest('section').scrollIntoView());
    await screenshot(page, 'api-stages');

    // The 2.0 event carries the stage's variables.
    assert.deepEqual((await event()).stageVariables, { greeting: 'hi' });

    // Throttling: with the bucket full again (5 at 10 per second: half a second), 25 requests at
    // once exceed what can pass (5 + 10 per second of the burst's duration), the rest get 429.
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    const answers = await Promise.all(Array.from({ length: 25 }, () => request(server.pathUrl(apiId, '/burst'))));
    const seconds = (Date.now() - t0) / 1000;
    const ok = answers.filter((r) => r.status === 200);
    const throttled = answers.filter((r) => r.status === 429);
    const summary = JSON.stringify(answers.map((r) => r.status));
    assert.equal(ok.length + throttled.length, answers.length, `only 200 and 429: ${summary}`);
    assert.ok(ok.length >= 1, `some requests pass: ${summary}`);
    assert.ok(throttled.length >= 1, `past the burst of 5, some requests get 429: ${summary}`);
    assert.ok(ok.length <= 5 + Math.ceil(10 * seconds), `at most 5 + 10/s × ${seconds} s pass: ${summary}`);
    for (const r of throttled) assert.equal(r.text, TOO_MANY);

    // A second row has names of its own; a name the service refuses comes back verbatim.
    await stage.getByRole('button', { name: 'Add stage variable', exact: true }).click();
    await stage.getByRole('textbox', { name: 'Stage variable name 2', exact: true }).fill('bad-name');
    await stage.getByRole('textbox', { name: 'Stage variable value 2', exact: true }).fill('x');
    await stage.getByRole('button', { name: 'Save stage', exact: true }).click();
    await stage.getByRole('alert').filter({ hasText: 'Stage variable bad-name: names must be alphanumeric or _ (1-64)' }).waitFor();
    assert.deepEqual((await getStage()).StageVariables, { greeting: 'hi' }, 'nothing saved');
    await stage.getByRole('button', { name: 'Remove stage variable 2', exact: true }).click();

    // Remove the variable: saved without it, it is gone from the stage and from the event.
    await stage.getByRole('button', { name: 'Remove stage variable', exact: true }).click();
    assert.equal(await stage.getByRole('textbox', { name: 'Stage variable name', exact: true }).count(), 0);
    await stage.getByRole('button', { name: 'Save stage', exact: true }).click();
    // The flash still says the same from the first save: wait for the stage itself.
    const cleared = await waitFor(async () => {
      const s = await getStage();
      return Object.keys(s.StageVariables ?? {}).length === 0 && s;
    }, 15_000, 'GetStage without stage variables');
    await page.getByRole('status').filter({ hasText: 'Successfully updated stage $default.' }).waitFor();
    assert.equal(await page.getByRole('alert').filter({ hasText: /\S/ }).count(), 0, 'no error shown');
    assert.equal(cleared.DefaultRouteSettings.ThrottlingBurstLimit, 5, 'the limits stay');
    await new Promise((r) => setTimeout(r, 600)); // a token for the next request
    assert.equal((await event()).stageVariables ?? null, null);
  });
});

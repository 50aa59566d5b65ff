// The API page's Diagnostics tab in Chromium: a function whose response the gateway cannot map
// (an object body) makes the API answer 5xx; the tab lists that answer with its status, route
// and the gateway's reason. The function and API are made with the real AWS CLI.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { launchBrowser, Portico, quickApi, request, screenshot, signIn } from './helpers.mjs';

const BAD = 'export const handler = async () => ({ statusCode: 200, body: { message: "not a string" } });\n';

describe('Diagnostics: the gateway\'s 5xx answers and their reasons', { timeout: 90_000 }, () => {
  const server = new Portico();
  let browser, apiId;

  before(async () => {
    await server.start();
    apiId = await quickApi(server, { functionName: 'bad-body', apiName: 'bad-api', code: BAD });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server.stop();
  });

  it('a 5xx of the API is listed with its route, status and the reason', async () => {
    const r = await request(server.pathUrl(apiId, '/oops'));
    assert.ok(r.status >= 500, `${r.status} ${r.text}`);
    const page = browser.pages()[0] ?? await browser.newPage();
    page.setDefaultTimeout(15_000);
    await signIn(page, server);
    await page.goto(server.consoleUrl(`#/apis/${apiId}`));
    await page.getByRole('heading', { level: 1, name: 'bad-api', exact: true }).waitFor();
    await page.getByRole('tab', { name: 'Diagnostics', exact: true }).click();
    const row = page.getByRole('row').filter({ hasText: 'body must be a string, got object' });
    await row.first().waitFor();
    assert.equal(await row.count(), 1, 'one failure listed');
    const cells = (await row.getByRole('cell').allTextContents()).map((s) => s.trim());
    assert.ok(cells.includes(String(r.status)), `status ${r.status} in ${JSON.stringify(cells)}`);
    assert.ok(cells.some((c) => c.includes('$default')), `the route ($default) in ${JSON.stringify(cells)}`);
    const rid = r.headers['apigw-requestid'];
    if (rid) assert.ok(cells.some((c) => c.includes(rid)), `request id ${rid} in ${JSON.stringify(cells)}`);
    await screenshot(page, 'api-diagnostics');
  });
});

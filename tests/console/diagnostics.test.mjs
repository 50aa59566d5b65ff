// The API page's Diagnostics tab in Chromium: a function whose response the gateway cannot map
// (an object body) makes the API answer 5xx; the tab lists that answer with its status, route
// and the gateway's reason. The function and API are made with the real AWS CLI.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ACCOUNT, REGION, ROLE, Portico, aws, launchBrowser, makeZip, request, screenshot } from './helpers.mjs';

const BAD = 'export const handler = async () => ({ statusCode: 200, body: { message: "not a string" } });\n';

describe('Diagnostics: the gateway\'s 5xx answers and their reasons', { timeout: 90_000 }, () => {
  const server = new Portico();
  let browser, tmp, apiId;

  before(async () => {
    await server.start();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'portico-console-diag-'));
    writeFileSync(path.join(tmp, 'f.zip'), makeZip({ 'index.mjs': BAD }));
    await aws(server, ['lambda', 'create-function', '--function-name', 'bad-body', '--runtime', 'nodejs22.x',
      '--handler', 'index.handler', '--zip-file', `fileb://${path.join(tmp, 'f.zip')}`, '--role', ROLE]);
    apiId = (await aws(server, ['apigatewayv2', 'create-api', '--name', 'bad-api', '--protocol-type', 'HTTP',
      '--target', `arn:aws:lambda:${REGION}:${ACCOUNT}:function:bad-body`])).ApiId;
    await aws(server, ['lambda', 'add-permission', '--function-name', 'bad-body', '--statement-id', 'apigw',
      '--action', 'lambda:InvokeFunction', '--principal', 'apigateway.amazonaws.com',
      '--source-arn', `arn:aws:execute-api:${REGION}:${ACCOUNT}:${apiId}/*/*`]);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    await server.stop();
  });

  it('a 5xx of the API is listed with its route, status and the reason', async () => {
    const r = await request(server.pathUrl(apiId, '/oops'));
    assert.ok(r.status >= 500, `${r.status} ${r.text}`);
    const page = browser.pages()[0] ?? await browser.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(server.consoleUrl());
    await page.getByRole('textbox', { name: 'Access key ID', exact: true }).fill(server.accessKeyId);
    await page.getByLabel('Secret access key', { exact: true }).fill(server.secretAccessKey);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Sign out', exact: true }).waitFor();
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

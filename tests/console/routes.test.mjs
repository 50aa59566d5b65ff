// Route authorization and deletions in Chromium: the Authorizers tab puts a route behind IAM
// (AWS_IAM: an unsigned call then gets API Gateway's 403, GetRoute says AWS_IAM) and takes it
// off again; deleting a route, the API and the function asks first (the function's name must be
// typed) and then leaves nothing behind, as the real AWS CLI sees it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { aws, launchBrowser, Portico, quickApi, request, signIn, watchPage } from './helpers.mjs';

const HELLO = `export const handler = async () => ({ statusCode: 200, body: "hi" });
`;

describe('Authorizers tab (IAM) and deletions', { timeout: 120_000 }, () => {
  const server = new Portico();
  let browser, page, errors, apiId;

  before(async () => {
    await server.start();
    apiId = await quickApi(server, { functionName: 'routes-fn', apiName: 'routes-api', code: HELLO });
    browser = await launchBrowser();
    page = browser.pages()[0] ?? await browser.newPage();
    page.setDefaultTimeout(15_000);
    errors = watchPage(page);
    await signIn(page, server);
  });

  after(async () => {
    if (errors?.pageErrors.length) console.log(`# browser page errors: ${JSON.stringify(errors.pageErrors)}`);
    await browser?.close();
    await server.stop();
  });

  const routes = async () => (await aws(server, ['apigatewayv2', 'get-routes', '--api-id', apiId])).Items;
  const flash = () => page.getByRole('status');

  it('puts the $default route behind IAM and takes it off again', async () => {
    assert.equal((await request(server.pathUrl(apiId, '/x'))).status, 200);
    await page.goto(server.consoleUrl(`#/apis/${apiId}`));
    await page.getByRole('heading', { level: 1, name: 'routes-api', exact: true }).waitFor();
    await page.getByRole('tab', { name: 'Authorizers', exact: true }).click();
    const authorizer = page.getByRole('combobox', { name: 'Authorizer', exact: true });
    await authorizer.selectOption('AWS_IAM');
    await page.getByRole('button', { name: 'Attach', exact: true }).click();
    await flash().getByText('$default now takes IAM-signed requests only.').waitFor();
    assert.equal((await routes())[0].AuthorizationType, 'AWS_IAM');
    const unsigned = await request(server.pathUrl(apiId, '/x'));
    assert.equal(unsigned.status, 403, unsigned.text);

    await page.getByRole('combobox', { name: 'Authorizer', exact: true }).selectOption('');
    await page.getByRole('button', { name: 'Attach', exact: true }).click();
    await flash().getByText('Removed the authorizer of $default.').waitFor();
    assert.equal((await routes())[0].AuthorizationType, 'NONE');
    assert.equal((await request(server.pathUrl(apiId, '/x'))).status, 200);
  });

  it('deletes a route, then the API, then the function (its name typed to confirm)', async () => {
    await page.goto(server.consoleUrl(`#/apis/${apiId}`));
    await page.getByRole('tab', { name: 'Routes', exact: true }).click();
    await page.getByRole('button', { name: 'Delete route $default', exact: true }).click();
    await flash().getByText('Deleted the route $default.').waitFor();
    assert.deepEqual(await routes(), []);

    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    const apiDialog = page.getByRole('dialog', { name: 'Delete routes-api' });
    await apiDialog.getByRole('button', { name: 'Delete API', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'APIs', exact: true }).waitFor();
    const apis = (await aws(server, ['apigatewayv2', 'get-apis'])).Items;
    assert.equal(apis.filter((a) => a.ApiId === apiId).length, 0, JSON.stringify(apis));

    await page.goto(server.consoleUrl('#/functions/routes-fn'));
    await page.getByRole('heading', { level: 1, name: 'routes-fn', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    const fnDialog = page.getByRole('dialog', { name: 'Delete routes-fn' });
    await fnDialog.getByRole('button', { name: 'Delete function', exact: true }).click();
    await fnDialog.getByRole('alert').getByText('Type routes-fn to confirm.').waitFor();
    await fnDialog.getByRole('textbox', { name: 'To confirm, type routes-fn' }).fill('routes-fn');
    await fnDialog.getByRole('button', { name: 'Delete function', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Functions', exact: true }).waitFor();
    const fns = (await aws(server, ['lambda', 'list-functions'])).Functions;
    assert.deepEqual(fns.map((f) => f.FunctionName), []);
  });
});

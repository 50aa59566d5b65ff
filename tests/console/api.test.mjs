// The console backend's own HTTP API, as the pages use it (plain HTTP, no browser): the AWS
// passthrough's headers (X-Amz-Log-Type: Tail → X-Amz-Log-Result; X-Amz-Executed-Version;
// X-Amz-Function-Error), CloudWatch Logs by X-Amz-Target, X-Portico-Region, and the shapes of
// /console/api/metrics/..., /console/api/usage and /console/api/apis/{id}/failures.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ACCOUNT, REGION, ROLE, Portico, makeZip, request, waitFor } from './helpers.mjs';

const CODE = `export const handler = async (event) => {
  console.log("saw", JSON.stringify(event));
  if (event.fail || event.queryStringParameters?.fail) throw new Error("asked to fail");
  return { statusCode: 200, body: "ok" };
};
`;

describe('console API: passthrough headers, logs, regions, metrics, usage, failures', { timeout: 60_000 }, () => {
  const server = new Portico();
  let cookie, csrf;
  const url = (p) => `${server.endpoint}${p}`;
  // A call as the signed-in page makes it.
  const call = (p, { method = 'GET', headers = {}, body } = {}) => request(url(p), {
    method, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    headers: { cookie, ...(method === 'GET' ? {} : { 'x-csrf-token': csrf, 'content-type': 'application/json' }), ...headers },
  });

  before(async () => {
    await server.start();
    const r = await request(url('/console/api/session'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey }),
    });
    assert.equal(r.status, 200, r.text);
    cookie = [r.headers['set-cookie']].flat().find((c) => c.startsWith('portico_console=')).split(';')[0];
    csrf = r.json().csrfToken;
    const created = await call('/console/api/aws/2015-03-31/functions', { method: 'POST', body: {
      FunctionName: 'api-probe', Runtime: 'nodejs22.x', Role: ROLE, Handler: 'index.handler',
      Code: { ZipFile: makeZip({ 'index.mjs': CODE }).toString('base64') } } });
    assert.equal(created.status, 201, created.text);
    await waitFor(async () => (await call('/console/api/aws/2015-03-31/functions/api-probe')).json().Configuration.State === 'Active',
      15_000, 'api-probe to be Active');
  });
  after(async () => { await server.stop(); });

  it('Invoke with X-Amz-Log-Type: Tail returns the log tail and the version headers', async () => {
    const r = await call('/console/api/aws/2015-03-31/functions/api-probe/invocations', {
      method: 'POST', headers: { 'x-amz-log-type': 'Tail' }, body: { hello: 1 } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json(), { statusCode: 200, body: 'ok' });
    assert.equal(r.headers['x-amz-executed-version'], '$LATEST');
    assert.equal(r.headers['x-amz-function-error'], undefined);
    const tail = Buffer.from(r.headers['x-amz-log-result'] ?? '', 'base64').toString();
    assert.match(tail, /saw \{"hello":1\}/);
    assert.match(tail, /REPORT RequestId: /);
    const failed = await call('/console/api/aws/2015-03-31/functions/api-probe/invocations', {
      method: 'POST', headers: { 'x-amz-log-type': 'Tail' }, body: { fail: true } });
    assert.equal(failed.status, 200, failed.text);
    assert.equal(failed.headers['x-amz-function-error'], 'Unhandled');
    assert.equal(failed.json().errorMessage, 'asked to fail');
  });

  it('CloudWatch Logs FilterLogEvents by X-Amz-Target', async () => {
    const events = await waitFor(async () => {
      const r = await call('/console/api/aws/', {
        method: 'POST', body: { logGroupName: '/aws/lambda/api-probe' },
        headers: { 'x-amz-target': 'Logs_20140328.FilterLogEvents', 'content-type': 'application/x-amz-json-1.1' },
      });
      assert.equal(r.status, 200, r.text);
      const ev = r.json().events;
      return ev.some((e) => e.message.startsWith('REPORT')) && ev;
    }, 10_000, 'the REPORT line in the log group');
    assert.ok(events.some((e) => e.message.includes('saw {"hello":1}')), JSON.stringify(events));
  });

  it('X-Portico-Region names another region; an AWS error body passes through unchanged', async () => {
    const other = (await call('/console/api/session')).json().regions.find((r) => r !== REGION);
    assert.ok(other, 'the session document lists more than one region');
    const there = await call('/console/api/aws/2015-03-31/functions/', { headers: { 'x-portico-region': other } });
    assert.equal(there.status, 200, there.text);
    assert.deepEqual(there.json().Functions, []);
    const missing = await call('/console/api/aws/2015-03-31/functions/api-probe', { headers: { 'x-portico-region': other } });
    assert.equal(missing.status, 404, missing.text);
    assert.equal(missing.headers['x-amzn-errortype']?.split(':')[0], 'ResourceNotFoundException');
    assert.match(missing.json().Message ?? missing.json().message, /api-probe/);
  });

  it('metrics of a function: 60 zero-filled minutes, oldest first, the last one the current minute', async () => {
    const now = Date.now();
    const r = await call('/console/api/metrics/functions/api-probe?minutes=60');
    assert.equal(r.status, 200, r.text);
    const m = r.json();
    assert.equal(m.periodSeconds, 60);
    assert.equal(m.points.length, 60);
    const last = m.points.at(-1);
    const minute = (ms) => Math.floor(ms / 60_000) * 60_000;
    assert.ok(last.t === minute(now) || last.t === minute(Date.now()), `last point ${last.t}, now ${now}`);
    for (let i = 1; i < 60; i++) assert.equal(m.points[i].t - m.points[i - 1].t, 60_000);
    assert.deepEqual(Object.keys(last).sort(),
      ['concurrencyMax', 'durationP50Ms', 'durationP99Ms', 'errors', 'invocations', 't', 'throttles'].sort());
    const sum = (k) => m.points.reduce((s, p) => s + p[k], 0);
    assert.equal(sum('invocations'), 2);
    assert.equal(sum('errors'), 1);
    assert.equal(m.points[0].invocations, 0);
    assert.equal(m.points[0].durationP50Ms, null);
  });

  it('usage, an API\'s metrics and its failures', async () => {
    const api = await call('/console/api/aws/v2/apis', { method: 'POST', body: {
      name: 'probe-api', protocolType: 'HTTP', target: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:api-probe` } });
    assert.equal(api.status, 201, api.text);
    const apiId = api.json().apiId;
    // Quick create granted the invoke permission. A function error: the gateway answers 500 and records why.
    const ok = await request(server.pathUrl(apiId, '/x'));
    assert.equal(ok.status, 200, ok.text);
    const r = await request(server.pathUrl(apiId, '/x?fail=1'));
    assert.ok(r.status >= 500, `${r.status} ${r.text}`);
    const failures = (await call(`/console/api/apis/${apiId}/failures`)).json().failures;
    assert.equal(failures.length, 1, JSON.stringify(failures));
    const f = failures[0];
    assert.equal(f.status, r.status);
    assert.equal(f.method, 'GET');
    assert.equal(f.path, '/x');
    assert.equal(f.routeKey, '$default');
    assert.equal(f.functionName, 'api-probe');
    assert.equal(typeof f.reason, 'string');
    assert.ok(f.reason.length > 0);
    assert.equal(typeof f.requestId, 'string');
    assert.ok(Math.abs(f.time - Date.now()) < 60_000);
    const am = (await call(`/console/api/metrics/apis/${apiId}?minutes=60`)).json();
    assert.equal(am.periodSeconds, 60);
    assert.equal(am.points.length, 60);
    assert.deepEqual(Object.keys(am.points.at(-1)).sort(), ['count4xx', 'count5xx', 'latencyP50Ms', 'latencyP99Ms', 'requests', 't'].sort());
    assert.equal(am.points.reduce((s, p) => s + p.requests, 0), 2);
    assert.equal(am.points.reduce((s, p) => s + p.count5xx, 0), 1);
    const usage = (await call('/console/api/usage')).json();
    assert.equal(typeof usage.since, 'number');
    const fu = usage.functions.find((u) => u.functionName === 'api-probe');
    assert.ok(fu, JSON.stringify(usage));
    assert.equal(fu.architecture, 'x86_64');
    assert.equal(fu.memoryMb, 128);
    assert.equal(fu.requests, 4);
    assert.ok(fu.gbSeconds > 0);
    assert.deepEqual(usage.apis.find((a) => a.apiId === apiId), { apiId, requests: 2 });
  });
});

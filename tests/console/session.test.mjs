// The console's session security, over plain HTTP: no cookie → 401; a state-changing call
// without the right X-CSRF-Token → 403 (and nothing changes); the session cookie is HttpOnly,
// SameSite=Strict, Path=/console; signing out ends the session on the server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ACCOUNT, REGION, ROLE, Portico, makeZip, request } from './helpers.mjs';

const FUNCTIONS = '/console/api/aws/2015-03-31/functions/';

describe('console session: cookie, CSRF token, sign-out', { timeout: 60_000 }, () => {
  const server = new Portico();
  let cookie, csrf, setCookie;

  before(async () => { await server.start(); });
  after(async () => { await server.stop(); });

  const url = (p) => `${server.endpoint}${p}`;
  const json = (o) => JSON.stringify(o);
  const createBody = (name) => json({
    FunctionName: name, Runtime: 'nodejs22.x', Role: ROLE, Handler: 'index.handler',
    Code: { ZipFile: makeZip({ 'index.mjs': 'export const handler = async () => "hi";\n' }).toString('base64') },
  });

  it('without a session cookie the AWS passthrough and the session document answer 401 "sign in first"', async () => {
    for (const p of [FUNCTIONS, '/console/api/session', '/console/api/usage']) {
      const r = await request(url(p));
      assert.equal(r.status, 401, `${p}: ${r.text}`);
      assert.deepEqual(r.json(), { message: 'sign in first' }, p);
    }
    const forged = await request(url(FUNCTIONS), { headers: { cookie: 'portico_console=forged' } });
    assert.equal(forged.status, 401, forged.text);
  });

  it('a wrong secret is refused with 401 and no cookie', async () => {
    const r = await request(url('/console/api/session'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: json({ accessKeyId: server.accessKeyId, secretAccessKey: `${server.secretAccessKey}x` }),
    });
    assert.equal(r.status, 401, r.text);
    assert.deepEqual(r.json(), { message: 'The access key ID or secret access key is not valid.' });
    assert.equal(r.headers['set-cookie'], undefined);
  });

  it('signing in with the administrator key sets an HttpOnly, SameSite=Strict cookie and returns a CSRF token', async () => {
    const r = await request(url('/console/api/session'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: json({ accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, region: REGION }),
    });
    assert.equal(r.status, 200, r.text);
    const doc = r.json();
    assert.equal(doc.accountId, ACCOUNT);
    assert.equal(doc.accessKeyId, server.accessKeyId);
    assert.equal(doc.region, REGION);
    assert.ok(Array.isArray(doc.regions) && doc.regions.includes(REGION), json(doc));
    assert.equal(typeof doc.csrfToken, 'string');
    assert.ok(doc.csrfToken.length >= 16, 'a CSRF token of some strength');
    assert.ok(!json(doc).includes(server.secretAccessKey), 'the secret is never sent back');
    setCookie = [r.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('portico_console='));
    assert.ok(setCookie, `no portico_console cookie: ${json(r.headers['set-cookie'])}`);
    const attrs = setCookie.split(';').slice(1).map((a) => a.trim().toLowerCase());
    assert.ok(attrs.includes('httponly'), setCookie);
    assert.ok(attrs.includes('samesite=strict'), setCookie);
    assert.ok(attrs.includes('path=/console'), setCookie);
    cookie = setCookie.split(';')[0];
    csrf = doc.csrfToken;
    const again = await request(url('/console/api/session'), { headers: { cookie } });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json().csrfToken, csrf);
    assert.equal(again.json().accountId, ACCOUNT);
  });

  it('with the cookie, GET passes through to the control plane', async () => {
    const r = await request(url(FUNCTIONS), { headers: { cookie } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json().Functions, []);
  });

  it('a POST with the cookie but without, or with a wrong, X-CSRF-Token is refused 403 and changes nothing', async () => {
    const base = { cookie, 'content-type': 'application/json' };
    const cases = { without: base, wrong: { ...base, 'x-csrf-token': `${csrf.slice(0, -1)}${csrf.endsWith('0') ? '1' : '0'}` },
      empty: { ...base, 'x-csrf-token': '' } };
    for (const [what, headers] of Object.entries(cases)) {
      const r = await request(url('/console/api/aws/2015-03-31/functions'), { method: 'POST', headers, body: createBody(`csrf-${what}`) });
      assert.equal(r.status, 403, `${what}: ${r.text}`);
      assert.deepEqual(r.json(), { message: 'missing or wrong CSRF token' }, what);
    }
    const del = await request(url('/console/api/session'), { method: 'DELETE', headers: { cookie } });
    assert.equal(del.status, 403, `DELETE session without the token: ${del.text}`);
    const list = await request(url(FUNCTIONS), { headers: { cookie } });
    assert.deepEqual(list.json().Functions, [], 'a refused POST created nothing; the refused DELETE kept the session');
  });

  it('the same POST with the right X-CSRF-Token creates the function', async () => {
    const r = await request(url('/console/api/aws/2015-03-31/functions'), {
      method: 'POST', headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': csrf }, body: createBody('csrf-ok'),
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json().FunctionName, 'csrf-ok');
    const list = await request(url(FUNCTIONS), { headers: { cookie } });
    assert.deepEqual(list.json().Functions.map((f) => f.FunctionName), ['csrf-ok']);
  });

  it('signing out (DELETE with the token) → 204, clears the cookie, and the old cookie is dead', async () => {
    const r = await request(url('/console/api/session'), { method: 'DELETE', headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(r.status, 204, r.text);
    const cleared = [r.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('portico_console='));
    assert.ok(cleared && (/max-age=0/i.test(cleared) || /expires=thu, 01 jan 1970/i.test(cleared)), `cookie not cleared: ${cleared}`);
    const after = await request(url(FUNCTIONS), { headers: { cookie } });
    assert.equal(after.status, 401, after.text);
  });
});

// The console's session security, over plain HTTP: no cookie → 401; a state-changing call
// without the right X-CSRF-Token → 403 (and nothing changes); the session cookie is HttpOnly,
// SameSite=Strict, Path=/console; signing out ends the session on the server. In Chromium:
// the cookie is invisible to scripts, and a page of another origin on the same host (same
// site, so the browser does send the cookie) can neither change anything nor read anything.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ACCOUNT, REGION, ROLE, Portico, launchBrowser, makeZip, request } from './helpers.mjs';

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

  it('in Chromium: a page of another origin on the same host cannot use a signed-in session', async () => {
    const evil = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<!doctype html><title>x</title>'); });
    await new Promise((r) => evil.listen(0, '127.0.0.1', r));
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(url('/console/'));
      const signedIn = await page.evaluate(async ([accessKeyId, secretAccessKey]) => {
        const r = await fetch('/console/api/session', { method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ accessKeyId, secretAccessKey }) });
        return { status: r.status, cookieVisible: document.cookie.includes('portico_console') };
      }, [server.accessKeyId, server.secretAccessKey]);
      assert.deepEqual(signedIn, { status: 200, cookieVisible: false }, 'signed in; the HttpOnly cookie is hidden from scripts');
      assert.equal(await page.evaluate(async () => (await fetch('/console/api/aws/2015-03-31/functions/')).status), 200,
        'the console\'s own page uses its session');

      await page.goto(`http://127.0.0.1:${evil.address().port}/`);
      const target = url('/console/api/aws/2015-03-31/functions');
      const outcome = await page.evaluate(async ([target, session, body]) => {
        const tryFetch = async (u, init) => {
          try { const r = await fetch(u, { credentials: 'include', ...init }); return r.type === 'opaque' ? 'opaque' : `read ${r.status}`; } catch (e) { return e.name; }
        };
        return {
          // A "simple" POST: the browser sends it (with the same-site cookie), the answer is opaque.
          simplePost: await tryFetch(target, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body }),
          // With a guessed token header: needs a CORS preflight, which the console does not grant.
          withToken: await tryFetch(target, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': 'guess' }, body }),
          // Reading the session document (and its CSRF token) from another origin.
          readSession: await tryFetch(session, {}),
        };
      }, [target, url('/console/api/session'), createBody('csrf-evil')]);
      assert.deepEqual(outcome, { simplePost: 'opaque', withToken: 'TypeError', readSession: 'TypeError' });
      // An HTML form POST, the classic CSRF.
      await page.setContent(`<form method="post" action="${target}" enctype="text/plain"><input name='{"a":"' value='"}'></form>`);
      const [answer] = await Promise.all([page.waitForNavigation(), page.evaluate(() => document.forms[0].submit())]);
      const text = await page.locator('body').innerText();
      assert.equal(answer.status(), 403, `the form POST was refused: ${text}`);
      assert.ok(/CSRF|cannot change anything/.test(text), text);
    } finally {
      await browser.close();
      evil.close();
    }
    const list = await request(url(FUNCTIONS), { headers: { cookie } });
    assert.deepEqual(list.json().Functions.map((f) => f.FunctionName), ['csrf-ok'], 'the other origin created nothing');
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

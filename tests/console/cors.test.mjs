// Cross-origin fetch in a real browser: an HTTP API whose CORS configuration allows one origin,
// set up with the real AWS CLI; a page served from that origin reads the API's JSON, the same
// page from another origin is refused by Chromium (fetch rejects with a TypeError).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Portico, launchBrowser, quickApi, request, watchPage } from './helpers.mjs';

const HANDLER = `export const handler = async (event) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ ok: true, method: event.requestContext.http.method, got: event.body ?? null }),
});
`;

/** Two page servers on two loopback ports: two origins, the same tiny page. */
function pageServer() {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>cors probe</title><h1>cors probe</h1>');
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

// What the page runs: the outcome of a fetch, never a thrown error.
async function probe(page, url, init) {
  return page.evaluate(async ([u, i]) => {
    try {
      const r = await fetch(u, i);
      return { ok: true, status: r.status, body: await r.text() };
    } catch (e) {
      return { ok: false, error: e.name, message: e.message };
    }
  }, [url, init ?? {}]);
}

describe('CORS in Chromium: an allowed origin reads the API, another origin is blocked', { timeout: 120_000 }, () => {
  const server = new Portico();
  let allowed, other, browser, apiId;

  before(async () => {
    await server.start();
    [allowed, other] = await Promise.all([pageServer(), pageServer()]);
    const origin = `http://127.0.0.1:${allowed.address().port}`;
    apiId = await quickApi(server, {
      functionName: 'cors-echo',
      apiName: 'cors-api',
      code: HANDLER,
      extra: ['--cors-configuration', `AllowOrigins=${origin},AllowMethods=GET,POST,AllowHeaders=content-type`],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    allowed?.close();
    other?.close();
    await server.stop();
  });

  it('the API itself answers (outside any browser), with CORS headers only for the allowed origin', async () => {
    const url = server.pathUrl(apiId, '/anything');
    const yes = await request(url, { headers: { origin: `http://127.0.0.1:${allowed.address().port}` } });
    assert.equal(yes.status, 200, yes.text);
    assert.deepEqual(yes.json(), { ok: true, method: 'GET', got: null });
    assert.equal(yes.headers['access-control-allow-origin'], `http://127.0.0.1:${allowed.address().port}`);
    const no = await request(url, { headers: { origin: `http://127.0.0.1:${other.address().port}` } });
    assert.equal(no.status, 200, no.text);
    assert.equal(no.headers['access-control-allow-origin'], undefined);
  });

  for (const [form, urlOf] of [
    ['host-style URL ({apiId}.execute-api.localhost)', (id) => server.hostUrl(id, '/hello')],
    ['path-style URL (127.0.0.1/execute-api/{apiId})', (id) => server.pathUrl(id, '/hello')],
  ]) {
    it(`from the allowed origin, fetch of the ${form} returns the JSON (GET, and a preflighted POST)`, async () => {
      const page = await browser.newPage();
      const errors = watchPage(page);
      try {
        await page.goto(`http://127.0.0.1:${allowed.address().port}/`);
        const get = await probe(page, urlOf(apiId));
        assert.deepEqual(get, { ok: true, status: 200, body: JSON.stringify({ ok: true, method: 'GET', got: null }) },
          `console errors: ${errors.consoleErrors.join(' | ')}`);
        const post = await probe(page, urlOf(apiId),
          { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":1}' });
        assert.deepEqual(post, { ok: true, status: 200, body: JSON.stringify({ ok: true, method: 'POST', got: '{"x":1}' }) },
          `console errors: ${errors.consoleErrors.join(' | ')}`);
      } finally {
        await page.close();
      }
    });

    it(`from another origin, Chromium blocks the fetch of the ${form} (TypeError)`, async () => {
      const page = await browser.newPage();
      const errors = watchPage(page);
      try {
        await page.goto(`http://127.0.0.1:${other.address().port}/`);
        const get = await probe(page, urlOf(apiId));
        assert.equal(get.ok, false, `fetch from a disallowed origin succeeded: ${JSON.stringify(get)}`);
        assert.equal(get.error, 'TypeError', JSON.stringify(get));
        // Chromium says why: the CORS check, not a network failure.
        assert.ok(errors.consoleErrors.some((m) => /CORS policy/.test(m)),
          `no CORS error in the console: ${errors.consoleErrors.join(' | ')}`);
      } finally {
        await page.close();
      }
    });
  }
});

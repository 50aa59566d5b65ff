// bootstrap.mjs's HTTP/1.1 client against a raw-socket Runtime API that answers the
// way a server may but node:http never does: chunked bodies, responses split at every
// byte, header names in any case, kept-alive sockets closed between requests, early
// answers to oversized bodies, interim 100 responses.
// Run: node --test runtimes/nodejs/test/

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BOOTSTRAP = fileURLToPath(new URL('../bootstrap.mjs', import.meta.url));
const NEXT = '/2018-06-01/runtime/invocation/next';

/**
 * A Runtime API on raw sockets. `answer(req, conn)` decides what each request gets:
 * it writes to `conn.socket` itself. `req` is `{method, url, headers, body}` with
 * lower-case header names; `conn.id` numbers connections from 1.
 */
class RawRuntimeApi {
  constructor(answer) {
    this.answer = answer;
    this.requests = [];
    this.connections = 0;
    this.sockets = new Set();
    this.waiters = [];
    this.server = net.createServer((socket) => this.accept(socket));
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this.server.address().port;
  }

  close() {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }

  accept(socket) {
    const conn = { id: ++this.connections, socket };
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    // Reads until the headers are complete, then stops: the answer may come before
    // the body (as a 413 does), or read it with `req.readBody()`.
    let req = null;
    let bodyWaiter = null;
    const pump = () => {
      for (;;) {
        if (req === null) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const [line, ...rest] = buf.toString('latin1', 0, end).split('\r\n');
          const [method, url] = line.split(' ');
          const headers = {};
          for (const h of rest) {
            const c = h.indexOf(':');
            headers[h.slice(0, c).trim().toLowerCase()] = h.slice(c + 1).trim();
          }
          buf = buf.subarray(end + 4);
          const length = Number(headers['content-length'] ?? 0);
          req = { method, url, headers, length, conn: conn.id };
          const r = req;
          r.readBody = () =>
            new Promise((resolve) => {
              bodyWaiter = resolve;
              pump();
            });
          if (length === 0) {
            r.body = '';
            this.record(r);
            req = null;
            this.answer(r, conn);
            continue;
          }
          if (!this.answer(r, conn)) return; // answered early; the body is not read
          continue; // `answer` may have read the body already
        }
        if (buf.length < req.length || bodyWaiter === null) return;
        const r = req;
        r.body = buf.toString('utf8', 0, r.length);
        buf = buf.subarray(r.length);
        req = null;
        this.record(r);
        const w = bodyWaiter;
        bodyWaiter = null;
        w(r.body);
      }
    };
    socket.on('data', (chunk) => {
      if (socket.writableEnded) return; // closing: what arrives now goes unanswered
      buf = Buffer.concat([buf, chunk]);
      pump();
    });
  }

  record(req) {
    this.requests.push(req);
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once `n` requests have been recorded. */
  waitForRequests(n, ms = 5000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.requests.length >= n) {
          this.waiters = this.waiters.filter((w) => w !== check);
          clearTimeout(timer);
          resolve(this.requests);
        }
      };
      const timer = setTimeout(
        () => reject(new Error(`${this.requests.length} requests, not ${n}: ${JSON.stringify(this.requests)}`)),
        ms,
      );
      this.waiters.push(check);
      check();
    });
  }
}

/** A complete response; `chunked` sends the body in chunks of that many bytes. */
function response(status, headers, body = '', { chunked = 0 } = {}) {
  let head = `HTTP/1.1 ${status} X\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (!chunked) return Buffer.from(`${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  let out = `${head}Transfer-Encoding: chunked\r\n\r\n`;
  const b = Buffer.from(body);
  for (let i = 0; i < b.length; i += chunked) {
    const part = b.subarray(i, i + chunked);
    out += `${part.length.toString(16)};ext=1\r\n${part.toString('latin1')}\r\n`;
  }
  return Buffer.from(`${out}0\r\nX-Trailer: t\r\n\r\n`, 'latin1');
}

function invocation(id, event, extra = {}) {
  return {
    'Content-Type': 'application/json',
    'Lambda-Runtime-Aws-Request-Id': id,
    'Lambda-Runtime-Deadline-Ms': String(Date.now() + 60000),
    'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:123456789012:function:fn',
    'Lambda-Runtime-Trace-Id': 'Root=1-00000000-000000000000000000000000',
    ...extra,
  };
}

const ACCEPTED = response(202, { 'Content-Type': 'application/json' }, '{"status":"OK"}');

/** Writes `bytes` one at a time, each in its own segment. */
async function trickle(socket, bytes) {
  for (const b of bytes) {
    if (socket.destroyed) return;
    socket.write(Buffer.from([b]));
    await new Promise((r) => setImmediate(r));
  }
}

async function startRuntime(t, answer, code) {
  const api = new RawRuntimeApi(answer);
  const port = await api.listen();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'portico-node-'));
  fs.writeFileSync(path.join(root, 'index.mjs'), code ?? 'export const handler = async (event, context) => ({ event, id: context.awsRequestId, arn: context.invokedFunctionArn, cc: context.clientContext });');
  const child = spawn(process.execPath, [BOOTSTRAP], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { _HANDLER: 'index.handler', AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`, LAMBDA_TASK_ROOT: root, TZ: ':UTC' },
  });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    api.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  return { api, child, exited, output: () => output };
}

/** Posted outcomes (POST requests), parsed. */
function posts(api) {
  return api.requests.filter((r) => r.method === 'POST').map((r) => ({ ...r, json: JSON.parse(r.body) }));
}

describe('Runtime API transport', { concurrency: true }, () => {
  test('chunked bodies and responses split at every byte, header names in any case', async (t) => {
    let n = 0;
    const { api } = await startRuntime(t, (req, conn) => {
      if (req.url === NEXT) {
        n++;
        if (n > 2) return true; // park
        const body = JSON.stringify({ n, text: 'é'.repeat(50) });
        const headers = invocation(`id-${n}`, null, { 'lambda-runtime-client-context': '{"c":1}' });
        const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [n === 1 ? k.toUpperCase() : k, v]));
        trickle(conn.socket, response(200, upper, body, { chunked: 7 }));
        return true;
      }
      req.readBody().then(() => trickle(conn.socket, response(202, {}, '{"status":"OK"}', { chunked: 4 })));
      return true;
    });
    const reqs = await api.waitForRequests(5);
    const [a, b] = posts(api);
    assert.equal(a.url, '/2018-06-01/runtime/invocation/id-1/response');
    assert.deepEqual(a.json, { event: { n: 1, text: 'é'.repeat(50) }, id: 'id-1', arn: 'arn:aws:lambda:us-east-1:123456789012:function:fn', cc: { c: 1 } });
    assert.equal(b.json.id, 'id-2');
    assert.equal(a.headers['content-length'], String(Buffer.byteLength(a.body)));
    assert.equal(a.headers.host, `127.0.0.1:${api.server.address().port}`);
    assert.ok(reqs.every((r) => r.conn === 1), 'one connection throughout');
  });

  test('a kept-alive socket closed by the server: reconnect, and retry a request it dropped', async (t) => {
    let n = 0;
    const { api } = await startRuntime(t, (req, conn) => {
      if (req.url === NEXT) {
        n++;
        // Second GET: closed unanswered, as a server timing out an idle socket would.
        if (n === 2) {
          conn.socket.destroy();
          return true;
        }
        if (n > 4) return true;
        conn.socket.write(response(200, invocation(`id-${n}`), JSON.stringify({ n })));
        return true;
      }
      req.readBody().then(() => {
        // Third outcome: answered, then the connection closed without notice.
        if (n === 3) conn.socket.end(ACCEPTED);
        else conn.socket.write(ACCEPTED);
      });
      return true;
    });
    const reqs = await api.waitForRequests(8);
    assert.deepEqual(
      posts(api).map((p) => p.json.id),
      ['id-1', 'id-3', 'id-4'],
    );
    assert.deepEqual(
      reqs.map((r) => `${r.conn}:${r.method}`),
      ['1:GET', '1:POST', '1:GET', '2:GET', '2:POST', '3:GET', '3:POST', '3:GET'],
    );
  });

  test('Connection: close is honoured', async (t) => {
    let n = 0;
    const { api } = await startRuntime(t, (req, conn) => {
      if (req.url === NEXT) {
        if (++n > 2) return true;
        conn.socket.write(response(200, { ...invocation(`id-${n}`), Connection: 'Close' }, '{}'));
        return true;
      }
      req.readBody().then(() => conn.socket.write(ACCEPTED));
      return true;
    });
    const reqs = await api.waitForRequests(5);
    assert.deepEqual(
      reqs.map((r) => `${r.conn}:${r.method}`),
      ['1:GET', '2:POST', '2:GET', '3:POST', '3:GET'],
    );
  });

  test('100 Continue before the answer; a body delimited by the close', async (t) => {
    let n = 0;
    const { api } = await startRuntime(t, (req, conn) => {
      if (req.url === NEXT) {
        if (++n > 2) return true;
        const interim = 'HTTP/1.1 100 Continue\r\n\r\n';
        if (n === 1) {
          conn.socket.write(interim);
          conn.socket.write(response(200, invocation('id-1'), '{"a":1}'));
        } else {
          // No Content-Length, no chunking: the body runs until the server closes.
          const head = Object.entries(invocation('id-2')).map(([k, v]) => `${k}: ${v}\r\n`).join('');
          conn.socket.end(`HTTP/1.1 200 OK\r\n${head}\r\n{"b":2}`);
        }
        return true;
      }
      req.readBody().then(() => conn.socket.write(ACCEPTED));
      return true;
    });
    await api.waitForRequests(5);
    assert.deepEqual(
      posts(api).map((p) => p.json.event),
      [{ a: 1 }, { b: 2 }],
    );
  });

  test('an early answer to an oversized body (413) leaves the runtime serving', async (t) => {
    let n = 0;
    const { api, child } = await startRuntime(
      t,
      (req, conn) => {
        if (req.url === NEXT) {
          if (++n > 2) return true;
          conn.socket.write(response(200, invocation(`id-${n}`), JSON.stringify({ big: n === 1 })));
          return true;
        }
        if (Number(req.headers['content-length']) > 1e6) {
          // Answer without reading the body, then close, as hyper does past its limit.
          api.record({ ...req, body: '{"oversized":true}' });
          conn.socket.end(response(413, {}, '{"errorType":"RequestEntityTooLarge"}'));
          return false;
        }
        req.readBody().then(() => conn.socket.write(ACCEPTED));
        return true;
      },
      `export const handler = async (event) => event.big ? 'x'.repeat(8 * 1024 * 1024) : 'small';`,
    );
    await api.waitForRequests(5);
    assert.deepEqual(
      posts(api).map((p) => p.json),
      [{ oversized: true }, 'small'],
    );
    assert.equal(child.exitCode, null);
  });

  test('410 on GET next: exit 0', async (t) => {
    const { exited } = await startRuntime(t, (req, conn) => {
      conn.socket.write(response(410, {}, '{"errorType":"Gone"}'));
      return true;
    });
    assert.equal(await exited, 0);
  });

  test('a malformed response is fatal', async (t) => {
    const { exited, output } = await startRuntime(t, (req, conn) => {
      conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n');
      return true;
    });
    assert.equal(await exited, 1);
    assert.match(output(), /Failed to get next invocation: Runtime API response: bad Content-Length/);
  });
});

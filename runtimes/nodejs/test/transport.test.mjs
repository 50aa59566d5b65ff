// bootstrap.cjs's HTTP/1.1 client against a raw-socket Runtime API that answers the
// way a server may but node:http never does: chunked bodies, responses split at every
// byte, header names in any case, kept-alive sockets closed between requests, early
// answers to oversized bodies, interim 100 responses; and the outcome pipelined with
// the next GET, whatever becomes of the connection between them.
// Run: node --test runtimes/nodejs/test/

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BOOTSTRAP = fileURLToPath(new URL('../bootstrap.cjs', import.meta.url));
const NEXT = '/2018-06-01/runtime/invocation/next';

/**
 * A Runtime API on raw sockets. `answer(req, conn)` decides what each request gets and
 * sends it with `conn.send`. Like hyper's server it takes requests one at a time: a
 * pipelined request is taken once the one before it is answered. `req` is
 * `{method, url, headers, body}` with lower-case header names; `conn.id` numbers
 * connections from 1, `conn.reads` holds what each read of the socket returned.
 */
class RawRuntimeApi {
  constructor(answer) {
    this.answer = answer;
    this.requests = [];
    this.connections = 0;
    /** id -> conn */
    this.conns = new Map();
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
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    /** The request being served: taken, not answered yet. */
    let req = null;
    let bodyWaiter = null;
    const conn = {
      id: ++this.connections,
      socket,
      reads: [],
      /** Bytes received and not taken as a request yet, e.g. a pipelined one. */
      unread: () => buf.toString('latin1'),
      /**
       * Answers the request being served: `slow` writes a byte at a time, `end` then
       * closes. The next request is taken once the answer is written. An answer that
       * comes before the body was read must `end` (the body would read as a request).
       */
      async send(bytes, { slow = false, end = false } = {}) {
        if (slow) await trickle(socket, bytes);
        else socket.write(bytes);
        if (end) socket.end();
        req = null;
        queueMicrotask(pump);
      },
    };
    this.conns.set(conn.id, conn);
    // Takes the next request when none is being served, reads a body when asked to
    // (`req.readBody()`); the answer may come before the body is read (as a 413 does).
    const pump = () => {
      while (!socket.writableEnded && !socket.destroyed) {
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
          const r = { method, url, headers, length: Number(headers['content-length'] ?? 0), conn: conn.id };
          r.readBody = () =>
            new Promise((resolve) => {
              bodyWaiter = resolve;
              pump();
            });
          req = r;
          if (r.length === 0) {
            r.body = '';
            this.record(r);
          }
          this.answer(r, conn);
        } else if (bodyWaiter !== null && req.body === undefined && buf.length >= req.length) {
          req.body = buf.toString('utf8', 0, req.length);
          buf = buf.subarray(req.length);
          this.record(req);
          const w = bodyWaiter;
          bodyWaiter = null;
          w(req.body);
        } else {
          return;
        }
      }
    };
    socket.on('data', (chunk) => {
      conn.reads.push(chunk.toString('latin1'));
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

/**
 * Starts bootstrap.cjs against a RawRuntimeApi. `inherited`: as Portico starts its own
 * client, with its first connection ready-made on descriptor 3 (a UNIX socket pair,
 * which is what node gives a child for a 'pipe'), served as the API's connection 1.
 */
async function startRuntime(t, answer, code, { inherited = false } = {}) {
  const api = new RawRuntimeApi(answer);
  const port = await api.listen();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'portico-node-'));
  fs.writeFileSync(path.join(root, 'index.mjs'), code ?? 'export const handler = async (event, context) => ({ event, id: context.awsRequestId, arn: context.invokedFunctionArn, cc: context.clientContext });');
  const env = { _HANDLER: 'index.handler', AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`, LAMBDA_TASK_ROOT: root, TZ: ':UTC' };
  if (inherited) env._PORTICO_RUNTIME_API_FD = '3';
  const child = spawn(process.execPath, [BOOTSTRAP], {
    cwd: root,
    stdio: inherited ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    env,
  });
  if (inherited) api.accept(child.stdio[3]);
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
        if (n > 2) return; // park
        const body = JSON.stringify({ n, text: 'é'.repeat(50) });
        const headers = invocation(`id-${n}`, null, { 'lambda-runtime-client-context': '{"c":1}' });
        const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [n === 1 ? k.toUpperCase() : k, v]));
        conn.send(response(200, upper, body, { chunked: 7 }), { slow: true });
        return;
      }
      req.readBody().then(() => conn.send(response(202, {}, '{"status":"OK"}', { chunked: 4 }), { slow: true }));
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
          return;
        }
        if (n > 4) return;
        conn.send(response(200, invocation(`id-${n}`), JSON.stringify({ n })));
        return;
      }
      req.readBody().then(() => {
        // Third outcome: answered, then the connection closed without notice.
        conn.send(ACCEPTED, { end: n === 3 });
      });
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

  test('an inherited socket carries the first connection; once the server closes it, the next goes to AWS_LAMBDA_RUNTIME_API', async (t) => {
    let n = 0;
    const code = 'export const handler = async () => ({ fd: process.env._PORTICO_RUNTIME_API_FD ?? null });';
    const { api } = await startRuntime(
      t,
      (req, conn) => {
        if (req.url === NEXT) {
          n++;
          if (n > 2) return;
          conn.send(response(200, invocation(`id-${n}`), '{}'));
          return;
        }
        // The first outcome is answered, then the inherited socket closed.
        req.readBody().then(() => conn.send(ACCEPTED, { end: n === 1 }));
      },
      code,
      { inherited: true },
    );
    const reqs = await api.waitForRequests(5);
    assert.deepEqual(
      reqs.map((r) => `${r.conn}:${r.method}`),
      // The GET pipelined behind the first outcome went unanswered: it goes again on 2.
      ['1:GET', '1:POST', '2:GET', '2:POST', '2:GET'],
    );
    // The variable is the client's, not the function's.
    assert.deepEqual(posts(api).map((p) => p.json), [{ fd: null }, { fd: null }]);
    assert.equal(api.conns.get(1).socket.remoteAddress, undefined, 'connection 1 is the UNIX socket');
    assert.equal(api.conns.get(2).socket.remoteAddress, '127.0.0.1');
  });

  test("Portico's own channel: the answer to an outcome is the next invocation, with no GET between", async (t) => {
    let n = 0;
    const { api, exited } = await startRuntime(
      t,
      (req, conn) => {
        const next = () => {
          n++;
          // The third: the environment is being stopped.
          if (n === 3) conn.send(response(410, { 'Content-Type': 'application/json' }, '{"errorType":"Gone"}'));
          else conn.send(response(200, invocation(`id-${n}`), JSON.stringify({ n })));
        };
        if (req.url === NEXT) next();
        else req.readBody().then(next);
      },
      undefined,
      { inherited: true },
    );
    assert.equal(await exited, 0);
    assert.deepEqual(
      api.requests.map((r) => `${r.conn}:${r.method}:${r.headers['portico-then-next'] ?? '-'}`),
      ['1:GET:-', '1:POST:1', '1:POST:1'],
    );
    assert.deepEqual(
      posts(api).map((p) => p.json.event),
      [{ n: 1 }, { n: 2 }],
    );
  });

  test('Connection: close is honoured', async (t) => {
    let n = 0;
    const { api } = await startRuntime(t, (req, conn) => {
      if (req.url === NEXT) {
        if (++n > 2) return;
        conn.send(response(200, { ...invocation(`id-${n}`), Connection: 'Close' }, '{}'));
        return;
      }
      req.readBody().then(() => conn.send(ACCEPTED));
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
        if (++n > 2) return;
        const interim = 'HTTP/1.1 100 Continue\r\n\r\n';
        if (n === 1) {
          conn.send(Buffer.concat([Buffer.from(interim), response(200, invocation('id-1'), '{"a":1}')]));
        } else {
          // No Content-Length, no chunking: the body runs until the server closes.
          const head = Object.entries(invocation('id-2')).map(([k, v]) => `${k}: ${v}\r\n`).join('');
          conn.send(`HTTP/1.1 200 OK\r\n${head}\r\n{"b":2}`, { end: true });
        }
        return;
      }
      req.readBody().then(() => conn.send(ACCEPTED));
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
          if (++n > 2) return;
          conn.send(response(200, invocation(`id-${n}`), JSON.stringify({ big: n === 1 })));
          return;
        }
        if (Number(req.headers['content-length']) > 1e6) {
          // Answer without reading the body, then close, as hyper does past its limit.
          api.record({ ...req, body: '{"oversized":true}' });
          conn.send(response(413, {}, '{"errorType":"RequestEntityTooLarge"}'), { end: true });
          return;
        }
        req.readBody().then(() => conn.send(ACCEPTED));
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
      conn.send(response(410, {}, '{"errorType":"Gone"}'));
    });
    assert.equal(await exited, 0);
  });

  test('a malformed response is fatal', async (t) => {
    const { exited, output } = await startRuntime(t, (req, conn) => {
      conn.send('HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n');
    });
    assert.equal(await exited, 1);
    assert.match(output(), /Failed to get next invocation: Runtime API response: bad Content-Length/);
  });
});

// After an invocation the runtime sends its outcome and the next GET together
// (HTTP/1.1 pipelining), and reads their answers in order.
describe('pipelining', { concurrency: true }, () => {
  /** The requests taken so far as `conn:METHOD last-path-segment`. */
  const trail = (api) => api.requests.map((r) => `${r.conn}:${r.method} ${r.url.split('/').at(-1)}`);
  const nextRequest = (api) => `GET ${NEXT} HTTP/1.1\r\nHost: 127.0.0.1:${api.server.address().port}\r\n\r\n`;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  /**
   * A Runtime API that hands out `invocations` invocations (then parks the GET) and
   * answers each outcome `delayMs` after reading it, noting what of the connection was
   * still unread at that moment (`unreadAt202`).
   */
  const lateAccepted = (invocations, delayMs) => {
    let n = 0;
    const unreadAt202 = [];
    const serve = (req, conn) => {
      if (req.url === NEXT) {
        if (++n > invocations) return; // park
        conn.send(response(200, invocation(`id-${n}`), '{}'));
        return;
      }
      req.readBody().then(() =>
        setTimeout(() => {
          unreadAt202.push(conn.unread());
          conn.send(ACCEPTED);
        }, delayMs),
      );
    };
    return { serve, unreadAt202 };
  };

  /** The last read on connection `id` was an outcome with the next GET behind it. */
  const sentTogether = (api, id) => {
    const read = api.conns.get(id).reads.at(-1);
    assert.ok(read.startsWith('POST ') && read.endsWith(nextRequest(api)), JSON.stringify(read));
  };

  test('the outcome and the next GET arrive in one read, before the 202 is sent', async (t) => {
    // The 202 is late; the GET is there already, waiting for its turn.
    const { serve, unreadAt202 } = lateAccepted(3, 50);
    const { api } = await startRuntime(t, serve);
    await api.waitForRequests(7);
    assert.deepEqual(trail(api), [
      '1:GET next',
      '1:POST response',
      '1:GET next',
      '1:POST response',
      '1:GET next',
      '1:POST response',
      '1:GET next',
    ]);
    const next = nextRequest(api);
    assert.deepEqual(unreadAt202, [next, next, next]);
    // One write per invocation: each read after the first is a POST, then the next GET.
    const reads = api.conns.get(1).reads;
    assert.equal(reads.length, 4, JSON.stringify(reads));
    for (const [i, read] of reads.slice(1).entries()) {
      assert.ok(read.startsWith(`POST /2018-06-01/runtime/invocation/id-${i + 1}/response HTTP/1.1\r\n`), read);
      assert.ok(read.endsWith(`function:fn"}${next}`), read);
    }
  });

  test('the 202 and the next invocation in one read', async (t) => {
    let n = 0;
    let answered = false; // the GET's answer went out with the 202
    const { api } = await startRuntime(t, (req, conn) => {
      if (req.url !== NEXT) {
        // Both answers in one write, as a server may flush them.
        req.readBody().then(() => {
          if (++n > 3) return conn.send(ACCEPTED);
          answered = true;
          conn.send(Buffer.concat([ACCEPTED, response(200, invocation(`id-${n}`), JSON.stringify({ n }))]));
        });
      } else if (answered) {
        answered = false;
        conn.send(Buffer.alloc(0));
      } else if (++n === 1) {
        conn.send(response(200, invocation('id-1'), JSON.stringify({ n })));
      } // else park
    });
    await api.waitForRequests(7);
    assert.deepEqual(
      posts(api).map((p) => [p.url.split('/').at(-2), p.json.event.n]),
      [['id-1', 1], ['id-2', 2], ['id-3', 3]],
    );
    assert.equal(api.connections, 1);
  });

  test('413, 400 and 500 answers to the outcome: taken as before, the next GET answered or sent again', async (t) => {
    let n = 0;
    const { api, child, output } = await startRuntime(t, (req, conn) => {
      if (req.url === NEXT) {
        if (++n > 4) return; // park
        conn.send(response(200, invocation(`id-${n}`), '{}'));
        return;
      }
      if (n === 1) {
        // Refused before the body is read (a smaller limit than Portico's), then
        // closed: the GET behind it was received but goes unanswered.
        api.record(req);
        conn.send(response(413, {}, '{"errorType":"RequestEntityTooLarge"}'), { end: true });
        return;
      }
      req.readBody().then(() => {
        if (n === 2) conn.send(response(400, {}, '{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}'));
        else if (n === 3) conn.send(response(500, { Connection: 'close' }, '{}'), { end: true });
        else conn.send(ACCEPTED);
      });
    });
    await api.waitForRequests(9);
    await sleep(100); // nothing more comes
    assert.deepEqual(trail(api), [
      '1:GET next',
      '1:POST response', // 413, close: the GET is sent again
      '2:GET next',
      '2:POST response', // 400, kept alive: the GET behind it is answered
      '2:GET next',
      '2:POST response', // 500, Connection: close
      '3:GET next',
      '3:POST response', // 202
      '3:GET next',
    ]);
    sentTogether(api, 1); // the first GET went out, and went unanswered
    // As before pipelining, an answer other than 202 is not the runtime's to report.
    assert.doesNotMatch(output(), /Failed to post/);
    assert.equal(child.exitCode, null);
  });

  test('an outcome the connection lost is reported; the GET behind it goes again on a new connection', async (t) => {
    let n = 0;
    const { api, child, output } = await startRuntime(t, (req, conn) => {
      if (req.url === NEXT) {
        if (++n > 2) return; // park
        // Connection: close, so the outcome goes on a fresh connection: one the
        // runtime does not retry on (the server did not just time out an idle one).
        conn.send(response(200, { ...invocation(`id-${n}`), Connection: n === 1 ? 'close' : 'keep-alive' }, '{}'));
        return;
      }
      if (n === 1) {
        api.record(req);
        conn.socket.destroy(); // nothing answered
        return;
      }
      req.readBody().then(() => conn.send(ACCEPTED));
    });
    await api.waitForRequests(5);
    await sleep(100);
    assert.deepEqual(trail(api), ['1:GET next', '2:POST response', '3:GET next', '3:POST response', '3:GET next']);
    sentTogether(api, 2);
    const failures = output().split('\n').filter((l) => l.includes("Failed to post the invocation's outcome"));
    assert.equal(failures.length, 1, output());
    assert.match(failures[0], /\tid-1\tERROR\tFailed to post the invocation's outcome: /);
    assert.equal(child.exitCode, null);
  });

  test('a server that closes after the 202: the GET goes again on a new connection, once', async (t) => {
    let n = 0;
    const { api, child } = await startRuntime(t, (req, conn) => {
      if (req.url === NEXT) {
        if (++n > 2) return; // park
        conn.send(response(200, invocation(`id-${n}`), '{}'));
        return;
      }
      req.readBody().then(() => conn.send(ACCEPTED, { end: n === 1 }));
    });
    await api.waitForRequests(5);
    await sleep(100);
    assert.deepEqual(trail(api), ['1:GET next', '1:POST response', '2:GET next', '2:POST response', '2:GET next']);
    // The GET sent with the first outcome reached the server, which closed instead of answering.
    sentTogether(api, 1);
    assert.equal(api.connections, 2);
    assert.equal(child.exitCode, null);
  });

  test('a large outcome is answered before the GET goes out', async (t) => {
    const { serve, unreadAt202 } = lateAccepted(2, 20);
    const { api } = await startRuntime(t, serve, `export const handler = async () => 'x'.repeat(1024 * 1024);`);
    await api.waitForRequests(5);
    assert.deepEqual(trail(api), ['1:GET next', '1:POST response', '1:GET next', '1:POST response', '1:GET next']);
    assert.deepEqual(unreadAt202, ['', '']);
  });
});

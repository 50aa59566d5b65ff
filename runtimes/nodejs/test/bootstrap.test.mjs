// bootstrap.cjs against a fake Runtime API: one process per test, fed invocations,
// asserting what it posts, what it logs and how it exits.
// Run: node --test runtimes/nodejs/test/

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------
// Harness: a fake Lambda Runtime API (node:http) and a way to start bootstrap.cjs
// against it, with a clean environment and a temporary task root, the way Portico
// starts it (crates/portico-runtime/src/environment.rs).

const BOOTSTRAP = fileURLToPath(new URL('../bootstrap.cjs', import.meta.url));
const PREFIX = '/2018-06-01/runtime/';

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The X-Ray trace header the fake Runtime API sends with an invocation. */
function traceId(id) {
  return `Root=1-00000000-${id.replaceAll('-', '').slice(0, 24)}`;
}

/** A Runtime API serving one environment: invocations are fed with `invoke`. */
class FakeRuntimeApi {
  constructor() {
    this.queue = [];
    this.parked = [];
    this.outcomes = new Map();
    this.initError = deferred();
    /**
     * Resolve with an HTTP status, or `{status, body}`, to answer `GET portico/sandbox`
     * (Portico's hand-shake).
     */
    this.sandboxGate = deferred();
    /**
     * Resolve with `{status, body}` to answer a spare's `GET portico/assignment` (its
     * function), or with 'hang up' to close the connection instead.
     */
    this.assignmentGate = deferred();
    /** Every request the runtime made: `{method, url, headers, body, port}` (port: the runtime's end). */
    this.requests = [];
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this.server.address().port;
  }

  close() {
    this.server.closeAllConnections();
    this.server.close();
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      this.requests.push({ method: req.method, url: req.url, headers: req.headers, body, port: req.socket.remotePort });
      const rest = req.url.startsWith(PREFIX) ? req.url.slice(PREFIX.length) : null;
      if (req.method === 'GET' && rest === 'invocation/next') {
        const inv = this.queue.shift();
        if (inv) this.send(res, inv);
        else this.parked.push(res);
        return;
      }
      if (req.method === 'GET' && rest === 'portico/sandbox') {
        this.sandboxGate.promise.then((answer) => {
          const status = typeof answer === 'number' ? answer : answer.status;
          const body = typeof answer === 'number' ? undefined : answer.body;
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(body ?? (status === 200 ? '{"status":"OK"}' : '{"errorType":"Sandbox.Failure"}'));
        });
        return;
      }
      if (req.method === 'GET' && rest === 'portico/assignment') {
        this.assignmentGate.promise.then((answer) => {
          if (answer === 'hang up') {
            req.socket.destroy();
            return;
          }
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(answer.body);
        });
        return;
      }
      const accepted = () => {
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{"status":"OK"}');
      };
      if (req.method === 'POST' && rest === 'init/error') {
        this.initError.resolve({ headers: req.headers, body, json: JSON.parse(body) });
        accepted();
        return;
      }
      const m = req.method === 'POST' && rest && /^invocation\/([^/]+)\/(response|error)$/.exec(rest);
      if (m) {
        const id = decodeURIComponent(m[1]);
        const waiter = this.outcomes.get(id);
        if (!waiter || waiter.done) {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end('{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}');
          return;
        }
        waiter.done = true;
        waiter.resolve({ kind: m[2], headers: req.headers, body });
        accepted();
        return;
      }
      res.writeHead(404);
      res.end();
    });
  }

  send(res, inv) {
    const headers = {
      'content-type': 'application/json',
      'lambda-runtime-aws-request-id': inv.id,
      'lambda-runtime-deadline-ms': String(inv.deadline),
      'lambda-runtime-invoked-function-arn': inv.arn,
      'lambda-runtime-trace-id': traceId(inv.id),
      ...inv.headers,
    };
    // A header given as null is left out.
    for (const [name, value] of Object.entries(headers)) if (value === null) delete headers[name];
    res.writeHead(200, headers);
    res.end(inv.payload);
  }

  /**
   * Hands an event to the runtime; resolves with what it posted:
   * `{kind: 'response'|'error', headers, body, json}`. `headers` are added to the
   * GET /next answer's, or replace them (null: left out).
   */
  invoke(event, { id = randomUUID(), timeoutMs = 3000, headers = {}, raw } = {}) {
    const inv = {
      id,
      deadline: Date.now() + timeoutMs,
      arn: 'arn:aws:lambda:us-east-1:123456789012:function:fn',
      headers,
      payload: raw ?? JSON.stringify(event),
    };
    const waiter = deferred();
    this.outcomes.set(id, waiter);
    const parked = this.parked.shift();
    if (parked) this.send(parked, inv);
    else this.queue.push(inv);
    return within(waiter.promise, 5000, `invocation ${id}`).then((o) => {
      let json;
      try {
        json = JSON.parse(o.body);
      } catch {
        json = undefined;
      }
      return { ...o, id, json };
    });
  }
}

/** Writes `files` (name -> content) into a fresh task root. */
function taskRoot(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portico-node-'));
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  }
  return dir;
}

/**
 * Starts bootstrap.cjs for `handler` over `files`. Returns the fake API, the process,
 * its output and a promise of its exit. With `spare`, it is started as a spare process
 * is, before its function is known: in a directory of its own, with only `spare` and a
 * few basics as its environment, and told it is a spare by its `GET portico/sandbox`;
 * `functionEnv` is then what to assign it (see `assign`).
 */
async function startRuntime({ files, handler = 'index.handler', env = {}, node = process.execPath, spare }) {
  const api = new FakeRuntimeApi();
  const port = await api.listen();
  const root = taskRoot(files);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portico-tmp-'));
  const functionEnv = {
    _HANDLER: handler,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: 'fn',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/fn',
    AWS_LAMBDA_LOG_STREAM_NAME: '2025/01/01/[$LATEST]0123456789abcdef',
    AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`,
    LAMBDA_TASK_ROOT: root,
    LAMBDA_RUNTIME_DIR: path.dirname(BOOTSTRAP),
    TZ: ':UTC',
    LANG: 'en_US.UTF-8',
    PATH: `${path.dirname(node)}:/usr/local/bin:/usr/bin:/bin`,
    TMPDIR: tmp,
    NODE_PATH: path.join(root, 'node_modules'),
    ...env,
  };
  const spareDir = spare && fs.mkdtempSync(path.join(os.tmpdir(), 'portico-spare-'));
  if (spare) api.sandboxGate.resolve({ status: 200, body: '{"status":"OK","spare":true}' });
  const child = spawn(node, [BOOTSTRAP], {
    cwd: spare ? spareDir : root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: spare
      ? {
          AWS_LAMBDA_RUNTIME_API: functionEnv.AWS_LAMBDA_RUNTIME_API,
          PATH: functionEnv.PATH,
          LANG: 'en_US.UTF-8',
          TZ: ':UTC',
          TMPDIR: tmp,
          ...spare,
        }
      : functionEnv,
  });
  let output = '';
  const watchers = new Set();
  const onData = (chunk) => {
    output += chunk;
    for (const w of watchers) w();
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  // 'close', not 'exit': it comes once the pipes are drained, so `output` is whole by then.
  const exited = new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const rt = {
    api,
    child,
    root,
    functionEnv,
    exited,
    get output() {
      return output;
    },
    get lines() {
      return output.split('\n').filter((l) => l !== '');
    },
    /** Resolves with the first output line matching `re`, waiting up to `ms`. */
    waitForLine(re, ms = 3000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = output.split('\n').find((l) => re.test(l));
          if (line !== undefined) {
            watchers.delete(check);
            clearTimeout(timer);
            resolve(line);
          }
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`no output line matches ${re} within ${ms} ms; output:\n${output}`));
        }, ms);
        watchers.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      api.close();
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(tmp, { recursive: true, force: true });
      if (spareDir) fs.rmSync(spareDir, { recursive: true, force: true });
    },
  };
  return rt;
}

/** Rejects if `promise` takes longer than `ms`. */
function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
    }),
  ]);
}

// ---------------------------------------------------------------------------
// Tests.

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';

/** Starts a runtime for the test and stops it when the test ends. */
async function runtime(t, options) {
  const rt = await startRuntime(options);
  t.after(() => rt.stop());
  return rt;
}

/** Answers a spare runtime's `GET portico/assignment` with its function. */
function assign(rt, environment, taskRoot = rt.root) {
  rt.api.assignmentGate.resolve({ status: 200, body: JSON.stringify({ environment, taskRoot }) });
}

const SANDBOX_URL = `${PREFIX}portico/sandbox`;
const ASSIGNMENT_URL = `${PREFIX}portico/assignment`;

/** Resolves once the runtime has sent `GET <url>`, waiting up to 3 s. */
async function asked(rt, url) {
  const sent = () => rt.api.requests.some((r) => r.url === url);
  for (let i = 0; i < 300 && !sent(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(sent(), `GET ${url}`);
}

/** A module that says when it is loaded: no function code may run before Portico says so. */
const LOUD_MODULE = { 'index.mjs': `console.log('module loaded'); export const handler = async () => 1;` };

/**
 * For each `[answer, message]` of `cases`: a runtime started with `options` (and
 * LOUD_MODULE) whose `gate` (`sandboxGate` or `assignmentGate`) is given `answer`
 * exits 1 saying `message`, having loaded no function code. Returns the runtimes, in
 * order, for the caller's own checks.
 */
function refusals(t, options, gate, cases) {
  return Promise.all(
    cases.map(async ([answer, message]) => {
      const rt = await runtime(t, { files: LOUD_MODULE, ...options });
      rt.api[gate].resolve(answer);
      const { code } = await within(rt.exited, 5000, `exit on ${message}`);
      assert.equal(code, 1, rt.output);
      assert.match(rt.output, message);
      assert.ok(!rt.output.includes('module loaded'), rt.output);
      return rt;
    }),
  );
}

/** `[body, message]` cases as `[answer, message]`: the body answered with a 200. */
const answered200 = (cases) => cases.map(([body, message]) => [{ status: 200, body }, message]);

async function initError(rt) {
  const err = await within(rt.api.initError.promise, 5000, 'init error');
  const exit = await within(rt.exited, 5000, 'exit');
  return { ...err, exit };
}

describe('bootstrap.cjs', { concurrency: true }, () => {
  test('async ESM handler (.mjs): result and context', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `
          export const handler = async (event, context) => ({
            event,
            functionName: context.functionName,
            functionVersion: context.functionVersion,
            memoryLimitInMB: context.memoryLimitInMB,
            invokedFunctionArn: context.invokedFunctionArn,
            awsRequestId: context.awsRequestId,
            logGroupName: context.logGroupName,
            logStreamName: context.logStreamName,
            waits: context.callbackWaitsForEmptyEventLoop,
            remaining: context.getRemainingTimeInMillis(),
            clientContext: context.clientContext,
            identity: context.identity,
            trace: process.env._X_AMZN_TRACE_ID,
            requestIdSymbol: globalThis[Symbol.for('aws.lambda.runtime.requestId')],
          });
        `,
      },
    });
    const r = await rt.api.invoke({ hello: 'world' }, { id: 'req-1', timeoutMs: 60000 });
    assert.equal(r.kind, 'response');
    assert.equal(r.headers['content-type'], 'application/json');
    const v = r.json;
    assert.deepEqual(v.event, { hello: 'world' });
    assert.equal(v.functionName, 'fn');
    assert.equal(v.functionVersion, '$LATEST');
    assert.equal(v.memoryLimitInMB, '256');
    assert.equal(v.invokedFunctionArn, 'arn:aws:lambda:us-east-1:123456789012:function:fn');
    assert.equal(v.awsRequestId, 'req-1');
    assert.equal(v.logGroupName, '/aws/lambda/fn');
    assert.equal(v.logStreamName, '2025/01/01/[$LATEST]0123456789abcdef');
    assert.equal(v.waits, true);
    assert.ok(v.remaining > 30000 && v.remaining <= 60000, `remaining ${v.remaining}`);
    assert.equal(v.clientContext, undefined);
    assert.equal(v.identity, undefined);
    assert.match(v.trace, /^Root=1-/);
    assert.equal(v.requestIdSymbol, 'req-1');

    const r2 = await rt.api.invoke(null, {
      headers: {
        'lambda-runtime-client-context': '{"custom":{"a":1}}',
        'lambda-runtime-cognito-identity': '{"cognitoIdentityId":"id-1"}',
      },
    });
    assert.deepEqual(r2.json.clientContext, { custom: { a: 1 } });
    assert.deepEqual(r2.json.identity, { cognitoIdentityId: 'id-1' });
  });

  test('callback handler in CommonJS .js', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.js': `
          exports.handler = function (event, context, callback) {
            setTimeout(() => callback(null, { got: event.n, type: typeof require }), 5);
          };
        `,
      },
    });
    const r = await rt.api.invoke({ n: 7 });
    assert.equal(r.kind, 'response');
    assert.deepEqual(r.json, { got: 7, type: 'function' });
  });

  test('callback error and context.fail/succeed/done', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.js': `
          exports.handler = (event, context, callback) => {
            if (event.mode === 'callback-error') return callback(new TypeError('bad input'));
            if (event.mode === 'succeed') return context.succeed({ via: 'succeed' });
            if (event.mode === 'fail') return context.fail();
            if (event.mode === 'done') return context.done(null, 'done!');
            callback(null, 'first');
            callback(null, 'second');
          };
        `,
      },
    });
    const e = await rt.api.invoke({ mode: 'callback-error' });
    assert.equal(e.kind, 'error');
    assert.equal(e.json.errorType, 'TypeError');
    assert.equal(e.json.errorMessage, 'bad input');
    assert.equal(e.headers['lambda-runtime-function-error-type'], 'TypeError');
    assert.deepEqual((await rt.api.invoke({ mode: 'succeed' })).json, { via: 'succeed' });
    const f = await rt.api.invoke({ mode: 'fail' });
    assert.equal(f.kind, 'error');
    assert.deepEqual(f.json, { errorType: 'string', errorMessage: 'handled', trace: [] });
    assert.equal((await rt.api.invoke({ mode: 'done' })).json, 'done!');
    assert.equal((await rt.api.invoke({ mode: 'twice' })).json, 'first');
  });

  test('.cjs module', async (t) => {
    const rt = await runtime(t, {
      files: {
        // A package.json of type module does not make a .cjs file ESM.
        'package.json': '{"type":"module"}',
        'index.cjs': `module.exports.handler = async () => ({ kind: 'cjs', filename: __filename.endsWith('index.cjs') });`,
      },
    });
    assert.deepEqual((await rt.api.invoke({})).json, { kind: 'cjs', filename: true });
  });

  test('.js is ESM under package.json "type": "module"', async (t) => {
    const rt = await runtime(t, {
      files: {
        'package.json': '{"type":"module"}',
        'index.js': `export const handler = async () => ({ esm: typeof require === 'undefined', url: import.meta.url.startsWith('file:') });`,
      },
    });
    assert.deepEqual((await rt.api.invoke({})).json, { esm: true, url: true });
  });

  test('.js wins over .mjs, as in AWS', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.js': `exports.handler = async () => 'js';`,
        'index.mjs': `export const handler = async () => 'mjs';`,
      },
    });
    assert.equal((await rt.api.invoke({})).json, 'js');
  });

  test('nested module path and nested handler property', async (t) => {
    const rt = await runtime(t, {
      files: {
        'lib/app.mjs': `
          import { helper } from './helper.mjs';
          export const handler = async () => helper();
          export const api = { v1: { get: async () => 'nested property' } };
        `,
        'lib/helper.mjs': `export const helper = () => 'from lib/app';`,
      },
      handler: 'lib/app.handler',
    });
    assert.equal((await rt.api.invoke({})).json, 'from lib/app');

    const rt2 = await runtime(t, {
      files: { 'lib/app.mjs': `export const api = { v1: { get: async () => 'nested property' } };` },
      handler: 'lib/app.api.v1.get',
    });
    assert.equal((await rt2.api.invoke({})).json, 'nested property');
  });

  test('undefined result is null; sync handler without callback answers null', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `export const handler = async () => {};`,
      },
    });
    const r = await rt.api.invoke({});
    assert.equal(r.kind, 'response');
    assert.equal(r.body, 'null');

    // AWS ignores a plain return value of a non-async handler and answers null once
    // the event loop is empty.
    const rt2 = await runtime(t, {
      files: { 'index.js': `exports.handler = (event) => ({ ignored: true });` },
    });
    const r2 = await rt2.api.invoke({});
    assert.equal(r2.kind, 'response');
    assert.equal(r2.body, 'null');
  });

  test('thrown Error: error document, header and log line', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `
          class CustomError extends Error { constructor(m) { super(m); this.name = 'CustomError'; this.code = 'E42'; } }
          export const handler = async (event) => {
            if (event.kind === 'custom') throw new CustomError('custom failure');
            if (event.kind === 'string') throw 'just a string';
            if (event.kind === 'undefined') return Promise.reject(undefined);
            if (event.kind === 'symbol') throw Symbol('odd');
            throw new Error('boom');
          };
        `,
      },
    });
    const r = await rt.api.invoke({}, { id: 'err-1' });
    assert.equal(r.kind, 'error');
    assert.equal(r.headers['lambda-runtime-function-error-type'], 'Error');
    assert.equal(r.json.errorType, 'Error');
    assert.equal(r.json.errorMessage, 'boom');
    assert.ok(Array.isArray(r.json.trace));
    assert.equal(r.json.trace[0], 'Error: boom');
    assert.match(r.json.trace[1], /^ {4}at /);
    assert.deepEqual(Object.keys(r.json), ['errorType', 'errorMessage', 'trace']);

    const line = await rt.waitForLine(/\terr-1\tERROR\tInvoke Error /);
    assert.match(line, new RegExp(`^${ISO}\\terr-1\\tERROR\\tInvoke Error \\t\\{`));
    const logged = JSON.parse(line.slice(line.indexOf('\t{') + 1));
    assert.equal(logged.errorType, 'Error');
    assert.equal(logged.errorMessage, 'boom');
    assert.equal(logged.stack[0], 'Error: boom');

    const c = await rt.api.invoke({ kind: 'custom' }, { id: 'err-2' });
    assert.equal(c.json.errorType, 'CustomError');
    assert.equal(c.headers['lambda-runtime-function-error-type'], 'CustomError');
    const cl = await rt.waitForLine(/\terr-2\tERROR\tInvoke Error /);
    const clj = JSON.parse(cl.slice(cl.indexOf('\t{') + 1));
    assert.equal(clj.code, 'E42');

    const s = await rt.api.invoke({ kind: 'string' });
    assert.deepEqual(s.json, { errorType: 'string', errorMessage: 'just a string', trace: [] });
    assert.equal(s.headers['lambda-runtime-function-error-type'], 'string');

    const u = await rt.api.invoke({ kind: 'undefined' });
    assert.deepEqual(u.json, { errorType: 'string', errorMessage: 'handled', trace: [] });

    const y = await rt.api.invoke({ kind: 'symbol' });
    assert.deepEqual(y.json, { errorType: 'symbol', errorMessage: 'Symbol(odd)', trace: [] });

    // The process keeps serving after function errors.
    assert.equal(rt.child.exitCode, null);
  });

  test('unserializable result', async (t) => {
    const rt = await runtime(t, {
      files: { 'index.mjs': `export const handler = async () => { const a = {}; a.self = a; return a; };` },
    });
    const r = await rt.api.invoke({});
    assert.equal(r.kind, 'error');
    assert.equal(r.json.errorType, 'Error');
    assert.equal(r.json.errorMessage, 'Unable to stringify response body');
  });

  test('init error: missing module', async (t) => {
    const rt = await runtime(t, { files: { 'other.js': '' } });
    const e = await initError(rt);
    assert.equal(e.headers['lambda-runtime-function-error-type'], 'Runtime.ImportModuleError');
    assert.equal(e.json.errorType, 'Runtime.ImportModuleError');
    assert.equal(e.json.errorMessage, `Error: Cannot find module 'index'\nRequire stack:\n- ${BOOTSTRAP}`);
    assert.deepEqual(e.json.trace.slice(0, 3), [
      "Runtime.ImportModuleError: Error: Cannot find module 'index'",
      'Require stack:',
      `- ${BOOTSTRAP}`,
    ]);
    assert.notEqual(e.exit.code, 0);
    const line = rt.lines.find((l) => l.includes('Uncaught Exception'));
    assert.match(line, new RegExp(`^${ISO}\\tundefined\\tERROR\\tUncaught Exception \\t\\{"errorType":"Runtime.ImportModuleError"`));
  });

  test('init error: missing dependency of the module', async (t) => {
    const rt = await runtime(t, { files: { 'index.js': `require('not-installed'); exports.handler = async () => 1;` } });
    const e = await initError(rt);
    assert.equal(e.json.errorType, 'Runtime.ImportModuleError');
    assert.match(e.json.errorMessage, /^Error: Cannot find module 'not-installed'\nRequire stack:\n- .*index\.js/);
  });

  test('init error: syntax error', async (t) => {
    const rt = await runtime(t, { files: { 'index.mjs': `export const handler = async () => { return 1 +; };` } });
    const e = await initError(rt);
    assert.equal(e.headers['lambda-runtime-function-error-type'], 'Runtime.UserCodeSyntaxError');
    assert.equal(e.json.errorType, 'Runtime.UserCodeSyntaxError');
    assert.match(e.json.errorMessage, /^SyntaxError: /);
    assert.notEqual(e.exit.code, 0);

    const rt2 = await runtime(t, { files: { 'index.js': `exports.handler = () => {` } });
    const e2 = await initError(rt2);
    assert.equal(e2.json.errorType, 'Runtime.UserCodeSyntaxError');
  });

  test('init error: handler not exported or not a function', async (t) => {
    const rt = await runtime(t, { files: { 'index.mjs': `export const other = async () => 1;` } });
    const e = await initError(rt);
    assert.equal(e.headers['lambda-runtime-function-error-type'], 'Runtime.HandlerNotFound');
    assert.equal(e.json.errorType, 'Runtime.HandlerNotFound');
    assert.equal(e.json.errorMessage, 'index.handler is undefined or not exported');
    assert.notEqual(e.exit.code, 0);

    const rt2 = await runtime(t, { files: { 'index.mjs': `export const handler = 42;` } });
    const e2 = await initError(rt2);
    assert.equal(e2.json.errorMessage, 'index.handler is not a function');
  });

  test('init error: malformed handler name', async (t) => {
    const rt = await runtime(t, { files: { 'index.mjs': '' }, handler: 'index' });
    const e = await initError(rt);
    assert.equal(e.json.errorType, 'Runtime.MalformedHandlerName');
    assert.equal(e.json.errorMessage, 'Bad handler');

    const rt2 = await runtime(t, { files: { 'index.mjs': '' }, handler: '../index.handler' });
    const e2 = await initError(rt2);
    assert.equal(e2.json.errorType, 'Runtime.MalformedHandlerName');
    assert.equal(
      e2.json.errorMessage,
      "'../index.handler' is not a valid handler name. Use absolute paths when specifying root directories in handler names.",
    );
  });

  test('init error: exception thrown by the module', async (t) => {
    const rt = await runtime(t, { files: { 'index.mjs': `throw new RangeError('no config');` } });
    const e = await initError(rt);
    assert.equal(e.json.errorType, 'RangeError');
    assert.equal(e.json.errorMessage, 'no config');
    assert.notEqual(e.exit.code, 0);
  });

  test('console format: timestamp, request id, level, one record per line', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `
          console.log('loading');
          export const handler = async (event) => {
            console.log('hello %s', 'world', { a: 1 });
            console.info('info');
            console.warn('warn');
            console.error('multi\\nline');
            console.debug('debug');
            console.trace('trace');
            console.log();
            return 'ok';
          };
        `,
      },
    });
    await rt.waitForLine(/loading/);
    await rt.api.invoke({}, { id: 'log-1' });
    await rt.waitForLine(/\tTRACE\t/);
    const at = (re) => rt.lines.find((l) => re.test(l));
    assert.match(at(/loading/), new RegExp(`^${ISO}\\tundefined\\tINFO\\tloading$`));
    assert.match(at(/hello/), new RegExp(`^${ISO}\\tlog-1\\tINFO\\thello world \\{ a: 1 \\}$`));
    assert.match(at(/\tinfo$/), new RegExp(`^${ISO}\\tlog-1\\tINFO\\tinfo$`));
    assert.match(at(/\twarn$/), new RegExp(`^${ISO}\\tlog-1\\tWARN\\twarn$`));
    assert.match(at(/multi/), new RegExp(`^${ISO}\\tlog-1\\tERROR\\tmulti\\rline$`));
    assert.match(at(/\tdebug$/), new RegExp(`^${ISO}\\tlog-1\\tDEBUG\\tdebug$`));
    assert.match(at(/\tTRACE\t/), new RegExp(`^${ISO}\\tlog-1\\tTRACE\\ttrace$`));
    assert.match(at(/\tundefined$/), new RegExp(`^${ISO}\\tlog-1\\tINFO\\tundefined$`));
  });

  test('told to, it loads no function code until Portico says the sandbox is complete', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `console.log('module loaded');
          export const handler = async () => process.env._PORTICO_AWAIT_SANDBOX ?? 'unset';`,
      },
      env: { _PORTICO_AWAIT_SANDBOX: '1' },
    });
    // Asked, then given time to (wrongly) go on: a fixed wait alone flaked under load.
    await asked(rt, SANDBOX_URL);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(!rt.output.includes('module loaded'), rt.output);
    assert.deepEqual(rt.api.requests.map((r) => r.url), [SANDBOX_URL]);
    rt.api.sandboxGate.resolve(200);
    const r = await rt.api.invoke({});
    assert.equal(r.json, 'unset', 'the hand-shake variable is not left to the function');
    assert.ok(rt.output.includes('module loaded'));
  });

  test('a sandbox Portico could not complete runs no function code', async (t) => {
    const rt = await runtime(t, {
      files: LOUD_MODULE,
      env: { _PORTICO_AWAIT_SANDBOX: '1' },
    });
    rt.api.sandboxGate.resolve(500);
    const { code } = await within(rt.exited, 5000, 'exit');
    assert.equal(code, 1);
    assert.ok(!rt.output.includes('module loaded'), rt.output);
    assert.match(rt.output, /The sandbox is not ready: HTTP status 500/);
  });

  test('a sandbox answer that does not say spare: the process goes on as started, asking for no function', async (t) => {
    const bodies = [
      '{"status":"OK"}',
      '{"status":"OK","spare":false}',
      // The sandbox answer no longer carries an assignment: one there is ignored.
      JSON.stringify({ status: 'OK', assignment: { environment: { STRAY: '2' }, taskRoot: '/' } }),
    ];
    await Promise.all(
      bodies.map(async (body) => {
        const rt = await runtime(t, {
          files: {
            'index.mjs': `export const handler = async () => ({ stray: process.env.STRAY ?? null, cwd: process.cwd() });`,
          },
          env: { _PORTICO_AWAIT_SANDBOX: '1', STRAY: '1' },
        });
        rt.api.sandboxGate.resolve({ status: 200, body });
        assert.deepEqual((await rt.api.invoke({})).json, { stray: '1', cwd: rt.root }, body);
        assert.deepEqual(rt.api.requests.map((r) => r.url).slice(0, 2), [SANDBOX_URL, `${PREFIX}invocation/next`], body);
        assert.ok(!rt.api.requests.some((r) => r.url === ASSIGNMENT_URL), body);
      }),
    );
  });

  test('a malformed sandbox answer runs no function code and exits with a clear message', async (t) => {
    const cases = [
      ['not json', /The sandbox answer is malformed: not JSON/],
      ['[]', /The sandbox answer is malformed: not a JSON object/],
      ['{"status":"OK","spare":"yes"}', /The sandbox answer is malformed: "spare" is not a boolean/],
    ];
    const runtimes = await refusals(t, { env: { _PORTICO_AWAIT_SANDBOX: '1' } }, 'sandboxGate', answered200(cases));
    for (const rt of runtimes) assert.deepEqual(rt.api.requests.map((r) => r.url), [SANDBOX_URL]);
  });

  test('a spare process becomes the function Portico assigns it', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.js': `
          console.info('info at load');
          console.error('error at load');
          // Found only through NODE_PATH: not in a node_modules above the task root.
          const lib = require('only-via-node-path');
          exports.handler = async (event, context) => {
            console.info('info in handler');
            console.error('error in handler');
            const env = { ...process.env };
            const trace = env._X_AMZN_TRACE_ID;
            delete env._X_AMZN_TRACE_ID;
            return {
              env,
              trace,
              cwd: process.cwd(),
              lib,
              functionName: context.functionName,
              functionVersion: context.functionVersion,
              memoryLimitInMB: context.memoryLimitInMB,
              logGroupName: context.logGroupName,
              logStreamName: context.logStreamName,
              awslambda: typeof globalThis.awslambda,
              hours: new Date(0).getHours(),
            };
          };
        `,
        'vendor/only-via-node-path/index.js': `module.exports = 'from NODE_PATH';`,
      },
      spare: { _PORTICO_AWAIT_SANDBOX: '1', STRAY: '1' },
    });
    // Told it is a spare, it warms up, then waits for its function, writing nothing:
    // that output would be nobody's.
    await asked(rt, ASSIGNMENT_URL);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(rt.output, '');
    assert.deepEqual(rt.api.requests.map((r) => r.url), [SANDBOX_URL, ASSIGNMENT_URL]);
    // One kept-alive connection carries both.
    assert.equal(new Set(rt.api.requests.map((r) => r.port)).size, 1);

    const environment = {
      ...rt.functionEnv,
      AWS_LAMBDA_FUNCTION_NAME: 'assigned',
      AWS_LAMBDA_FUNCTION_VERSION: '7',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/assigned',
      AWS_LAMBDA_LOG_STREAM_NAME: '2025/02/02/[7]fedcba9876543210',
      AWS_LAMBDA_LOG_LEVEL: 'ERROR',
      AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA: '1',
      NODE_PATH: path.join(rt.root, 'vendor'),
      TZ: 'Asia/Tokyo',
      CUSTOM_VARIABLE: 'custom value',
    };
    assign(rt, environment);
    const r = await rt.api.invoke({});
    assert.equal(r.kind, 'response', r.body);
    const v = r.json;
    // Exactly the assigned environment (and the invocation's trace id).
    assert.deepEqual(v.env, environment);
    assert.match(v.trace, /^Root=1-/);
    assert.equal(v.cwd, rt.root);
    assert.equal(v.lib, 'from NODE_PATH');
    assert.equal(v.functionName, 'assigned');
    assert.equal(v.functionVersion, '7');
    assert.equal(v.memoryLimitInMB, '512');
    assert.equal(v.logGroupName, '/aws/lambda/assigned');
    assert.equal(v.logStreamName, '2025/02/02/[7]fedcba9876543210');
    assert.equal(v.awslambda, 'undefined');
    assert.equal(v.hours, 9);
    // The assigned log level: ERROR records only.
    await rt.waitForLine(/\tERROR\terror in handler$/);
    assert.match(rt.output, new RegExp(`^${ISO}\\tundefined\\tERROR\\terror at load$`, 'm'));
    assert.ok(!rt.output.includes('info at'), rt.output);
    assert.ok(!rt.output.includes('info in handler'), rt.output);
  });

  test('an assigned ES module handler, with the global awslambda', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `export const handler = async () => ({ awslambda: typeof awslambda, cwd: process.cwd() });`,
      },
      spare: { _PORTICO_AWAIT_SANDBOX: '1' },
    });
    await asked(rt, ASSIGNMENT_URL);
    assign(rt, rt.functionEnv);
    assert.deepEqual((await rt.api.invoke({})).json, { awslambda: 'object', cwd: rt.root });
    assert.equal(rt.output, '');
  });

  test("a spare's warm-up has no visible effect: its first invocations are as any other", async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `
          const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
          const atLoad = { env: { ...process.env }, requestId: REQUEST_ID in globalThis };
          const seen = [];
          export const handler = async (event, context) => {
            if (event.report) return { atLoad, seen };
            console.info('handling', event.rawPath);
            seen.push({
              event,
              env: { ...process.env },
              requestId: globalThis[REQUEST_ID],
              context: {
                ...context,
                remaining: context.getRemainingTimeInMillis(),
                methods: Object.keys(context).filter((k) => typeof context[k] === 'function'),
              },
            });
            return { statusCode: 200, body: JSON.stringify({ message: 'Hello, ' + event.queryStringParameters.name + '!' }) };
          };
        `,
      },
      spare: { _PORTICO_AWAIT_SANDBOX: '1' },
    });
    // The warm-up runs before the assignment is asked for; then nothing: no output, no
    // request but the two, on one connection.
    await asked(rt, ASSIGNMENT_URL);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(rt.output, '');
    assert.deepEqual(rt.api.requests.map((r) => `${r.method} ${r.url}`), [`GET ${SANDBOX_URL}`, `GET ${ASSIGNMENT_URL}`]);
    assert.equal(new Set(rt.api.requests.map((r) => r.port)).size, 1);

    const environment = {
      ...rt.functionEnv,
      AWS_LAMBDA_FUNCTION_NAME: 'assigned',
      AWS_LAMBDA_FUNCTION_VERSION: '3',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1024',
      AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/assigned',
      AWS_LAMBDA_LOG_STREAM_NAME: '2025/03/03/[3]00112233445566778899aabbccddeeff',
    };
    assign(rt, environment);
    // The event the warm-up uses, in its shape: an API Gateway HTTP API request.
    const event = (name) => ({
      version: '2.0',
      routeKey: 'GET /hello',
      rawPath: `/hello/${name}`,
      rawQueryString: `name=${name}`,
      headers: { accept: '*/*', host: 'api.example.com', 'user-agent': 'test' },
      queryStringParameters: { name },
      requestContext: {
        accountId: '123456789012',
        apiId: 'api',
        http: { method: 'GET', path: `/hello/${name}`, protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: 'test' },
        requestId: `r-${name}`,
        routeKey: 'GET /hello',
        stage: '$default',
        timeEpoch: 1732700000000,
      },
      isBase64Encoded: false,
    });
    const first = await rt.api.invoke(event('Dev'), {
      timeoutMs: 60000,
      headers: {
        'lambda-runtime-client-context': '{"custom":{"a":1}}',
        'lambda-runtime-cognito-identity': '{"cognitoIdentityId":"id-1"}',
      },
    });
    // Without a trace header: no _X_AMZN_TRACE_ID.
    const second = await rt.api.invoke(event('Ops'), { timeoutMs: 60000, headers: { 'lambda-runtime-trace-id': null } });
    const third = await rt.api.invoke(event('Eve'), { timeoutMs: 60000 });
    for (const [r, name] of [
      [first, 'Dev'],
      [second, 'Ops'],
      [third, 'Eve'],
    ]) {
      assert.equal(r.kind, 'response', r.body);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.body, JSON.stringify({ statusCode: 200, body: JSON.stringify({ message: `Hello, ${name}!` }) }));
    }
    const report = await rt.api.invoke({ report: true });
    const { atLoad, seen } = report.json;
    // The module loaded in exactly the assigned environment, before any request id.
    assert.deepEqual(atLoad, { env: environment, requestId: false });
    assert.equal(seen.length, 3);
    const context = (r) => ({
      callbackWaitsForEmptyEventLoop: true,
      functionVersion: '3',
      functionName: 'assigned',
      memoryLimitInMB: '1024',
      logGroupName: '/aws/lambda/assigned',
      logStreamName: '2025/03/03/[3]00112233445566778899aabbccddeeff',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:fn',
      awsRequestId: r.id,
      methods: ['succeed', 'fail', 'done', 'getRemainingTimeInMillis'],
    });
    for (const [i, r, name, trace, extra] of [
      [0, first, 'Dev', traceId(first.id), { clientContext: { custom: { a: 1 } }, identity: { cognitoIdentityId: 'id-1' } }],
      [1, second, 'Ops', undefined, {}],
      [2, third, 'Eve', traceId(third.id), {}],
    ]) {
      const s = seen[i];
      assert.deepEqual(s.event, event(name));
      // Exactly the assigned environment, and the trace id when one was sent.
      assert.deepEqual(s.env, trace === undefined ? environment : { ...environment, _X_AMZN_TRACE_ID: trace });
      assert.equal(s.requestId, r.id);
      const { remaining, ...rest } = s.context;
      assert.ok(remaining > 30000 && remaining <= 60000, `remaining ${remaining}`);
      assert.deepEqual(rest, { ...context(r), ...extra });
      await rt.waitForLine(new RegExp(`^${ISO}\\t${r.id}\\tINFO\\thandling /hello/${name}$`));
    }
    // Nothing else was logged, nor asked of the Runtime API.
    assert.equal(rt.lines.length, 3, rt.output);
    assert.deepEqual(
      rt.api.requests.filter((r) => r.method === 'POST').map((r) => r.url),
      [first, second, third, report].map((r) => `${PREFIX}invocation/${r.id}/response`),
    );
    assert.ok(rt.api.requests.slice(2).every((r) => r.method === 'POST' || r.url === `${PREFIX}invocation/next`));
  });

  test("a spare's first invocation: a callback handler, then a failing one", async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.js': `
          exports.handler = (event, context, callback) => {
            if (event.fail) throw new TypeError('first failure');
            setImmediate(() => callback(null, { statusCode: 200, body: JSON.stringify({ message: 'Hello, Dev!' }), id: context.awsRequestId }));
          };
        `,
      },
      spare: { _PORTICO_AWAIT_SANDBOX: '1' },
    });
    await asked(rt, ASSIGNMENT_URL);
    assign(rt, rt.functionEnv);
    const ok = await rt.api.invoke({});
    assert.equal(ok.kind, 'response', ok.body);
    assert.deepEqual(ok.json, { statusCode: 200, body: '{"message":"Hello, Dev!"}', id: ok.id });
    assert.equal(rt.output, '');

    const rt2 = await runtime(t, {
      files: { 'index.js': `exports.handler = async () => { throw new TypeError('first failure'); };` },
      spare: { _PORTICO_AWAIT_SANDBOX: '1' },
    });
    await asked(rt2, ASSIGNMENT_URL);
    assign(rt2, rt2.functionEnv);
    const failed = await rt2.api.invoke({}, { id: 'first-failure' });
    assert.equal(failed.kind, 'error');
    assert.equal(failed.headers['lambda-runtime-function-error-type'], 'TypeError');
    assert.equal(failed.json.errorMessage, 'first failure');
    const line = await rt2.waitForLine(/\tERROR\tInvoke Error /);
    assert.match(line, new RegExp(`^${ISO}\\tfirst-failure\\tERROR\\tInvoke Error \\t\\{"errorType":"TypeError"`));
    assert.equal(rt2.lines.length, 1, rt2.output);
  });

  test("a spare's init error is reported as such: the warm-up left no invocation behind", async (t) => {
    for (const [source, message] of [
      [`throw new RangeError('no config');`, 'no config'],
      [`setTimeout(() => { throw new RangeError('late'); }, 50); export const handler = async () => 1;`, 'late'],
    ]) {
      const rt = await runtime(t, { files: { 'index.mjs': source }, spare: { _PORTICO_AWAIT_SANDBOX: '1' } });
      await asked(rt, ASSIGNMENT_URL);
      assign(rt, rt.functionEnv);
      const e = await initError(rt);
      assert.equal(e.json.errorType, 'RangeError');
      assert.equal(e.json.errorMessage, message);
      assert.notEqual(e.exit.code, 0);
      assert.match(rt.output, new RegExp(`^${ISO}\\tundefined\\tERROR\\tUncaught Exception \\t\\{"errorType":"RangeError"`, 'm'));
    }
  });

  test('a malformed assignment runs no function code and exits with a clear message', async (t) => {
    const cases = [
      ['not json', /The assignment is malformed: not JSON/],
      ['[]', /The assignment is malformed: not a JSON object/],
      ['{"taskRoot":"/"}', /The assignment is malformed: "environment" is not an object/],
      ['{"environment":null,"taskRoot":"/"}', /The assignment is malformed: "environment" is not an object/],
      ['{"environment":["A=1"],"taskRoot":"/"}', /The assignment is malformed: "environment" is not an object/],
      ['{"environment":{"A":"1","B":2},"taskRoot":"/"}', /The assignment is malformed: "environment.B" is not a string/],
      ['{"environment":{"A":"1\\u0000"},"taskRoot":"/"}', /The assignment is malformed: "environment.A" is not a string without NUL/],
      ['{"environment":{"A=B":"1"},"taskRoot":"/"}', /The assignment is malformed: .*invalid name "A=B"/],
      ['{"environment":{}}', /The assignment is malformed: "taskRoot" is not an absolute path/],
      ['{"environment":{},"taskRoot":"relative"}', /The assignment is malformed: "taskRoot" is not an absolute path/],
      // The former shape, the assignment wrapped as the sandbox answer carried it.
      ['{"status":"OK","assignment":{"environment":{},"taskRoot":"/"}}', /The assignment is malformed: "environment" is not an object/],
      ['{"environment":{},"taskRoot":"/nonexistent/portico-task-root"}', /Cannot take the assigned function: ENOENT/],
    ];
    const runtimes = await refusals(t, { spare: { _PORTICO_AWAIT_SANDBOX: '1' } }, 'assignmentGate', answered200(cases));
    for (const rt of runtimes) assert.deepEqual(rt.api.requests.map((r) => r.url), [SANDBOX_URL, ASSIGNMENT_URL]);
  });

  test('an assignment Portico fails or never answers runs no function code', async (t) => {
    const cases = [
      [
        { status: 500, body: '{"errorMessage":"no function","errorType":"Assignment.Failure"}' },
        /The assignment failed: HTTP status 500: \{"errorMessage":"no function","errorType":"Assignment.Failure"\}/,
      ],
      [
        { status: 400, body: '{"errorMessage":"this environment is not a spare: it has its function","errorType":"NotSpare"}' },
        /The assignment failed: HTTP status 400: .*NotSpare/,
      ],
      ['hang up', /Failed to get the assignment: (?:socket hang up|read ECONNRESET)/],
    ];
    const runtimes = await refusals(t, { spare: { _PORTICO_AWAIT_SANDBOX: '1' } }, 'assignmentGate', cases);
    for (const rt of runtimes) assert.ok(!rt.api.requests.some((r) => r.url.endsWith('/invocation/next')), rt.output);
  });

  test('AWS_LAMBDA_LOG_LEVEL filters records', async (t) => {
    const rt = await runtime(t, {
      files: { 'index.mjs': `export const handler = async () => { console.debug('dropped'); console.warn('kept'); return 1; };` },
      env: { AWS_LAMBDA_LOG_LEVEL: 'WARN' },
    });
    await rt.api.invoke({});
    await rt.waitForLine(/\tkept$/);
    assert.ok(!rt.output.includes('dropped'));
  });

  test('getRemainingTimeInMillis decreases', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `
          export const handler = async (event, context) => {
            const first = context.getRemainingTimeInMillis();
            await new Promise((r) => setTimeout(r, 60));
            return [first, context.getRemainingTimeInMillis()];
          };
        `,
      },
    });
    const [first, second] = (await rt.api.invoke({}, { timeoutMs: 60000 })).json;
    assert.ok(first <= 60000 && first > 30000, `first ${first}`);
    assert.ok(first - second >= 50, `first ${first}, second ${second}`);
  });

  test('sequential invocations reuse one process', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `
          let count = 0;
          export const handler = async (event, context) => ({ count: ++count, pid: process.pid, id: context.awsRequestId });
        `,
      },
    });
    const pids = new Set();
    for (let i = 1; i <= 5; i++) {
      const r = await rt.api.invoke({ i }, { id: `seq-${i}` });
      assert.equal(r.json.count, i);
      assert.equal(r.json.id, `seq-${i}`);
      pids.add(r.json.pid);
    }
    assert.deepEqual([...pids], [rt.child.pid]);
    // Five served, then the next one parked.
    const gets = () => rt.api.requests.filter((r) => r.url.endsWith('/invocation/next')).length;
    for (let i = 0; i < 100 && gets() < 6; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(gets(), 6);
    // One kept-alive connection carries the whole loop.
    assert.equal(new Set(rt.api.requests.map((r) => r.port)).size, 1);
    assert.ok(rt.api.requests.every((r) => r.headers.connection !== 'close'));
  });

  test('uncaught exception during an invocation: reported, then exit', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.js': `
          exports.handler = (event, context, callback) => {
            setTimeout(() => { throw new Error('async kaboom'); }, 5);
          };
        `,
      },
    });
    const r = await rt.api.invoke({}, { id: 'crash-1' });
    assert.equal(r.kind, 'error');
    assert.equal(r.json.errorType, 'Error');
    assert.equal(r.json.errorMessage, 'async kaboom');
    const { code } = await within(rt.exited, 5000, 'exit');
    assert.equal(code, 129);
    assert.match(rt.output, /\tcrash-1\tERROR\tUncaught Exception \t\{"errorType":"Error"/);
  });

  test('unhandled rejection during an invocation: Runtime.UnhandledPromiseRejection, then exit', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `
          export const handler = async () => {
            Promise.reject(new Error('forgotten'));
            await new Promise((r) => setTimeout(r, 200));
            return 'late';
          };
        `,
      },
    });
    const r = await rt.api.invoke({});
    assert.equal(r.kind, 'error');
    assert.equal(r.headers['lambda-runtime-function-error-type'], 'Runtime.UnhandledPromiseRejection');
    assert.equal(r.json.errorType, 'Runtime.UnhandledPromiseRejection');
    assert.equal(r.json.errorMessage, 'Error: forgotten');
    const { code } = await within(rt.exited, 5000, 'exit');
    assert.equal(code, 128);
  });

  test('async handler whose promise never settles: Runtime.NodeJsExit, process keeps serving', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `
          export const handler = async (event) => {
            if (event.hang) await new Promise(() => {});
            return 'fine';
          };
        `,
      },
    });
    const r = await rt.api.invoke({ hang: true });
    assert.equal(r.kind, 'error');
    assert.equal(r.json.errorType, 'Runtime.NodeJsExit');
    assert.match(r.json.errorMessage, /Promise that was never settled/);
    assert.equal((await rt.api.invoke({})).json, 'fine');
  });

  test('awslambda.streamifyResponse is buffered into one response', async (t) => {
    const rt = await runtime(t, {
      files: {
        'index.mjs': `
          export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
            if (event.http) {
              responseStream = awslambda.HttpResponseStream.from(responseStream, {
                statusCode: 201, headers: { 'x-a': 'b' },
              });
            }
            responseStream.write('hello ');
            await new Promise((r) => setTimeout(r, 5));
            responseStream.end('stream');
          });
        `,
      },
    });
    const r = await rt.api.invoke({});
    assert.equal(r.kind, 'response');
    assert.equal(r.body, 'hello stream');
    const h = await rt.api.invoke({ http: true });
    assert.deepEqual(h.json, { statusCode: 201, headers: { 'x-a': 'b' }, body: 'hello stream', isBase64Encoded: false });
  });
});

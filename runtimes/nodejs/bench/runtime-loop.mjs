// Microbenchmark of the runtime client's warm loop: GET /next -> handler -> POST
// /response, as fast as bootstrap.cjs can go against a fake Runtime API that costs
// next to nothing (raw sockets, canned answers, in this process; the runtime is a
// child process, as under Portico). Prints invocations/s and µs per invocation.
// Like hyper, the fake answers pipelined requests (the POST and the next GET in one
// write) in order, one write per answer; an invocation is always waiting.
//
// Usage: node runtimes/nodejs/bench/runtime-loop.mjs [--node PATH] [--bootstrap PATH]
//          [--seconds 5] [--warmup 1]
// --node: the Node.js that runs bootstrap.cjs (default: the one running this script).
// --node-options: extra arguments for it, e.g. --node-options="--cpu-prof --cpu-prof-dir=/tmp/p".
// Besides the rate, it prints the CPU time each side spent per invocation (from
// /proc): on a loaded machine that is steadier than the wall-clock rate.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const { values: opts } = parseArgs({
  options: {
    node: { type: 'string', default: process.execPath },
    bootstrap: { type: 'string', default: fileURLToPath(new URL('../bootstrap.cjs', import.meta.url)) },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    'node-options': { type: 'string', default: '' },
  },
});

// The seed's handler (examples/hello-api) and the HTTP API 2.0 event of GET /hello?name=Dev.
const HANDLER = `export const handler = async (event) => {
  const name = event.queryStringParameters?.name ?? "world";
  return { statusCode: 200, headers: { "Content-Type": "application/json" }, body: JSON.stringify({ message: \`Hello, \${name}!\` }) };
};`;
const EVENT = JSON.stringify({
  version: '2.0',
  routeKey: 'GET /hello',
  rawPath: '/hello',
  rawQueryString: 'name=Dev',
  headers: { accept: '*/*', host: '127.0.0.1:8080', 'user-agent': 'wrk', 'x-forwarded-proto': 'http' },
  queryStringParameters: { name: 'Dev' },
  requestContext: {
    accountId: '123456789012',
    apiId: 'abcdef1234',
    domainName: '127.0.0.1',
    domainPrefix: '127',
    http: { method: 'GET', path: '/hello', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'wrk' },
    requestId: 'JKJaXmPLvHcESHA=',
    routeKey: 'GET /hello',
    stage: '$default',
    time: '26/Nov/2026:02:00:00 +0000',
    timeEpoch: 1795658400000,
  },
  isBase64Encoded: false,
});

const ACCEPTED = Buffer.from(
  'HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 15\r\ndate: Thu, 26 Nov 2026 02:00:00 GMT\r\n\r\n{"status":"OK"}',
);
let seq = 0;
/** An answer to GET /next shaped as Portico's hyper server sends it. */
function invocation() {
  const id = `8f5e2b8c-0000-4000-8000-${String(++seq).padStart(12, '0')}`;
  const deadline = Date.now() + 30000;
  return (
    'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n' +
    `lambda-runtime-aws-request-id: ${id}\r\n` +
    `lambda-runtime-deadline-ms: ${deadline}\r\n` +
    'lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:hello\r\n' +
    `lambda-runtime-trace-id: Root=1-${(deadline / 1000).toString(16).slice(0, 8)}-${id.replaceAll('-', '').slice(0, 24)}\r\n` +
    `content-length: ${Buffer.byteLength(EVENT)}\r\ndate: Thu, 26 Nov 2026 02:00:00 GMT\r\n\r\n${EVENT}`
  );
}

// Once measured, GET /next answers 410 and the runtime exits by itself (and so
// writes its --cpu-prof profile).
const GONE = Buffer.from('HTTP/1.1 410 Gone\r\ncontent-length: 2\r\n\r\n{}');
let stopping = false;
let completed = 0;
let connections = 0;
// Requests are parsed just enough: the head, then Content-Length bytes of body.
const server = net.createServer((socket) => {
  connections++;
  socket.setNoDelay(true);
  let buf = null;
  let need = -1; // body bytes still expected by the current POST, or -1 between requests
  socket.on('data', (chunk) => {
    buf = buf === null ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      if (need < 0) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        buf = buf.subarray(end + 4);
        if (head.startsWith('GET ')) {
          socket.write(stopping ? GONE : invocation());
          continue;
        }
        const m = /\r\ncontent-length: *(\d+)/i.exec(head);
        need = m ? Number(m[1]) : 0;
      }
      if (buf.length < need) return;
      buf = buf.subarray(need);
      need = -1;
      completed++;
      socket.write(ACCEPTED);
    }
  });
  socket.on('error', () => {});
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

// The child runs in the task root: paths given relative to here must survive that.
if (opts.node.includes('/')) opts.node = path.resolve(opts.node);
opts.bootstrap = path.resolve(opts.bootstrap);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'portico-bench-'));
fs.writeFileSync(path.join(root, 'index.mjs'), HANDLER);
const nodeArgs = opts['node-options'].split(' ').filter(Boolean);
const child = spawn(opts.node, [...nodeArgs, opts.bootstrap], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: {
    _HANDLER: 'index.handler',
    AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${server.address().port}`,
    AWS_LAMBDA_FUNCTION_NAME: 'hello',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
    LAMBDA_TASK_ROOT: root,
    TZ: ':UTC',
  },
});

/** CPU time (user + system) of a process so far, in µs. */
function cpuMicros(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // utime, stime in ticks of 1/100 s
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await sleep(Number(opts.warmup) * 1000);
const before = completed;
const cpu0 = [cpuMicros(child.pid), cpuMicros(process.pid)];
const t0 = process.hrtime.bigint();
await sleep(Number(opts.seconds) * 1000);
const n = completed - before;
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = [cpuMicros(child.pid) - cpu0[0], cpuMicros(process.pid) - cpu0[1]];
if (child.exitCode !== null) throw new Error(`bootstrap exited with ${child.exitCode}`);
stopping = true;
const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
await new Promise((r) => child.once('exit', r));
clearTimeout(killer);
server.close();
fs.rmSync(root, { recursive: true, force: true });

const version = (await new Promise((resolve) => {
  const v = spawn(opts.node, ['--version']);
  let out = '';
  v.stdout.on('data', (c) => (out += c));
  v.on('close', () => resolve(out.trim()));
}));
console.log(
  `node ${version} ${path.basename(path.dirname(opts.bootstrap))}/${path.basename(opts.bootstrap)}: ` +
    `${Math.round(n / secs)} invocations/s, ${(1e6 * secs / n).toFixed(1)} µs/invocation ` +
    `(${n} in ${secs.toFixed(2)} s, ${connections} connection${connections === 1 ? '' : 's'}); ` +
    `CPU per invocation: runtime ${(cpu[0] / n).toFixed(1)} µs, fake API ${(cpu[1] / n).toFixed(1)} µs`,
);

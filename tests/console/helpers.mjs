// Shared fixtures of the console's browser tests: a live `portico serve`, headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core; never a downloaded browser), plain
// HTTP requests, a zip writer and the AWS CLI.
//
// Environment:
//   PORTICO_BIN            the binary under test (default: target/debug/portico)
//   PORTICO_NODEJS22_BIN   a Node.js 22 binary (default: .tools/node22/node_modules/node/bin/node)
//   PORTICO_CHROMIUM       the Chromium binary (default: /usr/bin/chromium)
//   CONSOLE_SCREENSHOTS    `update` writes the screenshots into tests/console/screenshots/ (the
//                          committed ones the README links); otherwise into target/console-screenshots/
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { toPng8 } from './png8.mjs';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../..');
export const ACCOUNT = '111122223333';
export const REGION = 'us-east-1';
export const ROLE = `arn:aws:iam::${ACCOUNT}:role/console-test`;

// Every process this suite starts (and this one) never probes the instance-metadata address.
process.env.AWS_EC2_METADATA_DISABLED = 'true';

const PORTICO_BIN = process.env.PORTICO_BIN || path.join(REPO, 'target/debug/portico');
const NODE22 = process.env.PORTICO_NODEJS22_BIN || path.join(REPO, '.tools/node22/node_modules/node/bin/node');
const CHROMIUM = process.env.PORTICO_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

export const SCREENSHOT_DIR = process.env.CONSOLE_SCREENSHOTS === 'update'
  ? path.join(HERE, 'screenshots')
  : path.join(REPO, 'target/console-screenshots');

function tempDir(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** One `portico serve` on a free loopback port with its own data dir, as tests/e2e's Server. */
export class Portico {
  constructor(extraArgs = []) {
    this.extraArgs = extraArgs;
    this.base = tempDir('portico-console-');
    this.dataDir = path.join(this.base, 'data');
    this.logPath = path.join(this.base, 'portico.log');
    this.proc = null;
    this.stdout = [];
  }

  async start(timeoutMs = 30_000) {
    if (!existsSync(PORTICO_BIN)) throw new Error(`${PORTICO_BIN} is missing: run \`cargo build -p portico\` (or set PORTICO_BIN)`);
    if (!existsSync(NODE22)) throw new Error(`Node.js 22 not found at ${NODE22}: run scripts/setup.sh (or set PORTICO_NODEJS22_BIN)`);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PORTICO_')));
    env.PORTICO_NODEJS22_BIN = NODE22;
    env.PORTICO_LOG ??= 'info';
    env.AWS_EC2_METADATA_DISABLED = 'true';
    const { openSync } = await import('node:fs');
    const log = openSync(this.logPath, 'a');
    this.proc = spawn(PORTICO_BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', this.dataDir,
      '--account-id', ACCOUNT, '--region', REGION, ...this.extraArgs],
    { stdio: ['ignore', 'pipe', log], env });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    const line = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`portico did not print its listening line within ${timeoutMs} ms\n${this.logTail()}`)), timeoutMs);
      const rl = createInterface({ input: this.proc.stdout });
      rl.on('line', (l) => {
        this.stdout.push(l);
        if (l.startsWith('Portico listening on http://')) { clearTimeout(timer); resolve(l); }
      });
      this.proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`portico exited (${code}) before listening\n${this.logTail()}`)); });
    });
    this.endpoint = line.split(/\s+/)[3];
    if (!this.endpoint.startsWith('http://127.0.0.1:')) throw new Error(`unexpected listening line: ${line}`);
    this.port = Number(this.endpoint.split(':').pop());
    // The administrator key the data dir's first start wrote (AWS shared-credentials format).
    this.credentialsFile = path.join(this.dataDir, 'credentials');
    const creds = readFileSync(this.credentialsFile, 'utf8');
    this.accessKeyId = /aws_access_key_id\s*=\s*(\S+)/.exec(creds)[1];
    this.secretAccessKey = /aws_secret_access_key\s*=\s*(\S+)/.exec(creds)[1];
    return this;
  }

  logTail(n = 40) {
    try { return readFileSync(this.logPath, 'utf8').split('\n').slice(-n).join('\n'); } catch { return ''; }
  }

  consoleUrl(hash = '') { return `${this.endpoint}/console/${hash}`; }
  pathUrl(apiId, p = '/') { return `http://127.0.0.1:${this.port}/execute-api/${apiId}${p}`; }
  hostUrl(apiId, p = '/') { return `http://${apiId}.execute-api.localhost:${this.port}${p}`; }

  /** SIGTERM, wait for the exit (SIGKILL after 10 s), remove the temp dir. */
  async stop() {
    if (!this.proc) return;
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(t);
    }
    rmSync(this.base, { recursive: true, force: true });
  }
}

/** Headless Chromium with a fresh user data dir of its own. Returns the persistent context. */
export async function launchBrowser({ width = 1280, height = 800 } = {}) {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is not installed in tests/console/node_modules: run scripts/setup.sh (${e.message})`);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (Debian's chromium)`);
  const userDataDir = tempDir('portico-chromium-');
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width, height },
    env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true' },
  });
  const close = context.close.bind(context);
  context.close = async () => {
    try { await close(); } finally { rmSync(userDataDir, { recursive: true, force: true }); }
  };
  return context;
}

/** Records a page's uncaught exceptions and console errors, for the failure messages. */
export function watchPage(page) {
  const errors = { pageErrors: [], consoleErrors: [] };
  page.on('pageerror', (e) => errors.pageErrors.push(String(e?.stack || e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.consoleErrors.push(m.text()); });
  return errors;
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  // No hover effect left where the last click was.
  const { width, height } = page.viewportSize();
  await page.mouse.move(width - 1, height - 1);
  const png = await page.screenshot();
  // The committed ones are palette PNGs (a third of the size).
  writeFileSync(path.join(SCREENSHOT_DIR, `${name}.png`), process.env.CONSOLE_SCREENSHOTS === 'update' ? toPng8(png) : png);
}

/** A raw HTTP request (node:http, so Origin and other headers go out exactly as given). */
export function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// --- a zip writer (stored entries), enough for a function package ---------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip of `{name: source}` (uncompressed entries, mode 0644). */
export function makeZip(files) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const [name, src] of Object.entries(files)) {
    const nameBuf = Buffer.from(name, 'utf8');
    const data = Buffer.from(src, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(0, 6);
    local.writeUInt16LE(0, 8); local.writeUInt16LE(0, 10); local.writeUInt16LE(0x5c21, 12);
    local.writeUInt32LE(crc, 14); local.writeUInt32LE(data.length, 18); local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26); local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(0x0314, 4); central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8); central.writeUInt16LE(0, 10); central.writeUInt16LE(0, 12); central.writeUInt16LE(0x5c21, 14);
    central.writeUInt32LE(crc, 16); central.writeUInt32LE(data.length, 20); central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBuf.length, 28); central.writeUInt16LE(0, 30); central.writeUInt16LE(0, 32);
    central.writeUInt16LE(0, 34); central.writeUInt16LE(0, 36); central.writeUInt32LE((0o100644 << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBuf, data);
    centrals.push(central, nameBuf);
    offset += local.length + nameBuf.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8); end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

// --- the real AWS CLI, signing with the server's administrator key --------------------------

const AWS_BIN = process.env.PORTICO_AWS_BIN || path.join(REPO, '.venv/bin/aws');

/** `aws --endpoint-url ENDPOINT ARGS --output json` with the data dir's credentials file, as the
 * README's tutorial does (AWS_SHARED_CREDENTIALS_FILE), and nothing of the user's configuration. */
export function aws(server, args, { cwd } = {}) {
  const home = tempDir('portico-console-aws-');
  writeFileSync(path.join(home, 'config'), '');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('PORTICO_')));
  Object.assign(env, {
    HOME: home, AWS_CONFIG_FILE: path.join(home, 'config'), AWS_SHARED_CREDENTIALS_FILE: server.credentialsFile,
    AWS_DEFAULT_REGION: REGION, AWS_EC2_METADATA_DISABLED: 'true', AWS_PAGER: '', NO_PROXY: '*', no_proxy: '*',
  });
  return new Promise((resolve, reject) => {
    execFile(AWS_BIN, ['--endpoint-url', server.endpoint, ...args, '--output', 'json'], { env, cwd, timeout: 60_000 },
      (err, stdout, stderr) => {
        rmSync(home, { recursive: true, force: true });
        if (err) return reject(new Error(`aws ${args.join(' ')} failed: ${stderr || err.message}`));
        resolve(stdout.trim() ? JSON.parse(stdout) : null);
      });
  });
}

/** With the AWS CLI, as the tutorial's CLI steps: a Node.js 22 function `functionName` from
 * `code` (its index.mjs), an HTTP API `apiName` quick-created in front of it (route
 * `$default`, stage `$default` with auto-deploy; `extra` create-api arguments, e.g.
 * --cors-configuration), and the permission for API Gateway to invoke it. Returns the API id. */
export async function quickApi(server, { functionName, apiName, code, extra = [] }) {
  const dir = tempDir('portico-console-zip-');
  try {
    const zip = path.join(dir, 'function.zip');
    writeFileSync(zip, makeZip({ 'index.mjs': code }));
    await aws(server, ['lambda', 'create-function', '--function-name', functionName, '--runtime', 'nodejs22.x',
      '--handler', 'index.handler', '--zip-file', `fileb://${zip}`, '--role', ROLE]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const { ApiId } = await aws(server, ['apigatewayv2', 'create-api', '--name', apiName, '--protocol-type', 'HTTP',
    '--target', `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${functionName}`, ...extra]);
  await aws(server, ['lambda', 'add-permission', '--function-name', functionName, '--statement-id', 'apigw',
    '--action', 'lambda:InvokeFunction', '--principal', 'apigateway.amazonaws.com',
    '--source-arn', `arn:aws:execute-api:${REGION}:${ACCOUNT}:${ApiId}/*/*`]);
  return ApiId;
}

/** Signs `page` in to the console with the server's administrator key, as a user types it. */
export async function signIn(page, server) {
  await page.goto(server.consoleUrl());
  await page.getByRole('textbox', { name: 'Access key ID', exact: true }).fill(server.accessKeyId);
  await page.getByLabel('Secret access key', { exact: true }).fill(server.secretAccessKey);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('button', { name: 'Sign out', exact: true }).waitFor();
}

/** Polls `fn` (async, returns a truthy value when done) every 100 ms until `timeoutMs`. */
export async function waitFor(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

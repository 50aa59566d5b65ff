// Portico's Node.js runtime client: the process Portico starts in every Node.js
// execution environment (`node bootstrap.cjs`, cwd = LAMBDA_TASK_ROOT).
//
// It behaves like AWS's own client (aws-lambda-nodejs-runtime-interface-client):
// the same handler resolution, error names and shapes, context object, console
// format and exit behaviour, over the Lambda Runtime API at AWS_LAMBDA_RUNTIME_API.
// Standard library only; this file is embedded into the Portico binary.

'use strict';
// CommonJS, not an ES module: Node loads it ~6 ms of CPU sooner (no ES module loader at
// start-up; a function written as one still gets it, when its handler is imported).

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const Module = require('node:module');
const { pathToFileURL } = require('node:url');
const { format, types } = require('node:util');
const { Writable } = require('node:stream');

const env = process.env;

// ---------------------------------------------------------------------------
// Errors, named and shaped as AWS's client names and shapes them.

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class MalformedStreamingHandler extends Error {}
class InvalidStreamingOperation extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason === undefined ? undefined : safeString(reason));
    this.reason = reason;
    this.promise = promise;
  }
}
for (const C of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  MalformedStreamingHandler,
  InvalidStreamingOperation,
  NodeJsExit,
  UnhandledPromiseRejection,
]) {
  C.prototype.name = `Runtime.${C.name}`;
}

function safeString(v) {
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

function isErrorLike(e) {
  return (
    e !== null &&
    typeof e === 'object' &&
    typeof e.name === 'string' &&
    typeof e.message === 'string' &&
    typeof e.stack === 'string' &&
    e.name !== '' &&
    e.message !== '' &&
    e.stack !== ''
  );
}

const DEL = /\x7f/g;

/** The `{errorType, errorMessage, trace}` document posted to the Runtime API. */
function toRapidResponse(error) {
  try {
    if (types.isNativeError(error) || isErrorLike(error)) {
      let errorType = error.name;
      if (typeof errorType !== 'string' || errorType === '') {
        errorType = error.constructor?.name || 'Error';
      }
      const stack = typeof error.stack === 'string' ? error.stack : '';
      return {
        errorType: errorType.replace(DEL, '%7F'),
        errorMessage: safeString(error.message).replace(DEL, '%7F'),
        trace: stack === '' ? [] : stack.replace(DEL, '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: safeString(error), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
      trace: [],
    };
  }
}

function intoError(err) {
  return err instanceof Error ? err : new Error(safeString(err));
}

// Errors keep name, message and stack out of JSON.stringify; the log shows them,
// with the error's own enumerable properties.
function enumerableError(_key, value) {
  if (value instanceof Error) {
    const out = Object.assign(
      { errorType: value.name, errorMessage: value.message, code: value.code },
      value,
    );
    if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
    return out;
  }
  return value;
}

/** The error as AWS writes it into the log: a tab, then JSON. */
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, enumerableError);
  } catch {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

// ---------------------------------------------------------------------------
// Logging: console.* patched to AWS's text format, written synchronously to fd 1.
// `<ISO time>\t<request id>\t<LEVEL>\t<message>`, one record per line: newlines
// inside a message become carriage returns, as AWS's LogPatch does for stdout.

const REQUEST_ID_SYMBOL = Symbol.for('aws.lambda.runtime.requestId');
let currentRequestId; // "undefined" in records written outside an invocation

function setRequestId(id) {
  currentRequestId = id;
  globalThis[REQUEST_ID_SYMBOL] = id;
}

let pauseCell;
function pause(ms) {
  pauseCell ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(pauseCell, 0, 0, ms);
}

// The fd may have been made non-blocking (if something touched process.stdout):
// finish partial writes and wait out EAGAIN. A closed pipe drops the record.
function writeRest(buf, off, err) {
  for (let spins = 0; spins < 10000; ) {
    if (err) {
      if (err.code !== 'EAGAIN') return;
      err = null;
      spins++;
      pause(1);
    }
    if (off >= buf.length) return;
    try {
      off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (e) {
      err = e;
    }
  }
}

function writeOut(text) {
  let n;
  try {
    n = fs.writeSync(1, text);
  } catch (e) {
    writeRest(Buffer.from(text), 0, e);
    return;
  }
  if (n !== Buffer.byteLength(text)) writeRest(Buffer.from(text), n, null);
}

function record(level, args) {
  // AWS formats `util.format(message, ...params)`: no arguments reads "undefined".
  const message = args.length === 0 ? 'undefined' : format(...args);
  let line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${message}`;
  if (line.includes('\n')) line = line.replaceAll('\n', '\r');
  writeOut(line + '\n');
}

const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
const noLog = () => {};
let logErrorRecord = noLog; // set by patchConsole

// The level is applied here, once: a method below it is a no-op, not a check per call.
function patchConsole(levelName) {
  const minLevel = LEVELS[(levelName || '').toUpperCase()] || LEVELS.TRACE;
  const logger = (level) => (LEVELS[level] >= minLevel ? (...args) => record(level, args) : noLog);
  logErrorRecord = logger('ERROR');
  console.trace = logger('TRACE');
  console.debug = logger('DEBUG');
  console.info = logger('INFO');
  console.log = console.info;
  console.warn = logger('WARN');
  console.error = logErrorRecord;
  console.fatal = (...args) => record('FATAL', args);
}

/** `ERROR\t<label> \t{json}`, as AWS's structured error log. */
function logError(label, err) {
  logErrorRecord(label, toFormatted(intoError(err)));
}

// ---------------------------------------------------------------------------
// Runtime API client: a minimal HTTP/1.1 client over one persistent socket.
//
// Why not node:http: its ClientRequest/IncomingMessage objects, header handling and
// agent bookkeeping cost a few hundred microseconds per invocation, several times
// what the rest of a warm invocation costs. The Runtime API needs very little of
// HTTP: requests we write ourselves, and responses from one known server that carry
// a status, a few headers and a body delimited by Content-Length (or chunked).

// Read once: a function assigned later (see `takeAssignment`) keeps this connection.
const API = env.AWS_LAMBDA_RUNTIME_API;
if (!API) {
  writeOut('Portico runtime: AWS_LAMBDA_RUNTIME_API is not set\n');
  process.exit(1);
}
// Portico hands its own client the first connection ready-made: one end of a UNIX socket
// pair, inherited as this descriptor (a fraction of loopback TCP's cost per message). A
// connection after it (the server closed one) goes to AWS_LAMBDA_RUNTIME_API. Not the
// function's to see.
let inheritedFd = /^\d+$/.test(env._PORTICO_RUNTIME_API_FD ?? '') ? Number(env._PORTICO_RUNTIME_API_FD) : null;
delete env._PORTICO_RUNTIME_API_FD;
// Started so, the client talks to Portico, whose Runtime API answers an outcome posted
// with this header with the next invocation (as GET /next would) instead of a 202: per
// invocation one request and one answer, so this process wakes once per event.
const THEN_NEXT = inheritedFd === null ? null : 'Portico-Then-Next';
const colon = API.lastIndexOf(':');
const API_HOST = (colon > 0 ? API.slice(0, colon) : API).replace(/^\[(.*)\]$/, '$1');
const API_PORT = colon > 0 ? Number(API.slice(colon + 1)) : 80;
const PREFIX = '/2018-06-01/runtime';
const NEXT_PATH = `${PREFIX}/invocation/next`;
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';

// A request is pipelined behind a small one only. A large body may leave in several
// writes, and an answer that comes while bytes are still unsent is an early one (a 413
// before the body was read: see `onData`) only if they are its own request's bytes,
// which a request written behind it would blur. Next to such a body, the round trip
// saved is nothing anyway.
const PIPELINE_MAX_BYTES = 64 * 1024;
// A response head larger than this is not the Runtime API's (Node's own default limit).
const MAX_HEAD_BYTES = 16 * 1024;
// Header values Node's http would refuse: control characters other than tab, and DEL.
const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const NON_ASCII = /[^\x00-\x7f]/;
// A `Connection` header that closes the connection.
const CONNECTION_CLOSE = /(?:^|,)\s*close\s*(?:,|$)/i;

function protocolError(message) {
  const e = new Error(`Runtime API response: ${message}`);
  e.code = 'HPE_INVALID_RESPONSE';
  return e;
}

/**
 * Incremental parser of one HTTP/1.1 response. `push` is fed the socket's chunks and
 * returns true once the response is complete; bytes past its end are left in `rest`.
 */
class ResponseParser {
  constructor() {
    this.state = 'head';
    this.status = 0;
    this.headers = {};
    /** Unconsumed bytes of a line-oriented part (head, chunk-size line, trailers). */
    this.pending = null;
    this.chunks = [];
    this.bodyLength = 0;
    /** Bytes still expected in the current body part (Content-Length or chunk). */
    this.remaining = 0;
    this.chunked = false;
    this.rest = null;
  }

  get body() {
    const c = this.chunks;
    return c.length === 1 ? c[0] : Buffer.concat(c, this.bodyLength);
  }

  push(chunk) {
    let data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    for (;;) {
      switch (this.state) {
        case 'head': {
          const end = data.indexOf('\r\n\r\n');
          if (end < 0) return this.wait(data, MAX_HEAD_BYTES);
          this.parseHead(data.toString('latin1', 0, end));
          data = data.subarray(end + 4);
          break;
        }
        case 'body': {
          const n = Math.min(this.remaining, data.length);
          if (n > 0) {
            this.chunks.push(n === data.length ? data : data.subarray(0, n));
            this.bodyLength += n;
            this.remaining -= n;
            data = data.subarray(n);
          }
          if (this.remaining > 0) return false;
          this.state = this.chunked ? 'chunk-end' : 'done';
          break;
        }
        case 'until-close':
          // No length: the body ends when the server closes the connection (`end`).
          if (data.length > 0) {
            this.chunks.push(data);
            this.bodyLength += data.length;
          }
          return false;
        case 'chunk-size':
        case 'chunk-end':
        case 'trailers': {
          const eol = data.indexOf('\r\n');
          if (eol < 0) return this.wait(data, 4096);
          const line = data.toString('latin1', 0, eol);
          data = data.subarray(eol + 2);
          this.chunkLine(line);
          break;
        }
        case 'done':
          this.rest = data.length > 0 ? data : null;
          return true;
      }
    }
  }

  /** Keeps a partial line for the next chunk; a line that never ends is an error. */
  wait(data, limit) {
    if (data.length > limit) throw protocolError('header or chunk line too long');
    this.pending = data;
    return false;
  }

  parseHead(head) {
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]);
    if (!m) throw protocolError(`bad status line ${JSON.stringify(lines[0].slice(0, 100))}`);
    const status = Number(m[1]);
    if (status >= 100 && status < 200) {
      // An interim response (100 Continue): the real one follows.
      return;
    }
    this.status = status;
    const headers = this.headers;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const c = line.indexOf(':');
      if (c <= 0) throw protocolError('bad header line');
      const name = line.slice(0, c).trim().toLowerCase();
      const value = line.slice(c + 1).trim();
      // Repeated headers are joined, as node:http joins most of them.
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const te = headers['transfer-encoding'];
    if (te !== undefined && /(?:^|,)\s*chunked\s*$/i.test(te)) {
      this.chunked = true;
      this.state = 'chunk-size';
    } else if (headers['content-length'] !== undefined) {
      const length = headers['content-length'];
      if (!/^\d+$/.test(length)) throw protocolError(`bad Content-Length ${JSON.stringify(length)}`);
      this.remaining = Number(length);
      this.state = 'body';
    } else if (status === 204 || status === 304) {
      this.state = 'done';
    } else {
      this.state = 'until-close';
    }
  }

  chunkLine(line) {
    if (this.state === 'chunk-size') {
      const m = /^([0-9a-fA-F]+)[ \t]*(?:;.*)?$/.exec(line);
      if (!m) throw protocolError('bad chunk size');
      this.remaining = parseInt(m[1], 16);
      this.state = this.remaining === 0 ? 'trailers' : 'body';
    } else if (this.state === 'chunk-end') {
      if (line !== '') throw protocolError('chunk not followed by CRLF');
      this.state = 'chunk-size';
    } else if (line === '') {
      this.state = 'done'; // trailers (ignored) end with an empty line
    }
  }

  /** The server closed the connection: complete when the body ran until the close. */
  end() {
    if (this.state !== 'until-close') return false;
    this.state = 'done';
    return true;
  }
}

/**
 * One persistent HTTP/1.1 connection to the Runtime API. `request` resolves with
 * `{status, headers, body}`; headers are keyed by lower-case name, body is a Buffer.
 * A request waits until those before it are answered, except the ones `pipeline`
 * sends behind another: HTTP/1.1 pipelining, the server answers in order.
 */
class RuntimeApiConnection {
  constructor(host, port, hostHeader) {
    this.host = host;
    this.port = port;
    this.hostLine = `\r\nHost: ${hostHeader}\r\n`;
    this.socket = null;
    /** The socket has carried a whole exchange: the server may close it when idle. */
    this.reused = false;
    /** Requests written and not yet answered, in order: `{bytes, size, follows, resolve, reject, retried}`. */
    this.inflight = [];
    /** Requests not yet written. */
    this.queue = [];
    /** Parses the answer to `inflight[0]`. */
    this.parser = null;
    /** Something of `inflight[0]`'s answer arrived on this socket. */
    this.received = false;
  }

  request(method, path, headers, body) {
    return this.pipeline([method, path, headers, body])[0];
  }

  /**
   * Sends `[method, path, headers, body]` requests back to back, without waiting for
   * the answers in between, in one socket write (a request behind a large one waits for
   * its answer: see PIPELINE_MAX_BYTES). Returns a promise of each answer.
   */
  pipeline(...requests) {
    const answers = requests.map(
      ([method, path, headers, body], i) =>
        new Promise((resolve, reject) => {
          const bytes = this.encode(method, path, headers, body);
          const size = typeof bytes === 'string' ? bytes.length : bytes[0].length + bytes[1].length;
          this.queue.push({ bytes, size, follows: i > 0, resolve, reject, retried: false });
        }),
    );
    this.pump();
    return answers;
  }

  /** The request's bytes: one string when possible, so one socket write sends it. */
  encode(method, path, headers, body) {
    let head = method + ' ' + path + ' HTTP/1.1' + this.hostLine;
    if (headers !== undefined) {
      for (const name in headers) {
        const value = String(headers[name]);
        if (INVALID_HEADER_VALUE.test(value)) {
          const e = new TypeError(`Invalid character in header content ["${name}"]`);
          e.code = 'ERR_INVALID_CHAR';
          throw e;
        }
        head += name + ': ' + value + '\r\n';
      }
    }
    if (body === undefined) return head + '\r\n';
    head += 'Content-Length: ' + Buffer.byteLength(body) + '\r\n\r\n';
    // Header bytes are latin1, as node:http writes them; a string body is UTF-8.
    if (typeof body === 'string' && !NON_ASCII.test(head)) return head + body;
    return [Buffer.from(head, 'latin1'), typeof body === 'string' ? Buffer.from(body) : body];
  }

  /**
   * Writes what may go out now, in one write: the first request queued if nothing is
   * in flight, and those pipelined behind it.
   */
  pump() {
    const queue = this.queue;
    let last = this.inflight.at(-1);
    let bytes = null;
    while (queue.length > 0 && (last === undefined || (queue[0].follows && last.size <= PIPELINE_MAX_BYTES))) {
      last = queue.shift();
      if (this.inflight.push(last) === 1) {
        this.parser = new ResponseParser();
        this.received = false;
      }
      if (bytes === null) bytes = last.bytes;
      else if (typeof bytes === 'string' && typeof last.bytes === 'string') bytes += last.bytes;
      else bytes = [].concat(bytes, last.bytes);
    }
    if (bytes !== null) this.write(bytes);
    // While a request waits (GET /next long-polls) the socket keeps the process alive;
    // idle between requests it must not, or `beforeExit` would never fire.
    else if (this.inflight.length === 0) this.socket?.unref();
  }

  write(bytes) {
    const socket = this.socket ?? this.connect();
    socket.ref();
    if (typeof bytes === 'string') {
      socket.write(bytes);
    } else {
      socket.cork(); // one writev for all the parts
      for (const b of bytes) socket.write(b);
      socket.uncork();
    }
  }

  connect() {
    // Over TCP, no Nagle delay: each batch of requests goes out in one write, and
    // waiting for an ACK of the previous segment would only add latency.
    let socket;
    if (inheritedFd !== null) {
      socket = new net.Socket({ fd: inheritedFd, readable: true, writable: true });
      inheritedFd = null;
    } else {
      socket = net.connect({ port: this.port, host: this.host, noDelay: true });
    }
    this.socket = socket;
    this.reused = false;
    let error = null;
    // Handlers ignore a socket that was replaced: its late events concern nobody.
    socket.on('data', (chunk) => {
      if (socket === this.socket) this.onData(chunk);
    });
    socket.on('error', (e) => {
      error = e;
    });
    socket.on('close', () => {
      if (socket === this.socket) this.onClose(error);
    });
    return socket;
  }

  onData(chunk) {
    // One chunk may end an answer and begin the next: pipelined answers come in order.
    for (let data = chunk; data !== null; ) {
      if (this.inflight.length === 0) {
        // Nothing was asked: the stream is out of step; start over on a new socket.
        this.drop();
        return;
      }
      this.received = true;
      const p = this.parser;
      let complete;
      try {
        complete = p.push(data);
      } catch (e) {
        this.finish(e);
        this.restart();
        return;
      }
      if (!complete) break;
      data = p.rest;
      this.reused = true;
      // The server answered before reading the whole request (413 on an oversized
      // body) or asked to close: the connection is done, and the requests behind
      // this one, unanswered, go out again on a new one.
      const done =
        this.socket.writableLength > 0 || CONNECTION_CLOSE.test(p.headers.connection ?? '');
      this.finish(null, { status: p.status, headers: p.headers, body: p.body });
      if (done) {
        this.restart();
        return;
      }
    }
    this.pump();
  }

  onClose(error) {
    this.socket = null;
    const req = this.inflight[0];
    if (req === undefined) return; // closed while idle: the next request reconnects
    if (this.parser.end()) {
      this.finish(null, { status: this.parser.status, headers: this.parser.headers, body: this.parser.body });
    } else if (!this.received && this.reused && !req.retried) {
      // A kept-alive socket the server closed just as we reused it: nothing of the
      // answer arrived, so the request was not served; send it once more, afresh.
      req.retried = true;
    } else {
      if (error === null) {
        error = new Error('socket hang up');
        error.code = 'ECONNRESET';
      }
      this.finish(error);
    }
    this.restart();
  }

  /** Settles the request first in line with its answer or error. */
  finish(error, response) {
    const req = this.inflight.shift();
    this.parser = this.inflight.length > 0 ? new ResponseParser() : null;
    this.received = false;
    if (error) req.reject(error);
    else req.resolve(response);
  }

  /**
   * Drops the socket and sends the requests still in flight again, on a new one. The
   * first one's answer was dealt with (it is settled, or retried); the server answers
   * in order, so none behind it was answered, and they go out as they did.
   */
  restart() {
    this.drop();
    this.queue.unshift(...this.inflight);
    this.inflight = [];
    this.parser = null;
    this.pump();
  }

  /**
   * Resolves once the requests handed over so far are written to the socket (one still
   * queued behind an unanswered one leaves it to the caller's own time limit).
   */
  written() {
    const socket = this.socket;
    if (socket === null || (this.queue.length === 0 && socket.writableLength === 0)) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once('drain', resolve);
      socket.once('close', resolve);
    });
  }

  /** Forgets the current socket; its close event will be ignored. */
  drop() {
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
  }

  close() {
    this.drop();
  }
}

const api = new RuntimeApiConnection(API_HOST, API_PORT, API);

// Header values must be visible ASCII; the JSON body always carries the full type.
function headerSafe(s) {
  return /^[\x20-\x7e]*$/.test(s) ? s : s.replace(/[^\x20-\x7e]/g, '?');
}

/** The body and headers that report `error`. */
function errorPost(error) {
  const doc = toRapidResponse(error);
  const headers = { 'Content-Type': 'application/json', [ERROR_TYPE_HEADER]: headerSafe(String(doc.errorType)) };
  return [JSON.stringify(doc), headers];
}

function fatal(message, code = 1) {
  record('ERROR', [message]);
  process.exit(code);
}

// ---------------------------------------------------------------------------
// Loading the handler, in AWS's order and with AWS's errors.

const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';
const PRELUDE = Symbol('portico.httpResponsePrelude');
// `module.function.path`: the module, then where the function is in it.
const HANDLER_NAME = /^([^.]*)\.(.*)$/;

class HttpResponseStream {
  // Streaming is buffered here: the prelude is kept aside and the whole response is
  // posted at the end as the equivalent `{statusCode, headers, cookies, body}`.
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType?.('application/vnd.awslambda.http-integration-response');
    underlyingStream[PRELUDE] = prelude ?? {};
    return underlyingStream;
  }
}

// Called only once the function's environment is in place (after any assignment).
function installGlobalAwsLambda() {
  const off = env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (off === '1' || off === 'true') return;
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') {
        handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark, 10);
      }
      return handler;
    },
    HttpResponseStream,
  };
}

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  return fs.existsSync(file) ? await import(pathToFileURL(file).href) : undefined;
}

// The nearest package.json decides whether .js is ESM; node_modules or / stop the search.
// A package.json that cannot be read is warned about, unless `warn` is false.
function typeModule(folder, warn = true) {
  for (;;) {
    if (folder.endsWith('/node_modules')) return false;
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(pj, 'utf8'));
        if (pkg) return pkg.type === 'module';
      } catch (e) {
        if (warn) console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    if (folder === '/') return false;
    folder = path.resolve(folder, '..');
  }
}

async function loadModule(appRoot, moduleRoot, moduleName) {
  const file = path.resolve(appRoot, moduleRoot, moduleName);
  const extensionless = requireIfExists(file);
  if (extensionless) return extensionless;
  const esm = typeModule(path.dirname(file));
  if (!esm) {
    const cjs = requireIfExists(file + '.js');
    if (cjs) return cjs;
  }
  const loaded =
    (esm && (await importIfExists(file + '.js'))) ||
    (await importIfExists(file + '.mjs')) ||
    requireIfExists(file + '.cjs');
  if (loaded) return loaded;
  // Node's own resolution from the task root: "Cannot find module 'index'" when absent.
  return require(require.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

async function loadHandler(appRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const base = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(base));
  const match = HANDLER_NAME.exec(base);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, handlerPath] = match;

  installGlobalAwsLambda();
  let app;
  try {
    app = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e?.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
  const fn = handlerPath.split('.').reduce((obj, key) => obj && obj[key], app);
  if (!fn) throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${fullHandler} is not a function`);
  if (fn[HANDLER_STREAMING] !== undefined && fn[HANDLER_STREAMING] !== null && fn[HANDLER_STREAMING] !== false) {
    if (fn[HANDLER_STREAMING] !== STREAM_RESPONSE) {
      throw new MalformedStreamingHandler('Only response streaming is supported.');
    }
  }
  return fn;
}

// ---------------------------------------------------------------------------
// Invocations.

// Set by readEnvironment.
let FUNCTION_NAME;
let FUNCTION_VERSION;
let MEMORY_SIZE;
let LOG_GROUP;
let LOG_STREAM;

function parseHeaderJson(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

/** One invocation: the first outcome reported wins, as with AWS's callbacks. */
class Invocation {
  constructor(id, onPosted) {
    this.id = id;
    this.finished = false;
    /** The POST of the outcome, once sent. */
    this.posted = null;
    /** The GET /next sent with it. */
    this.next = null;
    this.onPosted = onPosted;
  }

  /**
   * Posts the outcome and asks for the next invocation. From Portico (THEN_NEXT), in
   * one request whose answer is the next invocation; an answer that is not one (a 202
   * from a Runtime API without the extension, an error about the outcome) is followed
   * by a GET /next. Otherwise in the same write, without waiting for the 202 (HTTP/1.1
   * pipelining): per invocation one round trip, and one wake-up of Portico and of this
   * process, instead of two. The 202 is still read first and settles `posted` as
   * before; if the connection is lost before the GET is answered, the GET goes again
   * on a new one (`restart`).
   */
  settle(kind, body, headers) {
    const path = outcomePath(this.id, kind);
    if (THEN_NEXT !== null) {
      this.posted = api.request('POST', path, { ...headers, [THEN_NEXT]: '1' }, body);
      this.next = this.posted.then((answer) => (isNextAnswer(answer) ? answer : api.request('GET', NEXT_PATH)));
    } else {
      [this.posted, this.next] = api.pipeline(['POST', path, headers, body], ['GET', NEXT_PATH]);
    }
    this.onPosted(this.posted);
  }

  done(err, result) {
    if (err !== undefined && err !== null) this.fail(err);
    else this.succeed(result);
  }

  succeed(result) {
    if (this.finished) return;
    const body = resultBody(result);
    if (body === undefined) {
      this.fail(new Error('Unable to stringify response body'));
      return;
    }
    this.finished = true;
    this.settle('response', body, JSON_CONTENT);
  }

  succeedRaw(body, contentType) {
    if (this.finished) return;
    this.finished = true;
    this.settle('response', body, { 'Content-Type': contentType });
  }

  fail(err) {
    if (this.finished) return;
    this.finished = true;
    try {
      logError('Invoke Error', err);
    } catch {
      // The outcome matters more than its log record.
    }
    this.settle('error', ...errorPost(err));
  }
}

/** Whether an answer to an outcome posted with THEN_NEXT is the GET /next answer. */
function isNextAnswer(answer) {
  return answer.status === 200 || answer.status === 410;
}

/** Where an invocation's outcome is posted: `kind` is 'response' or 'error'. */
function outcomePath(id, kind) {
  return `${PREFIX}/invocation/${encodeURIComponent(id)}/${kind}`;
}

/** The headers of a JSON response; only read (see `encode`). */
const JSON_CONTENT = { 'Content-Type': 'application/json' };

/** The response document a result is posted as; undefined when it has none. */
function resultBody(result) {
  let body;
  try {
    body = JSON.stringify(result === undefined ? null : result);
  } catch {
    return undefined;
  }
  return body === undefined ? 'null' : body; // 'null' for a function or symbol result
}

/** The event, from the body of the GET /next answer. */
function parseEvent(payload) {
  return JSON.parse(payload.length === 0 ? 'null' : payload.toString());
}

function buildContext(inv, headers) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return {
    callbackWaitsForEmptyEventLoop: true,
    succeed: (result) => inv.done(null, result),
    fail: (err) => inv.done(err === undefined || err === null ? 'handled' : err, null),
    done: (err, result) => inv.done(err, result),
    functionVersion: FUNCTION_VERSION,
    functionName: FUNCTION_NAME,
    memoryLimitInMB: MEMORY_SIZE,
    logGroupName: LOG_GROUP,
    logStreamName: LOG_STREAM,
    clientContext: parseHeaderJson(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseHeaderJson(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: inv.id,
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
}

let handler;
let handlerIsAsync = false;
let handlerStreams = false;
/** The invocation being served, or the last one. */
let current = null;
/** An uncaught error is being reported; the process is about to exit. */
let dying = false;

function isPromise(v) {
  return v && typeof v.then === 'function';
}

/**
 * What the start of an invocation changes in the process: the invocation being served,
 * the request id of log records, the X-Ray trace id in the environment.
 */
function beginInvocation(inv, headers) {
  current = inv;
  setRequestId(inv.id);
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) env._X_AMZN_TRACE_ID = trace;
  else delete env._X_AMZN_TRACE_ID;
}

/**
 * Runs one invocation, the GET /next answer's `headers` and `payload`, with `fn` (the
 * handler; `streams`: it streams its response) once `begin` has begun it (see
 * `beginInvocation`); resolves once its outcome has been posted. Nothing else here
 * changes the process's state: what is posted and logged is the invocation's doing
 * (one already finished does neither: see `warmUpInvocation`), anything else `fn`'s.
 */
function runInvocation(headers, payload, fn, streams, begin) {
  return new Promise((resolve, reject) => {
    const inv = new Invocation(headers['lambda-runtime-aws-request-id'], (posted) => posted.then(resolve, reject));
    begin(inv, headers);

    let event;
    let context;
    try {
      event = parseEvent(payload);
      context = buildContext(inv, headers);
    } catch (e) {
      inv.fail(e);
      return;
    }
    if (streams) {
      runStreaming(inv, fn, event, context);
      return;
    }
    const callback = (err, result) => inv.done(err, result);
    let ret;
    try {
      ret = fn(event, context, callback);
    } catch (e) {
      // AWS hands what was thrown to the callback: a thrown null reads as success.
      callback(e);
      return;
    }
    if (isPromise(ret)) {
      try {
        ret.then(
          (result) => inv.succeed(result),
          (err) => inv.fail(err === undefined || err === null ? 'handled' : err),
        );
      } catch (e) {
        inv.fail(e);
      }
    }
    // Otherwise the callback, context.done/succeed/fail, or an empty event loop answers.
  });
}

// Response streaming, buffered: Portico's Runtime API takes one response body, so it
// is posted (and the next GET pipelined behind it) as any other outcome.
function runStreaming(inv, fn, event, context) {
  const chunks = [];
  let contentType = 'application/octet-stream';
  const stream = new Writable({
    write(chunk, _encoding, cb) {
      chunks.push(chunk);
      cb();
    },
    highWaterMark: fn[HANDLER_HIGHWATERMARK],
  });
  stream.setContentType = (ct) => {
    contentType = ct;
  };
  const finish = () => {
    const body = Buffer.concat(chunks);
    const prelude = stream[PRELUDE];
    if (prelude === undefined) {
      inv.succeedRaw(body, contentType);
      return;
    }
    let text;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      text = undefined;
    }
    const doc = { ...prelude };
    if (text === undefined) {
      doc.body = body.toString('base64');
      doc.isBase64Encoded = true;
    } else {
      doc.body = text;
      doc.isBase64Encoded = false;
    }
    inv.succeed(doc);
  };
  let ret;
  try {
    ret = fn(event, stream, context);
  } catch (e) {
    inv.fail(e);
    return;
  }
  if (!isPromise(ret)) {
    inv.fail(new InvalidStreamingOperation('Streaming does not support non-async handlers.'));
    return;
  }
  ret.then(
    (result) => {
      if (result !== undefined) console.warn('Streaming handlers ignore return values.');
      if (stream.writableFinished) finish();
      else if (stream.writableEnded) stream.once('finish', finish);
      else inv.fail(new InvalidStreamingOperation('Response stream is not finished.'));
    },
    (err) => inv.fail(err === undefined || err === null ? 'handled' : err),
  );
}

// The event loop ran dry before the handler answered: AWS fails an async handler
// (a promise never settled) and answers null for a callback handler.
process.on('beforeExit', () => {
  const inv = current;
  if (!inv || inv.finished || dying) return;
  if (handlerIsAsync) inv.fail(new NodeJsExit());
  else inv.succeed(null);
});

// ---------------------------------------------------------------------------
// Uncaught errors: report them (to the invocation, or as the init error), then exit.

// Like AWS: before the first invocation the error is the init error; during one it
// is that invocation's error; after its outcome was posted there is nobody to tell.
function die(error, code) {
  if (dying) return;
  dying = true;
  const exit = () => process.exit(code);
  setTimeout(exit, 2000);
  let target;
  if (current === null) {
    target = `${PREFIX}/init/error`;
  } else if (!current.finished) {
    current.finished = true;
    target = `${PREFIX}/invocation/${encodeURIComponent(current.id)}/error`;
  } else {
    // Let an outcome still in flight arrive first. Posted to Portico, its answer is the
    // next invocation, not to be waited for: written is arrived.
    const arrived = THEN_NEXT !== null ? api.written() : (current.posted ?? Promise.resolve());
    arrived.then(exit, exit);
    return;
  }
  // A fresh connection: the kept-alive one may be parked in GET /next.
  const conn = new RuntimeApiConnection(API_HOST, API_PORT, API);
  const [body, headers] = errorPost(error);
  conn.request('POST', target, headers, body).then(exit, exit);
}

process.on('uncaughtException', (error) => {
  if (dying) return;
  logError('Uncaught Exception', error);
  die(error, 129);
});

process.on('unhandledRejection', (reason, promise) => {
  if (dying) return;
  const error = new UnhandledPromiseRejection(reason, promise);
  logError('Unhandled Promise Rejection', error);
  die(error, 128);
});

// ---------------------------------------------------------------------------
// Start: load the handler, then GET next -> handle -> POST, forever.

let appRoot;
let handlerName;

/**
 * Reads what the client takes from the environment (AWS_LAMBDA_RUNTIME_API aside):
 * at start, and again once a spare process is assigned its function.
 */
function readEnvironment() {
  patchConsole(env.AWS_LAMBDA_LOG_LEVEL);
  FUNCTION_NAME = env.AWS_LAMBDA_FUNCTION_NAME;
  FUNCTION_VERSION = env.AWS_LAMBDA_FUNCTION_VERSION;
  MEMORY_SIZE = env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
  LOG_GROUP = env.AWS_LAMBDA_LOG_GROUP_NAME;
  LOG_STREAM = env.AWS_LAMBDA_LOG_STREAM_NAME;
  appRoot = env.LAMBDA_TASK_ROOT || process.cwd();
  handlerName = env._HANDLER || '';
}

// What setenv takes: a name without '=' or NUL, a value without NUL. Anything else
// would be dropped or cut short silently.
const ENV_NAME = /^[^=\0]+$/;

/** The JSON object `body` holds; throws when it holds something else. */
function jsonObject(body) {
  let doc;
  try {
    doc = JSON.parse(body.toString());
  } catch (e) {
    throw new Error(`not JSON (${e.message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not a JSON object');
  return doc;
}

/**
 * Whether the sandbox answer's body makes this process a spare (`{"status":"OK",
 * "spare":true}`), started before Portico knew its function, rather than a process
 * started for its function (`{"status":"OK"}`). Throws on a malformed answer.
 */
function sandboxSaysSpare(body) {
  const spare = jsonObject(body).spare;
  if (spare !== undefined && typeof spare !== 'boolean') throw new Error('"spare" is not a boolean');
  return spare === true;
}

/**
 * The function assigned to this spare process, from the body of the answer to
 * `GET portico/assignment`: `{"environment": {...}, "taskRoot": "/abs"}`. Throws on a
 * malformed answer.
 */
function parseAssignment(body) {
  const doc = jsonObject(body);
  const environment = doc.environment;
  if (environment === null || typeof environment !== 'object' || Array.isArray(environment)) {
    throw new Error('"environment" is not an object');
  }
  for (const [name, value] of Object.entries(environment)) {
    if (!ENV_NAME.test(name)) throw new Error(`"environment" has an invalid name ${JSON.stringify(name)}`);
    if (typeof value !== 'string' || value.includes('\0')) {
      throw new Error(`"environment.${name}" is not a string without NUL`);
    }
  }
  const taskRoot = doc.taskRoot;
  if (typeof taskRoot !== 'string' || !path.isAbsolute(taskRoot)) {
    throw new Error('"taskRoot" is not an absolute path');
  }
  return { environment, taskRoot };
}

/**
 * Becomes the assigned function's process: its environment exactly, its task root as
 * cwd, and everything derived from them read again. No function code has run yet.
 */
function takeAssignment({ environment, taskRoot }) {
  for (const name of Object.keys(env)) {
    if (!Object.hasOwn(environment, name)) delete env[name];
  }
  for (const [name, value] of Object.entries(environment)) {
    // Unchanged values are left alone: setting TZ, even to itself, resets date caches.
    if (env[name] !== value) env[name] = value;
  }
  process.chdir(taskRoot);
  // require()'s global paths were computed from the start environment's NODE_PATH.
  if (typeof Module?._initPaths === 'function') Module._initPaths();
  readEnvironment();
}

/**
 * A spare's wait for its function (`GET portico/assignment`, answered once Portico
 * assigns one), then its taking it. False when it cannot: the process is exiting.
 */
async function becomeAssignedFunction() {
  await warmUp();
  let answer;
  try {
    answer = await api.request('GET', `${PREFIX}/portico/assignment`);
  } catch (e) {
    fatal(`Failed to get the assignment: ${e.message}`);
    return false;
  }
  if (answer.status !== 200) {
    fatal(`The assignment failed: HTTP status ${answer.status}: ${answer.body.toString()}`);
    return false;
  }
  let assignment;
  try {
    assignment = parseAssignment(answer.body);
  } catch (e) {
    fatal(`The assignment is malformed: ${e.message}`);
    return false;
  }
  try {
    takeAssignment(assignment);
  } catch (e) {
    fatal(`Cannot take the assigned function: ${e.message}`);
    return false;
  }
  return true;
}

/** How many times the warm-up runs a step: a regular expression needs two. */
const WARM_UP_ROUNDS = 6;

/**
 * A spare's warm-up, run while it has nothing else to do, before it asks for its
 * function. Node compiles its internals and our functions lazily, on first use, and
 * V8 compiles a regular expression to machine code on its second use: left cold, the
 * path from the assignment's arrival to the first GET /next (parsing the answer,
 * validating it, finding and loading the handler's module) takes about twice as long
 * as warm, and the first invocation (from its GET /next answer to its POST) about
 * three times. So their steps run here first, on inputs of our own: nothing is
 * written, process.env and the working directory are left alone, no function code is
 * loaded or run. The socket and the writing of requests need nothing more: the
 * sandbox round trip ran them, and the GET portico/assignment that follows runs them
 * again.
 */
async function warmUp() {
  try {
    const self = __filename;
    const dir = path.dirname(self);
    // The ES module loader started, and a module loaded, linked and evaluated (from a
    // data: URL: nothing is read); then a file: URL resolved as a handler's module is,
    // one that does not exist (importing this very file instead would lex all of it for
    // its exports, and leave the garbage to the first invocation's collections).
    await import('data:text/javascript,export default 1');
    await import(pathToFileURL(path.join(dir, 'portico-warm-up.mjs')).href).catch(() => {});
    // A CommonJS module resolved: this very file.
    require.resolve(self);
    // loadModule's helpers, on this very file (typeModule: never with a warning).
    const file = path.resolve(dir, '', path.basename(self));
    typeModule(dir, false);
    if (fs.existsSync(file)) pathToFileURL(file).href;
    // The assignment's arrival: an answer parsed, an assignment validated, a handler
    // name split. Several times, for the regular expressions.
    const body = '{"environment":{"LANG":"C.UTF-8","PATH":"/usr/bin:/bin","TZ":":UTC"},"taskRoot":"/"}';
    const head = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
    const answer = Buffer.from(head + body);
    for (let i = 0; i < WARM_UP_ROUNDS; i++) {
      const parser = new ResponseParser();
      parser.push(answer);
      CONNECTION_CLOSE.test('');
      parseAssignment(parser.body);
      HANDLER_NAME.exec('index.handler');
    }
    // loadHandler compiled, by a name it refuses before it loads anything.
    await loadHandler(dir, '..').catch(() => {});
    await warmUpInvocation();
  } catch {
    // A warm-up that fails leaves the spare as it was: only colder.
  }
}

/**
 * The per-invocation path warmed, on an invocation of our own: a GET /next answer as
 * Portico writes it (an API Gateway HTTP API event) parsed, run by runInvocation (its
 * event parsed, its context made, a handler of ours called and awaited), its result
 * serialised into the POST /response and the GET /next that goes with it (`encode`),
 * the 202 parsed (from Portico: the POST asking for the next invocation, answered by one). Left out is what has an effect: beginInvocation (`current`, the
 * request id, `_X_AMZN_TRACE_ID` in process.env), whose place takes a `begin` that
 * marks the invocation finished, so that its outcome is neither posted nor logged; and
 * the writing itself.
 */
async function warmUpInvocation() {
  const id = '3b1f6a2e-7c4d-4e8f-9a0b-1c2d3e4f5a6b';
  const now = Date.now();
  const host = 'abcdefghij.execute-api.us-east-1.amazonaws.com';
  const payload = JSON.stringify({
    version: '2.0',
    routeKey: 'GET /hello',
    rawPath: '/hello',
    rawQueryString: 'name=Dev',
    headers: {
      accept: '*/*',
      'content-length': '0',
      host,
      'user-agent': 'curl/8.5.0',
      'x-amzn-trace-id': 'Root=1-6746a0c1-0123456789abcdef01234567',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
    },
    queryStringParameters: { name: 'Dev' },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abcdefghij',
      domainName: host,
      domainPrefix: 'abcdefghij',
      http: { method: 'GET', path: '/hello', protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' },
      requestId: 'CFXlVhS5oAMEVxA=',
      routeKey: 'GET /hello',
      stage: '$default',
      time: '27/Nov/2024:10:00:00 +0000',
      timeEpoch: now,
    },
    isBase64Encoded: false,
  });
  const date = new Date(now).toUTCString();
  const trace = `Root=1-${Math.floor(now / 1000).toString(16)}-${id.replaceAll('-', '').slice(0, 24)}`;
  const next = Buffer.from(
    'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n' +
      `lambda-runtime-aws-request-id: ${id}\r\n` +
      `lambda-runtime-deadline-ms: ${now + 3000}\r\n` +
      'lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:fn\r\n' +
      `lambda-runtime-trace-id: ${trace}\r\n` +
      `content-length: ${Buffer.byteLength(payload)}\r\ndate: ${date}\r\n\r\n${payload}`,
  );
  const accepted = Buffer.from(
    'HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 15\r\n' +
      `date: ${date}\r\n\r\n{"status":"OK"}`,
  );
  const finished = (inv) => {
    inv.finished = true;
  };
  for (let i = 0; i < WARM_UP_ROUNDS; i++) {
    const parser = new ResponseParser();
    parser.push(next);
    let result;
    const fn = async (event, context) => {
      context.getRemainingTimeInMillis();
      result = { statusCode: 200, body: JSON.stringify({ message: `Hello, ${event.queryStringParameters?.name}!` }) };
      return result;
    };
    // Never settles: nothing is posted. Its handler's promise reacts at the `await`
    // (inv.succeed, which returns at once).
    runInvocation(parser.headers, parser.body, fn, false, finished);
    await null;
    const body = resultBody(result);
    const path = outcomePath(parser.headers['lambda-runtime-aws-request-id'], 'response');
    if (THEN_NEXT !== null) {
      api.encode('POST', path, { ...JSON_CONTENT, [THEN_NEXT]: '1' }, body);
      const answer = new ResponseParser();
      answer.push(next);
      isNextAnswer({ status: answer.status, headers: answer.headers, body: answer.body });
    } else {
      api.encode('POST', path, JSON_CONTENT, body);
      api.encode('GET', NEXT_PATH);
      new ResponseParser().push(accepted);
    }
  }
}

async function main() {
  readEnvironment();
  // Portico may still be completing this environment's sandbox (joining its cgroups
  // while Node started): no function code runs until it says it is done. A spare
  // process, started before Portico knew its function, is told so here, then waits for
  // its function, and writes nothing before: its output would belong to no function.
  if (env._PORTICO_AWAIT_SANDBOX !== undefined) {
    delete env._PORTICO_AWAIT_SANDBOX;
    let answer;
    try {
      answer = await api.request('GET', `${PREFIX}/portico/sandbox`);
    } catch (e) {
      fatal(`Failed to learn whether the sandbox is ready: ${e.message}`);
      return;
    }
    if (answer.status !== 200) {
      fatal(`The sandbox is not ready: HTTP status ${answer.status}: ${answer.body.toString()}`);
      return;
    }
    let spare;
    try {
      spare = sandboxSaysSpare(answer.body);
    } catch (e) {
      fatal(`The sandbox answer is malformed: ${e.message}`);
      return;
    }
    if (spare && !(await becomeAssignedFunction())) return;
  }
  try {
    handler = await loadHandler(appRoot, handlerName);
  } catch (error) {
    logError('Uncaught Exception', error);
    die(error, 129);
    return;
  }
  handlerIsAsync = handler.constructor?.name === 'AsyncFunction';
  handlerStreams = handler[HANDLER_STREAMING] === STREAM_RESPONSE;

  let asked = api.request('GET', NEXT_PATH);
  for (;;) {
    let next;
    try {
      next = await asked;
    } catch (e) {
      fatal(`Failed to get next invocation: ${e.message}`);
      return;
    }
    if (next.status !== 200) {
      // 410: the environment is being stopped.
      if (next.status === 410) process.exit(0);
      fatal(`Failed to get next invocation, HTTP status ${next.status}: ${next.body.toString()}`);
      return;
    }
    try {
      await runInvocation(next.headers, next.body, handler, handlerStreams, beginInvocation);
    } catch (e) {
      // The next GET tells whether the Runtime API is still there.
      record('ERROR', [`Failed to post the invocation's outcome: ${e.message}`]);
    }
    if (dying) return;
    asked = current.next; // sent with the outcome
  }
}

main();

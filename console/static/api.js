// The console's one fetch wrapper and the AWS calls the pages make through the backend.
// Every non-GET request carries X-CSRF-Token; a 401 sends the browser to the sign-in page.

export const session = {
  /** The signed-in document: {accountId, accessKeyId, region, csrfToken, regions}. */
  current: null,
  /** The region the console works in (the session's unless the Region select changed it). */
  region: null,
  onSignedOut: null,
};

export class ApiError extends Error {
  constructor(message, status, code, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** The AWS error code of a response: x-amzn-ErrorType, else the body's __type/code/Type. */
function errorCode(res, doc) {
  const header = res.headers.get('x-amzn-errortype');
  const raw = header || (doc && (doc.__type || doc.code || doc.Code)) || '';
  return String(raw).split(':')[0].split('#').pop();
}

function describe(res, doc, text, what) {
  const msg = doc && (doc.message || doc.Message || doc.errorMessage);
  if (msg) return String(msg);
  const code = errorCode(res, doc);
  const body = (text || '').trim().slice(0, 300);
  return `${what} failed: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${code ? ` (${code})` : ''}${body ? `: ${body}` : ' with an empty body'}.`;
}

/**
 * Sends a request to the console backend.
 * @param {string} method
 * @param {string} path   under /console/api (e.g. "/session", "/aws/2015-03-31/functions/")
 * @param {{json?: any, body?: BodyInit, headers?: object, raw?: boolean, allow404?: boolean}} opts
 *   raw: return the Response itself (after the error check), not its parsed JSON.
 */
export async function request(method, path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  let body = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  }
  if (method !== 'GET' && method !== 'HEAD' && session.current) headers['X-CSRF-Token'] = session.current.csrfToken;
  if (session.region && session.current && session.region !== session.current.region) headers['X-Portico-Region'] = session.region;
  const what = `${method} ${path.split('?')[0]}`;
  let res;
  try {
    res = await fetch(`/console/api${path}`, { method, headers, body, credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(`${what} failed: the Portico server could not be reached (${e.message}). Is it still running?`, 0, 'NetworkError');
  }
  if (res.status === 401 && path !== '/session') {
    session.current = null;
    if (session.onSignedOut) session.onSignedOut();
    throw new ApiError('Your session has ended: sign in again.', 401, 'SignInRequired');
  }
  if (opts.raw && res.ok) return res;
  const text = await res.text();
  let doc = null;
  if (text) {
    try {
      doc = JSON.parse(text);
    } catch {
      doc = null;
    }
  }
  if (!res.ok) {
    let message = describe(res, doc, text, what);
    // The console's own endpoints answer {"message"} without saying which call failed.
    if (!path.startsWith('/aws/') && path !== '/session' && doc && doc.message) message = `${message} (${method} /console/api${path.split('?')[0]}: HTTP ${res.status})`;
    throw new ApiError(message, res.status, errorCode(res, doc), doc);
  }
  return doc;
}

const enc = encodeURIComponent;

/** Lambda REST JSON API (2015-03-31). */
export const lambda = {
  async listFunctions() {
    const out = [];
    let marker = '';
    for (;;) {
      const doc = await request('GET', `/aws/2015-03-31/functions/?MaxItems=50${marker ? `&Marker=${enc(marker)}` : ''}`);
      out.push(...(doc.Functions || []));
      if (!doc.NextMarker) return out;
      marker = doc.NextMarker;
    }
  },
  getFunction: (name) => request('GET', `/aws/2015-03-31/functions/${enc(name)}`),
  createFunction: (input) => request('POST', '/aws/2015-03-31/functions', { json: input }),
  deleteFunction: (name) => request('DELETE', `/aws/2015-03-31/functions/${enc(name)}`),
  updateCode: (name, zipBase64) => request('PUT', `/aws/2015-03-31/functions/${enc(name)}/code`, { json: { ZipFile: zipBase64 } }),
  updateConfiguration: (name, input) => request('PUT', `/aws/2015-03-31/functions/${enc(name)}/configuration`, { json: input }),
  getConcurrency: (name) => request('GET', `/aws/2019-09-30/functions/${enc(name)}/concurrency`),
  putConcurrency: (name, n) =>
    request('PUT', `/aws/2017-10-31/functions/${enc(name)}/concurrency`, { json: { ReservedConcurrentExecutions: n } }),
  deleteConcurrency: (name) => request('DELETE', `/aws/2017-10-31/functions/${enc(name)}/concurrency`),
  accountSettings: () => request('GET', '/aws/2016-08-19/account-settings/'),
  async getPolicy(name) {
    try {
      return await request('GET', `/aws/2015-03-31/functions/${enc(name)}/policy`);
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  },
  addPermission: (name, input) => request('POST', `/aws/2015-03-31/functions/${enc(name)}/policy`, { json: input }),
  /** Invoke with the log tail; returns {ok, functionError, payload, logResult, version}. */
  async invoke(name, payloadText) {
    const res = await request('POST', `/aws/2015-03-31/functions/${enc(name)}/invocations`, {
      body: payloadText,
      headers: { 'X-Amz-Log-Type': 'Tail', 'X-Amz-Invocation-Type': 'RequestResponse', 'Content-Type': 'application/json' },
      raw: true,
    });
    const payload = await res.text();
    const b64 = res.headers.get('x-amz-log-result');
    let logResult = null;
    if (b64) {
      const bin = atob(b64);
      const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
      logResult = new TextDecoder().decode(bytes);
    }
    return {
      functionError: res.headers.get('x-amz-function-error'),
      version: res.headers.get('x-amz-executed-version'),
      requestId: res.headers.get('x-amzn-requestid'),
      payload,
      logResult,
    };
  },
  /** The function's current package, as bytes: Code.Location, else Portico's download route. */
  async downloadCode(name, location) {
    if (location) {
      try {
        const url = new URL(location, window.location.href);
        if (url.origin === window.location.origin) {
          const res = await fetch(url.href, { credentials: 'omit' });
          if (res.ok) return new Uint8Array(await res.arrayBuffer());
        }
      } catch {
        // Fall through to the console route.
      }
    }
    const res = await request('GET', `/aws/2015-03-31/functions/${enc(name)}/code`, { raw: true });
    return new Uint8Array(await res.arrayBuffer());
  },
};

/** API Gateway v2 (camelCase JSON). */
export const apigw = {
  async listApis() {
    const doc = await request('GET', '/aws/v2/apis');
    return doc.items || [];
  },
  getApi: (id) => request('GET', `/aws/v2/apis/${enc(id)}`),
  createApi: (input) => request('POST', '/aws/v2/apis', { json: input }),
  updateApi: (id, input) => request('PATCH', `/aws/v2/apis/${enc(id)}`, { json: input }),
  deleteApi: (id) => request('DELETE', `/aws/v2/apis/${enc(id)}`),
  deleteCors: (id) => request('DELETE', `/aws/v2/apis/${enc(id)}/cors`),
  async list(id, kind) {
    const doc = await request('GET', `/aws/v2/apis/${enc(id)}/${kind}`);
    return doc.items || [];
  },
  create: (id, kind, input) => request('POST', `/aws/v2/apis/${enc(id)}/${kind}`, { json: input }),
  update: (id, kind, sub, input) => request('PATCH', `/aws/v2/apis/${enc(id)}/${kind}/${enc(sub)}`, { json: input }),
  remove: (id, kind, sub) => request('DELETE', `/aws/v2/apis/${enc(id)}/${kind}/${enc(sub)}`),
};

/** CloudWatch Logs (JSON 1.1). */
export const logs = {
  call: (operation, input) =>
    request('POST', '/aws/', {
      body: JSON.stringify(input),
      headers: { 'X-Amz-Target': `Logs_20140328.${operation}`, 'Content-Type': 'application/x-amz-json-1.1' },
    }),
  /** Log events of a group, oldest first; null when the group does not exist yet. */
  async filter(group, input) {
    try {
      const doc = await logs.call('FilterLogEvents', { logGroupName: group, ...input });
      return doc.events || [];
    } catch (e) {
      if (e.code === 'ResourceNotFoundException') return null;
      throw e;
    }
  },
};

/** Console-only endpoints. */
export const consoleApi = {
  functionMetrics: (name, minutes = 60) => request('GET', `/metrics/functions/${enc(name)}?minutes=${minutes}`),
  apiMetrics: (id, minutes = 60) => request('GET', `/metrics/apis/${enc(id)}?minutes=${minutes}`),
  usage: () => request('GET', '/usage'),
  failures: (id) => request('GET', `/apis/${enc(id)}/failures`),
};

// Shared by the create-API wizard and the API page.
import { lambda, session } from '../api.js';

export const METHODS = ['ANY', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

/** The function name of a Lambda ARN (or the text itself). */
export function functionNameOf(arnOrName) {
  const m = /^arn:[^:]+:lambda:[^:]+:\d{12}:function:([^:/]+)/.exec(arnOrName || '');
  return m ? m[1] : arnOrName;
}

/** The execute-api SourceArn the AWS console grants for a route: .../{apiId}/*\/*\/{path}. */
export function sourceArn(apiId, routeKey) {
  const base = `arn:aws:execute-api:${session.region}:${session.current.accountId}:${apiId}`;
  if (!routeKey.includes(' ')) return `${base}/*/${routeKey}`;
  const path = routeKey.slice(routeKey.indexOf(' ') + 1).replace(/^\//, '');
  return `${base}/*/*/${path}`;
}

function statementId(apiId) {
  const r = crypto.getRandomValues(new Uint8Array(6));
  return `apigw-${apiId}-${Array.from(r, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** Grants API Gateway permission to invoke `functionArn` for `routeKey` of `apiId` (AddPermission). */
export async function grantInvoke(functionArn, apiId, routeKey) {
  return lambda.addPermission(functionNameOf(functionArn), {
    StatementId: statementId(apiId),
    Action: 'lambda:InvokeFunction',
    Principal: 'apigateway.amazonaws.com',
    SourceArn: sourceArn(apiId, routeKey),
  });
}

/** A route path check with the console's own wording (AWS's CreateRoute would refuse it too). */
export function checkPath(path) {
  if (!path.startsWith('/')) return `The resource path ${path || '(empty)'} must start with /.`;
  if (/\s/.test(path)) return `The resource path ${path} must not contain spaces.`;
  return null;
}

/** The invoke URLs of a stage: host form and path form. */
export function invokeUrls(api, stageName) {
  const suffix = stageName && stageName !== '$default' ? `${encodeURIComponent(stageName)}/` : '';
  const endpoint = (api.apiEndpoint || '').replace(/\/$/, '');
  let port = '';
  try {
    port = new URL(endpoint).port;
  } catch {
    port = window.location.port;
  }
  const pathHost = `${window.location.protocol}//127.0.0.1${port ? `:${port}` : ''}`;
  return { host: `${endpoint}/${suffix}`, path: `${pathHost}/execute-api/${api.apiId}/${suffix}` };
}

//! The AWS-compatible control plane: Lambda (`/2015-03-31/...`), API Gateway v2
//! (`/v2/...`) and STS, spoken the way the AWS CLI and SDKs speak them.
//!
//! Each service is one module whose `route` function is a single match over
//! `(method, path)` that yields a typed action; executing it reads the catalog,
//! validates, commits changes to the store, and waits until the local catalog holds
//! the commit (read-your-writes). Errors are [`AwsError`]s, rendered in one place.
//! Before any of it, [`auth`] verifies the call's SigV4 signature and names its account.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod apigw;
pub mod async_invoke;
pub mod auth;
pub mod error;
mod json;
mod lambda;
pub mod logs;
mod sts;
mod versions;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use portico_model::{Catalog, Change, Scope};
use portico_runtime::Invoker;
use portico_store::Store;
use tokio::sync::{watch, Mutex};

pub use auth::Authentication;
pub use error::{AwsError, Result, Service};

/// Settings of the control plane.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// How callers are authenticated: SigV4 against the data dir's keys, whose account
    /// becomes the caller's, or (insecure) not at all.
    pub authentication: Authentication,
    /// The account of every caller when credentials are not verified
    /// ([`Authentication::AcceptAny`]).
    pub account_id: String,
    /// Region of an unsigned call when credentials are not verified.
    pub default_region: String,
    /// Port the public listener is bound to, for `ApiEndpoint`.
    pub public_port: u16,
    /// Function logs, served by CloudWatch Logs operations.
    pub logs: Arc<portico_store::LogStore>,
}

/// The control plane.
#[derive(Debug)]
pub struct Control {
    store: Arc<dyn Store>,
    catalog: watch::Receiver<Arc<Catalog>>,
    invoker: Arc<Invoker>,
    cfg: ControlConfig,
    /// Queued asynchronous invocations.
    events: async_invoke::AsyncInvocations,
    /// Serialises read-check-write sequences (e.g. "name is free, then create").
    write: Mutex<()>,
}

/// A caller the console signed in with an access key and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The key's account.
    pub account_id: String,
    /// The region the console addresses.
    pub region: String,
    /// The key it signed in with (presigned links, e.g. `Code.Location`, use it).
    pub access_key_id: String,
}

/// A parsed control-plane request.
#[derive(Debug)]
pub(crate) struct Call {
    /// The caller's account and region: every resource the call sees is in this scope.
    pub scope: Scope,
    /// Who signed the call.
    pub caller: auth::Caller,
    pub method: Method,
    /// Percent-decoded path segments after the service prefix.
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub request_id: String,
}

impl Call {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Which control-plane service a request is for, judged by its path and headers.
pub fn service_of(method: &Method, path: &str, headers: &HeaderMap) -> Option<Service> {
    if is_lambda_path(path) {
        Some(Service::Lambda)
    } else if path.starts_with("/v2/") || path == "/v2" {
        Some(Service::ApiGateway)
    } else if method == Method::POST
        && path == "/"
        && headers.get("x-amz-target").and_then(|t| t.to_str().ok()).is_some_and(|t| t.starts_with(logs::TARGET_PREFIX))
    {
        Some(Service::Logs)
    } else if (method == Method::POST || method == Method::GET) && path == "/" && !headers.contains_key("x-amz-target")
    {
        // STS's query protocol: a form POST, or a GET with the parameters in the query
        // (a presigned GetCallerIdentity URL). [`Control::handle`] answers a GET with no
        // `Action` as the listener answers any unknown path.
        Some(Service::Sts)
    } else {
        None
    }
}

/// Whether a request head announces a body: `Transfer-Encoding`, or a `Content-Length`
/// other than 0 (an unparsable one counts: the listener refuses it anyway).
fn announces_body(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get_all(http::header::CONTENT_LENGTH)
            .iter()
            .any(|v| v.to_str().map_or(true, |v| v.trim().parse::<u64>().map_or(true, |n| n > 0)))
}

/// Whether a query string carries an `Action` parameter (STS's query protocol).
fn has_action(query: Option<&str>) -> bool {
    query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "Action"))
}

/// Lambda's REST paths start with the API version of the operation's model, a date:
/// `/2015-03-31/functions`, `/2017-10-31/functions/{name}/concurrency`,
/// `/2016-08-19/account-settings`, ...
fn is_lambda_path(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() > 12
        && b[0] == b'/'
        && b[11] == b'/'
        && b[1..11].iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
        && b[1..3] == *b"20"
}

impl Control {
    /// A control plane over `store`, reading `catalog`, invoking through `invoker`.
    pub fn new(
        store: Arc<dyn Store>,
        catalog: watch::Receiver<Arc<Catalog>>,
        invoker: Arc<Invoker>,
        events: async_invoke::AsyncInvocations,
        cfg: ControlConfig,
    ) -> Arc<Control> {
        Arc::new(Control { store, catalog, invoker, cfg, events, write: Mutex::new(()) })
    }

    /// The answer to a call that can be refused from its head alone, before its body is
    /// read: unsigned, malformed, or signed with an unknown key (see [`auth`]). `None`
    /// when the head passes; [`Control::handle`] still verifies the whole signature.
    ///
    /// A call that announces no body (no `Content-Length` above 0, no
    /// `Transfer-Encoding`) has nothing to refuse unread: it passes here and
    /// [`Control::handle`] makes the same checks, in the same order, with the same
    /// answers, so its key is read once, not twice.
    pub fn refuse_early(&self, service: Service, parts: &http::request::Parts) -> Option<Response<Full<Bytes>>> {
        if !announces_body(&parts.headers) {
            return None;
        }
        let (path, query) = (parts.uri.path(), parts.uri.query());
        auth::precheck(&self.cfg, service, &parts.method, path, query, &parts.headers)
            .err()
            .map(|e| e.render(service, &portico_model::ids::uuid()))
    }

    /// Handles one request for `service`. `path` and `query` are the raw URI parts.
    /// The caller is authenticated first ([`auth`]): its key's account and its signature's
    /// region are the scope of everything the call reads or writes.
    pub async fn handle(
        self: &Arc<Self>,
        service: Service,
        method: Method,
        path: &str,
        query: Option<&str>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let request_id = portico_model::ids::uuid();
        if service == Service::Sts && method == Method::GET && !has_action(query) {
            // `GET /` without an STS action is no call at all (a browser, a health probe).
            let mut r = Response::new(Full::new(Bytes::from_static(b"Not Found\n")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return r;
        }
        // Nothing is read before the caller is known.
        let caller = match auth::authenticate(&self.cfg, service, &method, path, query, &headers, &body) {
            Ok(c) => c,
            Err(e) => return e.render(service, &request_id),
        };
        self.dispatch(service, caller, method, path, query, headers, body, request_id).await
    }

    /// Handles one request for `service` made by a caller the console has already
    /// authenticated (its signed-in session, see [`Control::check_secret`]): the same
    /// operations and answers as a signed call of `signed_in`'s key in `signed_in.region`.
    pub async fn handle_signed_in(
        self: &Arc<Self>,
        signed_in: &SignedIn,
        service: Service,
        request: http::Request<Bytes>,
    ) -> Response<Full<Bytes>> {
        let caller = auth::Caller {
            account_id: signed_in.account_id.clone(),
            region: signed_in.region.clone(),
            access_key_id: Some(signed_in.access_key_id.clone()),
        };
        let (http::request::Parts { method, uri, headers, .. }, body) = request.into_parts();
        self.dispatch(service, caller, method, uri.path(), uri.query(), headers, body, portico_model::ids::uuid()).await
    }

    /// The account of the access key `access_key_id` when `secret` is its secret (compared
    /// in constant time); `None` for an unknown key or a wrong secret. Under
    /// `--insecure-accept-any-credentials` every key is the configured account's.
    pub fn check_secret(&self, access_key_id: &str, secret: &str) -> std::result::Result<Option<String>, AwsError> {
        auth::check_secret(&self.cfg, access_key_id, secret)
    }

    /// The region of a call that names none.
    pub fn default_region(&self) -> &str {
        &self.cfg.default_region
    }

    /// Runs an authenticated call.
    #[allow(clippy::too_many_arguments)]
    async fn dispatch(
        self: &Arc<Self>,
        service: Service,
        caller: auth::Caller,
        method: Method,
        path: &str,
        query: Option<&str>,
        headers: HeaderMap,
        body: Bytes,
        request_id: String,
    ) -> Response<Full<Bytes>> {
        let query: Vec<(String, String)> =
            query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        let prefix_len = match service {
            Service::Lambda => "/2015-03-31/".len(),
            Service::ApiGateway => "/v2/".len(),
            Service::Sts | Service::Logs => 1,
        };
        let segments = path
            .get(prefix_len.min(path.len())..)
            .unwrap_or("")
            .split('/')
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let call = Call {
            scope: Scope { account_id: caller.account_id.clone(), region: caller.region.clone() },
            caller,
            method,
            segments,
            query,
            headers,
            body,
            request_id,
        };
        let result = match service {
            Service::Lambda => lambda::handle(self, &call).await,
            Service::ApiGateway => apigw::handle(self, &call).await,
            Service::Sts => sts::handle(self, &call),
            Service::Logs => logs::handle(self, &call).await,
        };
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                if e.status.is_server_error() {
                    tracing::error!(code = e.code, "{}", e.message);
                }
                e.render(service, &call.request_id)
            }
        };
        if let Ok(v) = HeaderValue::from_str(&call.request_id) {
            resp.headers_mut().entry("x-amzn-requestid").or_insert(v);
        }
        resp
    }

    /// The current catalog.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// Commits `changes` durably and waits until the local catalog includes them.
    pub(crate) async fn commit(&self, changes: Vec<Change>) -> Result<()> {
        let store = self.store.clone();
        let revision = tokio::task::spawn_blocking(move || store.commit(changes))
            .await
            .map_err(|e| AwsError::service(format!("store task failed: {e}")))?
            .map_err(|e| AwsError::service(format!("store: {e}")))?;
        let mut rx = self.catalog.clone();
        rx.wait_for(|c| c.revision >= revision).await.map_err(|_| AwsError::service("catalog publisher stopped"))?;
        Ok(())
    }
}

/// A JSON response with `status`.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON response with `status`, serialised straight from a typed document.
pub(crate) fn typed_json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Result<Response<Full<Bytes>>> {
    let bytes = serde_json::to_vec(body).map_err(|e| AwsError::service(format!("encoding the response: {e}")))?;
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// An empty response with `status`.
pub(crate) fn empty_response(status: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_of_sends_sts_posts_and_gets_to_sts() {
        let none = HeaderMap::new();
        let mut logs = HeaderMap::new();
        logs.insert("x-amz-target", HeaderValue::from_static("Logs_20140328.DescribeLogGroups"));
        let mut other = HeaderMap::new();
        other.insert("x-amz-target", HeaderValue::from_static("DynamoDB_20120810.ListTables"));
        for (method, path, headers, want) in [
            (Method::POST, "/", &none, Some(Service::Sts)),
            (Method::GET, "/", &none, Some(Service::Sts)),
            (Method::POST, "/", &logs, Some(Service::Logs)),
            (Method::GET, "/", &logs, None),
            (Method::POST, "/", &other, None),
            (Method::GET, "/", &other, None),
            (Method::PUT, "/", &none, None),
            (Method::GET, "/favicon.ico", &none, None),
            (Method::GET, "/2015-03-31/functions/", &none, Some(Service::Lambda)),
            (Method::GET, "/v2/apis", &none, Some(Service::ApiGateway)),
        ] {
            assert_eq!(service_of(&method, path, headers), want, "{method} {path} {headers:?}");
        }
    }

    #[test]
    fn has_action_reads_the_query() {
        assert!(has_action(Some("Action=GetCallerIdentity&Version=2011-06-15")));
        assert!(has_action(Some("Version=2011-06-15&X-Amz-Date=x&Action=")));
        assert!(!has_action(Some("Version=2011-06-15&XAction=1")));
        assert!(!has_action(Some("")));
        assert!(!has_action(None));
    }
}

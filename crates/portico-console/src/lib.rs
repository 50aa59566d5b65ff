//! Portico's web console, served at `/console/` on the public port.
//!
//! The pages ([`assets`]) are plain ES modules embedded in the binary. They do every
//! step through the same AWS APIs the CLI uses: `/console/api/aws/{path}` hands the call
//! to the control plane ([`Control::handle_signed_in`]) as the signed-in account, so
//! the console can do nothing a signed call of that key could not, and answers with
//! the control plane's own documents and errors. What AWS keeps in CloudWatch metrics
//! and the console computes (per-minute series, usage for costs, the gateway's recent
//! failures with their reasons) comes from the runtime's and the gateway's in-memory
//! recorders.
//!
//! Sessions ([`session`]): sign-in with an access key and its secret; an `HttpOnly`,
//! `SameSite=Strict` cookie; a CSRF token required on every state change; sign-out.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod assets;
pub mod session;

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use portico_control::{service_of, Control, SignedIn};
use portico_gateway::Gateway;
use portico_model::{Runtime, Scope};
use portico_runtime::Invoker;
use serde::{Deserialize, Serialize};
use session::{Session, Sessions};

/// Where the console lives on the public port.
pub const PREFIX: &str = "/console";
/// The header naming the region of one call (the session's region otherwise).
const REGION_HEADER: &str = "x-portico-region";
/// The header carrying the session's CSRF token.
const CSRF_HEADER: &str = "x-csrf-token";
/// Regions the console offers (any valid name may be sent).
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
];
/// Largest sign-in form.
const SIGN_IN_BODY: usize = 16 * 1024;
/// Most minutes of a metrics series (the recorders keep three hours).
const MAX_MINUTES: u32 = 180;

/// Whether a request is for the console.
pub fn is_console_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/console/")
}

/// The console.
#[derive(Debug)]
pub struct Console {
    control: Arc<Control>,
    invoker: Arc<Invoker>,
    gateway: Arc<Gateway>,
    sessions: Sessions,
}

/// A refusal, rendered as `{"message": ...}` with its status.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal { status, message: message.into() }
    }
    fn not_found() -> Refusal {
        Refusal::new(StatusCode::NOT_FOUND, "no such console endpoint")
    }

    /// The answer, with the console's security headers.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut r = render(self);
        assets::secure(r.headers_mut());
        r
    }
}

/// The sign-in form.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignIn {
    access_key_id: String,
    secret_access_key: String,
    region: Option<String>,
}

/// What the pages know of their session.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionDoc<'a> {
    account_id: &'a str,
    access_key_id: &'a str,
    region: &'a str,
    csrf_token: &'a str,
    regions: &'a [&'a str],
    runtimes: Vec<RuntimeDoc>,
}

/// A runtime and whether this host can run it (Create function offers those it can).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeDoc {
    id: &'static str,
    available: bool,
    /// Why not, and how to fix it, when unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|e| format!("{{\"message\":\"encoding: {e}\"}}").into_bytes());
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn render(refusal: Refusal) -> Response<Full<Bytes>> {
    json(refusal.status, &serde_json::json!({ "message": refusal.message }))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The `minutes` query parameter, 60 by default, at most [`MAX_MINUTES`].
fn minutes(query: Option<&str>) -> u32 {
    query
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "minutes").and_then(|(_, v)| v.parse::<u32>().ok())
        })
        .unwrap_or(60)
        .clamp(1, MAX_MINUTES)
}

/// One percent-decoded path segment (`None` when not UTF-8).
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Console {
    /// The console over the control plane, reading the runtime's and the gateway's
    /// recorders.
    pub fn new(control: Arc<Control>, invoker: Arc<Invoker>, gateway: Arc<Gateway>) -> Console {
        Console { control, invoker, gateway, sessions: Sessions::default() }
    }

    fn session_doc(&self, s: &Session) -> Response<Full<Bytes>> {
        let launchers = self.invoker.launchers();
        let runtimes = Runtime::ALL
            .iter()
            .map(|&r| {
                let got = launchers.get(r);
                RuntimeDoc { id: r.as_str(), available: got.is_ok(), reason: got.err().map(|e| e.0.clone()) }
            })
            .collect();
        json(
            StatusCode::OK,
            &SessionDoc {
                account_id: &s.account_id,
                access_key_id: &s.access_key_id,
                region: &s.region,
                csrf_token: &s.csrf_token,
                regions: REGIONS,
                runtimes,
            },
        )
    }

    /// Judges a console request from its head, before its body is read: how many body
    /// bytes it may send (`max` for a signed-in call, a few KiB for the sign-in form), or
    /// the answer that refuses it unread (no session, no CSRF token, another origin).
    pub fn admit(&self, parts: &http::request::Parts, max: usize) -> Result<usize, Refusal> {
        let api = parts.uri.path().strip_prefix("/console/api/");
        match api {
            None => Ok(0),
            Some("session") if parts.method == Method::POST => Ok(SIGN_IN_BODY),
            Some(_) => {
                self.signed_in(parts)?;
                Ok(max)
            }
        }
    }

    /// The session of a request, checked as every API call is: its cookie names a live
    /// session and, for a state change, the request comes from the console's own origin
    /// and carries the session's CSRF token.
    fn signed_in<'a>(&self, parts: &'a http::request::Parts) -> Result<(&'a str, Session), Refusal> {
        let changes = !(parts.method == Method::GET || parts.method == Method::HEAD);
        if changes {
            same_origin(&parts.headers)?;
        }
        let token =
            session::token_from_cookies(parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()));
        let Some((token, session)) = token.and_then(|t| self.sessions.get(t).map(|s| (t, s))) else {
            return Err(Refusal::new(StatusCode::UNAUTHORIZED, "sign in first"));
        };
        if changes && !header_str(&parts.headers, CSRF_HEADER).is_some_and(|t| session.csrf_matches(t)) {
            return Err(Refusal::new(StatusCode::FORBIDDEN, "missing or wrong CSRF token"));
        }
        Ok((token, session))
    }

    /// Answers one console request (`is_console_path`); `body` is the whole request body.
    pub async fn handle(&self, parts: http::request::Parts, body: Bytes) -> Response<Full<Bytes>> {
        let path = parts.uri.path().to_string();
        let mut resp = match path.strip_prefix(PREFIX).unwrap_or("") {
            "" => {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
                r.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/console/"));
                r
            }
            "/" | "/index.html" if parts.method == Method::GET || parts.method == Method::HEAD => assets::index(),
            rest => match rest.strip_prefix("/static/") {
                Some(file) if parts.method == Method::GET || parts.method == Method::HEAD => {
                    assets::file(file).unwrap_or_else(|| render(Refusal::new(StatusCode::NOT_FOUND, "no such file")))
                }
                _ => match rest.strip_prefix("/api/") {
                    Some(api) => {
                        let api = api.to_string();
                        let mut r = self.api(&parts, &api, body).await.unwrap_or_else(render);
                        // Answers about the session and the account's resources are never cached.
                        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        r
                    }
                    None => render(Refusal::not_found()),
                },
            },
        };
        assets::secure(resp.headers_mut());
        resp
    }

    async fn api(
        &self,
        parts: &http::request::Parts,
        api: &str,
        body: Bytes,
    ) -> Result<Response<Full<Bytes>>, Refusal> {
        let method = &parts.method;
        if api == "session" && method == Method::POST {
            same_origin(&parts.headers)?;
            return self.sign_in(parts, &body);
        }
        let (token, session) = self.signed_in(parts)?;
        let region = match header_str(&parts.headers, REGION_HEADER) {
            Some(r) if portico_auth::valid_region(r) => r.to_string(),
            Some(r) => return Err(Refusal::new(StatusCode::BAD_REQUEST, format!("{r:?} is not a region name"))),
            None => session.region.clone(),
        };
        let scope = Scope { account_id: session.account_id.clone(), region };
        let segments: Vec<&str> = api.split('/').collect();
        match (method.clone(), segments.as_slice()) {
            (Method::GET, ["session"]) => Ok(self.session_doc(&session)),
            (Method::DELETE, ["session"]) => {
                self.sessions.end(token);
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                set_cookie(&mut r, None);
                Ok(r)
            }
            (_, ["aws", ..]) => {
                let rest = api.strip_prefix("aws").unwrap_or("");
                let path = if rest.is_empty() { "/" } else { rest };
                Ok(self.bridge(parts, &session, scope.region, path, body).await)
            }
            (Method::GET, ["metrics", "functions", name]) => {
                let name = percent_decode(name).ok_or_else(Refusal::not_found)?;
                let points = self.invoker.metrics().series(&scope, &name, now_ms(), minutes(parts.uri.query()));
                Ok(json(StatusCode::OK, &serde_json::json!({ "periodSeconds": 60, "points": points })))
            }
            (Method::GET, ["metrics", "apis", api_id]) => {
                let points = self.gateway.metrics().series(&scope, api_id, now_ms(), minutes(parts.uri.query()));
                Ok(json(StatusCode::OK, &serde_json::json!({ "periodSeconds": 60, "points": points })))
            }
            (Method::GET, ["usage"]) => Ok(json(
                StatusCode::OK,
                &serde_json::json!({
                    "since": self.invoker.metrics().since_ms(),
                    "functions": self.invoker.metrics().usage(&scope),
                    "apis": self.gateway.metrics().usage(&scope),
                }),
            )),
            (Method::GET, ["apis", api_id, "failures"]) => Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "failures": self.gateway.metrics().failures(&scope, api_id) }),
            )),
            _ => Err(Refusal::not_found()),
        }
    }

    fn sign_in(&self, parts: &http::request::Parts, body: &Bytes) -> Result<Response<Full<Bytes>>, Refusal> {
        // A JSON body cannot be posted across sites without a CORS preflight, which the
        // console never grants: no other site can sign a visitor in to its own account.
        let is_json = header_str(&parts.headers, "content-type")
            .is_some_and(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
        if !is_json {
            return Err(Refusal::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "sign-in takes a JSON body"));
        }
        let form: SignIn = serde_json::from_slice(body)
            .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("the sign-in form is not valid: {e}")))?;
        let region = form.region.unwrap_or_else(|| self.control.default_region().to_string());
        if !portico_auth::valid_region(&region) {
            return Err(Refusal::new(StatusCode::BAD_REQUEST, format!("{region:?} is not a region name")));
        }
        let account = self
            .control
            .check_secret(form.access_key_id.trim(), form.secret_access_key.trim())
            .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e.message))?;
        let Some(account_id) = account else {
            tracing::debug!(key = form.access_key_id, "console sign-in refused");
            return Err(Refusal::new(StatusCode::UNAUTHORIZED, "The access key ID or secret access key is not valid."));
        };
        let (token, session) = self.sessions.start(account_id, form.access_key_id.trim().to_string(), region);
        let mut r = self.session_doc(&session);
        set_cookie(&mut r, Some(&token));
        Ok(r)
    }

    /// Hands a call to the control plane as the session's account, in `region`.
    async fn bridge(
        &self,
        parts: &http::request::Parts,
        session: &Session,
        region: String,
        path: &str,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let mut headers = parts.headers.clone();
        // The control plane never sees the session's secrets.
        headers.remove(header::COOKIE);
        headers.remove(CSRF_HEADER);
        let Some(service) = service_of(&parts.method, path, &headers) else {
            return render(Refusal::new(StatusCode::NOT_FOUND, format!("{} {path} is no AWS operation", parts.method)));
        };
        let uri = match parts.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        let mut request = http::Request::new(body);
        match uri.parse() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(_) => return render(Refusal::new(StatusCode::BAD_REQUEST, format!("{uri:?} is not a valid path"))),
        }
        *request.method_mut() = parts.method.clone();
        *request.headers_mut() = headers;
        let signed_in =
            SignedIn { account_id: session.account_id.clone(), region, access_key_id: session.access_key_id.clone() };
        self.control.handle_signed_in(&signed_in, service, request).await
    }
}

/// A state-changing request from a page must come from the console's own origin: the
/// browser's `Origin` (when it sends one) names the same host.
fn same_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    let (Some(origin), Some(host)) = (header_str(headers, "origin"), header_str(headers, "host")) else {
        return Ok(());
    };
    let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    if origin_host == Some(host) {
        Ok(())
    } else {
        Err(Refusal::new(StatusCode::FORBIDDEN, format!("a request from {origin} cannot change anything here")))
    }
}

fn set_cookie(r: &mut Response<Full<Bytes>>, token: Option<&str>) {
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(token)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_default_and_bounds() {
        assert_eq!(minutes(None), 60);
        assert_eq!(minutes(Some("minutes=15")), 15);
        assert_eq!(minutes(Some("x=1&minutes=100000")), MAX_MINUTES);
        assert_eq!(minutes(Some("minutes=0")), 1);
        assert_eq!(minutes(Some("minutes=abc")), 60);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn only_the_same_origin_may_change_things() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h).is_ok());
        h.insert("host", HeaderValue::from_static("127.0.0.1:4750"));
        h.insert("origin", HeaderValue::from_static("http://127.0.0.1:4750"));
        assert!(same_origin(&h).is_ok());
        h.insert("origin", HeaderValue::from_static("http://evil.example"));
        assert_eq!(same_origin(&h).map_err(|r| r.status), Err(StatusCode::FORBIDDEN));
        h.insert("origin", HeaderValue::from_static("null"));
        assert!(same_origin(&h).is_err());
    }
}

//! Payload format 2.0: the event API Gateway HTTP APIs send a Lambda proxy
//! integration, and the rules that turn the function's answer into an HTTP response.
//!
//! The event is serialised straight from borrowed request parts into one buffer: no
//! intermediate JSON tree and no copies of header values or of the body.
//!
//! Event rules (AWS "Create AWS Lambda proxy integrations for HTTP APIs", format 2.0,
//! unless noted):
//! - Fields with nothing to say are left out, never `null`: `cookies`,
//!   `queryStringParameters`, `pathParameters`, `stageVariables` and `body`.
//!   `isBase64Encoded` is always present.
//! - `headers` has lower-case names; repeated headers are joined with `,`. The `Cookie`
//!   header is not in `headers`: its cookies are split on `;` into `cookies`.
//! - `queryStringParameters` are decoded (`+` as a space, then percent-decoding, as
//!   API Gateway does for query strings; see aws/aws-cdk#19827); repeated keys are
//!   joined with `,`. `rawQueryString` is the query as sent.
//! - `rawPath` and `requestContext.http.path` are the path as the client sent it,
//!   stage prefix included (`/dev/hello` for stage `dev`).
//! - The body is passed as text only when it is valid UTF-8 and its `Content-Type` is
//!   `text/*`, `application/json`, `application/xml` or `application/javascript`;
//!   anything else, a missing `Content-Type` or `application/x-www-form-urlencoded`
//!   included, is base64-encoded with `isBase64Encoded: true`. AWS does not list the
//!   types; this split is the one measured against AWS in ministackorg/ministack#766.
//! - `requestContext.time` is `dd/MMM/yyyy:HH:mm:ss +0000` (`12/Mar/2020:19:03:58 +0000`),
//!   `timeEpoch` milliseconds.
//!
//! Response rules (same AWS page, "Lambda function response for format 2.0"):
//! - A JSON object with a `statusCode` is a structured response: `statusCode`,
//!   `headers`, `multiValueHeaders`, `cookies` (one `Set-Cookie` each), `body` and
//!   `isBase64Encoded` are read; other fields are ignored. Without a `Content-Type`
//!   header the answer gets `text/plain; charset=utf-8`, as HTTP APIs were observed to
//!   send (AWS leaves it undocumented).
//! - Any other valid JSON ("returns valid JSON and doesn't return a statusCode") is
//!   inferred: status 200, `content-type: application/json`, body = the function's
//!   response, byte for byte (so a JSON string keeps its quotes).
//! - Anything else is a [`BadResponse`], which the gateway answers with 502.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use base64::display::Base64Display;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use percent_encoding::percent_decode_str;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// The parts of an HTTP request the event is built from.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The request method (`GET`).
    pub method: &'a str,
    /// The path as sent, stage prefix included, without the query string.
    pub raw_path: &'a str,
    /// The query string as sent, without `?`; empty when there is none.
    pub raw_query: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The request body.
    pub body: &'a [u8],
    /// The client's IP address.
    pub source_ip: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`...
    pub protocol: &'a str,
}

/// What the gateway knows about the request beyond its HTTP parts.
#[derive(Debug, Clone, Copy)]
pub struct EventContext<'a> {
    /// The API owner's account id.
    pub account_id: &'a str,
    /// The API id.
    pub api_id: &'a str,
    /// The host the request was sent to, without port.
    pub domain_name: &'a str,
    /// The first label of `domain_name`.
    pub domain_prefix: &'a str,
    /// The `apigw-requestid` of this request.
    pub request_id: &'a str,
    /// The selected route's key.
    pub route_key: &'a str,
    /// The stage name (`$default`, `dev`).
    pub stage: &'a str,
    /// When the request arrived, in milliseconds since the epoch.
    pub time_epoch_ms: i64,
    /// The route's path variables and their decoded values.
    pub path_parameters: &'a [(&'a str, String)],
    /// The stage's variables.
    pub stage_variables: &'a BTreeMap<String, String>,
}

/// Builds the payload format 2.0 event for a request, as JSON.
pub fn event(req: &RequestView<'_>, ctx: &EventContext<'_>) -> Vec<u8> {
    let body = Body::of(req);
    let query = (!req.raw_query.is_empty()).then(|| Query::parse(req.raw_query));
    let user_agent = req.headers.get(USER_AGENT).map_or(Cow::Borrowed(""), |v| lossy(v));
    let event = Event {
        version: "2.0",
        route_key: ctx.route_key,
        raw_path: req.raw_path,
        raw_query_string: req.raw_query,
        cookies: Cookies(req.headers),
        headers: Headers(req.headers),
        query_string_parameters: query.filter(|q| !q.0.is_empty()),
        request_context: RequestContext {
            account_id: ctx.account_id,
            api_id: ctx.api_id,
            domain_name: ctx.domain_name,
            domain_prefix: ctx.domain_prefix,
            http: Http {
                method: req.method,
                path: req.raw_path,
                protocol: req.protocol,
                source_ip: req.source_ip,
                user_agent,
            },
            request_id: ctx.request_id,
            route_key: ctx.route_key,
            stage: ctx.stage,
            time: Time(ctx.time_epoch_ms),
            time_epoch: ctx.time_epoch_ms,
        },
        is_base64_encoded: matches!(body, Body::Binary(_)),
        body,
        path_parameters: PathParameters(ctx.path_parameters),
        stage_variables: ctx.stage_variables,
    };
    // Room for the fixed fields plus the variable parts; base64 grows the body by 4/3.
    let headers_len: usize = req.headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 6).sum();
    let capacity = 768 + headers_len + req.raw_path.len() * 2 + req.raw_query.len() * 2 + req.body.len() / 3 * 4 + 4;
    let mut buf = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut buf, &event)
        .expect("serialising to a Vec cannot fail: no I/O, and every map key is a string");
    buf
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Cookies::is_empty")]
    cookies: Cookies<'a>,
    headers: Headers<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<Query<'a>>,
    request_context: RequestContext<'a>,
    #[serde(skip_serializing_if = "Body::is_empty")]
    body: Body<'a>,
    #[serde(skip_serializing_if = "PathParameters::is_empty")]
    path_parameters: PathParameters<'a>,
    is_base64_encoded: bool,
    #[serde(skip_serializing_if = "no_stage_variables")]
    stage_variables: &'a BTreeMap<String, String>,
}

fn no_stage_variables(v: &&BTreeMap<String, String>) -> bool {
    v.is_empty()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    account_id: &'a str,
    api_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: Http<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: Time,
    time_epoch: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: Cow<'a, str>,
}

/// A header value as text; header values are meant to be ASCII, anything else is
/// replaced rather than dropped.
fn lossy(v: &HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(v.as_bytes())
}

/// `headers`: every header but `Cookie`, repeated ones joined with `,`.
struct Headers<'a>(&'a HeaderMap);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for name in self.0.keys() {
            if name != COOKIE {
                map.serialize_entry(name.as_str(), &Joined(self.0, name))?;
            }
        }
        map.end()
    }
}

/// All values of one header, joined with `,` while being written.
struct Joined<'a>(&'a HeaderMap, &'a HeaderName);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.get_all(self.1).iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&lossy(v))?;
        }
        Ok(())
    }
}

impl Serialize for Joined<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `cookies`: the `Cookie` headers split on `;`.
struct Cookies<'a>(&'a HeaderMap);

impl<'a> Cookies<'a> {
    fn iter(&self) -> impl Iterator<Item = &'a [u8]> {
        self.0
            .get_all(COOKIE)
            .into_iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .map(<[u8]>::trim_ascii)
            .filter(|c| !c.is_empty())
    }

    fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl Serialize for Cookies<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for c in self.iter() {
            seq.serialize_element(&String::from_utf8_lossy(c))?;
        }
        seq.end()
    }
}

/// `queryStringParameters`, in order of first appearance.
struct Query<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Query<'a> {
    fn parse(raw: &'a str) -> Query<'a> {
        let mut pairs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        // Index by key so a query with thousands of parameters stays linear.
        let mut seen: HashMap<Cow<'a, str>, usize> = HashMap::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (form_decode(k), form_decode(v));
            match seen.get(&k) {
                Some(&i) => {
                    let joined = pairs[i].1.to_mut();
                    joined.push(',');
                    joined.push_str(&v);
                }
                None => {
                    seen.insert(k.clone(), pairs.len());
                    pairs.push((k, v));
                }
            }
        }
        Query(pairs)
    }
}

/// Decodes one query component: `+` is a space, then percent-decoding.
fn form_decode(s: &str) -> Cow<'_, str> {
    if s.contains('+') {
        let spaced = s.replace('+', " ");
        Cow::Owned(percent_decode_str(&spaced).decode_utf8_lossy().into_owned())
    } else {
        percent_decode_str(s).decode_utf8_lossy()
    }
}

impl Serialize for Query<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct PathParameters<'a>(&'a [(&'a str, String)]);

impl PathParameters<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for PathParameters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `body`: left out when empty, text when it is text, base64 otherwise.
enum Body<'a> {
    Empty,
    Text(&'a str),
    Binary(&'a [u8]),
}

impl<'a> Body<'a> {
    fn of(req: &RequestView<'a>) -> Body<'a> {
        if req.body.is_empty() {
            return Body::Empty;
        }
        if is_text(req.headers) {
            if let Ok(text) = std::str::from_utf8(req.body) {
                return Body::Text(text);
            }
        }
        Body::Binary(req.body)
    }

    fn is_empty(&self) -> bool {
        matches!(self, Body::Empty)
    }
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Body::Empty => s.serialize_str(""),
            Body::Text(text) => s.serialize_str(text),
            // Encoded while being written: no base64 copy of the body.
            Body::Binary(bytes) => s.collect_str(&Base64Display::new(bytes, &STANDARD)),
        }
    }
}

/// Whether the request's `Content-Type` is one API Gateway passes as text.
fn is_text(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media = ct.split_once(';').map_or(ct, |(m, _)| m).trim();
    media.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("text/"))
        || ["application/json", "application/xml", "application/javascript"]
            .iter()
            .any(|t| media.eq_ignore_ascii_case(t))
}

/// `requestContext.time`, written straight into the output.
struct Time(i64);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let at = chrono::DateTime::from_timestamp_millis(self.0).unwrap_or_default();
        s.collect_str(&at.format("%d/%b/%Y:%H:%M:%S +0000"))
    }
}

/// A function's answer mapped to an HTTP response.
#[derive(Debug, Clone)]
pub struct MappedResponse {
    /// The status code.
    pub status: StatusCode,
    /// The headers, `Set-Cookie` from `cookies` included.
    pub headers: HeaderMap,
    /// The body, base64-decoded when the function said so.
    pub body: Bytes,
}

/// Why a function's answer is not a valid format 2.0 response (the gateway answers
/// 502 and logs this).
#[derive(Debug, thiserror::Error)]
pub enum BadResponse {
    /// The payload is not JSON at all (or has a duplicate field).
    #[error("the function's response is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    /// `statusCode` is not an integer from 100 to 599.
    #[error("statusCode must be an integer from 100 to 599, got {0}")]
    StatusCode(String),
    /// `headers` is not an object.
    #[error("headers must be an object, got {0}")]
    Headers(&'static str),
    /// `multiValueHeaders` is not an object.
    #[error("multiValueHeaders must be an object, got {0}")]
    MultiValueHeaders(&'static str),
    /// A header value is not a string (numbers and booleans are accepted as text).
    #[error("header {name:?} must be a string, got {kind}")]
    HeaderValue {
        /// The header's name as the function wrote it.
        name: String,
        /// The JSON type found.
        kind: &'static str,
    },
    /// A `multiValueHeaders` entry is not an array.
    #[error("multiValueHeaders {name:?} must be an array of strings, got {kind}")]
    MultiValueHeader {
        /// The header's name as the function wrote it.
        name: String,
        /// The JSON type found.
        kind: &'static str,
    },
    /// A header name or value is not valid in HTTP.
    #[error("header {0:?} has an invalid name or value")]
    InvalidHeader(String),
    /// `cookies` is not an array.
    #[error("cookies must be an array of strings, got {0}")]
    Cookies(&'static str),
    /// An element of `cookies` is not a string.
    #[error("cookies must hold strings only, got {0}")]
    Cookie(&'static str),
    /// A cookie is not a valid `Set-Cookie` value.
    #[error("cookie {0:?} is not a valid Set-Cookie value")]
    InvalidCookie(String),
    /// `body` is not a string.
    #[error("body must be a string, got {0}")]
    Body(&'static str),
    /// `isBase64Encoded` is not a boolean.
    #[error("isBase64Encoded must be a boolean, got {0}")]
    IsBase64Encoded(&'static str),
    /// `isBase64Encoded` is true but `body` is not base64.
    #[error("isBase64Encoded is true but body is not valid base64: {0}")]
    Base64(base64::DecodeError),
}

/// The fields of a structured response; each is checked by hand to name the defect.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Structured {
    status_code: Option<Value>,
    headers: Option<Value>,
    multi_value_headers: Option<Value>,
    cookies: Option<Value>,
    body: Option<Value>,
    is_base64_encoded: Option<Value>,
}

/// Base64 as AWS's decoder reads it: padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Headers the gateway owns: the function cannot frame the connection.
const HOP_BY_HOP: [&str; 8] =
    ["connection", "content-length", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/// Maps a function's answer (the invoke payload) to an HTTP response.
pub fn response(payload: &[u8]) -> Result<MappedResponse, BadResponse> {
    // Only an object can be structured; checking the first byte keeps a JSON array from
    // being read positionally into the struct below.
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let mut parsed: Structured = serde_json::from_slice(payload).map_err(BadResponse::NotJson)?;
        if let Some(status) = parsed.status_code.take() {
            return structured(&status, parsed);
        }
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(payload).map_err(BadResponse::NotJson)?;
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(MappedResponse { status: StatusCode::OK, headers, body: Bytes::copy_from_slice(payload) })
}

fn structured(status: &Value, parsed: Structured) -> Result<MappedResponse, BadResponse> {
    let status = status
        .as_u64()
        .filter(|code| (100..=599).contains(code))
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| BadResponse::StatusCode(status.to_string()))?;
    let mut headers = HeaderMap::new();
    match parsed.headers {
        None => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let not_text = |kind| BadResponse::HeaderValue { name: name.clone(), kind };
                let Some(text) = header_text(&value).map_err(not_text)? else {
                    continue;
                };
                let (hname, hvalue) = header(&name, &text)?;
                headers.insert(hname, hvalue);
            }
        }
        Some(other) => return Err(BadResponse::Headers(kind(&other))),
    }
    match parsed.multi_value_headers {
        None => {}
        Some(Value::Object(map)) => {
            for (name, values) in map {
                let values = match values {
                    Value::Array(values) => values,
                    Value::Null => continue,
                    other => return Err(BadResponse::MultiValueHeader { name, kind: kind(&other) }),
                };
                for value in values {
                    let not_text = |kind| BadResponse::HeaderValue { name: name.clone(), kind };
                    let Some(text) = header_text(&value).map_err(not_text)? else {
                        continue;
                    };
                    let (hname, hvalue) = header(&name, &text)?;
                    // A pair given in both headers and multiValueHeaders appears once.
                    if !headers.get_all(&hname).iter().any(|v| v == hvalue) {
                        headers.append(hname, hvalue);
                    }
                }
            }
        }
        Some(other) => return Err(BadResponse::MultiValueHeaders(kind(&other))),
    }
    match parsed.cookies {
        None => {}
        Some(Value::Array(cookies)) => {
            for cookie in cookies {
                let Value::String(cookie) = cookie else {
                    return Err(BadResponse::Cookie(kind(&cookie)));
                };
                let value =
                    HeaderValue::try_from(cookie.as_str()).map_err(|_| BadResponse::InvalidCookie(cookie.clone()))?;
                headers.append(SET_COOKIE, value);
            }
        }
        Some(other) => return Err(BadResponse::Cookies(kind(&other))),
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    let base64 = match parsed.is_base64_encoded {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(other) => return Err(BadResponse::IsBase64Encoded(kind(&other))),
    };
    let body = match parsed.body {
        None => Bytes::new(),
        Some(Value::String(text)) if base64 => Bytes::from(BASE64.decode(text).map_err(BadResponse::Base64)?),
        Some(Value::String(text)) => Bytes::from(text),
        Some(other) => return Err(BadResponse::Body(kind(&other))),
    };
    Ok(MappedResponse { status, headers, body })
}

/// A header value's text: strings as they are, numbers and booleans as JSON writes them
/// (API Gateway coerces these rather than failing), `null` meaning no header.
fn header_text(value: &Value) -> Result<Option<Cow<'_, str>>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(Cow::Borrowed(s))),
        Value::Number(n) => Ok(Some(Cow::Owned(n.to_string()))),
        Value::Bool(b) => Ok(Some(Cow::Borrowed(if *b { "true" } else { "false" }))),
        other => Err(kind(other)),
    }
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), BadResponse> {
    let bad = || BadResponse::InvalidHeader(name.to_string());
    let parsed_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
    let parsed_value = HeaderValue::from_str(value).map_err(|_| bad())?;
    Ok((parsed_name, parsed_value))
}

/// The JSON type of a value, for error messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("test header name"),
                HeaderValue::from_str(v).expect("test header value"),
            );
        }
        h
    }

    /// Builds an event for `GET /dev/pets/7?...` on stage `dev` with these parts.
    fn build(
        hdrs: &HeaderMap,
        query: &str,
        body: &[u8],
        params: &[(&str, String)],
        vars: &BTreeMap<String, String>,
    ) -> Vec<u8> {
        event(
            &RequestView {
                method: "POST",
                raw_path: "/dev/pets/7",
                raw_query: query,
                headers: hdrs,
                body,
                source_ip: "192.0.2.10",
                protocol: "HTTP/1.1",
            },
            &EventContext {
                account_id: "123456789012",
                api_id: "abc123defg",
                domain_name: "abc123defg.execute-api.localhost",
                domain_prefix: "abc123defg",
                request_id: "JYxQ8gHAoAMEbkQ=",
                route_key: "POST /pets/{id}",
                stage: "dev",
                time_epoch_ms: 1_584_039_838_000,
                path_parameters: params,
                stage_variables: vars,
            },
        )
    }

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("valid JSON")
    }

    #[test]
    fn full_event_round_trips_through_aws_lambda_events() {
        let hdrs = headers(&[
            ("host", "abc123defg.execute-api.localhost:4750"),
            ("user-agent", "curl/8.5.0"),
            ("accept", "text/html"),
            ("accept", "application/json"),
            ("cookie", "a=1; b=2"),
            ("cookie", "c=3"),
            ("content-type", "application/json; charset=utf-8"),
            ("x-quote", "say \"hi\""),
        ]);
        let vars = BTreeMap::from([("lambdaAlias".to_string(), "live".to_string())]);
        let params = [("id", "7".to_string())];
        let bytes = build(&hdrs, "a=1&a=2&b=x+y&c=%2F%20&flag&&", br#"{"name":"Rex"}"#, &params, &vars);

        let ev: ApiGatewayV2httpRequest = serde_json::from_slice(&bytes).expect("aws_lambda_events reads the event");
        assert_eq!(ev.version.as_deref(), Some("2.0"));
        assert_eq!(ev.route_key.as_deref(), Some("POST /pets/{id}"));
        assert_eq!(ev.raw_path.as_deref(), Some("/dev/pets/7"));
        assert_eq!(ev.raw_query_string.as_deref(), Some("a=1&a=2&b=x+y&c=%2F%20&flag&&"));
        assert_eq!(ev.cookies, Some(vec!["a=1".to_string(), "b=2".to_string(), "c=3".to_string()]));
        assert_eq!(ev.headers.get("accept").map(|v| v.as_bytes()), Some(&b"text/html,application/json"[..]));
        assert_eq!(ev.headers.get("x-quote").map(|v| v.as_bytes()), Some(&b"say \"hi\""[..]));
        assert!(ev.headers.get("cookie").is_none());
        // aws_lambda_events splits joined values back apart.
        assert_eq!(ev.query_string_parameters.all("a"), Some(vec!["1", "2"]));
        assert_eq!(ev.query_string_parameters.first("b"), Some("x y"));
        assert_eq!(ev.query_string_parameters.first("c"), Some("/ "));
        assert_eq!(ev.query_string_parameters.first("flag"), Some(""));
        assert_eq!(ev.path_parameters.get("id").map(String::as_str), Some("7"));
        assert_eq!(ev.stage_variables.get("lambdaAlias").map(String::as_str), Some("live"));
        assert_eq!(ev.body.as_deref(), Some(r#"{"name":"Rex"}"#));
        assert!(!ev.is_base64_encoded);
        let rc = &ev.request_context;
        assert_eq!(rc.account_id.as_deref(), Some("123456789012"));
        assert_eq!(rc.apiid.as_deref(), Some("abc123defg"));
        assert_eq!(rc.domain_name.as_deref(), Some("abc123defg.execute-api.localhost"));
        assert_eq!(rc.domain_prefix.as_deref(), Some("abc123defg"));
        assert_eq!(rc.request_id.as_deref(), Some("JYxQ8gHAoAMEbkQ="));
        assert_eq!(rc.route_key.as_deref(), Some("POST /pets/{id}"));
        assert_eq!(rc.stage.as_deref(), Some("dev"));
        assert_eq!(rc.time.as_deref(), Some("12/Mar/2020:19:03:58 +0000"));
        assert_eq!(rc.time_epoch, 1_584_039_838_000);
        assert_eq!(rc.http.method, http::Method::POST);
        assert_eq!(rc.http.path.as_deref(), Some("/dev/pets/7"));
        assert_eq!(rc.http.protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(rc.http.source_ip.as_deref(), Some("192.0.2.10"));
        assert_eq!(rc.http.user_agent.as_deref(), Some("curl/8.5.0"));

        // The exact top-level shape, in AWS's order.
        let v = json(&bytes);
        let keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
        let mut want = vec![
            "version",
            "routeKey",
            "rawPath",
            "rawQueryString",
            "cookies",
            "headers",
            "queryStringParameters",
            "requestContext",
            "body",
            "pathParameters",
            "isBase64Encoded",
            "stageVariables",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        let http_keys: Vec<&str> =
            v["requestContext"]["http"].as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(http_keys, ["method", "path", "protocol", "sourceIp", "userAgent"]);
        // Query keys keep their first-appearance order in the text itself.
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains(r#""queryStringParameters":{"a":"1,2","b":"x y","c":"/ ","flag":""}"#), "{text}");
        assert!(text.starts_with(r#"{"version":"2.0","routeKey":"POST /pets/{id}","rawPath":"/dev/pets/7""#), "{text}");
    }

    #[test]
    fn absent_parts_are_left_out_not_null() {
        let bytes = build(&headers(&[("host", "h")]), "", b"", &[], &BTreeMap::new());
        let v = json(&bytes);
        let obj = v.as_object().expect("object");
        for absent in ["cookies", "queryStringParameters", "pathParameters", "stageVariables", "body"] {
            assert!(!obj.contains_key(absent), "{absent} in {v}");
        }
        assert_eq!(v["isBase64Encoded"], Value::Bool(false));
        assert_eq!(v["rawQueryString"], "");
        assert_eq!(v["requestContext"]["http"]["userAgent"], "");
        assert!(!v.to_string().contains("null"), "{v}");
        let ev: ApiGatewayV2httpRequest = serde_json::from_slice(&bytes).expect("aws_lambda_events reads the event");
        assert_eq!(ev.cookies, None);
        assert!(ev.query_string_parameters.is_empty());
        assert_eq!(ev.body, None);
        // A query of separators only has no parameters.
        let v = json(&build(&HeaderMap::new(), "&&", b"", &[], &BTreeMap::new()));
        assert!(v.get("queryStringParameters").is_none());
        assert_eq!(v["headers"], serde_json::json!({}));
    }

    #[test]
    fn body_encoding_follows_content_type() {
        let cases: [(Option<&str>, &[u8], bool); 10] = [
            (Some("text/plain"), b"hello", false),
            (Some("Text/HTML; charset=utf-8"), b"<p>", false),
            (Some("application/json"), b"{}", false),
            (Some("APPLICATION/XML"), b"<a/>", false),
            (Some("application/javascript"), b"1", false),
            (Some("application/octet-stream"), b"hello", true),
            (Some("application/x-www-form-urlencoded"), b"a=1", true),
            (Some("image/png"), b"\x89PNG", true),
            (None, b"hello", true),
            (Some("text/plain"), b"\xff\xfe", true),
        ];
        for (ct, body, base64) in cases {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).expect("test value"));
            }
            let bytes = build(&h, "", body, &[], &BTreeMap::new());
            let ev: ApiGatewayV2httpRequest =
                serde_json::from_slice(&bytes).expect("aws_lambda_events reads the event");
            assert_eq!(ev.is_base64_encoded, base64, "{ct:?}");
            let sent = ev.body.expect("body present");
            let got = if base64 { STANDARD.decode(sent).expect("base64") } else { sent.into_bytes() };
            assert_eq!(got, body, "{ct:?}");
        }
    }

    #[test]
    fn time_format_pads_and_uses_english_months() {
        // 2026-11-04T05:06:07.089Z
        let bytes = event(
            &RequestView {
                method: "GET",
                raw_path: "/",
                raw_query: "",
                headers: &HeaderMap::new(),
                body: b"",
                source_ip: "::1",
                protocol: "HTTP/2.0",
            },
            &EventContext {
                account_id: "1",
                api_id: "a",
                domain_name: "d",
                domain_prefix: "d",
                request_id: "r",
                route_key: "$default",
                stage: "$default",
                time_epoch_ms: 1_793_768_767_089,
                path_parameters: &[],
                stage_variables: &BTreeMap::new(),
            },
        );
        let v = json(&bytes);
        assert_eq!(v["requestContext"]["time"], "04/Nov/2026:05:06:07 +0000");
        assert_eq!(v["requestContext"]["timeEpoch"], 1_793_768_767_089_i64);
    }

    fn ok(payload: &str) -> MappedResponse {
        response(payload.as_bytes()).expect("a valid response")
    }

    fn err(payload: &str) -> String {
        response(payload.as_bytes()).expect_err("a bad response").to_string()
    }

    fn header_values(r: &MappedResponse, name: &str) -> Vec<String> {
        r.headers.get_all(name).iter().map(|v| v.to_str().expect("ascii").to_string()).collect()
    }

    #[test]
    fn inferred_responses_keep_the_json_text() {
        // The two examples of AWS's "Lambda function response for format 2.0" table.
        for payload in
            [r#"{ "message": "Hello from Lambda!" }"#, r#""Hello from Lambda!""#, "42", "[200]", "null", " true\n"]
        {
            let r = ok(payload);
            assert_eq!(r.status, StatusCode::OK, "{payload}");
            assert_eq!(header_values(&r, "content-type"), ["application/json"], "{payload}");
            assert_eq!(r.body, payload.as_bytes(), "{payload}");
            assert_eq!(r.headers.len(), 1);
        }
        // An object whose statusCode is null has no statusCode.
        assert_eq!(ok(r#"{"statusCode":null,"body":"x"}"#).body, r#"{"statusCode":null,"body":"x"}"#);
    }

    #[test]
    fn structured_response() {
        let r = ok(r#"{
            "statusCode": 201,
            "headers": {"X-Text": "a", "X-Num": 5, "X-Bool": true, "X-Null": null, "Content-Type": "text/html"},
            "multiValueHeaders": {"X-Multi": ["1", "2"], "X-Text": ["a", "b"]},
            "cookies": ["id=1; Path=/; HttpOnly", "theme=dark"],
            "body": "<h1>hi</h1>",
            "isBase64Encoded": false,
            "somethingElse": {"ignored": true}
        }"#);
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(header_values(&r, "x-text"), ["a", "b"]);
        assert_eq!(header_values(&r, "x-num"), ["5"]);
        assert_eq!(header_values(&r, "x-bool"), ["true"]);
        assert!(r.headers.get("x-null").is_none());
        assert_eq!(header_values(&r, "x-multi"), ["1", "2"]);
        assert_eq!(header_values(&r, "set-cookie"), ["id=1; Path=/; HttpOnly", "theme=dark"]);
        assert_eq!(header_values(&r, "content-type"), ["text/html"]);
        assert_eq!(r.body, "<h1>hi</h1>");
    }

    #[test]
    fn structured_defaults() {
        let r = ok(r#"{"statusCode": 204}"#);
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(header_values(&r, "content-type"), ["text/plain; charset=utf-8"]);
        assert!(r.body.is_empty());
        let r = ok(r#"{"statusCode": 200, "headers": null, "cookies": null, "body": null, "isBase64Encoded": null}"#);
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.is_empty());
        // The gateway frames the response itself.
        let r = ok(
            r#"{"statusCode": 200, "headers": {"Content-Length": "999", "Transfer-Encoding": "chunked", "Connection": "close"}, "body": "ok"}"#,
        );
        assert_eq!(r.headers.len(), 1, "{:?}", r.headers);
        assert_eq!(r.body, "ok");
    }

    #[test]
    fn base64_bodies_are_decoded() {
        let r = ok(
            r#"{"statusCode": 200, "isBase64Encoded": true, "body": "iVBORw0KGgo=", "headers": {"content-type": "image/png"}}"#,
        );
        assert_eq!(r.body, &b"\x89PNG\r\n\x1a\n"[..]);
        let r = ok(r#"{"statusCode": 200, "isBase64Encoded": true, "body": "aGk"}"#);
        assert_eq!(r.body, "hi");
        let r = ok(r#"{"statusCode": 200, "isBase64Encoded": false, "body": "aGk="}"#);
        assert_eq!(r.body, "aGk=");
    }

    #[test]
    fn responses_from_aws_lambda_events_map() {
        // What a Rust function using lambda_http sends: empty multiValueHeaders, cookies.
        let mut resp = ApiGatewayV2httpResponse {
            status_code: 418,
            body: Some(aws_lambda_events::encodings::Body::Text("short and stout".into())),
            cookies: vec!["tea=earl-grey".into()],
            ..Default::default()
        };
        resp.headers.insert("x-kettle", HeaderValue::from_static("on"));
        let payload = serde_json::to_vec(&resp).expect("serialises");
        let r = response(&payload).expect("maps");
        assert_eq!(r.status.as_u16(), 418);
        assert_eq!(r.body, "short and stout");
        assert_eq!(header_values(&r, "x-kettle"), ["on"]);
        assert_eq!(header_values(&r, "set-cookie"), ["tea=earl-grey"]);
        let binary = ApiGatewayV2httpResponse {
            status_code: 200,
            body: Some(aws_lambda_events::encodings::Body::Binary(vec![0, 159, 146, 150])),
            is_base64_encoded: true,
            ..Default::default()
        };
        let r = response(&serde_json::to_vec(&binary).expect("serialises")).expect("maps");
        assert_eq!(r.body, &[0, 159, 146, 150][..]);
    }

    #[test]
    fn bad_responses_name_the_defect() {
        let cases = [
            (r#"{"statusCode": "200"}"#, r#"statusCode must be an integer from 100 to 599, got "200""#),
            (r#"{"statusCode": 700}"#, "statusCode must be an integer from 100 to 599, got 700"),
            (r#"{"statusCode": 99}"#, "statusCode must be an integer from 100 to 599, got 99"),
            (r#"{"statusCode": 200.5}"#, "statusCode must be an integer from 100 to 599, got 200.5"),
            (r#"{"statusCode": -1}"#, "statusCode must be an integer from 100 to 599, got -1"),
            (r#"{"statusCode": 200, "headers": ["a"]}"#, "headers must be an object, got array"),
            (r#"{"statusCode": 200, "headers": {"X-A": {"b": 1}}}"#, r#"header "X-A" must be a string, got object"#),
            (
                r#"{"statusCode": 200, "headers": {"bad name": "v"}}"#,
                r#"header "bad name" has an invalid name or value"#,
            ),
            (
                r#"{"statusCode": 200, "headers": {"X-A": "line\nbreak"}}"#,
                r#"header "X-A" has an invalid name or value"#,
            ),
            (r#"{"statusCode": 200, "multiValueHeaders": "x"}"#, "multiValueHeaders must be an object, got string"),
            (
                r#"{"statusCode": 200, "multiValueHeaders": {"X-M": "a"}}"#,
                r#"multiValueHeaders "X-M" must be an array of strings, got string"#,
            ),
            (
                r#"{"statusCode": 200, "multiValueHeaders": {"X-M": [[1]]}}"#,
                r#"header "X-M" must be a string, got array"#,
            ),
            (r#"{"statusCode": 200, "cookies": {"a": "1"}}"#, "cookies must be an array of strings, got object"),
            (r#"{"statusCode": 200, "cookies": ["a=1", 2]}"#, "cookies must hold strings only, got number"),
            (r#"{"statusCode": 200, "cookies": ["a=\u0001"]}"#, r#"cookie "a=\u{1}" is not a valid Set-Cookie value"#),
            (r#"{"statusCode": 200, "body": {"message": "hi"}}"#, "body must be a string, got object"),
            (r#"{"statusCode": 200, "body": 5}"#, "body must be a string, got number"),
            (r#"{"statusCode": 200, "isBase64Encoded": "yes"}"#, "isBase64Encoded must be a boolean, got string"),
        ];
        for (payload, want) in cases {
            assert_eq!(err(payload), want, "{payload}");
        }
        let prefixed = [
            ("", "the function's response is not valid JSON: "),
            ("Hello", "the function's response is not valid JSON: "),
            (r#"{"statusCode": 200"#, "the function's response is not valid JSON: "),
            (r#"{"a": 1} trailing"#, "the function's response is not valid JSON: "),
            (
                r#"{"statusCode": 200, "statusCode": 201}"#,
                "the function's response is not valid JSON: duplicate field `statusCode`",
            ),
            (
                r#"{"statusCode": 200, "isBase64Encoded": true, "body": "not base64!"}"#,
                "isBase64Encoded is true but body is not valid base64: ",
            ),
        ];
        for (payload, want) in prefixed {
            let got = err(payload);
            assert!(got.starts_with(want), "{payload}: {got}");
        }
    }
}

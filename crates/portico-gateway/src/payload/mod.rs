//! Lambda proxy payload formats: the event API Gateway sends a function for a request
//! and how it reads the function's answer back into an HTTP response.
//!
//! Each format is one submodule owning its JSON shapes (the wire format is AWS's, see
//! "Create AWS Lambda proxy integrations for HTTP APIs"); an integration picks one with
//! its `payloadFormatVersion` ([`Format`]). This module holds what both share: the
//! request parts an event is built from, the headers API Gateway adds, query and body
//! handling, and the structured-response rules. Both directions are pure functions over
//! bytes and borrowed request parts; nothing here does I/O.
//!
//! Shared event rules (AWS, both formats unless noted):
//! - API Gateway adds `x-forwarded-for` (any the client sent, then the source IP,
//!   joined with `, `), `x-forwarded-port` (the port the client connected to) and
//!   `x-forwarded-proto` to the headers, replacing the client's port and proto (AWS's
//!   example events in "Lambda proxy integrations in API Gateway" and its Lambda
//!   fixtures show all three). Portico speaks plain HTTP, so the proto is `http`, and the
//!   port is the one in `Host` (80 without one).
//! - Query parameters are decoded (`+` as a space, then percent-decoding, as API Gateway
//!   does for query strings; see aws/aws-cdk#19827); a parameter without `=` has the
//!   value `""`. Values are never split on `,`.
//! - The body is passed as text only when it is valid UTF-8 and its `Content-Type` is
//!   `text/*`, `application/json`, `application/xml` or `application/javascript`;
//!   anything else, a missing `Content-Type` or `application/x-www-form-urlencoded`
//!   included, is base64-encoded with `isBase64Encoded: true`. AWS does not list the
//!   types; this split is the one measured against AWS in ministackorg/ministack#766.
//!
//! Shared response rules (a "structured" response, the only kind format 1.0 has): the
//! fields `statusCode`, `headers`, `body`, `isBase64Encoded`, and `multiValueHeaders`
//! (1.0) or `cookies` (2.0) are read, anything else ignored. `headers` and
//! `multiValueHeaders` are merged; a name/value pair in both appears once ("Output format
//! of a Lambda function for proxy integration"). Without a `Content-Type` the answer
//! gets `text/plain; charset=utf-8`, as HTTP APIs were observed to send (AWS leaves it
//! undocumented). A malformed answer is a [`BadResponse`], which the gateway answers with
//! 502.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use base64::display::Base64Display;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use percent_encoding::percent_decode_str;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

#[cfg(test)]
pub(crate) mod test_support;
pub mod v1;
pub mod v2;

/// The payload format an integration speaks (its `payloadFormatVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `1.0`: the REST-API-compatible event and response.
    V1,
    /// `2.0`: the HTTP API event, with response inference.
    V2,
}

impl Format {
    /// The format for a `payloadFormatVersion`; `None` for anything but `1.0` and `2.0`.
    pub fn from_version(version: &str) -> Option<Format> {
        match version {
            "1.0" => Some(Format::V1),
            "2.0" => Some(Format::V2),
            _ => None,
        }
    }

    /// Builds this format's event for a request, as JSON.
    pub fn event(self, req: &RequestView<'_>, ctx: &EventContext<'_>) -> Vec<u8> {
        self.event_with(req, ctx, None)
    }

    /// Builds this format's event for a request that the route's authorizer let
    /// through: what it found goes in `requestContext.authorizer`.
    pub fn event_with(
        self,
        req: &RequestView<'_>,
        ctx: &EventContext<'_>,
        authorization: Option<&Authorization>,
    ) -> Vec<u8> {
        match self {
            Format::V1 => v1::event_with(req, ctx, authorization),
            Format::V2 => v2::event_with(req, ctx, authorization),
        }
    }

    /// Maps a function's answer by this format's rules.
    pub fn response(self, payload: &[u8]) -> Result<MappedResponse, BadResponse> {
        match self {
            Format::V1 => v1::response(payload),
            Format::V2 => v2::response(payload),
        }
    }
}

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

/// What a route's authorizer established about the caller: `requestContext.authorizer`
/// of the integration's event ("Working with AWS Lambda proxy integrations for HTTP
/// APIs"). Format 2.0 writes `{"jwt": {"claims", "scopes"}}`, `{"lambda": context}` or
/// `{"iam": {...}}`; format 1.0 writes `{"claims", "scopes"}`, or the Lambda authorizer's
/// context members themselves (plus `principalId`), as REST APIs do, and an IAM caller in
/// `requestContext.identity` (no `authorizer` member).
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    /// A JWT authorizer let the request through.
    Jwt {
        /// The token's claims, each value as text (API Gateway passes them as strings).
        claims: BTreeMap<String, String>,
        /// The token's scopes when the route requires scopes, else `None` (`null`).
        scopes: Option<Vec<String>>,
    },
    /// A Lambda authorizer let the request through.
    Lambda {
        /// The `context` it returned, as it returned it; `None` (`null`) without one.
        context: Option<serde_json::Map<String, Value>>,
        /// The `principalId` of an IAM-policy answer.
        principal_id: Option<String>,
    },
    /// An `AWS_IAM` route verified the request's SigV4 signature. The key is its
    /// account's root: `callerId` and `userId` are the access key id.
    Iam {
        /// The access key id the request was signed with.
        access_key: String,
        /// The key's account.
        account_id: String,
        /// `arn:aws:iam::{account}:root`.
        user_arn: String,
    },
}

/// A header value as text; header values are meant to be ASCII, anything else is
/// replaced rather than dropped.
fn lossy(v: &HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(v.as_bytes())
}

/// Whether API Gateway sets this header itself (the client's value is replaced).
fn is_forwarded(name: &HeaderName) -> bool {
    matches!(name.as_str(), "x-forwarded-for" | "x-forwarded-port" | "x-forwarded-proto")
}

/// The `x-forwarded-*` headers API Gateway adds, in the order it sends them.
struct Forwarded<'a> {
    /// `x-forwarded-for`: the client's own list, then the source IP.
    for_: String,
    /// `x-forwarded-port`.
    port: &'a str,
}

impl<'a> Forwarded<'a> {
    /// `x-forwarded-proto`: Portico's listener speaks plain HTTP.
    const PROTO: &'static str = "http";

    fn of(req: &RequestView<'a>) -> Forwarded<'a> {
        let mut for_ = String::new();
        for v in req.headers.get_all("x-forwarded-for") {
            for_.push_str(&lossy(v));
            for_.push_str(", ");
        }
        for_.push_str(req.source_ip);
        let host = req.headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        // `host:port`, or `[v6]:port`; a bare IPv6 address has colons but no port.
        let port = host
            .rsplit_once(':')
            .filter(|(h, p)| {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (!h.contains(':') || h.ends_with(']'))
            })
            .map_or("80", |(_, p)| p);
        Forwarded { for_, port }
    }

    /// `(lower-case name, value)` of each header.
    fn pairs(&self) -> [(&'static str, &str); 3] {
        [("x-forwarded-for", &self.for_), ("x-forwarded-port", self.port), ("x-forwarded-proto", Self::PROTO)]
    }
}

/// The query string's parameters, decoded, each with all its values in order; keys in
/// order of first appearance.
struct Query<'a>(Vec<(Cow<'a, str>, Vec<Cow<'a, str>>)>);

impl<'a> Query<'a> {
    fn parse(raw: &'a str) -> Query<'a> {
        let mut params: Vec<(Cow<'a, str>, Vec<Cow<'a, str>>)> = Vec::new();
        // Index by key so a query with thousands of parameters stays linear.
        let mut seen: HashMap<Cow<'a, str>, usize> = HashMap::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (form_decode(k), form_decode(v));
            match seen.get(&k) {
                Some(&i) => params[i].1.push(v),
                None => {
                    seen.insert(k.clone(), params.len());
                    params.push((k, vec![v]));
                }
            }
        }
        Query(params)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
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

/// A list of values written as one string, joined with the separator while being
/// written. Holds a function making the iterator, as header value iterators are not
/// `Clone`.
struct Joined<F>(F, &'static str);

impl<F, I> fmt::Display for Joined<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in (self.0)().enumerate() {
            if i > 0 {
                f.write_str(self.1)?;
            }
            v.fmt(f)?;
        }
        Ok(())
    }
}

impl<F, I> Serialize for Joined<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: fmt::Display,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A list of values written as a JSON array.
struct Array<F>(F);

impl<F, I> Serialize for Array<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for v in (self.0)() {
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

/// `pathParameters`.
struct PathParameters<'a>(&'a [(&'a str, String)]);

impl Serialize for PathParameters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `body`: empty, text when it is text, base64 otherwise.
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

    fn is_base64(&self) -> bool {
        matches!(self, Body::Binary(_))
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

/// A request time as `dd/MMM/yyyy:HH:mm:ss +0000` (`12/Mar/2020:19:03:58 +0000`),
/// written straight into the output.
struct Time(i64);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use chrono::{Datelike, Timelike};
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        // Written field by field: a strftime pattern is parsed again on every use.
        let at = chrono::DateTime::from_timestamp_millis(self.0).unwrap_or_default();
        let month = MONTHS.get(at.month0() as usize).copied().unwrap_or("Jan");
        s.collect_str(&format_args!(
            "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
            at.day(),
            at.year(),
            at.hour(),
            at.minute(),
            at.second()
        ))
    }
}

/// Room for an event's variable parts; base64 grows the body by 4/3.
fn event_capacity(req: &RequestView<'_>, per_header: usize) -> usize {
    let headers_len: usize = req.headers.iter().map(|(k, v)| k.as_str().len() * 2 + v.len() + per_header).sum();
    1024 + headers_len + req.raw_path.len() * 3 + req.raw_query.len() * 3 + req.body.len() / 3 * 4 + 4
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

/// Why a function's answer is not a valid proxy response in its payload format (the
/// gateway answers 502 and logs this).
#[derive(Debug, thiserror::Error)]
pub enum BadResponse {
    /// The payload is not JSON at all (or has a duplicate field).
    #[error("the function's response is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    /// Format 1.0: the payload is JSON but not an object.
    #[error("a format 1.0 response must be a JSON object with a statusCode, got {0}")]
    NotAnObject(&'static str),
    /// Format 1.0: the object has no `statusCode` (1.0 infers nothing).
    #[error("a format 1.0 response must have a statusCode")]
    MissingStatusCode,
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

/// Maps a structured response whose `statusCode` is `status`.
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

/// Whether a payload's first JSON token opens an object. Only an object can be
/// structured; checking keeps a JSON array from being read positionally into
/// [`Structured`].
fn is_object(payload: &[u8]) -> bool {
    payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
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

    fn view<'a>(headers: &'a HeaderMap, source_ip: &'a str) -> RequestView<'a> {
        RequestView { method: "GET", raw_path: "/", raw_query: "", headers, body: b"", source_ip, protocol: "HTTP/1.1" }
    }

    #[test]
    fn forwarded_headers() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: [Case<'_>; 6] = [
            (&[("host", "abc.execute-api.localhost:4750")], "192.0.2.1", "4750"),
            (&[("host", "abc.execute-api.localhost")], "192.0.2.1", "80"),
            (&[], "192.0.2.1", "80"),
            (&[("host", "[::1]:8080")], "::1", "8080"),
            (&[("host", "[::1]")], "::1", "80"),
            (&[("host", "h:"), ("x-forwarded-port", "443")], "192.0.2.1", "80"),
        ];
        for (pairs, ip, port) in cases {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
            }
            let f = Forwarded::of(&view(&h, ip));
            assert_eq!(f.pairs(), [("x-forwarded-for", ip), ("x-forwarded-port", port), ("x-forwarded-proto", "http")]);
        }
        // The client's own list comes first, the source IP last.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2, 198.51.100.3"));
        let f = Forwarded::of(&view(&h, "192.0.2.1"));
        assert_eq!(f.for_, "203.0.113.7, 198.51.100.2, 198.51.100.3, 192.0.2.1");
        assert!(is_forwarded(&HeaderName::from_static("x-forwarded-proto")));
        assert!(!is_forwarded(&HeaderName::from_static("forwarded")));
    }

    #[test]
    fn query_keeps_every_value_in_order() {
        let q = Query::parse("a=1&b=x+y&a=2&c=%2F%20&flag&&a=1,3&=v");
        let got: Vec<(&str, Vec<&str>)> = q.0.iter().map(|(k, vs)| (&**k, vs.iter().map(|v| &**v).collect())).collect();
        assert_eq!(
            got,
            [("a", vec!["1", "2", "1,3"]), ("b", vec!["x y"]), ("c", vec!["/ "]), ("flag", vec![""]), ("", vec!["v"])]
        );
        assert!(Query::parse("&&").is_empty());
    }

    #[test]
    fn format_by_version() {
        assert_eq!(Format::from_version("1.0"), Some(Format::V1));
        assert_eq!(Format::from_version("2.0"), Some(Format::V2));
        assert_eq!(Format::from_version("3.0"), None);
        assert_eq!(Format::from_version("1"), None);
    }
}

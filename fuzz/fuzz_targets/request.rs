//! What the event targets share: an input is either a function's answer (`R` then the
//! payload) or an HTTP/1-like request text, parsed leniently so that seeds are readable
//! and mutations stay requests:
//!
//! ```text
//! GET /hello?name=Dev HTTP/1.1
//! host: abc.execute-api.localhost:4750
//! x-fuzz-time: 1700000000000
//!
//! body bytes
//! ```
//!
//! Header lines that are not valid HTTP are dropped, as hyper would refuse them.
//! `x-fuzz-time` sets the request time (any `i64`).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::percent_decode_str;
use portico_gateway::payload::{EventContext, Format, RequestView};
use serde_json::Value;

/// A request parsed from fuzz input, owning its parts.
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub protocol: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub time_epoch_ms: i64,
    /// Each path segment, percent-decoded, as a path variable.
    pub path_parameters: Vec<(String, String)>,
}

impl Request {
    pub fn parse(data: &[u8]) -> Request {
        let split = data.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
        let split = split.or_else(|| data.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4)));
        let (head, body) = match split {
            Some((end, start)) => (&data[..end], &data[start..]),
            None => (data, &[][..]),
        };
        let mut lines = head.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let first = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
        let mut parts = first.splitn(3, ' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default();
        let protocol = parts.next().unwrap_or("HTTP/1.1").to_string();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers = HeaderMap::new();
        let mut time_epoch_ms = 1_700_000_000_000;
        for line in lines {
            let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
            let value = line[colon + 1..].trim_ascii();
            let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value)) else {
                continue;
            };
            if name == "x-fuzz-time" {
                if let Some(t) = value.to_str().ok().and_then(|t| t.parse().ok()) {
                    time_epoch_ms = t;
                }
                continue;
            }
            headers.append(name, value);
        }
        let path_parameters = path
            .split('/')
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, s)| (format!("p{i}"), percent_decode_str(s).decode_utf8_lossy().into_owned()))
            .collect();
        Request {
            method,
            path: path.to_string(),
            query: query.to_string(),
            protocol,
            headers,
            body: body.to_vec(),
            time_epoch_ms,
            path_parameters,
        }
    }

    /// Builds the event in `format`; checks it is JSON and returns it.
    pub fn event(&self, format: Format) -> Value {
        let params: Vec<(&str, String)> = self.path_parameters.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let vars = BTreeMap::from([("alias".to_string(), "prod".to_string())]);
        let req = RequestView {
            method: &self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            headers: &self.headers,
            body: &self.body,
            source_ip: "192.0.2.1",
            protocol: &self.protocol,
        };
        let ctx = EventContext {
            account_id: "123456789012",
            api_id: "abc123defg",
            domain_name: "abc123defg.execute-api.localhost",
            domain_prefix: "abc123defg",
            request_id: "JKJaXmPLvHcESHA=",
            route_key: "ANY /{proxy+}",
            stage: "$default",
            time_epoch_ms: self.time_epoch_ms,
            path_parameters: &params,
            stage_variables: &vars,
        };
        let event = format.event(&req, &ctx);
        let value: Value = serde_json::from_slice(&event).unwrap_or_else(|e| {
            panic!("the event is not JSON ({e}): {}", String::from_utf8_lossy(&event));
        });
        assert!(value.is_object());
        value
    }

    /// Checks that the event's body and `isBase64Encoded` give back the request body.
    pub fn check_body(&self, event: &Value) {
        let base64 = event["isBase64Encoded"].as_bool().expect("isBase64Encoded is a boolean");
        let body = match &event["body"] {
            Value::Null => Vec::new(),
            Value::String(s) if base64 => STANDARD.decode(s).expect("a base64 body"),
            Value::String(s) => s.clone().into_bytes(),
            other => panic!("body is {other}"),
        };
        assert_eq!(body, self.body);
    }
}

/// Maps an answer in `format`: never panics; a mapped answer has a valid status, a
/// `Content-Type` and no framing headers of the function's.
pub fn check_response(format: Format, payload: &[u8]) {
    let Ok(mapped) = format.response(payload) else { return };
    assert!((100..=599).contains(&mapped.status.as_u16()));
    assert!(mapped.headers.contains_key(http::header::CONTENT_TYPE));
    for name in ["content-length", "transfer-encoding", "connection"] {
        assert!(!mapped.headers.contains_key(name), "the function set {name}");
    }
    if format == Format::V2 && serde_json::from_slice::<Value>(payload).is_ok_and(|v| !v.is_object()) {
        // Inferred: any JSON but an object is the body, byte for byte.
        assert_eq!(mapped.status.as_u16(), 200);
        assert_eq!(&mapped.body[..], payload);
    }
}

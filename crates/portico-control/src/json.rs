//! Reading request documents: one place that turns a body into typed input and a
//! parse failure into the service's error.

use serde::de::DeserializeOwned;

use crate::{AwsError, Result, Service};

/// Deepest JSON nesting accepted in a control-plane request.
const MAX_DEPTH: usize = 64;

/// Parses a request body (an empty body is `{}`).
pub fn parse<T: DeserializeOwned>(service: Service, body: &[u8]) -> Result<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    if depth(body) > MAX_DEPTH {
        return Err(fail(service, format!("JSON nesting deeper than {MAX_DEPTH} levels")));
    }
    serde_json::from_slice(body).map_err(|e| fail(service, e.to_string()))
}

fn fail(service: Service, detail: String) -> AwsError {
    match service {
        Service::Lambda => AwsError::invalid_content(format!("Could not parse request body into json: {detail}")),
        Service::ApiGateway | Service::Sts | Service::Logs => {
            AwsError::bad_request(format!("Could not parse request body into json: {detail}"))
        }
    }
}

/// Maximum nesting of `[`/`{` outside strings: a cheap guard before a recursive parser.
fn depth(body: &[u8]) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in body {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                d += 1;
                max = max.max(d);
            }
            b']' | b'}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

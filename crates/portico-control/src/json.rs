//! Reading request documents: one place that turns a body into typed input and a
//! parse failure into the service's error.

use serde::Deserialize;

use crate::{AwsError, Result, Service};

/// Deepest JSON nesting accepted in a control-plane request.
const MAX_DEPTH: usize = 64;

/// Parses a request body (an empty body is `{}`).
/// A document may borrow from the body (`#[serde(borrow)]`).
pub fn parse<'a, T: Deserialize<'a>>(service: Service, body: &'a [u8]) -> Result<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    if depth(body) > MAX_DEPTH {
        return Err(fail(service, format!("JSON nesting deeper than {MAX_DEPTH} levels")));
    }
    serde_json::from_slice(body).map_err(|e| fail(service, e.to_string()))
}

/// A body that is no document of the operation: Lambda's `InvalidRequestContentException`,
/// API Gateway's `BadRequestException`, and for CloudWatch Logs (JSON 1.1) the
/// protocol's `SerializationException`, every one a 400.
fn fail(service: Service, detail: String) -> AwsError {
    match service {
        Service::Lambda => AwsError::invalid_content(format!("Could not parse request body into json: {detail}")),
        Service::Logs => AwsError::serialization(detail),
        Service::ApiGateway | Service::Sts => {
            AwsError::bad_request(format!("Could not parse request body into json: {detail}"))
        }
    }
}

/// Maximum nesting of `[`/`{` outside strings: a cheap guard before a recursive parser.
/// A string is skipped to its closing quote a block at a time (a CreateFunction body is
/// one 1.4 MB string of base64); a `\` escapes the byte after it; an unterminated
/// string ends the scan.
fn depth(body: &[u8]) -> usize {
    let (mut d, mut max, mut i) = (0usize, 0usize, 0usize);
    while let Some(&b) = body.get(i) {
        i += 1;
        match b {
            b'"' => loop {
                let Some(p) = body.get(i..).and_then(quote_or_backslash) else { return max };
                let at = i + p;
                i = at + 1;
                if body.get(at) == Some(&b'"') {
                    break;
                }
                i += 1; // the escaped byte
            },
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

/// Where the first `"` or `\` of `s` is. Blocks of 32 bytes are tested without a branch
/// per byte (the compiler vectorises the fold), the rest byte by byte.
fn quote_or_backslash(s: &[u8]) -> Option<usize> {
    const BLOCK: usize = 32;
    let mut start = 0;
    for block in s.chunks_exact(BLOCK) {
        if block.iter().fold(false, |hit, &b| hit | (b == b'"') | (b == b'\\')) {
            break;
        }
        start += BLOCK;
    }
    s.get(start..)?.iter().position(|&b| b == b'"' || b == b'\\').map(|p| start + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-at-a-time scan `depth` replaced, as the reference.
    fn reference_depth(body: &[u8]) -> usize {
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

    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        #[serde(rename = "Name")]
        _name: Option<String>,
    }

    /// `{"Name":"x","Extra":[[...]]}` with `levels` of nesting in all (the object is one).
    fn nested(levels: usize) -> String {
        let inner = levels - 1;
        format!(r#"{{"Name":"x","Extra":{}{}}}"#, "[".repeat(inner), "]".repeat(inner))
    }

    #[test]
    fn nesting_past_the_limit_is_refused_in_each_services_terms() {
        // At the limit an unknown member is skipped; one level more is refused before
        // serde sees it (its own limit, 128, is far deeper).
        for service in [Service::Lambda, Service::ApiGateway, Service::Logs] {
            assert!(parse::<Doc>(service, nested(MAX_DEPTH).as_bytes()).is_ok(), "{service:?}");
        }
        for (service, code) in [
            (Service::Lambda, "InvalidRequestContentException"),
            (Service::ApiGateway, "BadRequestException"),
            (Service::Logs, "SerializationException"),
        ] {
            for levels in [MAX_DEPTH + 1, 100, 100_000] {
                let e = parse::<Doc>(service, nested(levels).as_bytes()).expect_err("too deep");
                assert_eq!((e.status, e.code), (http::StatusCode::BAD_REQUEST, code), "{service:?} {levels}");
                assert!(e.message.contains("JSON nesting deeper than 64 levels"), "{}", e.message);
            }
        }
        // Nesting in a member's place, and brackets inside a string, which are no nesting.
        let in_place = format!(r#"{{"Name":{}{}}}"#, "[".repeat(99), "]".repeat(99));
        assert_eq!(
            parse::<Doc>(Service::Lambda, in_place.as_bytes()).expect_err("deep").code,
            "InvalidRequestContentException"
        );
        let in_string = format!(r#"{{"Name":"{}"}}"#, "[".repeat(1000));
        assert!(parse::<Doc>(Service::Lambda, in_string.as_bytes()).is_ok());
    }

    #[test]
    fn depth_is_the_byte_at_a_time_depth() {
        let long = "A".repeat(100);
        let cases: Vec<String> = vec![
            String::new(),
            "{}".into(),
            "[[[]]]".into(),
            r#"{"a":"[[[{{{"}"#.into(),
            r#"{"a":"\"[[["}"#.into(),
            r#"{"a":"\\"}[[["#.into(),
            r#"{"a":"unterminated [[[ "#.into(),
            r#"{"a":"ends in a backslash\"#.into(),
            r#""\"#.into(),
            r#"]]]}}}[[{"#.into(),
            format!(r#"{{"a":"{long}\"{long}[","b":[[{{"c":"{long}"}}]]}}"#),
            format!(r#"{{"Code":{{"ZipFile":"{}"}}}}"#, "QUJD".repeat(10_000)),
            format!("{}{}", "[".repeat(70), "]".repeat(70)),
        ];
        for c in &cases {
            assert_eq!(depth(c.as_bytes()), reference_depth(c.as_bytes()), "{c:?}");
        }
        // Every cut of a document with strings, escapes and nesting, at every offset
        // against the 32-byte blocks.
        let doc = format!(r#"{{"x":[{{"s":"{long}\\\"{{[{long}"}},"{long}",["\\"]]}}"#);
        for start in 0..40 {
            for end in (start..doc.len()).step_by(7) {
                let b = &doc.as_bytes()[start..end];
                assert_eq!(depth(b), reference_depth(b), "{start}..{end}");
            }
        }
    }
}

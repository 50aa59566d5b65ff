//! Fixtures for the gateway benchmarks (`benches/gateway.rs`): route tables of a given
//! size with realistic keys, and the seed walkthrough's request and answer.
//!
//! The seed is the tutorial's `GET /hello?name=Dev` to the quick-created API of
//! `examples/hello-api` (route `$default`, payload format 2.0), answered with
//! `{"statusCode":200,...,"body":"{\"message\":\"Hello, Dev!\"}"}`.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use portico_gateway::payload::{EventContext, RequestView};
use portico_gateway::route::RouteTable;

/// What the seed's function answers (`examples/hello-api/index.mjs`, as Node's
/// `JSON.stringify` writes it).
pub const SEED_ANSWER: &[u8] =
    br#"{"statusCode":200,"headers":{"Content-Type":"application/json"},"body":"{\"message\":\"Hello, Dev!\"}"}"#;

/// The route keys of an API with `n` routes: `$default`, `GET /hello`, then services
/// of four routes each, a literal, a `{param}`, a greedy `{proxy+}` and one that makes
/// a lookup backtrack from a literal into a variable:
///
/// ```text
/// GET /svc{i}/items   POST /svc{i}/items/{id}   ANY /svc{i}/items/{id}/{rest+}   DELETE /svc{i}/{kind}/x
/// ```
pub fn route_keys(n: usize) -> Vec<String> {
    let mut keys = vec!["$default".to_string(), "GET /hello".to_string()];
    let mut i = 0;
    while keys.len() < n {
        keys.push(match i % 4 {
            0 => format!("GET /svc{}/items", i / 4),
            1 => format!("POST /svc{}/items/{{id}}", i / 4),
            2 => format!("ANY /svc{}/items/{{id}}/{{rest+}}", i / 4),
            _ => format!("DELETE /svc{}/{{kind}}/x", i / 4),
        });
        i += 1;
    }
    keys.truncate(n);
    keys
}

/// The route table of an API with `n` routes ([`route_keys`]); each value is the key.
pub fn route_table(n: usize) -> RouteTable<String> {
    RouteTable::build(route_keys(n).into_iter().map(|k| (k.clone(), k)))
}

/// Requests of each kind of route, `(name, method, path)`, that hit the last service
/// of a table of `n` routes (so a hashed literal is as deep in a big table as it gets).
pub fn requests(n: usize) -> Vec<(&'static str, &'static str, String)> {
    let last = n.saturating_sub(2) / 4;
    let svc = last.saturating_sub(1);
    vec![
        ("hello", "GET", "/hello".to_string()),
        ("literal", "GET", format!("/svc{svc}/items")),
        ("param", "POST", format!("/svc{svc}/items/42")),
        ("greedy", "PATCH", format!("/svc{svc}/items/42/a/b")),
        ("backtrack", "DELETE", format!("/svc{svc}/items/x")),
        ("default", "GET", "/nowhere/at/all".to_string()),
    ]
}

/// The seed request's headers, as curl sends them to Portico.
pub fn seed_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [("host", "abc123defg.execute-api.localhost:4750"), ("user-agent", "curl/8.5.0"), ("accept", "*/*")] {
        h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h
}

/// The seed request, `GET /hello?name=Dev`, over these headers.
pub fn seed_request(headers: &HeaderMap) -> RequestView<'_> {
    RequestView {
        method: "GET",
        raw_path: "/hello",
        raw_query: "name=Dev",
        headers,
        body: b"",
        source_ip: "127.0.0.1",
        protocol: "HTTP/1.1",
    }
}

/// The seed request's event context for the route it selected.
pub fn seed_context<'a>(
    route_key: &'a str,
    path_parameters: &'a [(&'a str, String)],
    stage_variables: &'a BTreeMap<String, String>,
) -> EventContext<'a> {
    EventContext {
        account_id: "000000000000",
        api_id: "abc123defg",
        domain_name: "abc123defg.execute-api.localhost",
        domain_prefix: "abc123defg",
        request_id: "JKJaXmPLvHcESHA=",
        route_key,
        stage: "$default",
        time_epoch_ms: 1_700_000_000_000,
        path_parameters,
        stage_variables,
    }
}

#[cfg(test)]
mod tests {
    use portico_gateway::payload::Format;

    use super::*;

    /// Each benchmarked request selects the route it is named after, at both sizes.
    #[test]
    fn requests_select_their_routes() {
        for n in [10, 10_000] {
            let table = route_table(n);
            assert_eq!(route_keys(n).len(), n);
            let last = n.saturating_sub(2) / 4 - 1;
            let want = [
                "GET /hello".to_string(),
                format!("GET /svc{last}/items"),
                format!("POST /svc{last}/items/{{id}}"),
                format!("ANY /svc{last}/items/{{id}}/{{rest+}}"),
                format!("DELETE /svc{last}/{{kind}}/x"),
                "$default".to_string(),
            ];
            for ((name, method, path), want) in requests(n).iter().zip(want) {
                let m = table.find(method, path).expect("a route");
                assert_eq!(m.route_key, want, "{name} with {n} routes");
            }
        }
    }

    #[test]
    fn seed_round_trip() {
        let headers = seed_headers();
        let vars = BTreeMap::new();
        let event = Format::V2.event(&seed_request(&headers), &seed_context("$default", &[], &vars));
        let text = String::from_utf8(event).expect("JSON is text");
        assert!(text.contains(r#""queryStringParameters":{"name":"Dev"}"#), "{text}");
        let mapped = Format::V2.response(SEED_ANSWER).expect("a valid answer");
        assert_eq!((mapped.status.as_u16(), &mapped.body[..]), (200, &br#"{"message":"Hello, Dev!"}"#[..]));
    }
}

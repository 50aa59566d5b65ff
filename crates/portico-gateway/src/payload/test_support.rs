//! Fixtures shared by the payload formats' tests: one request, `POST /dev/pets/7` on
//! stage `dev` of API `abc123defg`, with the parts a test varies.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::{EventContext, RequestView};

/// Headers from `(name, value)` pairs, repeated names kept.
pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("test header name"),
            HeaderValue::from_str(v).expect("test header value"),
        );
    }
    h
}

/// The request: `POST /dev/pets/7?{query}` from 192.0.2.10.
pub(crate) fn request<'a>(hdrs: &'a HeaderMap, query: &'a str, body: &'a [u8]) -> RequestView<'a> {
    RequestView {
        method: "POST",
        raw_path: "/dev/pets/7",
        raw_query: query,
        headers: hdrs,
        body,
        source_ip: "192.0.2.10",
        protocol: "HTTP/1.1",
    }
}

/// Where it arrived: stage `dev` of `abc123defg` in account 123456789012.
pub(crate) fn context<'a>(
    route_key: &'a str,
    time_epoch_ms: i64,
    params: &'a [(&'a str, String)],
    vars: &'a BTreeMap<String, String>,
) -> EventContext<'a> {
    EventContext {
        account_id: "123456789012",
        api_id: "abc123defg",
        domain_name: "abc123defg.execute-api.localhost",
        domain_prefix: "abc123defg",
        request_id: "JYxQ8gHAoAMEbkQ=",
        route_key,
        stage: "dev",
        time_epoch_ms,
        path_parameters: params,
        stage_variables: vars,
    }
}

/// Parses JSON the code under test wrote.
pub(crate) fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

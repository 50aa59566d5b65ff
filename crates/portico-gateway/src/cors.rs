//! CORS as API Gateway HTTP APIs apply an API's `CorsConfiguration`: the gateway
//! answers preflights itself and sets the CORS headers of actual responses, ignoring
//! any the integration returned.
//!
//! Rules (AWS "Configure CORS for HTTP APIs in API Gateway" unless noted):
//!
//! - CORS headers are returned only when the request has an `Origin` header; a
//!   preflight is an `OPTIONS` request with `Origin` and `Access-Control-Request-Method`.
//!   The gateway answers it even without an `OPTIONS` route, with 204 No Content.
//! - An origin is allowed when `AllowOrigins` holds it exactly (case-sensitive), holds
//!   `*`, or holds a scheme wildcard such as `https://*` (AWS's examples list
//!   `https://*` and `http://*` as "any origin that begins with" the scheme). A
//!   disallowed origin gets no CORS headers at all.
//! - `Access-Control-Allow-Origin` is `*` when `*` is configured and credentials are
//!   not allowed (as SAM CLI's HTTP API emulation does); otherwise the request's
//!   origin, since browsers reject `*` on credentialed requests.
//! - A preflight whose requested method or headers the configuration does not allow
//!   gets no CORS headers, so the browser stops there. Headers are compared
//!   case-insensitively, methods too (AWS normalises the configured list). With no
//!   `AllowMethods`, only the CORS-safelisted GET, HEAD and POST pass.
//! - Preflight answers carry `Access-Control-Allow-Methods` (the configured list, or
//!   `*`), `Access-Control-Allow-Headers` (the configured list; with `*`, the requested
//!   headers echoed), `Access-Control-Max-Age` and `Access-Control-Allow-Credentials`
//!   when set. Actual responses carry `Access-Control-Allow-Origin`,
//!   `Access-Control-Expose-Headers` and `Access-Control-Allow-Credentials`.
//! - "If you configure CORS for an API, API Gateway ignores CORS headers returned from
//!   your backend integration": every `access-control-*` header of the integration's
//!   response is removed, whether or not the origin is allowed.
//! - No `Vary: Origin` is added: nothing we found shows AWS adding it.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use portico_model::CorsConfiguration;

/// Status of the gateway's answer to a preflight: 204 No Content, as API Gateway
/// HTTP APIs answer.
pub const PREFLIGHT_STATUS: StatusCode = StatusCode::NO_CONTENT;

/// Whether a request is a CORS preflight: `OPTIONS` with both `Origin` and
/// `Access-Control-Request-Method`. Other `OPTIONS` requests are routed as usual.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(ORIGIN) && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// The headers of the gateway's answer to a preflight request (empty when the origin,
/// the requested method or a requested header is not allowed).
pub fn preflight(cfg: &CorsConfiguration, req: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    let Some(allow_origin) = allowed_origin(cfg, req) else {
        return out;
    };
    let Some(method) = req.get(ACCESS_CONTROL_REQUEST_METHOD).and_then(|v| v.to_str().ok()) else {
        return out;
    };
    let method = method.trim();
    if !method_allowed(cfg, method) {
        return out;
    }
    let requested_headers = req
        .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty());
    let any_header = contains_star(&cfg.allow_headers);
    let mut requested_any = false;
    for h in requested_headers {
        requested_any = true;
        if !any_header && !cfg.allow_headers.iter().any(|a| a.trim().eq_ignore_ascii_case(h)) {
            return out;
        }
    }
    let credentials = cfg.allow_credentials == Some(true);
    out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if !cfg.allow_methods.is_empty() {
        // Browsers read `*` literally on credentialed requests, so name the method.
        let value = match (contains_star(&cfg.allow_methods), credentials) {
            (true, false) => Some(HeaderValue::from_static("*")),
            (true, true) => HeaderValue::from_str(method).ok(),
            (false, _) => joined(&cfg.allow_methods),
        };
        if let Some(v) = value {
            out.insert(ACCESS_CONTROL_ALLOW_METHODS, v);
        }
    }
    let allow_headers = if any_header {
        // Echo exactly what was asked for: `*` is literal on credentialed requests.
        if requested_any {
            req.get(ACCESS_CONTROL_REQUEST_HEADERS).cloned()
        } else {
            None
        }
    } else {
        joined(&cfg.allow_headers)
    };
    if let Some(v) = allow_headers {
        out.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if let Some(age) = cfg.max_age {
        out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
    if credentials {
        out.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    out
}

/// Sets the CORS headers of an actual (non-preflight) response: removes every
/// `access-control-*` header the integration returned, then adds the configured ones
/// when the request's origin is allowed.
pub fn actual_response_headers(cfg: &CorsConfiguration, req: &HeaderMap, resp: &mut HeaderMap) {
    let theirs: Vec<_> = resp.keys().filter(|k| k.as_str().starts_with("access-control-")).cloned().collect();
    for k in theirs {
        resp.remove(k);
    }
    let Some(allow_origin) = allowed_origin(cfg, req) else {
        return;
    };
    resp.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if let Some(v) = joined(&cfg.expose_headers) {
        resp.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
    if cfg.allow_credentials == Some(true) {
        resp.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}

/// The `Access-Control-Allow-Origin` value for this request, if its origin is allowed.
fn allowed_origin(cfg: &CorsConfiguration, req: &HeaderMap) -> Option<HeaderValue> {
    let origin = req.get(ORIGIN)?;
    let text = origin.to_str().ok()?;
    if contains_star(&cfg.allow_origins) {
        return Some(if cfg.allow_credentials == Some(true) { origin.clone() } else { HeaderValue::from_static("*") });
    }
    let allowed = cfg.allow_origins.iter().any(|allowed| {
        allowed == text
            || allowed
                .strip_suffix('*')
                .filter(|scheme| scheme.ends_with("://"))
                .is_some_and(|scheme| text.len() > scheme.len() && text.starts_with(scheme))
    });
    allowed.then(|| origin.clone())
}

fn method_allowed(cfg: &CorsConfiguration, method: &str) -> bool {
    if cfg.allow_methods.is_empty() {
        return matches!(method, "GET" | "HEAD" | "POST");
    }
    contains_star(&cfg.allow_methods) || cfg.allow_methods.iter().any(|m| m.trim().eq_ignore_ascii_case(method))
}

fn contains_star(list: &[String]) -> bool {
    list.iter().any(|v| v.trim() == "*")
}

/// The list joined with `,` as AWS writes it; `None` when empty or not a valid header
/// value (the control plane should not let one through).
fn joined(list: &[String]) -> Option<HeaderValue> {
    if list.is_empty() {
        return None;
    }
    HeaderValue::try_from(list.iter().map(|v| v.trim()).collect::<Vec<_>>().join(",")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(origins: &[&str]) -> CorsConfiguration {
        CorsConfiguration {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["Content-Type".into(), "Authorization".into()],
            expose_headers: vec!["x-request-id".into(), "date".into()],
            max_age: Some(300),
            allow_credentials: None,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("test header name"),
                HeaderValue::from_str(v).expect("test header value"),
            );
        }
        h
    }

    /// The headers as sorted `name: value` pairs, for whole-map comparisons.
    fn dump(h: &HeaderMap) -> Vec<(String, String)> {
        let mut v: Vec<_> = h.iter().map(|(k, v)| (k.to_string(), v.to_str().expect("ascii").to_string())).collect();
        v.sort();
        v
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        v.sort();
        v
    }

    fn preflight_req(origin: &str, method: &str, hdrs: Option<&str>) -> HeaderMap {
        let mut p = vec![("origin", origin), ("access-control-request-method", method)];
        if let Some(h) = hdrs {
            p.push(("access-control-request-headers", h));
        }
        headers(&p)
    }

    #[test]
    fn preflight_detection() {
        let full = preflight_req("https://a.example", "GET", None);
        assert!(is_preflight(&Method::OPTIONS, &full));
        assert!(!is_preflight(&Method::GET, &full));
        assert!(!is_preflight(&Method::OPTIONS, &headers(&[("origin", "https://a.example")])));
        assert!(!is_preflight(&Method::OPTIONS, &headers(&[("access-control-request-method", "GET")])));
        assert_eq!(PREFLIGHT_STATUS.as_u16(), 204);
    }

    #[test]
    fn preflight_for_an_exact_origin() {
        let c = cfg(&["https://a.example"]);
        let got = preflight(&c, &preflight_req("https://a.example", "POST", Some("content-type, authorization")));
        assert_eq!(
            dump(&got),
            pairs(&[
                ("access-control-allow-origin", "https://a.example"),
                ("access-control-allow-methods", "GET,POST"),
                ("access-control-allow-headers", "Content-Type,Authorization"),
                ("access-control-max-age", "300"),
            ])
        );
    }

    #[test]
    fn disallowed_origin_method_or_header_gets_nothing() {
        let c = cfg(&["https://a.example"]);
        for req in [
            preflight_req("https://b.example", "GET", None),
            preflight_req("https://A.example", "GET", None),
            preflight_req("http://a.example", "GET", None),
            preflight_req("https://a.example", "DELETE", None),
            preflight_req("https://a.example", "GET", Some("content-type, x-secret")),
        ] {
            assert!(preflight(&c, &req).is_empty(), "{req:?}");
        }
    }

    #[test]
    fn wildcards() {
        let mut c = cfg(&["*"]);
        c.allow_methods = vec!["*".into()];
        c.allow_headers = vec!["*".into()];
        c.max_age = None;
        let got = preflight(&c, &preflight_req("https://any.example", "PATCH", Some("X-Custom,Content-Type")));
        assert_eq!(
            dump(&got),
            pairs(&[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "*"),
                ("access-control-allow-headers", "X-Custom,Content-Type"),
            ])
        );
        // Without requested headers there is nothing to echo.
        let got = preflight(&c, &preflight_req("https://any.example", "GET", None));
        assert!(!got.contains_key(ACCESS_CONTROL_ALLOW_HEADERS));
    }

    #[test]
    fn credentials_never_pair_with_a_star() {
        let mut c = cfg(&["*"]);
        c.allow_methods = vec!["*".into()];
        c.allow_credentials = Some(true);
        let got = preflight(&c, &preflight_req("https://any.example", "PUT", None));
        assert_eq!(
            dump(&got),
            pairs(&[
                ("access-control-allow-origin", "https://any.example"),
                ("access-control-allow-methods", "PUT"),
                ("access-control-allow-headers", "Content-Type,Authorization"),
                ("access-control-max-age", "300"),
                ("access-control-allow-credentials", "true"),
            ])
        );
    }

    #[test]
    fn scheme_wildcard_origins() {
        let c = cfg(&["https://*"]);
        let ok = preflight(&c, &preflight_req("https://x.example:8443", "GET", None));
        assert_eq!(ok.get(ACCESS_CONTROL_ALLOW_ORIGIN).map(|v| v.as_bytes()), Some(&b"https://x.example:8443"[..]));
        assert!(preflight(&c, &preflight_req("http://x.example", "GET", None)).is_empty());
        assert!(preflight(&c, &preflight_req("https://", "GET", None)).is_empty());
    }

    #[test]
    fn empty_allow_methods_lets_safelisted_methods_through() {
        let mut c = cfg(&["https://a.example"]);
        c.allow_methods.clear();
        let got = preflight(&c, &preflight_req("https://a.example", "GET", None));
        assert!(got.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(!got.contains_key(ACCESS_CONTROL_ALLOW_METHODS));
        assert!(preflight(&c, &preflight_req("https://a.example", "DELETE", None)).is_empty());
    }

    #[test]
    fn methods_and_headers_compare_case_insensitively() {
        let mut c = cfg(&["https://a.example"]);
        c.allow_methods = vec!["get".into()];
        let got = preflight(&c, &preflight_req("https://a.example", "GET", Some("AUTHORIZATION")));
        assert!(got.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    #[test]
    fn actual_response_replaces_integration_cors_headers() {
        let mut c = cfg(&["https://a.example"]);
        c.allow_credentials = Some(true);
        let req = headers(&[("origin", "https://a.example")]);
        let mut resp = headers(&[
            ("content-type", "text/plain"),
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", "DELETE"),
            ("access-control-expose-headers", "x-theirs"),
        ]);
        actual_response_headers(&c, &req, &mut resp);
        assert_eq!(
            dump(&resp),
            pairs(&[
                ("content-type", "text/plain"),
                ("access-control-allow-origin", "https://a.example"),
                ("access-control-expose-headers", "x-request-id,date"),
                ("access-control-allow-credentials", "true"),
            ])
        );
    }

    #[test]
    fn actual_response_without_allowed_origin_has_no_cors_headers() {
        let c = cfg(&["https://a.example"]);
        for req in [headers(&[]), headers(&[("origin", "https://evil.example")])] {
            let mut resp = headers(&[("content-type", "text/plain"), ("access-control-allow-origin", "*")]);
            actual_response_headers(&c, &req, &mut resp);
            assert_eq!(dump(&resp), pairs(&[("content-type", "text/plain")]));
        }
    }

    #[test]
    fn actual_response_with_star_origin() {
        let mut c = cfg(&["*"]);
        c.expose_headers.clear();
        let mut resp = HeaderMap::new();
        actual_response_headers(&c, &headers(&[("origin", "https://z.example")]), &mut resp);
        assert_eq!(dump(&resp), pairs(&[("access-control-allow-origin", "*")]));
    }
}

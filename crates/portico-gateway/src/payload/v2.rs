//! Payload format 2.0: the event API Gateway HTTP APIs send a Lambda proxy
//! integration, and the rules that turn the function's answer into an HTTP response.
//!
//! The event is serialised straight from borrowed request parts into one buffer: no
//! intermediate JSON tree and no copies of header values or of the body.
//!
//! Event rules (AWS "Create AWS Lambda proxy integrations for HTTP APIs", format 2.0,
//! unless noted; the rules both formats share are in [`super`]):
//! - Fields with nothing to say are left out, never `null`: `cookies`,
//!   `queryStringParameters`, `pathParameters`, `stageVariables` and `body`.
//!   `isBase64Encoded` is always present.
//! - `headers` has lower-case names; repeated headers are joined with `,`, as are the
//!   `x-forwarded-*` headers API Gateway adds. The `Cookie` header is not in `headers`:
//!   its cookies are split on `;` into `cookies`.
//! - Repeated `queryStringParameters` are joined with `,`. `rawQueryString` is the query
//!   as sent.
//! - `rawPath` and `requestContext.http.path` are the path as the client sent it,
//!   stage prefix included (`/dev/hello` for stage `dev`).
//! - `requestContext.http.userAgent` is the `User-Agent` header, `""` without one.
//! - `requestContext.time` is `dd/MMM/yyyy:HH:mm:ss +0000` (`12/Mar/2020:19:03:58 +0000`),
//!   `timeEpoch` milliseconds.
//!
//! Response rules (same AWS page, "Lambda function response for format 2.0"):
//! - A JSON object with a `statusCode` is a structured response (see [`super`]), whose
//!   `cookies` become one `Set-Cookie` each. `multiValueHeaders` is not a 2.0 field and
//!   is ignored, as HTTP APIs do (a repeated header is joined with `,` in `headers`).
//! - Any other valid JSON ("returns valid JSON and doesn't return a statusCode") is
//!   inferred: status 200, `content-type: application/json`, body = the function's
//!   response, byte for byte (so a JSON string keeps its quotes).
//! - Anything else is a [`BadResponse`], which the gateway answers with 502.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, USER_AGENT};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::{event_capacity, is_forwarded, is_object, lossy, structured, Body, Forwarded, Joined, PathParameters};
pub use super::{Authorization, BadResponse, EventContext, MappedResponse, RequestView};
use super::{Query, Structured, Time};

/// Builds the payload format 2.0 event for a request, as JSON.
pub fn event(req: &RequestView<'_>, ctx: &EventContext<'_>) -> Vec<u8> {
    event_with(req, ctx, None)
}

/// Builds the payload format 2.0 event for a request, with what the route's
/// authorizer found in `requestContext.authorizer`.
pub fn event_with(req: &RequestView<'_>, ctx: &EventContext<'_>, authorization: Option<&Authorization>) -> Vec<u8> {
    let body = Body::of(req);
    let query = (!req.raw_query.is_empty()).then(|| Query::parse(req.raw_query)).filter(|q| !q.is_empty());
    let user_agent = req.headers.get(USER_AGENT).map_or(Cow::Borrowed(""), |v| lossy(v));
    let event = Event {
        version: "2.0",
        route_key: ctx.route_key,
        raw_path: req.raw_path,
        raw_query_string: req.raw_query,
        cookies: Cookies(req.headers),
        headers: Headers { map: req.headers, forwarded: Forwarded::of(req) },
        query_string_parameters: query.as_ref().map(QueryJoined),
        request_context: RequestContext {
            account_id: ctx.account_id,
            api_id: ctx.api_id,
            authorizer: authorization.map(AuthorizerV2),
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
        is_base64_encoded: body.is_base64(),
        body,
        path_parameters: PathParameters(ctx.path_parameters),
        stage_variables: ctx.stage_variables,
    };
    let mut buf = Vec::with_capacity(event_capacity(req, 6));
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
    query_string_parameters: Option<QueryJoined<'a, 'a>>,
    request_context: RequestContext<'a>,
    #[serde(skip_serializing_if = "Body::is_empty")]
    body: Body<'a>,
    #[serde(skip_serializing_if = "no_path_parameters")]
    path_parameters: PathParameters<'a>,
    is_base64_encoded: bool,
    #[serde(skip_serializing_if = "no_stage_variables")]
    stage_variables: &'a BTreeMap<String, String>,
}

fn no_stage_variables(v: &&BTreeMap<String, String>) -> bool {
    v.is_empty()
}

fn no_path_parameters(p: &PathParameters<'_>) -> bool {
    p.0.is_empty()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<AuthorizerV2<'a>>,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: Http<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: Time,
    time_epoch: i64,
}

/// `requestContext.authorizer`: `{"jwt": {"claims": {...}, "scopes": [...] | null}}`,
/// `{"lambda": {...} | null}` or `{"iam": {...}}` (members in the order of AWS's example).
struct AuthorizerV2<'a>(&'a Authorization);

impl Serialize for AuthorizerV2<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Jwt<'a> {
            claims: &'a BTreeMap<String, String>,
            scopes: &'a Option<Vec<String>>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Iam<'a> {
            access_key: &'a str,
            account_id: &'a str,
            caller_id: &'a str,
            cognito_identity: (),
            principal_org_id: (),
            user_arn: &'a str,
            user_id: &'a str,
        }
        let mut map = s.serialize_map(Some(1))?;
        match self.0 {
            Authorization::Jwt { claims, scopes } => map.serialize_entry("jwt", &Jwt { claims, scopes })?,
            Authorization::Lambda { context, .. } => map.serialize_entry("lambda", context)?,
            Authorization::Iam { access_key, account_id, user_arn } => map.serialize_entry(
                "iam",
                &Iam {
                    access_key,
                    account_id,
                    caller_id: access_key,
                    cognito_identity: (),
                    principal_org_id: (),
                    user_arn,
                    user_id: access_key,
                },
            )?,
        }
        map.end()
    }
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

/// `headers`: every header but `Cookie`, repeated ones joined with `,`, then the
/// `x-forwarded-*` headers API Gateway sets.
struct Headers<'a> {
    map: &'a HeaderMap,
    forwarded: Forwarded<'a>,
}

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for name in self.map.keys() {
            if name != COOKIE && !is_forwarded(name) {
                map.serialize_entry(name.as_str(), &Joined(|| self.map.get_all(name).iter().map(lossy), ","))?;
            }
        }
        for (name, value) in self.forwarded.pairs() {
            map.serialize_entry(name, value)?;
        }
        map.end()
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

/// `queryStringParameters`: repeated values joined with `,`.
struct QueryJoined<'q, 'a>(&'q Query<'a>);

impl Serialize for QueryJoined<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0 .0.len()))?;
        for (k, vs) in &self.0 .0 {
            map.serialize_entry(k, &Joined(|| vs.iter(), ","))?;
        }
        map.end()
    }
}

/// Maps a function's answer (the invoke payload) to an HTTP response.
pub fn response(payload: &[u8]) -> Result<MappedResponse, BadResponse> {
    if is_object(payload) {
        let mut parsed: Structured = serde_json::from_slice(payload).map_err(BadResponse::NotJson)?;
        if let Some(status) = parsed.status_code.take() {
            // 2.0 has no multiValueHeaders: HTTP APIs drop them (Set-Cookie goes in
            // `cookies`; CodeGenieApp/serverless-express#554, Kludex/mangum#215).
            parsed.multi_value_headers = None;
            return structured(&status, parsed);
        }
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(payload).map_err(BadResponse::NotJson)?;
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(MappedResponse { status: StatusCode::OK, headers, body: Bytes::copy_from_slice(payload) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::test_support::{context, headers, json, request};
    use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde_json::Value;

    /// Builds an event for `GET /dev/pets/7?...` on stage `dev` with these parts.
    fn build(
        hdrs: &HeaderMap,
        query: &str,
        body: &[u8],
        params: &[(&str, String)],
        vars: &BTreeMap<String, String>,
    ) -> Vec<u8> {
        event(&request(hdrs, query, body), &context("POST /pets/{id}", 1_584_039_838_000, params, vars))
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
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
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
        // API Gateway's own headers: the client's list plus the source IP, the port of Host.
        assert_eq!(ev.headers.get("x-forwarded-for").map(|v| v.as_bytes()), Some(&b"203.0.113.9, 192.0.2.10"[..]));
        assert_eq!(ev.headers.get("x-forwarded-port").map(|v| v.as_bytes()), Some(&b"4750"[..]));
        assert_eq!(ev.headers.get("x-forwarded-proto").map(|v| v.as_bytes()), Some(&b"http"[..]));
        assert_eq!(ev.headers.get_all("x-forwarded-proto").iter().count(), 1);
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
        // Only what API Gateway adds itself.
        assert_eq!(
            v["headers"],
            serde_json::json!({"x-forwarded-for": "192.0.2.10", "x-forwarded-port": "80", "x-forwarded-proto": "http"})
        );
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
        // multiValueHeaders is not a 2.0 field: ignored, whatever its shape.
        assert_eq!(header_values(&r, "x-text"), ["a"]);
        assert!(r.headers.get("x-multi").is_none());
        assert_eq!(header_values(&r, "x-num"), ["5"]);
        assert_eq!(header_values(&r, "x-bool"), ["true"]);
        assert!(r.headers.get("x-null").is_none());
        assert_eq!(header_values(&r, "set-cookie"), ["id=1; Path=/; HttpOnly", "theme=dark"]);
        assert_eq!(header_values(&r, "content-type"), ["text/html"]);
        assert_eq!(r.body, "<h1>hi</h1>");
        for ignored in [r#""x""#, r#"{"X-M": "a"}"#, r#"{"X-M": [[1]]}"#, r#"{"Set-Cookie": ["a=1", "b=2"]}"#] {
            let r = ok(&format!(r#"{{"statusCode": 200, "multiValueHeaders": {ignored}}}"#));
            assert_eq!(r.headers.len(), 1, "{ignored}: {:?}", r.headers);
        }
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

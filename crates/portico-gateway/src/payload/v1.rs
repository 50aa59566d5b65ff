//! Payload format 1.0: the REST-API-compatible event HTTP APIs send an integration
//! whose `payloadFormatVersion` is `1.0`, and how its answer becomes an HTTP response.
//!
//! Like 2.0, the event is serialised straight from borrowed request parts.
//!
//! Event rules (AWS "Create AWS Lambda proxy integrations for HTTP APIs", format 1.0,
//! and the HTTP API 1.0 event captured from a real curl request in "Lambda proxy
//! integrations in API Gateway"; the rules both formats share are in [`super`]):
//! - Members are always present: a map with nothing in it (`queryStringParameters`,
//!   `multiValueQueryStringParameters`, `pathParameters`, `stageVariables`) is `null`,
//!   and so is an empty `body`.
//! - `headers` has the *last* value of a repeated header, `multiValueHeaders` all of
//!   them; likewise `queryStringParameters` and `multiValueQueryStringParameters`
//!   (`header2: value1` + `header2: value2` gives `"header2": "value2"` and
//!   `["value1","value2"]`). Values are never split on `,`. `Cookie` stays a header.
//! - Header names are lower-case, except the ones API Gateway writes itself, which real
//!   1.0 events show in canonical case: `Content-Length`, `Content-Type`, `Host`,
//!   `User-Agent`, `X-Amzn-Trace-Id` and the `X-Forwarded-*` it adds.
//! - `resource` and `requestContext.resourcePath` are the route's path (`/pets/{id}`),
//!   or `$default`; `requestContext.resourceId` is the route key (`GET /pets/{id}`).
//! - `path` and `requestContext.path` are the path as sent, stage prefix included.
//! - `requestContext.extendedRequestId` is the request id; `requestTime` is
//!   `dd/MMM/yyyy:HH:mm:ss +0000`, `requestTimeEpoch` milliseconds.
//! - `requestContext.identity` has `sourceIp`, `userAgent` (`""` without one) and the
//!   caller members AWS sends as `null` when there is no IAM or Cognito caller; an
//!   `AWS_IAM` route fills `accessKey`, `accountId`, `caller`, `user` and `userArn`, as
//!   REST APIs do. There is no `authorizer` member without a JWT or Lambda authorizer
//!   (real events have none; AWS's documentation example shows one with null claims).
//!
//! Response rules ("Lambda function response for format 1.0"): the answer must be a
//! JSON object with a `statusCode`; there is no inference as in 2.0. `headers` and
//! `multiValueHeaders` are merged, `body` and `isBase64Encoded` read as in 2.0 (see
//! [`super`]); `cookies` is not a 1.0 field and is ignored. Anything else is a
//! [`BadResponse`], which the gateway answers with 502.

use std::borrow::Cow;
use std::collections::BTreeMap;

use http::header::USER_AGENT;
use http::{HeaderMap, HeaderName};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{event_capacity, is_forwarded, is_object, kind, lossy, structured, Array, Body, Forwarded, PathParameters};
pub use super::{Authorization, BadResponse, EventContext, MappedResponse, RequestView};
use super::{Query, Structured, Time};

/// Builds the payload format 1.0 event for a request, as JSON.
pub fn event(req: &RequestView<'_>, ctx: &EventContext<'_>) -> Vec<u8> {
    event_with(req, ctx, None)
}

/// Builds the payload format 1.0 event for a request, with what the route's
/// authorizer found in `requestContext.authorizer`.
pub fn event_with(req: &RequestView<'_>, ctx: &EventContext<'_>, authorization: Option<&Authorization>) -> Vec<u8> {
    let body = Body::of(req);
    let query = (!req.raw_query.is_empty()).then(|| Query::parse(req.raw_query)).filter(|q| !q.is_empty());
    let user_agent = req.headers.get(USER_AGENT).map_or(Cow::Borrowed(""), |v| lossy(v));
    let headers = Headers { map: req.headers, forwarded: Forwarded::of(req) };
    // An IAM caller is described in `identity`, not in `authorizer`.
    let (iam, authorization) = match authorization {
        Some(Authorization::Iam { access_key, account_id, user_arn }) => {
            (Some((access_key.as_str(), account_id.as_str(), user_arn.as_str())), None)
        }
        other => (None, other),
    };
    // `GET /pets/{id}` → `/pets/{id}`; `$default` has no path of its own.
    let resource = ctx.route_key.split_once(' ').map_or(ctx.route_key, |(_, path)| path);
    let event = Event {
        version: "1.0",
        resource,
        path: req.raw_path,
        http_method: req.method,
        headers: Last(&headers),
        multi_value_headers: Multi(&headers),
        query_string_parameters: query.as_ref().map(QueryLast),
        multi_value_query_string_parameters: query.as_ref().map(QueryMulti),
        request_context: RequestContext {
            account_id: ctx.account_id,
            api_id: ctx.api_id,
            authorizer: authorization.map(AuthorizerV1),
            domain_name: ctx.domain_name,
            domain_prefix: ctx.domain_prefix,
            extended_request_id: ctx.request_id,
            http_method: req.method,
            identity: Identity {
                access_key: iam.map(|i| i.0),
                account_id: iam.map(|i| i.1),
                caller: iam.map(|i| i.0),
                cognito_amr: (),
                cognito_authentication_provider: (),
                cognito_authentication_type: (),
                cognito_identity_id: (),
                cognito_identity_pool_id: (),
                principal_org_id: (),
                source_ip: req.source_ip,
                user: iam.map(|i| i.0),
                user_agent,
                user_arn: iam.map(|i| i.2),
            },
            path: req.raw_path,
            protocol: req.protocol,
            request_id: ctx.request_id,
            request_time: Time(ctx.time_epoch_ms),
            request_time_epoch: ctx.time_epoch_ms,
            resource_id: ctx.route_key,
            resource_path: resource,
            stage: ctx.stage,
        },
        path_parameters: (!ctx.path_parameters.is_empty()).then_some(PathParameters(ctx.path_parameters)),
        stage_variables: (!ctx.stage_variables.is_empty()).then_some(ctx.stage_variables),
        is_base64_encoded: body.is_base64(),
        body: (!body.is_empty()).then_some(body),
    };
    // Each header is written twice (headers and multiValueHeaders).
    let mut buf = Vec::with_capacity(event_capacity(req, 12) + 128);
    serde_json::to_writer(&mut buf, &event)
        .expect("serialising to a Vec cannot fail: no I/O, and every map key is a string");
    buf
}

/// The event, members in the order of AWS's example.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    resource: &'a str,
    path: &'a str,
    http_method: &'a str,
    headers: Last<'a>,
    multi_value_headers: Multi<'a>,
    query_string_parameters: Option<QueryLast<'a, 'a>>,
    multi_value_query_string_parameters: Option<QueryMulti<'a, 'a>>,
    request_context: RequestContext<'a>,
    path_parameters: Option<PathParameters<'a>>,
    stage_variables: Option<&'a BTreeMap<String, String>>,
    body: Option<Body<'a>>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<AuthorizerV1<'a>>,
    domain_name: &'a str,
    domain_prefix: &'a str,
    extended_request_id: &'a str,
    http_method: &'a str,
    identity: Identity<'a>,
    path: &'a str,
    protocol: &'a str,
    request_id: &'a str,
    request_time: Time,
    request_time_epoch: i64,
    resource_id: &'a str,
    resource_path: &'a str,
    stage: &'a str,
}

/// `requestContext.authorizer`: a JWT authorizer's `{"claims", "scopes"}` (AWS's 1.0
/// example), or a Lambda authorizer's context members with its `principalId`, as REST
/// APIs pass them.
struct AuthorizerV1<'a>(&'a Authorization);

impl Serialize for AuthorizerV1<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self.0 {
            Authorization::Jwt { claims, scopes } => {
                map.serialize_entry("claims", claims)?;
                map.serialize_entry("scopes", scopes)?;
            }
            Authorization::Lambda { context, principal_id } => {
                for (k, v) in context.iter().flatten() {
                    map.serialize_entry(k, v)?;
                }
                if let Some(p) = principal_id {
                    map.serialize_entry("principalId", p)?;
                }
            }
            // Written in `identity` instead (`event_with` never puts it here).
            Authorization::Iam { .. } => {}
        }
        map.end()
    }
}

/// `requestContext.identity`; each `()` (and `None`) is written as `null`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    access_key: Option<&'a str>,
    account_id: Option<&'a str>,
    caller: Option<&'a str>,
    cognito_amr: (),
    cognito_authentication_provider: (),
    cognito_authentication_type: (),
    cognito_identity_id: (),
    cognito_identity_pool_id: (),
    principal_org_id: (),
    source_ip: &'a str,
    user: Option<&'a str>,
    user_agent: Cow<'a, str>,
    user_arn: Option<&'a str>,
}

/// The request's headers as API Gateway passes them on: the client's, less the
/// `x-forwarded-*` it replaces, then those.
struct Headers<'a> {
    map: &'a HeaderMap,
    forwarded: Forwarded<'a>,
}

/// The name a 1.0 event gives a header: canonical case for those API Gateway writes.
fn name_of(name: &HeaderName) -> &str {
    match name.as_str() {
        "content-length" => "Content-Length",
        "content-type" => "Content-Type",
        "host" => "Host",
        "user-agent" => "User-Agent",
        "x-amzn-trace-id" => "X-Amzn-Trace-Id",
        other => other,
    }
}

/// The canonical name of an `x-forwarded-*` header.
fn forwarded_name(name: &str) -> &'static str {
    match name {
        "x-forwarded-for" => "X-Forwarded-For",
        "x-forwarded-port" => "X-Forwarded-Port",
        _ => "X-Forwarded-Proto",
    }
}

/// `headers`: the last value of each header.
struct Last<'h>(&'h Headers<'h>);

impl Serialize for Last<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = self.0;
        let mut map = s.serialize_map(None)?;
        for name in h.map.keys().filter(|n| !is_forwarded(n)) {
            if let Some(last) = h.map.get_all(name).iter().next_back() {
                map.serialize_entry(name_of(name), &lossy(last))?;
            }
        }
        for (name, value) in h.forwarded.pairs() {
            map.serialize_entry(forwarded_name(name), value)?;
        }
        map.end()
    }
}

/// `multiValueHeaders`: every value of each header.
struct Multi<'h>(&'h Headers<'h>);

impl Serialize for Multi<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = self.0;
        let mut map = s.serialize_map(None)?;
        for name in h.map.keys().filter(|n| !is_forwarded(n)) {
            map.serialize_entry(name_of(name), &Array(|| h.map.get_all(name).iter().map(lossy)))?;
        }
        for (name, value) in h.forwarded.pairs() {
            map.serialize_entry(forwarded_name(name), &[value])?;
        }
        map.end()
    }
}

/// `queryStringParameters`: the last value of each parameter.
struct QueryLast<'q, 'a>(&'q Query<'a>);

impl Serialize for QueryLast<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0 .0.len()))?;
        for (k, vs) in &self.0 .0 {
            if let Some(last) = vs.last() {
                map.serialize_entry(k, last)?;
            }
        }
        map.end()
    }
}

/// `multiValueQueryStringParameters`: every value of each parameter.
struct QueryMulti<'q, 'a>(&'q Query<'a>);

impl Serialize for QueryMulti<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0 .0.len()))?;
        for (k, vs) in &self.0 .0 {
            map.serialize_entry(k, vs)?;
        }
        map.end()
    }
}

/// Maps a function's answer (the invoke payload) to an HTTP response.
pub fn response(payload: &[u8]) -> Result<MappedResponse, BadResponse> {
    if !is_object(payload) {
        // Parsed only to tell "not JSON" from "JSON of the wrong type".
        let value: Value = serde_json::from_slice(payload).map_err(BadResponse::NotJson)?;
        return Err(BadResponse::NotAnObject(kind(&value)));
    }
    let mut parsed: Structured = serde_json::from_slice(payload).map_err(BadResponse::NotJson)?;
    let status = parsed.status_code.take().ok_or(BadResponse::MissingStatusCode)?;
    // Format 1.0 has no `cookies`: Set-Cookie comes through (multiValue)headers.
    parsed.cookies = None;
    structured(&status, parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::test_support::{context, headers, json, request};
    use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use http::header::CONTENT_TYPE;
    use http::{HeaderValue, StatusCode};
    use serde_json::json;

    /// Builds an event for `POST /dev/pets/7?...` on stage `dev` with these parts.
    fn build(
        hdrs: &HeaderMap,
        query: &str,
        body: &[u8],
        route_key: &str,
        params: &[(&str, String)],
        vars: &BTreeMap<String, String>,
    ) -> Vec<u8> {
        event(&request(hdrs, query, body), &context(route_key, 1_583_349_317_135, params, vars))
    }

    /// An object's member names in the order they were written.
    #[derive(Debug, PartialEq)]
    struct Keys(Vec<String>);

    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(Visit)
        }
    }

    /// The member order of the event and of its objects that have a fixed shape.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Order {
        request_context: Keys,
        headers: Keys,
        multi_value_headers: Keys,
    }

    fn keys(bytes: &[u8]) -> Vec<String> {
        serde_json::from_slice::<Keys>(bytes).expect("an object").0
    }

    #[test]
    fn full_event_round_trips_through_aws_lambda_events() {
        let hdrs = headers(&[
            ("host", "abc123defg.execute-api.localhost:4750"),
            ("user-agent", "curl/8.5.0"),
            ("header2", "value1"),
            ("header2", "value2"),
            ("header3", "value1,value2"),
            ("cookie", "a=1; b=2"),
            ("content-type", "application/json; charset=utf-8"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-port", "443"),
        ]);
        let vars = BTreeMap::from([("lambdaAlias".to_string(), "live".to_string())]);
        let params = [("id", "7".to_string())];
        let query = "parameter1=value1&parameter2=value1&parameter2=value2&parameter3=value1,value2&q=x+y%21&flag";
        let bytes = build(&hdrs, query, br#"{"name":"Rex"}"#, "POST /pets/{id}", &params, &vars);

        let ev: ApiGatewayProxyRequest = serde_json::from_slice(&bytes).expect("aws_lambda_events reads the event");
        assert_eq!(ev.resource.as_deref(), Some("/pets/{id}"));
        assert_eq!(ev.path.as_deref(), Some("/dev/pets/7"));
        assert_eq!(ev.http_method, http::Method::POST);
        // headers: the last value; multiValueHeaders: all of them, never split on `,`.
        let one = |name: &str| ev.headers.get_all(name).iter().map(|v| v.to_str().expect("ascii")).collect::<Vec<_>>();
        let all = |name: &str| {
            ev.multi_value_headers.get_all(name).iter().map(|v| v.to_str().expect("ascii")).collect::<Vec<_>>()
        };
        assert_eq!(one("header2"), ["value2"]);
        assert_eq!(all("header2"), ["value1", "value2"]);
        assert_eq!(one("header3"), ["value1,value2"]);
        assert_eq!(all("header3"), ["value1,value2"]);
        assert_eq!(one("cookie"), ["a=1; b=2"]);
        assert_eq!(one("host"), ["abc123defg.execute-api.localhost:4750"]);
        assert_eq!(one("x-forwarded-for"), ["203.0.113.9, 192.0.2.10"]);
        assert_eq!(all("x-forwarded-port"), ["4750"]);
        assert_eq!(all("x-forwarded-proto"), ["http"]);
        // Query: last value, then every value.
        assert_eq!(ev.query_string_parameters.all("parameter2"), Some(vec!["value2"]));
        assert_eq!(ev.query_string_parameters.first("parameter3"), Some("value1,value2"));
        assert_eq!(ev.query_string_parameters.first("q"), Some("x y!"));
        assert_eq!(ev.query_string_parameters.first("flag"), Some(""));
        assert_eq!(ev.multi_value_query_string_parameters.all("parameter1"), Some(vec!["value1"]));
        assert_eq!(ev.multi_value_query_string_parameters.all("parameter2"), Some(vec!["value1", "value2"]));
        assert_eq!(ev.multi_value_query_string_parameters.all("parameter3"), Some(vec!["value1,value2"]));
        assert_eq!(ev.path_parameters.get("id").map(String::as_str), Some("7"));
        assert_eq!(ev.stage_variables.get("lambdaAlias").map(String::as_str), Some("live"));
        assert_eq!(ev.body.as_deref(), Some(r#"{"name":"Rex"}"#));
        assert!(!ev.is_base64_encoded);
        let rc = &ev.request_context;
        assert_eq!(rc.account_id.as_deref(), Some("123456789012"));
        assert_eq!(rc.apiid.as_deref(), Some("abc123defg"));
        assert_eq!(rc.domain_name.as_deref(), Some("abc123defg.execute-api.localhost"));
        assert_eq!(rc.domain_prefix.as_deref(), Some("abc123defg"));
        assert_eq!(rc.http_method, http::Method::POST);
        assert_eq!(rc.path.as_deref(), Some("/dev/pets/7"));
        assert_eq!(rc.protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(rc.request_id.as_deref(), Some("JYxQ8gHAoAMEbkQ="));
        assert_eq!(rc.request_time.as_deref(), Some("04/Mar/2020:19:15:17 +0000"));
        assert_eq!(rc.request_time_epoch, 1_583_349_317_135);
        assert_eq!(rc.resource_id.as_deref(), Some("POST /pets/{id}"));
        assert_eq!(rc.resource_path.as_deref(), Some("/pets/{id}"));
        assert_eq!(rc.stage.as_deref(), Some("dev"));
        assert_eq!(rc.identity.source_ip.as_deref(), Some("192.0.2.10"));
        assert_eq!(rc.identity.user_agent.as_deref(), Some("curl/8.5.0"));
        assert_eq!(rc.identity.user_arn, None);
        assert_eq!(rc.identity.access_key, None);

        // The exact shape, in AWS's member order.
        let v = json(&bytes);
        let order: Order = serde_json::from_slice(&bytes).expect("the event");
        assert_eq!(
            keys(&bytes),
            [
                "version",
                "resource",
                "path",
                "httpMethod",
                "headers",
                "multiValueHeaders",
                "queryStringParameters",
                "multiValueQueryStringParameters",
                "requestContext",
                "pathParameters",
                "stageVariables",
                "body",
                "isBase64Encoded"
            ]
        );
        assert_eq!(v["version"], "1.0");
        assert_eq!(v["requestContext"]["extendedRequestId"], "JYxQ8gHAoAMEbkQ=");
        assert_eq!(
            order.request_context.0,
            [
                "accountId",
                "apiId",
                "domainName",
                "domainPrefix",
                "extendedRequestId",
                "httpMethod",
                "identity",
                "path",
                "protocol",
                "requestId",
                "requestTime",
                "requestTimeEpoch",
                "resourceId",
                "resourcePath",
                "stage"
            ]
        );
        assert_eq!(
            v["requestContext"]["identity"],
            json!({
                "accessKey": null, "accountId": null, "caller": null, "cognitoAmr": null,
                "cognitoAuthenticationProvider": null, "cognitoAuthenticationType": null,
                "cognitoIdentityId": null, "cognitoIdentityPoolId": null, "principalOrgId": null,
                "sourceIp": "192.0.2.10", "user": null, "userAgent": "curl/8.5.0", "userArn": null
            })
        );
        // Header names: lower case, but canonical for the ones API Gateway writes.
        assert_eq!(
            order.headers.0,
            [
                "Host",
                "User-Agent",
                "header2",
                "header3",
                "cookie",
                "Content-Type",
                "X-Forwarded-For",
                "X-Forwarded-Port",
                "X-Forwarded-Proto"
            ]
        );
        assert_eq!(order.headers, order.multi_value_headers);
        assert_eq!(v["multiValueHeaders"]["X-Forwarded-Proto"], json!(["http"]));
        assert_eq!(
            v["queryStringParameters"],
            json!({"parameter1": "value1", "parameter2": "value2", "parameter3": "value1,value2", "q": "x y!", "flag": ""})
        );
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.starts_with(r#"{"version":"1.0","resource":"/pets/{id}","path":"/dev/pets/7","httpMethod":"POST","headers":{"Host":"#), "{text}");
    }

    #[test]
    fn shape_matches_aws_example() {
        // AWS's format 1.0 example ("Create AWS Lambda proxy integrations for HTTP APIs"),
        // less `authorizer` and `identity.clientCert`, which need an authorizer or mTLS.
        let aws = json!({
          "version": "1.0", "resource": "/my/path", "path": "/my/path", "httpMethod": "GET",
          "headers": {"header1": "value1", "header2": "value2"},
          "multiValueHeaders": {"header1": ["value1"], "header2": ["value1", "value2"]},
          "queryStringParameters": {"parameter1": "value1", "parameter2": "value"},
          "multiValueQueryStringParameters": {"parameter1": ["value1", "value2"], "parameter2": ["value"]},
          "requestContext": {
            "accountId": "123456789012", "apiId": "id", "domainName": "id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "id", "extendedRequestId": "request-id", "httpMethod": "GET",
            "identity": {
              "accessKey": null, "accountId": null, "caller": null, "cognitoAuthenticationProvider": null,
              "cognitoAuthenticationType": null, "cognitoIdentityId": null, "cognitoIdentityPoolId": null,
              "principalOrgId": null, "sourceIp": "IP", "user": null, "userAgent": "user-agent", "userArn": null
            },
            "path": "/my/path", "protocol": "HTTP/1.1", "requestId": "id=",
            "requestTime": "04/Mar/2020:19:15:17 +0000", "requestTimeEpoch": 1583349317135_i64,
            "resourceId": null, "resourcePath": "/my/path", "stage": "$default"
          },
          "pathParameters": null, "stageVariables": null, "body": "Hello from Lambda!", "isBase64Encoded": false
        });
        let ours = json(&build(
            &headers(&[("content-type", "text/plain")]),
            "parameter1=value1",
            b"Hello from Lambda!",
            "GET /my/path",
            &[],
            &BTreeMap::new(),
        ));
        // Same members with the same JSON types (`resourceId` is the route key in real
        // events, null only in the example).
        fn check(path: &str, aws: &Value, ours: &Value) {
            match (aws, ours) {
                // Maps of request data: their members are the request's, not a shape.
                (Value::Object(_), Value::Object(_))
                    if [
                        ".headers",
                        ".multiValueHeaders",
                        ".queryStringParameters",
                        ".multiValueQueryStringParameters",
                    ]
                    .contains(&path) => {}
                (Value::Object(a), Value::Object(o)) => {
                    for (k, av) in a {
                        let ov = o.get(k).unwrap_or_else(|| panic!("{path}.{k} missing"));
                        if k != "resourceId" {
                            check(&format!("{path}.{k}"), av, ov);
                        }
                    }
                    let extra: Vec<&String> = o.keys().filter(|k| !a.contains_key(*k)).collect();
                    assert!(extra.iter().all(|k| *k == "cognitoAmr"), "{path}: extra members {extra:?}");
                }
                (a, o) => assert_eq!(kind(a), kind(o), "{path}"),
            }
        }
        check("", &aws, &ours);
    }

    #[test]
    fn absent_parts_are_null() {
        let bytes = build(&HeaderMap::new(), "", b"", "$default", &[], &BTreeMap::new());
        let v = json(&bytes);
        for null in
            ["queryStringParameters", "multiValueQueryStringParameters", "pathParameters", "stageVariables", "body"]
        {
            assert_eq!(v[null], Value::Null, "{null} in {v}");
        }
        assert_eq!(v["isBase64Encoded"], false);
        assert_eq!(v["resource"], "$default");
        assert_eq!(v["requestContext"]["resourcePath"], "$default");
        assert_eq!(v["requestContext"]["resourceId"], "$default");
        assert_eq!(v["requestContext"]["identity"]["userAgent"], "");
        assert_eq!(
            v["headers"],
            json!({"X-Forwarded-For": "192.0.2.10", "X-Forwarded-Port": "80", "X-Forwarded-Proto": "http"})
        );
        let ev: ApiGatewayProxyRequest = serde_json::from_slice(&bytes).expect("aws_lambda_events reads the event");
        assert!(ev.query_string_parameters.is_empty() && ev.multi_value_query_string_parameters.is_empty());
        assert!(ev.path_parameters.is_empty() && ev.stage_variables.is_empty());
        assert_eq!(ev.body, None);
        // A query of separators only has no parameters.
        let v = json(&build(&HeaderMap::new(), "&&", b"", "$default", &[], &BTreeMap::new()));
        assert_eq!(v["queryStringParameters"], Value::Null);
        assert_eq!(v["multiValueQueryStringParameters"], Value::Null);
    }

    #[test]
    fn binary_bodies_are_base64() {
        let cases: [(Option<&str>, &[u8], bool); 4] = [
            (Some("application/octet-stream"), b"\x00\x9f\x92\x96", true),
            (Some("text/plain; charset=utf-8"), "h\u{e9}llo".as_bytes(), false),
            (Some("text/plain"), b"\xff\xfe", true),
            (None, b"hello", true),
        ];
        for (ct, body, base64) in cases {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).expect("test value"));
            }
            let bytes = build(&h, "", body, "$default", &[], &BTreeMap::new());
            let ev: ApiGatewayProxyRequest = serde_json::from_slice(&bytes).expect("aws_lambda_events reads the event");
            assert_eq!(ev.is_base64_encoded, base64, "{ct:?}");
            let sent = ev.body.expect("body present");
            let got = if base64 { STANDARD.decode(sent).expect("base64") } else { sent.into_bytes() };
            assert_eq!(got, body, "{ct:?}");
        }
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
    fn structured_response() {
        let r = ok(r#"{
            "statusCode": 201,
            "headers": {"X-One": "a", "X-Both": "b", "Content-Type": "text/html", "Set-Cookie": "s=1"},
            "multiValueHeaders": {"X-Multi": ["1", "2"], "X-Both": ["b", "c"], "Set-Cookie": ["s=1", "t=2; Path=/"]},
            "cookies": ["ignored=1"],
            "body": "<h1>hi</h1>",
            "isBase64Encoded": false,
            "somethingElse": {"ignored": true}
        }"#);
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(header_values(&r, "x-one"), ["a"]);
        assert_eq!(header_values(&r, "x-multi"), ["1", "2"]);
        // A pair in both appears once; the lists are merged.
        assert_eq!(header_values(&r, "x-both"), ["b", "c"]);
        assert_eq!(header_values(&r, "set-cookie"), ["s=1", "t=2; Path=/"]);
        assert_eq!(header_values(&r, "content-type"), ["text/html"]);
        assert_eq!(r.body, "<h1>hi</h1>");

        let r = ok(r#"{"statusCode": 204}"#);
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.body.is_empty());
        assert_eq!(header_values(&r, "content-type"), ["text/plain; charset=utf-8"]);
        let r = ok(r#"{"statusCode": 200, "headers": null, "multiValueHeaders": null, "body": null}"#);
        assert_eq!(r.status, StatusCode::OK);
        let r = ok(r#"{"statusCode": 200, "isBase64Encoded": true, "body": "AJ+Slg=="}"#);
        assert_eq!(r.body, &[0, 159, 146, 150][..]);
    }

    #[test]
    fn responses_from_aws_lambda_events_map() {
        let mut resp = ApiGatewayProxyResponse {
            status_code: 418,
            body: Some(aws_lambda_events::encodings::Body::Text("short and stout".into())),
            ..Default::default()
        };
        resp.headers.insert("x-kettle", HeaderValue::from_static("on"));
        resp.multi_value_headers.append("set-cookie", HeaderValue::from_static("tea=earl-grey"));
        resp.multi_value_headers.append("set-cookie", HeaderValue::from_static("milk=no"));
        let r = response(&serde_json::to_vec(&resp).expect("serialises")).expect("maps");
        assert_eq!(r.status.as_u16(), 418);
        assert_eq!(r.body, "short and stout");
        assert_eq!(header_values(&r, "x-kettle"), ["on"]);
        assert_eq!(header_values(&r, "set-cookie"), ["tea=earl-grey", "milk=no"]);
        let binary = ApiGatewayProxyResponse {
            status_code: 200,
            body: Some(aws_lambda_events::encodings::Body::Binary(vec![0, 255, 1])),
            is_base64_encoded: true,
            ..Default::default()
        };
        let r = response(&serde_json::to_vec(&binary).expect("serialises")).expect("maps");
        assert_eq!(r.body, &[0, 255, 1][..]);
    }

    #[test]
    fn bad_responses_name_the_defect() {
        let cases = [
            // No 2.0-style inference: every one of these is a 200 in 2.0.
            (r#""Hello from Lambda!""#, "a format 1.0 response must be a JSON object with a statusCode, got string"),
            ("[200]", "a format 1.0 response must be a JSON object with a statusCode, got array"),
            ("42", "a format 1.0 response must be a JSON object with a statusCode, got number"),
            ("null", "a format 1.0 response must be a JSON object with a statusCode, got null"),
            (r#"{"message": "Hello"}"#, "a format 1.0 response must have a statusCode"),
            (r#"{"statusCode": null, "body": "x"}"#, "a format 1.0 response must have a statusCode"),
            (r#"{"statusCode": "200"}"#, r#"statusCode must be an integer from 100 to 599, got "200""#),
            (r#"{"statusCode": 600}"#, "statusCode must be an integer from 100 to 599, got 600"),
            (r#"{"statusCode": 200, "headers": ["a"]}"#, "headers must be an object, got array"),
            (r#"{"statusCode": 200, "headers": {"X-A": ["a"]}}"#, r#"header "X-A" must be a string, got array"#),
            (r#"{"statusCode": 200, "multiValueHeaders": []}"#, "multiValueHeaders must be an object, got array"),
            (
                r#"{"statusCode": 200, "multiValueHeaders": {"X-M": "a"}}"#,
                r#"multiValueHeaders "X-M" must be an array of strings, got string"#,
            ),
            (
                r#"{"statusCode": 200, "multiValueHeaders": {"X-M": [[1]]}}"#,
                r#"header "X-M" must be a string, got array"#,
            ),
            (
                r#"{"statusCode": 200, "multiValueHeaders": {"bad name": ["v"]}}"#,
                r#"header "bad name" has an invalid name or value"#,
            ),
            (r#"{"statusCode": 200, "body": {"message": "hi"}}"#, "body must be a string, got object"),
            (r#"{"statusCode": 200, "isBase64Encoded": "true"}"#, "isBase64Encoded must be a boolean, got string"),
        ];
        for (payload, want) in cases {
            assert_eq!(err(payload), want, "{payload}");
        }
        for (payload, want) in [
            ("", "the function's response is not valid JSON: "),
            ("Hello", "the function's response is not valid JSON: "),
            (r#"{"statusCode": 200"#, "the function's response is not valid JSON: "),
            (r#"{"statusCode": 200, "isBase64Encoded": true, "body": "%%"}"#, "isBase64Encoded is true but body"),
        ] {
            let got = err(payload);
            assert!(got.starts_with(want), "{payload}: {got}");
        }
    }
}

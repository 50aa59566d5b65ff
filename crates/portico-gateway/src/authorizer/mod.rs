//! Route authorizers: the phase between routing and invoking that decides whether a
//! request may reach its integration, and what the integration learns of the caller
//! (`requestContext.authorizer`).
//!
//! A route names its authorizer by id; the deployment a stage serves holds both, so a
//! route and its authorizer are always read from the same moment. [`compile`] turns
//! them into a [`RouteAuth`] once per deployment; [`Authorizers::authorize`] runs it for
//! one request:
//!
//! - [`jwt`]: `AuthorizationType` `JWT`. The token is checked against the issuer's
//!   JWKS, fetched asynchronously and cached (refreshed on an unknown `kid`, at most once
//!   a second per issuer); its claims and scopes go to the integration.
//! - [`lambda`]: `AuthorizationType` `CUSTOM` with a `REQUEST` authorizer. The function
//!   is invoked through the same [`Invoker`] as integrations, after its resource policy
//!   lets API Gateway invoke it for the authorizer's ARN; answers are cached by identity
//!   source values for `authorizerResultTtlInSeconds`.
//! - [`iam`]: `AuthorizationType` `AWS_IAM`. The request's SigV4 signature (service
//!   `execute-api`) is checked against Portico's access keys through a [`KeyLookup`];
//!   the gateway reads the body first, since the signature covers it.
//!
//! Refusals are answered here, in API Gateway's words: 401 `{"message":"Unauthorized"}`
//! (with `www-authenticate` for JWT), 403 `{"message":"Forbidden"}`, and 500
//! `{"message":"Internal Server Error"}` when the authorizer itself fails.
//!
//! This module never touches the store and holds no lock across an `.await`: its caches
//! are behind `std::sync::Mutex`es taken for a map operation at a time.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use percent_encoding::percent_decode_str;
use portico_auth::KeyLookup;
use portico_model::api::{Authorizer, IdentitySource};
use portico_model::{Catalog, Route};
use portico_runtime::Invoker;

use crate::payload::{Authorization, EventContext, RequestView};

pub mod iam;
pub mod jwt;
pub mod lambda;

/// A response of the gateway.
pub type Resp = Response<Full<Bytes>>;

/// How one route is authorized, compiled with its deployment.
#[derive(Debug)]
pub enum RouteAuth {
    /// A JWT authorizer.
    Jwt(jwt::Route),
    /// A Lambda (`REQUEST`) authorizer.
    Lambda(lambda::Route),
    /// `AWS_IAM`: a SigV4 signature by a key of the API's account ([`iam::authorize`],
    /// which needs the body: the gateway runs it, not [`Authorizers::authorize`]).
    Iam,
    /// The route asks for an authorizer its deployment cannot provide (a missing one, or
    /// an authorization type Portico does not check): every request gets a 500, never
    /// the integration.
    Broken(String),
}

/// What a route's authorization needs, or `None` for `AuthorizationType` `NONE`.
pub fn compile(route: &Route, authorizers: &BTreeMap<String, Authorizer>) -> Option<RouteAuth> {
    let kind = route.authorization_type.as_str();
    match kind {
        "NONE" => return None,
        "AWS_IAM" => return Some(RouteAuth::Iam),
        _ => {}
    }
    let authorizer = route.authorizer_id.as_ref().and_then(|id| authorizers.get(id));
    Some(match (kind, authorizer) {
        ("JWT", Some(a)) if a.authorizer_type == "JWT" => {
            jwt::Route::compile(route, a).map_or_else(RouteAuth::Broken, RouteAuth::Jwt)
        }
        ("CUSTOM", Some(a)) if a.authorizer_type == "REQUEST" => {
            lambda::Route::compile(a).map_or_else(RouteAuth::Broken, RouteAuth::Lambda)
        }
        ("JWT" | "CUSTOM", _) => RouteAuth::Broken(format!(
            "route {} uses authorizer {:?}, which its deployment does not hold as a {} authorizer",
            route.route_key,
            route.authorizer_id.as_deref().unwrap_or(""),
            if kind == "JWT" { "JWT" } else { "REQUEST" },
        )),
        (other, _) => RouteAuth::Broken(format!(
            "route {} has authorization type {other}, which Portico does not check",
            route.route_key
        )),
    })
}

/// One request, as an authorizer sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The request's parts; the body is not read yet (authorizers never see it).
    pub view: &'a RequestView<'a>,
    /// What the gateway knows of the request beyond its parts.
    pub ctx: &'a EventContext<'a>,
    /// The API's region.
    pub region: &'a str,
    /// The request path without the stage prefix (`/pets/7`), for the route ARN.
    pub route_path: &'a str,
    /// The catalog the request is served from, where a Lambda authorizer's function is.
    pub catalog: &'a Catalog,
}

impl Request<'_> {
    /// The ARN API Gateway gives this request, as authorizers see it (`routeArn`):
    /// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}{path}`.
    pub fn route_arn(&self) -> String {
        format!(
            "arn:aws:execute-api:{}:{}:{}/{}/{}{}",
            self.region, self.ctx.account_id, self.ctx.api_id, self.ctx.stage, self.view.method, self.route_path
        )
    }

    /// The value an identity source selects in this request: `None` when it is absent
    /// or empty, which API Gateway treats alike ("present in the request, not null, and
    /// non-empty"). Repeated headers and parameters are joined with `,`.
    pub fn identity(&self, source: &IdentitySource) -> Option<Cow<'_, str>> {
        let value: Cow<'_, str> = match source {
            IdentitySource::Header(name) => {
                let mut values = self.view.headers.get_all(name.as_str()).iter();
                let first = values.next()?;
                let mut joined = String::from_utf8_lossy(first.as_bytes()).into_owned();
                for v in values {
                    joined.push(',');
                    joined.push_str(&String::from_utf8_lossy(v.as_bytes()));
                }
                Cow::Owned(joined)
            }
            IdentitySource::QueryString(name) => {
                let values: Vec<String> = self
                    .view
                    .raw_query
                    .split('&')
                    .filter_map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        (form_decode(k) == *name).then(|| form_decode(v))
                    })
                    .collect();
                if values.is_empty() {
                    return None;
                }
                Cow::Owned(values.join(","))
            }
            IdentitySource::StageVariable(name) => Cow::Borrowed(self.ctx.stage_variables.get(name)?.as_str()),
            IdentitySource::Context(name) => self.context_variable(name)?,
        };
        (!value.is_empty()).then_some(value)
    }

    /// The `$context` variables an identity source may name; others have no value.
    fn context_variable(&self, name: &str) -> Option<Cow<'_, str>> {
        let ctx = self.ctx;
        Some(match name {
            "accountId" => Cow::Borrowed(ctx.account_id),
            "apiId" => Cow::Borrowed(ctx.api_id),
            "domainName" => Cow::Borrowed(ctx.domain_name),
            "domainPrefix" => Cow::Borrowed(ctx.domain_prefix),
            "requestId" | "extendedRequestId" => Cow::Borrowed(ctx.request_id),
            "routeKey" => Cow::Borrowed(ctx.route_key),
            "stage" => Cow::Borrowed(ctx.stage),
            "httpMethod" => Cow::Borrowed(self.view.method),
            "path" => Cow::Borrowed(self.view.raw_path),
            "protocol" => Cow::Borrowed(self.view.protocol),
            "identity.sourceIp" => Cow::Borrowed(self.view.source_ip),
            "identity.userAgent" => Cow::Owned(
                String::from_utf8_lossy(self.view.headers.get(http::header::USER_AGENT)?.as_bytes()).into_owned(),
            ),
            "requestTimeEpoch" => Cow::Owned(ctx.time_epoch_ms.to_string()),
            _ => return None,
        })
    }
}

/// Decodes one query component: `+` is a space, then percent-decoding.
fn form_decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// What the authorizers keep between requests.
#[derive(Debug)]
pub struct Authorizers {
    invoker: Arc<Invoker>,
    /// Issuers' signing keys.
    jwks: jwt::Jwks,
    /// Lambda authorizers' answers, by identity.
    results: lambda::ResultCache,
    /// Portico's access keys, for `AWS_IAM` routes; none refuses them all with a 500.
    keys: Option<Arc<dyn KeyLookup>>,
}

impl Authorizers {
    /// Authorizers that invoke Lambda authorizers through `invoker`.
    pub fn new(invoker: Arc<Invoker>) -> Authorizers {
        Authorizers { invoker, jwks: jwt::Jwks::new(), results: lambda::ResultCache::default(), keys: None }
    }

    /// JWT issuers over https are also trusted when a CA of the PEM bundle `pem` vouches
    /// for them; drops the keys fetched so far.
    pub fn set_extra_ca_certs(&mut self, pem: &[u8]) -> Result<(), String> {
        self.jwks = jwt::Jwks::with_extra_ca_certs(pem)?;
        Ok(())
    }

    /// Checks `AWS_IAM` routes' signatures against `keys`.
    pub fn set_keys(&mut self, keys: Arc<dyn KeyLookup>) {
        self.keys = Some(keys);
    }

    /// The access keys `AWS_IAM` routes are checked against.
    pub fn keys(&self) -> Option<&dyn KeyLookup> {
        self.keys.as_deref()
    }

    /// Runs `route`'s authorizer for `req`: what to tell the integration, or the answer
    /// the caller gets instead.
    pub async fn authorize(&self, route: &RouteAuth, req: &Request<'_>) -> Result<Authorization, Resp> {
        match route {
            RouteAuth::Jwt(r) => jwt::authorize(&self.jwks, r, req).await,
            RouteAuth::Lambda(r) => lambda::authorize(&self.results, &self.invoker, r, req).await,
            RouteAuth::Iam => {
                // The gateway verifies these itself, with the body; reaching here is a bug.
                tracing::error!(
                    api = req.ctx.api_id,
                    route = req.ctx.route_key,
                    "AWS_IAM route authorized without its body"
                );
                Err(crate::metrics::because(internal_error(), "AWS_IAM route authorized without its body", None))
            }
            RouteAuth::Broken(why) => {
                tracing::warn!(api = req.ctx.api_id, route = req.ctx.route_key, "{why}: answering 500");
                Err(crate::metrics::because(internal_error(), why.to_string(), None))
            }
        }
    }
}

fn message(status: StatusCode, text: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// 401 `{"message":"Unauthorized"}`.
fn unauthorized() -> Resp {
    message(StatusCode::UNAUTHORIZED, r#"{"message":"Unauthorized"}"#)
}

/// 403 `{"message":"Forbidden"}`.
fn forbidden() -> Resp {
    message(StatusCode::FORBIDDEN, r#"{"message":"Forbidden"}"#)
}

/// 500 `{"message":"Internal Server Error"}`.
fn internal_error() -> Resp {
    message(StatusCode::INTERNAL_SERVER_ERROR, r#"{"message":"Internal Server Error"}"#)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Format;
    use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
    use http::HeaderMap;
    use serde_json::{json, Value};

    /// Runs `f` on `GET /dev/pets/7?{query}` of stage `dev`, route `GET /pets/{id}`.
    fn with_request(headers: &[(&str, &str)], query: &str, f: impl FnOnce(&Request<'_>)) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        let vars = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let params = [("id", "7".to_string())];
        let view = RequestView {
            method: "GET",
            raw_path: "/dev/pets/7",
            raw_query: query,
            headers: &map,
            body: b"",
            source_ip: "192.0.2.1",
            protocol: "HTTP/1.1",
        };
        let ctx = EventContext {
            account_id: "111122223333",
            api_id: "abc123defg",
            domain_name: "abc123defg.execute-api.localhost",
            domain_prefix: "abc123defg",
            request_id: "rid",
            route_key: "GET /pets/{id}",
            stage: "dev",
            time_epoch_ms: 1,
            path_parameters: &params,
            stage_variables: &vars,
        };
        let catalog = Catalog::default();
        f(&Request { view: &view, ctx: &ctx, region: "us-east-1", route_path: "/pets/7", catalog: &catalog });
    }

    fn check(headers: &[(&str, &str)], query: &str, source: &str, expected: Option<&str>) {
        with_request(headers, query, |req| {
            let parsed = IdentitySource::parse(source).expect("a source");
            assert_eq!(req.identity(&parsed).as_deref(), expected, "{source}");
        });
    }

    #[test]
    fn identity_sources() {
        check(&[("authorization", "tok")], "", "$request.header.Authorization", Some("tok"));
        check(&[("x-a", "1"), ("x-a", "2")], "", "$request.header.X-A", Some("1,2"));
        check(&[("x-a", "")], "", "$request.header.x-a", None);
        check(&[], "", "$request.header.x-a", None);
        check(&[], "a=1&b=x+y&a=2", "$request.querystring.a", Some("1,2"));
        check(&[], "b=x+y%21", "$request.querystring.b", Some("x y!"));
        check(&[], "A=1", "$request.querystring.a", None);
        check(&[], "a=", "$request.querystring.a", None);
        check(&[], "", "$stageVariables.env", Some("prod"));
        check(&[], "", "$stageVariables.other", None);
        check(&[], "", "$context.routeKey", Some("GET /pets/{id}"));
        check(&[], "", "$context.identity.sourceIp", Some("192.0.2.1"));
        check(&[], "", "$context.nope", None);
    }

    #[test]
    fn route_arn() {
        with_request(&[], "", |req| {
            assert_eq!(req.route_arn(), "arn:aws:execute-api:us-east-1:111122223333:abc123defg/dev/GET/pets/7");
        });
    }

    fn event(format: Format, authorization: &Authorization) -> Vec<u8> {
        let mut out = Vec::new();
        with_request(&[("user-agent", "t")], "", |req| out = format.event_with(req.view, req.ctx, Some(authorization)));
        out
    }

    #[test]
    fn integration_events_carry_the_authorizer() {
        let jwt = Authorization::Jwt {
            claims: BTreeMap::from([("sub".to_string(), "u1".to_string()), ("exp".to_string(), "9".to_string())]),
            scopes: Some(vec!["read".into()]),
        };
        let v2 = event(Format::V2, &jwt);
        let parsed: ApiGatewayV2httpRequest = serde_json::from_slice(&v2).expect("a 2.0 event");
        let described = parsed.request_context.authorizer.and_then(|a| a.jwt).expect("jwt");
        assert_eq!(described.claims.get("sub").map(String::as_str), Some("u1"));
        assert_eq!(described.scopes, Some(vec!["read".to_string()]));
        let raw: Value = serde_json::from_slice(&v2).expect("json");
        assert_eq!(
            raw["requestContext"]["authorizer"],
            json!({"jwt": {"claims": {"exp": "9", "sub": "u1"}, "scopes": ["read"]}})
        );

        let unscoped = Authorization::Jwt { claims: BTreeMap::new(), scopes: None };
        let raw: Value = serde_json::from_slice(&event(Format::V2, &unscoped)).expect("json");
        assert_eq!(raw["requestContext"]["authorizer"]["jwt"]["scopes"], Value::Null);

        let lambda = Authorization::Lambda {
            context: json!({"user": "u1", "n": 2, "list": [1]}).as_object().cloned(),
            principal_id: Some("p".into()),
        };
        let v2 = event(Format::V2, &lambda);
        let parsed: ApiGatewayV2httpRequest = serde_json::from_slice(&v2).expect("a 2.0 event");
        let fields = parsed.request_context.authorizer.expect("authorizer").fields;
        assert_eq!(fields.get("user"), Some(&json!("u1")));
        assert_eq!(fields.get("list"), Some(&json!([1])));

        let v1 = event(Format::V1, &jwt);
        let parsed: ApiGatewayProxyRequest = serde_json::from_slice(&v1).expect("a 1.0 event");
        let raw: Value = serde_json::from_slice(&v1).expect("json");
        assert_eq!(
            raw["requestContext"]["authorizer"],
            json!({"claims": {"exp": "9", "sub": "u1"}, "scopes": ["read"]})
        );
        assert!(parsed.request_context.authorizer.fields.contains_key("claims"));
        let raw: Value = serde_json::from_slice(&event(Format::V1, &lambda)).expect("json");
        assert_eq!(raw["requestContext"]["authorizer"], json!({"user": "u1", "n": 2, "list": [1], "principalId": "p"}));

        let iam = Authorization::Iam {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            account_id: "111122223333".into(),
            user_arn: "arn:aws:iam::111122223333:root".into(),
        };
        let v2 = event(Format::V2, &iam);
        let parsed: ApiGatewayV2httpRequest = serde_json::from_slice(&v2).expect("a 2.0 event");
        let described = parsed.request_context.authorizer.and_then(|a| a.iam).expect("iam");
        assert_eq!(described.access_key.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
        assert_eq!(described.user_arn.as_deref(), Some("arn:aws:iam::111122223333:root"));
        let raw: Value = serde_json::from_slice(&v2).expect("json");
        assert_eq!(
            raw["requestContext"]["authorizer"],
            json!({"iam": {
                "accessKey": "AKIAIOSFODNN7EXAMPLE",
                "accountId": "111122223333",
                "callerId": "AKIAIOSFODNN7EXAMPLE",
                "cognitoIdentity": null,
                "principalOrgId": null,
                "userArn": "arn:aws:iam::111122223333:root",
                "userId": "AKIAIOSFODNN7EXAMPLE",
            }})
        );
        // 1.0: the caller is in `identity`, and there is no `authorizer` member.
        let v1 = event(Format::V1, &iam);
        let parsed: ApiGatewayProxyRequest = serde_json::from_slice(&v1).expect("a 1.0 event");
        let identity = parsed.request_context.identity;
        assert_eq!(identity.access_key.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
        assert_eq!(identity.account_id.as_deref(), Some("111122223333"));
        assert_eq!(identity.caller.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
        assert_eq!(identity.user.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
        assert_eq!(identity.user_arn.as_deref(), Some("arn:aws:iam::111122223333:root"));
        let raw: Value = serde_json::from_slice(&v1).expect("json");
        assert!(raw["requestContext"].get("authorizer").is_none());

        // Without an authorizer there is no `authorizer` member at all.
        let mut plain = Vec::new();
        with_request(&[], "", |req| plain = Format::V2.event(req.view, req.ctx));
        let raw: Value = serde_json::from_slice(&plain).expect("json");
        assert!(raw["requestContext"].get("authorizer").is_none());
    }
}

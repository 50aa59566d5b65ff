//! Lambda authorizers (`REQUEST`): a function decides ("Working with AWS Lambda
//! authorizers for HTTP APIs").
//!
//! - Identity sources (`$request.header.*`, `$request.querystring.*`, `$context.*`,
//!   `$stageVariables.*`) must all have a non-empty value, or the caller gets 401
//!   `{"message":"Unauthorized"}` and the function is not invoked.
//! - With `authorizerResultTtlInSeconds` > 0 the answer is cached under the authorizer
//!   and the identity source values (per stage), and reused within the TTL for every
//!   route that uses the authorizer: a cached IAM policy is evaluated again against each
//!   request's route ARN, a cached simple answer allows or denies everything.
//! - The function is resolved and invoked as integrations are ([`Catalog::invocation_target`],
//!   the [`Invoker`]); its resource policy must let `apigateway.amazonaws.com` invoke it
//!   for `arn:aws:execute-api:{region}:{account}:{apiId}/authorizers/{authorizerId}`.
//!   It has 10 s to answer ("Timeout for Lambda authorizer response").
//! - The event is payload 2.0 (`type: REQUEST`, `routeArn`, `identitySource` as a list,
//!   the 2.0 request members without `body`) or 1.0 (`methodArn`, `identitySource` and
//!   `authorizationToken` as one comma-joined string, the 1.0 request members).
//! - The answer is a simple response `{"isAuthorized": bool, "context": {...}}` (2.0 with
//!   `enableSimpleResponses`) or an IAM policy `{"principalId", "policyDocument":
//!   {"Statement": [{"Effect", "Action", "Resource"}]}, "context"}`: a matching `Deny`
//!   wins, else a matching `Allow` allows (`execute-api:Invoke` against the route ARN,
//!   `*` and `?` wildcards); anything else is 403 `{"message":"Forbidden"}`. Statements
//!   with a `Condition` are not evaluated (they never match).
//! - A function that cannot be invoked, fails, times out or answers in another shape
//!   gives 500 `{"message":"Internal Server Error"}`, with a log line saying why.
//! - `context` reaches the integration as `requestContext.authorizer.lambda` (2.0).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use portico_model::api::{Authorizer, IdentitySource};
use portico_model::function::policy_allows;
use portico_model::FunctionArn;
use portico_runtime::Invoker;
use serde_json::{Map, Value};

use super::{forbidden, internal_error, unauthorized, Request, Resp};
use crate::payload::{self, Authorization};

/// "Timeout for Lambda authorizer response" (AWS's HTTP API quotas).
const TIMEOUT: Duration = Duration::from_secs(10);
/// Cached answers kept at most; past it, expired ones go first, then all.
const MAX_CACHED: usize = 10_000;

/// The authorizer's `authorizerPayloadFormatVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// A route with a Lambda authorizer, compiled with its deployment.
#[derive(Debug)]
pub struct Route {
    authorizer_id: String,
    function: FunctionArn,
    sources: Vec<IdentitySource>,
    ttl: Duration,
    /// `enableSimpleResponses`.
    simple: bool,
    version: Version,
}

impl Route {
    /// The route's check, or why the authorizer cannot check anything.
    pub fn compile(a: &Authorizer) -> Result<Route, String> {
        let id = &a.authorizer_id;
        let uri = a.authorizer_uri.as_deref().ok_or_else(|| format!("Lambda authorizer {id} has no authorizerUri"))?;
        let function = FunctionArn::from_integration_uri(uri)
            .ok_or_else(|| format!("Lambda authorizer {id}: {uri} is not a Lambda function"))?;
        let sources = a
            .identity_source
            .iter()
            .map(|s| IdentitySource::parse(s).ok_or_else(|| format!("Lambda authorizer {id}: bad identity source {s}")))
            .collect::<Result<Vec<_>, _>>()?;
        let version = match a.authorizer_payload_format_version.as_deref() {
            Some("1.0") => Version::V1,
            Some("2.0") => Version::V2,
            other => return Err(format!("Lambda authorizer {id}: payload format version {other:?}")),
        };
        Ok(Route {
            authorizer_id: id.clone(),
            function,
            sources,
            ttl: Duration::from_secs(u64::from(a.authorizer_result_ttl_in_seconds.unwrap_or(0))),
            simple: version == Version::V2 && a.enable_simple_responses == Some(true),
            version,
        })
    }
}

/// Asks the route's authorizer (or its cached answer) about the request.
pub(super) async fn authorize(
    cache: &ResultCache,
    invoker: &Arc<Invoker>,
    route: &Route,
    req: &Request<'_>,
) -> Result<Authorization, Resp> {
    let mut identity = Vec::with_capacity(route.sources.len());
    for source in &route.sources {
        match req.identity(source) {
            Some(v) => identity.push(v.into_owned()),
            None => return Err(unauthorized()),
        }
    }
    let route_arn = req.route_arn();
    let key = (!route.ttl.is_zero()).then(|| cache_key(route, req, &identity));
    let answer = match key.as_ref().and_then(|k| cache.get(k)) {
        Some(cached) => cached,
        None => {
            let answer = Arc::new(ask(invoker, route, req, &route_arn, &identity).await?);
            if let Some(k) = key {
                cache.put(k, route.ttl, answer.clone());
            }
            answer
        }
    };
    if answer.allows(&route_arn) {
        Ok(answer.authorization())
    } else {
        Err(forbidden())
    }
}

/// The cache key: the authorizer (per API and stage) and each identity value, each
/// prefixed by its length so that no two lists of values share a key.
fn cache_key(route: &Route, req: &Request<'_>, identity: &[String]) -> String {
    let mut key = format!("{}/{}/{}", req.ctx.api_id, req.ctx.stage, route.authorizer_id);
    for v in identity {
        key.push_str(&format!("|{}:{v}", v.len()));
    }
    key
}

/// Invokes the authorizer function; its answer, or the 500 the caller gets.
async fn ask(
    invoker: &Arc<Invoker>,
    route: &Route,
    req: &Request<'_>,
    route_arn: &str,
    identity: &[String],
) -> Result<Answer, Resp> {
    let api = req.ctx.api_id;
    let fail = |why: String| {
        tracing::warn!(api, authorizer = %route.authorizer_id, "Lambda authorizer: {why}: answering 500");
        let reason = format!("Lambda authorizer {}: {why}", route.authorizer_id);
        crate::metrics::because(internal_error(), reason, Some(&route.function.name))
    };
    let Some(target) = req.catalog.invocation_target(&route.function, rand::random::<f64>()) else {
        return Err(fail(format!(
            "its function {} (or its version or alias) does not exist",
            route.function.unqualified()
        )));
    };
    let source_arn = format!(
        "arn:aws:execute-api:{}:{}:{}/authorizers/{}",
        req.region, req.ctx.account_id, api, route.authorizer_id
    );
    if !policy_allows(target.policy, "apigateway.amazonaws.com", &source_arn, req.ctx.account_id) {
        return Err(fail(format!(
            "the resource policy of {} does not let API Gateway invoke it for {source_arn} (aws lambda add-permission --source-arn {source_arn})",
            target.invoked_arn
        )));
    }
    let event = event(route.version, req, route_arn, identity).map_err(|e| fail(format!("building its event: {e}")))?;
    let invoked: Arc<str> = Arc::from(target.invoked_arn.as_str());
    let invocation: Arc<str> = Arc::from(portico_model::ids::uuid());
    let out = match tokio::time::timeout(
        TIMEOUT,
        invoker.invoke(target.function, Bytes::from(event), invoked, invocation, false),
    )
    .await
    {
        Err(_) => return Err(fail(format!("it did not answer within {} s", TIMEOUT.as_secs()))),
        Ok(Err(e)) => return Err(fail(format!("invoking it: {e}"))),
        Ok(Ok(out)) => out,
    };
    if out.function_error {
        return Err(fail(format!("it failed: {}", String::from_utf8_lossy(&out.payload))));
    }
    Answer::parse(&out.payload, route.simple).map_err(|defect| fail(format!("its answer is malformed: {defect}")))
}

/// The authorizer's event, in its payload format: the integration event of the same
/// version (without the body), plus what an authorizer is told.
fn event(version: Version, req: &Request<'_>, route_arn: &str, identity: &[String]) -> Result<Vec<u8>, String> {
    let base = match version {
        Version::V1 => payload::v1::event(req.view, req.ctx),
        Version::V2 => payload::v2::event(req.view, req.ctx),
    };
    let mut event: Map<String, Value> = serde_json::from_slice(&base).map_err(|e| e.to_string())?;
    event.remove("body");
    event.remove("isBase64Encoded");
    event.insert("type".into(), Value::from("REQUEST"));
    match version {
        Version::V2 => {
            event.insert("routeArn".into(), Value::from(route_arn));
            if !identity.is_empty() {
                event.insert("identitySource".into(), Value::from(identity.to_vec()));
            }
        }
        Version::V1 => {
            event.remove("multiValueHeaders");
            event.remove("multiValueQueryStringParameters");
            event.insert("methodArn".into(), Value::from(route_arn));
            let joined = identity.join(",");
            event.insert("identitySource".into(), Value::from(joined.clone()));
            event.insert("authorizationToken".into(), Value::from(joined));
        }
    }
    serde_json::to_vec(&event).map_err(|e| e.to_string())
}

/// What an authorizer answered.
#[derive(Debug, PartialEq)]
enum Answer {
    /// `{"isAuthorized": bool, "context": {...}}`.
    Simple { authorized: bool, context: Option<Map<String, Value>> },
    /// An IAM policy.
    Policy { principal_id: Option<String>, statements: Vec<Statement>, context: Option<Map<String, Value>> },
}

/// One statement of an IAM policy answer.
#[derive(Debug, PartialEq)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    /// Has a `Condition`, which Portico does not evaluate: it never matches.
    conditional: bool,
}

impl Answer {
    /// Reads the function's answer, in the shape the authorizer expects.
    fn parse(payload: &[u8], simple: bool) -> Result<Answer, String> {
        let value: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON ({e})"))?;
        let Value::Object(answer) = value else { return Err("not a JSON object".into()) };
        let context = match answer.get("context") {
            None | Some(Value::Null) => None,
            Some(Value::Object(c)) => Some(c.clone()),
            Some(_) => return Err("context is not an object".into()),
        };
        if simple {
            let authorized = answer
                .get("isAuthorized")
                .and_then(Value::as_bool)
                .ok_or("a simple response needs a boolean isAuthorized")?;
            return Ok(Answer::Simple { authorized, context });
        }
        let principal_id = match answer.get("principalId") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p.clone()),
            Some(_) => return Err("principalId is not a string".into()),
        };
        let document = answer.get("policyDocument").ok_or("an IAM policy response needs a policyDocument")?;
        let statements = match document.get("Statement") {
            Some(Value::Array(list)) => list.iter().map(Statement::parse).collect::<Result<Vec<_>, _>>()?,
            Some(one @ Value::Object(_)) => vec![Statement::parse(one)?],
            _ => return Err("policyDocument has no Statement".into()),
        };
        Ok(Answer::Policy { principal_id, statements, context })
    }

    /// Whether the answer lets a request to `route_arn` through.
    fn allows(&self, route_arn: &str) -> bool {
        match self {
            Answer::Simple { authorized, .. } => *authorized,
            Answer::Policy { statements, .. } => {
                let matching = |allow: bool| statements.iter().any(|s| s.allow == allow && s.matches(route_arn));
                !matching(false) && matching(true)
            }
        }
    }

    /// What the integration is told.
    fn authorization(&self) -> Authorization {
        match self {
            Answer::Simple { context, .. } => Authorization::Lambda { context: context.clone(), principal_id: None },
            Answer::Policy { principal_id, context, .. } => {
                Authorization::Lambda { context: context.clone(), principal_id: principal_id.clone() }
            }
        }
    }
}

impl Statement {
    fn parse(v: &Value) -> Result<Statement, String> {
        let allow = match v.get("Effect").and_then(Value::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            _ => return Err("a Statement's Effect must be Allow or Deny".into()),
        };
        let list = |name: &str| -> Result<Vec<String>, String> {
            match v.get(name) {
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).ok_or_else(|| format!("{name} holds a non-string")))
                    .collect(),
                _ => Err(format!("a Statement needs {name}")),
            }
        };
        Ok(Statement {
            allow,
            actions: list("Action")?,
            resources: list("Resource")?,
            conditional: v.get("Condition").is_some(),
        })
    }

    fn matches(&self, route_arn: &str) -> bool {
        // IAM compares actions case-insensitively, resources as they are.
        !self.conditional
            && self.actions.iter().any(|a| glob(&a.to_ascii_lowercase(), "execute-api:invoke"))
            && self.resources.iter().any(|r| glob(r, route_arn))
    }
}

/// IAM's wildcard match: `*` is any run of characters, `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and where in the text it started matching.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character.
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Lambda authorizers' answers, by authorizer and identity, until their TTL ends.
#[derive(Debug, Default)]
pub struct ResultCache {
    entries: Mutex<HashMap<String, (Instant, Arc<Answer>)>>,
}

impl ResultCache {
    fn get(&self, key: &str) -> Option<Arc<Answer>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(expires, _)| Instant::now() < *expires).map(|(_, a)| a.clone())
    }

    fn put(&self, key: String, ttl: Duration, answer: Arc<Answer>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_CACHED {
            let now = Instant::now();
            entries.retain(|_, (expires, _)| now < *expires);
            if entries.len() >= MAX_CACHED {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now() + ttl, answer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:execute-api:us-east-1:111122223333:abc123defg/$default/GET/pets/7";

    fn policy(statements: Value) -> Answer {
        let doc = json!({"principalId": "u1", "policyDocument": {"Version": "2012-10-17", "Statement": statements}});
        Answer::parse(doc.to_string().as_bytes(), false).expect("a policy answer")
    }

    fn stmt(effect: &str, resource: &str) -> Value {
        json!({"Effect": effect, "Action": "execute-api:Invoke", "Resource": resource})
    }

    #[test]
    fn globs() {
        for (p, t, m) in [
            ("*", "", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*/GET/*", "x/$default/GET/pets/7", true),
            ("*b*b", "abxb", true),
            ("abc", "abcd", false),
        ] {
            assert_eq!(glob(p, t), m, "{p} ~ {t}");
        }
    }

    #[test]
    fn policies() {
        assert!(policy(json!([stmt("Allow", ARN)])).allows(ARN));
        assert!(policy(json!(stmt("Allow", "arn:aws:execute-api:us-east-1:111122223333:abc123defg/*"))).allows(ARN));
        assert!(!policy(json!([stmt("Allow", "arn:aws:execute-api:us-east-1:111122223333:abc123defg/*/POST/*")]))
            .allows(ARN));
        // An explicit Deny wins; no matching statement denies.
        assert!(!policy(json!([stmt("Allow", "*"), stmt("Deny", ARN)])).allows(ARN));
        assert!(!policy(json!([])).allows(ARN));
        let any_action = json!([{"Effect": "Allow", "Action": ["s3:*", "execute-api:*"], "Resource": [ARN]}]);
        assert!(policy(any_action).allows(ARN));
        let other_action = json!([{"Effect": "Allow", "Action": "execute-api:ManageConnections", "Resource": "*"}]);
        assert!(!policy(other_action).allows(ARN));
        let conditional =
            json!([{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*", "Condition": {}}]);
        assert!(!policy(conditional).allows(ARN));
    }

    #[test]
    fn answers() {
        let simple = |v: Value| Answer::parse(v.to_string().as_bytes(), true);
        let a = simple(json!({"isAuthorized": true, "context": {"user": "u1", "n": 1}})).expect("simple");
        assert!(a.allows(ARN));
        assert_eq!(
            a.authorization(),
            Authorization::Lambda { context: json!({"user": "u1", "n": 1}).as_object().cloned(), principal_id: None }
        );
        assert!(!simple(json!({"isAuthorized": false})).expect("simple").allows(ARN));
        assert!(simple(json!({"isAuthorized": "yes"})).is_err());
        assert!(simple(json!({})).is_err());
        assert!(simple(json!({"isAuthorized": true, "context": "x"})).is_err());
        assert!(Answer::parse(b"not json", true).is_err());
        assert!(Answer::parse(b"[]", false).is_err());
        // A simple answer where a policy is expected is malformed.
        assert!(Answer::parse(json!({"isAuthorized": true}).to_string().as_bytes(), false).is_err());
        let p = policy(json!([stmt("Allow", ARN)]));
        assert_eq!(p.authorization(), Authorization::Lambda { context: None, principal_id: Some("u1".into()) });
    }

    #[test]
    fn authorizer_events() {
        use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
        let mut map = http::HeaderMap::new();
        map.insert("authorization", http::HeaderValue::from_static("secret"));
        let vars = std::collections::BTreeMap::new();
        let view = payload::RequestView {
            method: "GET",
            raw_path: "/pets/7",
            raw_query: "q=1",
            headers: &map,
            body: b"",
            source_ip: "192.0.2.1",
            protocol: "HTTP/1.1",
        };
        let ctx = payload::EventContext {
            account_id: "111122223333",
            api_id: "abc123defg",
            domain_name: "abc123defg.execute-api.localhost",
            domain_prefix: "abc123defg",
            request_id: "rid",
            route_key: "GET /pets/{id}",
            stage: "$default",
            time_epoch_ms: 1,
            path_parameters: &[],
            stage_variables: &vars,
        };
        let catalog = portico_model::Catalog::default();
        let req = Request { view: &view, ctx: &ctx, region: "us-east-1", route_path: "/pets/7", catalog: &catalog };
        let identity = vec!["secret".to_string()];

        let v2 = event(Version::V2, &req, ARN, &identity).expect("an event");
        let parsed: ApiGatewayV2CustomAuthorizerV2Request =
            serde_json::from_slice(&v2).expect("a 2.0 authorizer event");
        assert_eq!(parsed.route_arn.as_deref(), Some(ARN));
        assert_eq!(parsed.identity_source, Some(identity.clone()));
        assert_eq!(parsed.route_key.as_deref(), Some("GET /pets/{id}"));
        let raw: Value = serde_json::from_slice(&v2).expect("json");
        assert_eq!(raw["type"], "REQUEST");
        assert_eq!(raw["version"], "2.0");
        assert!(raw.get("body").is_none() && raw.get("isBase64Encoded").is_none());
        assert_eq!(raw["headers"]["authorization"], "secret");
        let none: Value = serde_json::from_slice(&event(Version::V2, &req, ARN, &[]).expect("an event")).expect("json");
        assert!(none.get("identitySource").is_none());

        let v1: Value =
            serde_json::from_slice(&event(Version::V1, &req, ARN, &identity).expect("an event")).expect("json");
        assert_eq!(v1["methodArn"], ARN);
        assert_eq!(v1["identitySource"], "secret");
        assert_eq!(v1["authorizationToken"], "secret");
        assert_eq!(v1["httpMethod"], "GET");
        assert!(v1.get("multiValueHeaders").is_none());
    }

    #[test]
    fn cache_expires() {
        let cache = ResultCache::default();
        let answer = Arc::new(Answer::Simple { authorized: true, context: None });
        cache.put("k".into(), Duration::from_secs(60), answer.clone());
        assert_eq!(cache.get("k"), Some(answer.clone()));
        cache.put("gone".into(), Duration::ZERO, answer);
        assert_eq!(cache.get("gone"), None);
        assert_eq!(cache.get("other"), None);
    }
}

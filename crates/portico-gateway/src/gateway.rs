//! The async shell of the data plane: runs the pure phases in order for one request.
//!
//! Nothing here touches the store or holds a lock across an `.await`: each request
//! loads the current [`Snapshot`] once (an atomic pointer load) and reads only that.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use portico_model::api::RouteSettings;
use portico_model::function::policy_allows;
use portico_model::{ApiBundle, Catalog, Deployment, FunctionArn, Integration, Stage};
use portico_runtime::Invoker;

use crate::access_log::{self, AccessLogWriter, StageLog};
use crate::authorizer::{self, Authorizers, RouteAuth};
use crate::metrics::{because, ApiEntry, ApiMetrics, Cause, Failure};
use crate::payload::v2;
use crate::route::RouteTable;
use crate::throttle::{self, Bucket};
use crate::{cors, payload};

type Resp = Response<Full<Bytes>>;

/// Largest request body API Gateway accepts (10 MB).
const MAX_BODY: usize = 10 * 1024 * 1024;

/// HTTP APIs' quota on the request line and header values together (10 240 bytes).
const MAX_HEAD: usize = 10 * 1024;

/// The size the head quota counts: the request line, then each header's name and value.
fn head_size(parts: &http::request::Parts) -> usize {
    let line = parts.method.as_str().len() + parts.uri.path_and_query().map_or(1, |p| p.as_str().len()) + 10;
    parts.headers.iter().fold(line, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

/// What a route leads to, resolved when the snapshot is built.
#[derive(Debug)]
struct Target {
    route_key: String,
    /// The route part of the execute-api source ARN (`GET/hello`), made once.
    source_arn_route: String,
    integration: Option<Arc<Integration>>,
    /// The integration's function, as its URI names it (maybe qualified).
    function: Option<FunctionRef>,
    /// The route's authorizer; none for `AuthorizationType` `NONE`.
    auth: Option<RouteAuth>,
}

/// How an integration names its function.
#[derive(Debug)]
enum FunctionRef {
    /// A fixed ARN, parsed once.
    Fixed(FunctionArn),
    /// A URI with `${stageVariables.name}` in it, resolved per stage at request time.
    Templated(String),
}

impl FunctionRef {
    fn parse(uri: &str) -> Option<FunctionRef> {
        if uri.contains("${stageVariables.") {
            Some(FunctionRef::Templated(uri.to_string()))
        } else {
            FunctionArn::from_integration_uri(uri).map(FunctionRef::Fixed)
        }
    }

    fn resolve(
        &self,
        stage_variables: &std::collections::BTreeMap<String, String>,
    ) -> Result<std::borrow::Cow<'_, FunctionArn>, String> {
        match self {
            // The common case borrows: nothing to copy per request.
            FunctionRef::Fixed(arn) => Ok(std::borrow::Cow::Borrowed(arn)),
            FunctionRef::Templated(uri) => {
                let uri = substitute_stage_variables(uri, stage_variables)?;
                FunctionArn::from_integration_uri(&uri)
                    .map(std::borrow::Cow::Owned)
                    .ok_or_else(|| format!("{uri} is not a Lambda function ARN"))
            }
        }
    }
}

/// Replaces each `${stageVariables.name}` in `uri` with the stage's value.
fn substitute_stage_variables(
    uri: &str,
    stage_variables: &std::collections::BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(start) = rest.find("${stageVariables.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${stageVariables.".len()..];
        let end = after.find('}').ok_or_else(|| format!("unterminated stage variable in {uri}"))?;
        let name = &after[..end];
        let value = stage_variables
            .get(name)
            .ok_or_else(|| format!("the stage has no variable {name:?}, which the integration URI {uri} uses"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One deployment, compiled for serving.
#[derive(Debug)]
struct CompiledDeployment {
    deployment: Arc<Deployment>,
    routes: RouteTable<Target>,
}

/// One API, compiled for serving: its deployments, which its stages point at, and
/// its throttles.
#[derive(Debug)]
struct CompiledApi {
    bundle: Arc<ApiBundle>,
    deployments: HashMap<String, Arc<CompiledDeployment>>,
    /// By stage name.
    throttles: HashMap<String, StageThrottles>,
    account: Arc<Bucket>,
    /// By stage name: the stages with access logging.
    access_logs: HashMap<String, Arc<StageLog>>,
    /// Where its requests are counted, looked up once here rather than per request.
    metrics: Arc<ApiEntry>,
}

/// Everything the data plane reads, built once per catalog revision.
#[derive(Debug, Default)]
struct Snapshot {
    catalog: Arc<Catalog>,
    apis: HashMap<String, Arc<CompiledApi>>,
}

/// The HTTP API data plane.
#[derive(Debug)]
pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    invoker: Arc<Invoker>,
    cfg: GatewayConfig,
    /// The account-level bucket of each `{region}/{account}`, shared by its APIs.
    accounts: std::sync::Mutex<HashMap<String, Arc<Bucket>>>,
    /// Where stages' access log lines go; none keeps no access logs.
    access_logs: Option<Arc<AccessLogWriter>>,
    /// JWT issuers' keys and Lambda authorizers' cached answers.
    authorizers: Authorizers,
    /// Per-minute metrics, usage and recent failures of every API served.
    metrics: Arc<ApiMetrics>,
}

/// Settings of the data plane.
#[derive(Debug, Clone, Copy)]
pub struct GatewayConfig {
    /// Account-level throttle per region, requests per second (AWS: 10 000).
    pub account_rate: f64,
    /// Account-level burst per region (AWS: 5 000).
    pub account_burst: u64,
}

/// The throttles that apply to one stage.
#[derive(Debug, Default)]
struct StageThrottles {
    /// From `DefaultRouteSettings`, when it sets limits.
    default: Option<Arc<Bucket>>,
    /// From `RouteSettings`, by route key.
    routes: HashMap<String, Arc<Bucket>>,
}

impl StageThrottles {
    fn bucket(&self, route_key: Option<&str>) -> Option<&Arc<Bucket>> {
        route_key.and_then(|k| self.routes.get(k)).or(self.default.as_ref())
    }
}

/// What `handle` needs of a request's serving to record its metrics.
#[derive(Debug, Default)]
struct Trace<'s> {
    /// The API, once resolved (requests to no API are counted nowhere).
    api: Option<&'s CompiledApi>,
    /// The route matched.
    route_key: Option<&'s str>,
    /// The function's answer was mapped: its status is its own.
    mapped: bool,
}

/// Where a request to the data plane came from.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// The peer address.
    pub addr: SocketAddr,
}

fn message(status: StatusCode, text: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn not_found() -> Resp {
    message(StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#)
}

fn too_many_requests() -> Resp {
    message(StatusCode::TOO_MANY_REQUESTS, r#"{"message":"Too Many Requests"}"#)
}

/// The route's (or stage's) bucket first, then the account's, as API Gateway orders
/// its limits.
fn admit(account: &Bucket, route: Option<&Arc<Bucket>>) -> bool {
    route.is_none_or(|b| b.try_take()) && account.try_take()
}

fn internal_error() -> Resp {
    message(StatusCode::INTERNAL_SERVER_ERROR, r#"{"message":"Internal Server Error"}"#)
}

/// The request body: still to be read, or read already (an `AWS_IAM` route reads it
/// before the signature check, which covers it).
enum RequestBody<B> {
    Unread(B),
    Read(Bytes),
}

impl<B> RequestBody<B>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// The whole body, at most 10 MB: 413 past it, 408 when the client stopped sending
    /// it (the listener's pace limits) or went away.
    async fn read(self) -> Result<Bytes, Resp> {
        let body = match self {
            RequestBody::Read(b) => return Ok(b),
            RequestBody::Unread(body) => body,
        };
        match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Err(message(StatusCode::PAYLOAD_TOO_LARGE, r#"{"message":"Request Entity Too Large"}"#))
            }
            Err(e) => {
                tracing::debug!("request body not received: {e}");
                Err(message(StatusCode::REQUEST_TIMEOUT, r#"{"message":"Request Timeout"}"#))
            }
        }
    }
}

/// A request id in the shape of `apigw-requestid` (e.g. `JYxQ8gHAoAMEbkQ=`).
fn request_id() -> String {
    use base64::Engine;
    let id = uuid::Uuid::new_v4();
    base64::engine::general_purpose::STANDARD.encode(&id.as_bytes()[..10])
}

impl Gateway {
    /// A gateway serving nothing until [`Gateway::install`] is called.
    pub fn new(invoker: Arc<Invoker>, cfg: GatewayConfig) -> Gateway {
        Gateway {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            authorizers: Authorizers::new(invoker.clone()),
            invoker,
            cfg,
            accounts: std::sync::Mutex::new(HashMap::new()),
            access_logs: None,
            metrics: Arc::new(ApiMetrics::default()),
        }
    }

    /// Every API's per-minute metrics, usage since start and recent failures.
    pub fn metrics(&self) -> &Arc<ApiMetrics> {
        &self.metrics
    }

    /// Writes the access logs of stages with `AccessLogSettings` through `writer`.
    pub fn with_access_logs(mut self, writer: Arc<AccessLogWriter>) -> Gateway {
        self.access_logs = Some(writer);
        self
    }

    /// Checks the signatures of requests to `AWS_IAM` routes against `keys`; without
    /// them, such routes answer 500.
    pub fn with_keys(mut self, keys: Arc<dyn portico_auth::KeyLookup>) -> Gateway {
        self.authorizers.set_keys(keys);
        self
    }

    /// JWT authorizers also trust, for https issuers, the CA certificates of the PEM bundle
    /// `pem` (`--extra-ca-certs`) besides `webpki-roots`; an error when it holds none or
    /// an unusable one.
    pub fn with_extra_ca_certs(mut self, pem: &[u8]) -> Result<Gateway, String> {
        self.authorizers.set_extra_ca_certs(pem)?;
        Ok(self)
    }

    fn account_bucket(&self, bundle: &ApiBundle) -> Arc<Bucket> {
        let key = format!("{}/{}", bundle.api.scope.region, bundle.api.scope.account_id);
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .entry(key)
            .or_insert_with(|| Arc::new(Bucket::new(self.cfg.account_rate, self.cfg.account_burst)))
            .clone()
    }

    /// Serves `catalog` from now on. Deployments already compiled keep their route
    /// tables (a deployment never changes once made).
    pub fn install(&self, catalog: Arc<Catalog>) {
        let previous = self.snapshot.load_full();
        let apis = catalog
            .apis
            .iter()
            .map(|(id, bundle)| {
                let compiled = match previous.apis.get(id) {
                    Some(c) if Arc::ptr_eq(&c.bundle, bundle) => c.clone(),
                    previous => Arc::new(compile(
                        bundle.clone(),
                        previous.map(|p| &**p),
                        self.account_bucket(bundle),
                        self.metrics.entry(&bundle.api.scope, id),
                        &self.cfg,
                    )),
                };
                (id.clone(), compiled)
            })
            .collect();
        self.snapshot.store(Arc::new(Snapshot { catalog, apis }));
    }

    /// Handles one data-plane request for `api_id`; `path` is the request path with
    /// any `/execute-api/{apiId}` prefix removed. `body` is read only when the request
    /// gets that far (at most 10 MB).
    pub async fn handle<B>(
        &self,
        parts: http::request::Parts,
        body: B,
        api_id: &str,
        path: &str,
        client: Client,
    ) -> Resp
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (started, started_at) = (Instant::now(), SystemTime::now());
        let rid = request_id();
        let mut log = access_log::Pending::default();
        // Snapshot: one consistent view for the whole request.
        let snap = self.snapshot.load_full();
        let mut trace = Trace::default();
        let mut resp = self.serve(&snap, &parts, body, api_id, path, client, &rid, &mut log, &mut trace).await;
        // Metrics: every request that reached an API, and the gateway's own failures.
        if let Some(api) = trace.api {
            let failure = |status, now_ms, cause: Option<Cause>| {
                let cause = cause.unwrap_or_else(|| Cause {
                    reason: format!("The gateway answered {status} (see Portico's log)"),
                    function: None,
                });
                Failure {
                    time: now_ms,
                    request_id: rid.clone(),
                    method: parts.method.as_str().to_string(),
                    path: path.to_string(),
                    route_key: trace.route_key.map(str::to_string),
                    status,
                    reason: cause.reason,
                    function_name: cause.function,
                }
            };
            record(&api.metrics, &mut resp, trace.mapped, (started, started_at), failure);
        }
        if let Ok(v) = HeaderValue::from_str(&rid) {
            resp.headers_mut().insert("apigw-requestid", v);
        }
        // Log: one access log line, when the stage keeps them.
        if let (true, Some(writer)) = (log.is_on(), &self.access_logs) {
            use hyper::body::Body as _;
            let header = |name| parts.headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
            let request = access_log::Request {
                request_id: &rid,
                method: parts.method.as_str(),
                path,
                protocol: protocol(parts.version),
                source_ip: client.addr.ip(),
                user_agent: header(http::header::USER_AGENT),
                host: header(http::header::HOST),
                started,
                started_at,
            };
            log.finish(writer, &request, resp.status().as_u16(), resp.body().size_hint().exact());
        }
        resp
    }

    // The request's own parts plus what `handle` learned of it; a struct around them
    // would only rename them.
    #[allow(clippy::too_many_arguments)]
    async fn serve<'s, B>(
        &self,
        snap: &'s Snapshot,
        parts: &http::request::Parts,
        body: B,
        api_id: &str,
        path: &str,
        client: Client,
        rid: &str,
        log: &mut access_log::Pending,
        trace: &mut Trace<'s>,
    ) -> Resp
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut body = RequestBody::Unread(body);
        if head_size(parts) > MAX_HEAD {
            // API Gateway documents the quota but not its answer; 431 says what is wrong.
            return message(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                r#"{"message":"Request Header Fields Too Large: the request line and headers exceed 10240 bytes"}"#,
            );
        }
        // Resolve the API and stage.
        let Some(api) = snap.apis.get(api_id) else { return not_found() };
        trace.api = Some(api);
        if api.bundle.api.disable_execute_api_endpoint {
            return message(StatusCode::FORBIDDEN, r#"{"message":"Forbidden"}"#);
        }
        let Some((stage, route_path)) = resolve_stage(&api.bundle, path) else { return not_found() };
        log.stage(api.access_logs.get(&stage.stage_name));
        // A stage serves its deployment: changes since then are not visible on it.
        let Some(deployment) = stage.deployment_id.as_ref().and_then(|d| api.deployments.get(d)) else {
            return not_found();
        };
        let cors_cfg = deployment.deployment.cors.as_ref();
        let throttles = api.throttles.get(&stage.stage_name);
        // CORS preflight, answered by the gateway itself.
        if let Some(cfg) = cors_cfg {
            if cors::is_preflight(&parts.method, &parts.headers) {
                if !admit(&api.account, throttles.and_then(|t| t.bucket(None))) {
                    return too_many_requests();
                }
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = cors::PREFLIGHT_STATUS;
                *r.headers_mut() = cors::preflight(cfg, &parts.headers);
                return r;
            }
        }
        // Route.
        let Some(matched) = deployment.routes.find(parts.method.as_str(), route_path) else { return not_found() };
        let target = matched.value;
        trace.route_key = Some(&target.route_key);
        log.route(&target.route_key);
        if !admit(&api.account, throttles.and_then(|t| t.bucket(Some(matched.route_key)))) {
            return too_many_requests();
        }
        let scope = &api.bundle.api.scope;
        let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let domain_name = host.split(':').next().unwrap_or(host);
        let domain_prefix = domain_name.split('.').next().unwrap_or(api_id);
        let source_ip = client.addr.ip().to_string();
        let now = chrono::Utc::now();
        let view = |body| v2::RequestView {
            method: parts.method.as_str(),
            raw_path: path,
            raw_query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body,
            source_ip: &source_ip,
            protocol: protocol(parts.version),
        };
        let ctx = v2::EventContext {
            account_id: &scope.account_id,
            api_id,
            domain_name,
            domain_prefix,
            request_id: rid,
            route_key: &target.route_key,
            stage: &stage.stage_name,
            time_epoch_ms: now.timestamp_millis(),
            path_parameters: &matched.path_parameters,
            stage_variables: &stage.stage_variables,
        };
        // Authorize: the route's JWT, Lambda or IAM authorizer, before anything of the integration.
        let authorization = match &target.auth {
            None => None,
            Some(RouteAuth::Iam) => {
                // The signature covers the body: read it first (the 10 MB limit holds).
                let bytes = match body.read().await {
                    Ok(b) => b,
                    Err(refused) => return refused,
                };
                let verified =
                    authorizer::iam::authorize(self.authorizers.keys(), parts, &bytes, scope, SystemTime::now());
                body = RequestBody::Read(bytes);
                match verified {
                    Ok(a) => Some(a),
                    Err(refused) => return refused.response(),
                }
            }
            Some(auth) => {
                let req = authorizer::Request {
                    view: &view(&[]),
                    ctx: &ctx,
                    region: &scope.region,
                    route_path,
                    catalog: &snap.catalog,
                };
                match self.authorizers.authorize(auth, &req).await {
                    Ok(a) => Some(a),
                    Err(refused) => return refused,
                }
            }
        };
        let (Some(integration), Some(function_ref)) = (&target.integration, &target.function) else {
            tracing::warn!(api = api_id, route = %target.route_key, "route has no Lambda integration");
            return because(internal_error(), "The route has no Lambda integration", None);
        };
        let reference = match function_ref.resolve(&stage.stage_variables) {
            Ok(r) => r,
            Err(why) => {
                tracing::warn!(api = api_id, stage = %stage.stage_name, "integration URI: {why}");
                let reason = format!("The integration URI: {why}");
                log.integration_error(|| why);
                return because(internal_error(), reason, None);
            }
        };
        let Some(resolved) = snap.catalog.invocation_target(&reference, rand::random::<f64>()) else {
            tracing::warn!(api = api_id, function = %reference.unqualified(), qualifier = ?reference.qualifier,
                "the integration's function (or its version or alias) does not exist");
            log.integration_refused(404);
            let reason = access_log::function_not_found(&reference);
            log.integration_error(|| reason.clone());
            return because(internal_error(), reason, Some(&reference.name));
        };
        let function = resolved.function;
        let source_arn = format!(
            "arn:aws:execute-api:{}:{}:{}/{}/{}",
            scope.region, scope.account_id, api_id, stage.stage_name, target.source_arn_route,
        );
        if !policy_allows(resolved.policy, "apigateway.amazonaws.com", &source_arn, &scope.account_id) {
            tracing::warn!(api = api_id, function = %resolved.invoked_arn, %source_arn,
                "the resource policy of {} does not let API Gateway invoke it (aws lambda add-permission{})",
                resolved.invoked_arn, if reference.qualifier.is_some() { " --qualifier ..." } else { "" });
            log.integration_error(|| access_log::NO_PERMISSION.to_string());
            let reason = format!(
                "The resource policy of {} does not let API Gateway invoke it for {source_arn} (aws lambda add-permission)",
                resolved.invoked_arn
            );
            return because(internal_error(), reason, Some(&function.name));
        }
        // Body.
        let body = match body.read().await {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        // Build the event, in the integration's payload format (the control plane admits 1.0 and 2.0).
        let Some(format) = payload::Format::from_version(&integration.payload_format_version) else {
            tracing::warn!(api = api_id, version = %integration.payload_format_version, "unknown payload format");
            let reason = format!("Unknown payload format version {}", integration.payload_format_version);
            return because(internal_error(), reason, Some(&function.name));
        };
        let event = format.event_with(&view(&body), &ctx, authorization.as_ref());
        // Invoke, within the integration's timeout.
        let timeout = Duration::from_millis(u64::from(integration.timeout_in_millis));
        let invoked: Arc<str> = Arc::from(resolved.invoked_arn.as_str());
        let invocation: Arc<str> = Arc::from(portico_model::ids::uuid());
        let invoked_at = Instant::now();
        let out = match tokio::time::timeout(
            timeout,
            self.invoker.invoke(function, Bytes::from(event), invoked, invocation.clone(), false),
        )
        .await
        {
            Err(_) => {
                tracing::warn!(api = api_id, function = %function.name, "integration timed out after {} ms", integration.timeout_in_millis);
                log.integration(invoked_at.elapsed(), None, &invocation);
                let reason = format!("The integration timed out after {} ms", integration.timeout_in_millis);
                log.integration_error(|| reason.clone());
                let unavailable = message(StatusCode::SERVICE_UNAVAILABLE, r#"{"message":"Service Unavailable"}"#);
                return because(unavailable, reason, Some(&function.name));
            }
            Ok(Err(portico_runtime::InvokeError::Throttled(t))) => {
                // API Gateway answers a throttled Lambda integration with a plain 500.
                tracing::warn!(api = api_id, function = %function.name,
                    "the function is throttled ({}): answering 500", t.reason());
                log.integration(invoked_at.elapsed(), Some(429), &invocation);
                log.integration_error(|| "Rate Exceeded.".to_string());
                let reason = format!("The function is throttled ({}): Rate Exceeded.", t.reason());
                return because(internal_error(), reason, Some(&function.name));
            }
            Ok(Err(e)) => {
                tracing::error!(api = api_id, function = %function.name, "invoke failed: {e}");
                log.integration(invoked_at.elapsed(), Some(500), &invocation);
                let reason = format!("Invoke failed: {e}");
                log.integration_error(|| e.to_string());
                return because(internal_error(), reason, Some(&function.name));
            }
            Ok(Ok(out)) => out,
        };
        log.integration(invoked_at.elapsed(), Some(200), &invocation);
        if out.function_error {
            tracing::warn!(api = api_id, function = %function.name, error = %String::from_utf8_lossy(&out.payload),
                "function returned an error: answering 500");
            let reason = access_log::function_error(&out.payload);
            log.integration_error(|| reason.clone());
            return because(
                internal_error(),
                format!("The function returned an error: {reason}"),
                Some(&function.name),
            );
        }
        // Map the response.
        let mut resp = match format.response(&out.payload) {
            Ok(m) => {
                // From here on the status is the function's, not a failure of the gateway's.
                trace.mapped = true;
                log.integration_response(m.status.as_u16());
                let mut r = Response::new(Full::new(m.body));
                *r.status_mut() = m.status;
                *r.headers_mut() = m.headers;
                r
            }
            Err(defect) => {
                tracing::warn!(api = api_id, function = %function.name, request_id = rid,
                    "malformed Lambda proxy response, answering 502: {defect}");
                log.integration_error(|| format!("Malformed Lambda proxy response: {defect}"));
                let bad_gateway = message(StatusCode::BAD_GATEWAY, r#"{"message":"Internal Server Error"}"#);
                return because(bad_gateway, defect.to_string(), Some(&function.name));
            }
        };
        if let Some(cfg) = cors_cfg {
            cors::actual_response_headers(cfg, &parts.headers, resp.headers_mut());
        }
        resp
    }
}

/// Records a request that reached an API and was answered with `resp`, which it
/// strips of its [`Cause`]: its status and latency (arrival to response ready), and
/// `failure` (made only then) when it is a 500, 502, 503 or 504 of the gateway's own,
/// not the function's mapped answer.
fn record(
    metrics: &ApiEntry,
    resp: &mut Resp,
    mapped: bool,
    (started, started_at): (Instant, SystemTime),
    failure: impl FnOnce(u16, i64, Option<Cause>) -> Failure,
) {
    let cause = resp.extensions_mut().remove::<Cause>();
    let latency = started.elapsed();
    // No second wall-clock read: the arrival's, plus the latency.
    let now_ms = portico_runtime::metrics::epoch_ms(started_at)
        .saturating_add(i64::try_from(latency.as_millis()).unwrap_or(i64::MAX));
    let status = resp.status().as_u16();
    let failure = (crate::metrics::is_failure(status) && !mapped).then(|| failure(status, now_ms, cause));
    metrics.record(now_ms, status, latency, failure);
}

/// The route part of the execute-api source ARN: `GET/hello` for `GET /hello`,
/// `$default` for the default route.
fn source_arn_route(route_key: &str) -> String {
    match route_key.split_once(' ') {
        Some((method, path)) => {
            let method = if method == "ANY" { "*" } else { method };
            format!("{method}{path}")
        }
        None => route_key.to_string(),
    }
}

fn protocol(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

/// Picks the stage: a named stage when the first path segment names one (its prefix
/// is removed before routing), otherwise `$default` at the root.
fn resolve_stage<'a>(api: &'a ApiBundle, path: &'a str) -> Option<(&'a Stage, &'a str)> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let (first, rest) = match trimmed.find('/') {
        Some(i) => (&trimmed[..i], &trimmed[i..]),
        None => (trimmed, "/"),
    };
    if !first.is_empty() && first != "$default" {
        if let Some(stage) = api.stages.get(first) {
            return Some((stage, rest));
        }
    }
    api.stages.get("$default").map(|s| (s, path))
}

/// A bucket for `settings`, when they set limits (a limit they leave unset is the
/// account's: `throttle::route_limits`); the previous one when its settings are
/// unchanged, so a reload does not refill it.
fn bucket_for(settings: &RouteSettings, previous: Option<&Arc<Bucket>>, cfg: &GatewayConfig) -> Option<Arc<Bucket>> {
    let (rate, burst) = throttle::route_limits(
        settings.throttling_rate_limit,
        settings.throttling_burst_limit,
        cfg.account_rate,
        cfg.account_burst,
    )?;
    match previous {
        Some(b) if b.has_settings(rate, burst) => Some(b.clone()),
        _ => Some(Arc::new(Bucket::new(rate, burst))),
    }
}

fn compile_throttles(stage: &Stage, previous: Option<&StageThrottles>, cfg: &GatewayConfig) -> StageThrottles {
    StageThrottles {
        default: bucket_for(&stage.default_route_settings, previous.and_then(|p| p.default.as_ref()), cfg),
        routes: stage
            .route_settings
            .iter()
            .filter_map(|(key, settings)| {
                let merged = RouteSettings {
                    throttling_rate_limit: settings
                        .throttling_rate_limit
                        .or(stage.default_route_settings.throttling_rate_limit),
                    throttling_burst_limit: settings
                        .throttling_burst_limit
                        .or(stage.default_route_settings.throttling_burst_limit),
                    detailed_metrics_enabled: None,
                };
                Some((key.clone(), bucket_for(&merged, previous.and_then(|p| p.routes.get(key)), cfg)?))
            })
            .collect(),
    }
}

fn compile(
    bundle: Arc<ApiBundle>,
    previous: Option<&CompiledApi>,
    account: Arc<Bucket>,
    metrics: Arc<ApiEntry>,
    cfg: &GatewayConfig,
) -> CompiledApi {
    let throttles = bundle
        .stages
        .iter()
        .map(|(name, stage)| {
            (name.clone(), compile_throttles(stage, previous.and_then(|p| p.throttles.get(name)), cfg))
        })
        .collect();
    let deployments = bundle
        .deployments
        .iter()
        .map(|(id, d)| {
            let compiled = match previous.and_then(|p| p.deployments.get(id)) {
                Some(c) if Arc::ptr_eq(&c.deployment, d) => c.clone(),
                _ => Arc::new(compile_deployment(d.clone())),
            };
            (id.clone(), compiled)
        })
        .collect();
    // Access log formats are parsed here, once per stage, not per request.
    let access_logs = bundle
        .stages
        .iter()
        .filter_map(|(name, stage)| {
            Some((name.clone(), Arc::new(StageLog::for_stage(&bundle.api.scope.account_id, stage)?)))
        })
        .collect();
    CompiledApi { bundle, deployments, throttles, account, access_logs, metrics }
}

fn compile_deployment(deployment: Arc<Deployment>) -> CompiledDeployment {
    let routes = RouteTable::build(deployment.routes.values().map(|r| {
        let integration = r.integration_id().and_then(|id| deployment.integrations.get(id)).cloned();
        let function = integration.as_ref().and_then(|i| i.integration_uri.as_deref()).and_then(FunctionRef::parse);
        let auth = authorizer::compile(r, &deployment.authorizers);
        let target = Target {
            route_key: r.route_key.clone(),
            source_arn_route: source_arn_route(&r.route_key),
            integration,
            function,
            auth,
        };
        (r.route_key.clone(), target)
    }));
    CompiledDeployment { deployment, routes }
}

//! HTTP APIs' per-minute metrics (API Gateway's `Count`, `4xx`, `5xx`, `Latency`),
//! their request counts since Portico started, and the last [`FAILURES_KEPT`] answers
//! of 500, 502, 503 or 504 the gateway itself gave per API, each with its exact reason,
//! for the console's Diagnostics.
//!
//! An API's entry is looked up when its snapshot is compiled, so a request records
//! with one short lock of its own API's entry; only a failure allocates (its strings).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use portico_model::metrics::{lock, ApiSeries, Registry};
pub use portico_model::metrics::{ApiPoint, PERIOD_MS, RETAINED_MINUTES};
use portico_model::Scope;
use portico_runtime::metrics::epoch_ms;
use serde::Serialize;

/// Failures kept per API, newest first.
pub const FAILURES_KEPT: usize = 100;

/// One API's requests since Portico started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiUsage {
    /// The API's id.
    pub api_id: String,
    /// Requests it answered.
    pub requests: u64,
}

/// A 500, 502, 503 or 504 the gateway answered itself (not a function's own status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// When it was answered, milliseconds since the epoch.
    pub time: i64,
    /// The `apigw-requestid` the client got.
    pub request_id: String,
    /// The request's method.
    pub method: String,
    /// The request's path (stage prefix included, as sent).
    pub path: String,
    /// The route matched, if one was.
    pub route_key: Option<String>,
    /// The status answered.
    pub status: u16,
    /// What exactly went wrong (the text of the gateway's log line).
    pub reason: String,
    /// The integration's function, when it was known.
    pub function_name: Option<String>,
}

/// Why the gateway answered a 5xx, attached to the response (an extension) where it is
/// made and taken off by [`Gateway::handle`](crate::Gateway::handle), which records it.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    pub(crate) reason: String,
    pub(crate) function: Option<String>,
}

/// `resp` carrying `reason` (and the function involved) for the failure log.
pub(crate) fn because(
    mut resp: Response<Full<Bytes>>,
    reason: impl Into<String>,
    function: Option<&str>,
) -> Response<Full<Bytes>> {
    resp.extensions_mut().insert(Cause { reason: reason.into(), function: function.map(str::to_string) });
    resp
}

/// Whether the gateway's own answer with `status` is logged as a failure.
pub(crate) fn is_failure(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

#[derive(Debug, Default)]
struct State {
    series: ApiSeries,
    requests: u64,
    /// Newest first.
    failures: VecDeque<Failure>,
}

/// One API's metrics.
#[derive(Debug, Default)]
pub(crate) struct ApiEntry {
    state: Mutex<State>,
}

impl ApiEntry {
    /// A request answered with `status` after `latency` (arrival to response ready), at
    /// `now_ms`; `failure` when it was a failure of the gateway's own.
    pub(crate) fn record(&self, now_ms: i64, status: u16, latency: Duration, failure: Option<Failure>) {
        let mut s = lock(&self.state);
        s.series.record(now_ms, status, latency);
        s.requests += 1;
        if let Some(f) = failure {
            if s.failures.len() == FAILURES_KEPT {
                s.failures.pop_back();
            }
            s.failures.push_front(f);
        }
    }
}

/// Every HTTP API's metrics, by account and region, then API id.
#[derive(Debug)]
pub struct ApiMetrics {
    apis: Registry<ApiEntry>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics::new(epoch_ms(SystemTime::now()))
    }
}

impl ApiMetrics {
    /// Metrics counted from `since_ms` (milliseconds since the epoch).
    pub fn new(since_ms: i64) -> ApiMetrics {
        ApiMetrics { apis: Registry::new(since_ms) }
    }

    /// When counting began (Portico's start), milliseconds since the epoch.
    pub fn since_ms(&self) -> i64 {
        self.apis.since_ms()
    }

    /// The entry of `scope`'s API `api_id`, made when first seen.
    pub(crate) fn entry(&self, scope: &Scope, api_id: &str) -> Arc<ApiEntry> {
        self.apis.entry(scope, api_id)
    }

    /// `scope`'s API `api_id`: the last `minutes` minutes (1 to 180) up to `now_ms`'s,
    /// oldest first, one point per minute, zero-filled.
    pub fn series(&self, scope: &Scope, api_id: &str, now_ms: i64, minutes: u32) -> Vec<ApiPoint> {
        match self.apis.find(scope, api_id) {
            Some(e) => lock(&e.state).series.points(now_ms, minutes),
            None => ApiSeries::default().points(now_ms, minutes),
        }
    }

    /// The requests of `scope`'s APIs since Portico started (APIs with at least one).
    pub fn usage(&self, scope: &Scope) -> Vec<ApiUsage> {
        self.apis
            .entries(scope)
            .into_iter()
            .filter_map(|(api_id, e)| {
                let requests = lock(&e.state).requests;
                (requests > 0).then_some(ApiUsage { api_id, requests })
            })
            .collect()
    }

    /// The last [`FAILURES_KEPT`] failures of `scope`'s API `api_id`, newest first.
    pub fn failures(&self, scope: &Scope, api_id: &str) -> Vec<Failure> {
        self.apis.find(scope, api_id).map(|e| lock(&e.state).failures.iter().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope { account_id: "111122223333".into(), region: "us-east-1".into() }
    }

    fn failure(n: usize) -> Failure {
        Failure {
            time: 1_000,
            request_id: format!("rid-{n}"),
            method: "GET".into(),
            path: "/hello".into(),
            route_key: Some("GET /hello".into()),
            status: 502,
            reason: "body must be a string, got object".into(),
            function_name: Some("f".into()),
        }
    }

    #[test]
    fn records_counts_usage_and_the_last_100_failures() {
        let metrics = ApiMetrics::new(0);
        let e = metrics.entry(&scope(), "abc123");
        assert!(Arc::ptr_eq(&e, &metrics.entry(&scope(), "abc123")));
        let now = 10 * PERIOD_MS + 5;
        e.record(now, 200, Duration::from_millis(2), None);
        e.record(now, 404, Duration::from_millis(1), None);
        for n in 0..150 {
            e.record(now, 502, Duration::from_millis(3), Some(failure(n)));
        }
        let points = metrics.series(&scope(), "abc123", now, 2);
        assert_eq!(points.len(), 2);
        assert_eq!((points[0].requests, points[0].t), (0, 9 * PERIOD_MS));
        assert_eq!((points[1].requests, points[1].count_4xx, points[1].count_5xx), (152, 1, 150));
        assert!((points[1].latency_p50_ms.unwrap_or_default() - 3.0).abs() < 0.1);
        assert_eq!(metrics.usage(&scope()), [ApiUsage { api_id: "abc123".into(), requests: 152 }]);
        let failures = metrics.failures(&scope(), "abc123");
        assert_eq!(failures.len(), FAILURES_KEPT);
        assert_eq!((failures[0].request_id.as_str(), failures[99].request_id.as_str()), ("rid-149", "rid-50"));
        // Another account sees nothing of it.
        let other = Scope { account_id: "444455556666".into(), region: "us-east-1".into() };
        assert!(metrics.failures(&other, "abc123").is_empty() && metrics.usage(&other).is_empty());
        assert_eq!(metrics.series(&other, "abc123", now, 1)[0].requests, 0);
    }

    #[test]
    fn failures_serialize_in_the_console_contract_names() {
        let mut f = failure(1);
        f.route_key = None;
        assert_eq!(
            serde_json::to_value(&f).ok(),
            Some(serde_json::json!({"time": 1000, "requestId": "rid-1", "method": "GET", "path": "/hello",
                "routeKey": null, "status": 502, "reason": "body must be a string, got object",
                "functionName": "f"}))
        );
        assert_eq!(
            serde_json::to_value(ApiUsage { api_id: "a".into(), requests: 2 }).ok(),
            Some(serde_json::json!({"apiId": "a", "requests": 2}))
        );
    }

    /// A directory removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A `provided.al2023` bootstrap in Python answering by the event's path: `/bad` a
    /// malformed response, `/fail` a function error, `/own500` a 500 of its own.
    const BOOTSTRAP: &str = r#"#!/usr/bin/env python3
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
api = http.client.HTTPConnection(host, int(port))
while True:
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    r = api.getresponse()
    path = json.loads(r.read())["rawPath"]
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    answer = {"/bad": {"statusCode": 200, "body": {"a": 1}}, "/own500": {"statusCode": 500, "body": "mine"}}.get(path, "hi")
    kind = "error" if path == "/fail" else "response"
    body = b'{"errorType":"Test","errorMessage":"boom"}' if kind == "error" else json.dumps(answer).encode()
    api.request("POST", "/2018-06-01/runtime/invocation/" + rid + "/" + kind, body=body)
    api.getresponse().read()
"#;

    fn catalog(sha: &str) -> portico_model::Catalog {
        use portico_model::catalog::Record;
        let scope = serde_json::json!({"account_id": "111122223333", "region": "us-east-1"});
        let function = serde_json::json!({
            "scope": scope, "name": "f", "runtime": "provided.al2023", "role": "r", "handler": "h",
            "description": "", "timeout": 3, "memory_size": 128, "environment": {},
            "architectures": ["x86_64"], "ephemeral_storage": 512,
            "code": {"sha256_hex": sha, "sha256_b64": "", "size": 1},
            "last_modified": "", "revision_id": "", "state": "Active", "last_update_status": "Successful",
            "policy": [{"sid": "apigw", "action": "lambda:InvokeFunction", "principal": "apigateway.amazonaws.com",
                "source_arn": null, "source_account": null,
                "resource": "arn:aws:lambda:us-east-1:111122223333:function:f"}],
            "tags": {}
        });
        let route = |id: &str, key: &str, integration: &str| {
            serde_json::json!({"api_id": "abc123", "route_id": id, "route_key": key,
                "target": format!("integrations/{integration}"), "authorization_type": "NONE",
                "authorizer_id": null, "authorization_scopes": [], "api_key_required": false, "operation_name": null})
        };
        let integration = |id: &str, name: &str| {
            serde_json::json!({"api_id": "abc123", "integration_id": id, "integration_type": "AWS_PROXY",
                "integration_uri": format!("arn:aws:lambda:us-east-1:111122223333:function:{name}"),
                "integration_method": "POST", "payload_format_version": "2.0", "timeout_in_millis": 5000,
                "connection_type": "INTERNET", "description": null, "credentials_arn": null})
        };
        let deployment = serde_json::json!({"api_id": "abc123", "deployment_id": "d1", "created_date": "",
            "description": null, "auto_deployed": true,
            "routes": {"r1": route("r1", "ANY /{proxy+}", "i1"), "r2": route("r2", "GET /ghost", "i2")},
            "integrations": {"i1": integration("i1", "f"), "i2": integration("i2", "ghost")},
            "cors": null, "authorizers": {}});
        let api = serde_json::json!({"scope": scope, "api_id": "abc123", "name": "a", "description": null,
            "protocol_type": "HTTP", "route_selection_expression": "$request.method $request.path",
            "api_key_selection_expression": "$request.header.x-api-key", "cors": null,
            "disable_execute_api_endpoint": false, "version": null, "created_date": "", "tags": {}});
        let stage = serde_json::json!({"api_id": "abc123", "stage_name": "$default", "auto_deploy": true,
            "deployment_id": "d1", "description": null, "stage_variables": {}, "default_route_settings": {},
            "route_settings": {}, "created_date": "", "last_updated_date": "", "tags": {}});
        let parse = |v: serde_json::Value| v.to_string();
        portico_model::Catalog::from_records(
            1,
            [
                Record::Function(serde_json::from_str(&parse(function)).expect("function")),
                Record::Api(serde_json::from_str(&parse(api)).expect("api")),
                Record::Deployment(serde_json::from_str(&parse(deployment)).expect("deployment")),
                Record::Stage(serde_json::from_str(&parse(stage)).expect("stage")),
            ],
        )
    }

    #[tokio::test]
    async fn the_gateway_records_requests_and_its_own_failures() {
        use portico_runtime::launch::{Interpreters, Launchers};
        use portico_runtime::sandbox::{Sandbox, SandboxConfig, TmpStorage};
        use std::os::unix::fs::PermissionsExt;

        let dir = Scratch(std::env::temp_dir().join(format!("portico-gw-metrics-{}", uuid::Uuid::new_v4().simple())));
        let sha = "cd".repeat(32);
        let task = dir.0.join("code").join(&sha);
        std::fs::create_dir_all(&task).expect("mkdir");
        std::fs::write(task.join("bootstrap"), BOOTSTRAP).expect("write");
        std::fs::set_permissions(task.join("bootstrap"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let launchers = Launchers::resolve(&Interpreters::default(), &dir.0.join("runtimes")).expect("launchers");
        let sandbox = Arc::new(Sandbox::new(SandboxConfig {
            isolate_users: false,
            landlock: false,
            cgroups: false,
            root: dir.0.join("sandbox"),
            tmp_storage: TmpStorage::Dir,
            ..SandboxConfig::default()
        }));
        let invoker = portico_runtime::Invoker::new(
            portico_runtime::RuntimeConfig {
                code_dir: dir.0.join("code"),
                tmp_dir: dir.0.join("tmp"),
                idle_timeout: Duration::from_secs(60),
                account_concurrency: 10,
                sandbox,
                log_sink: None,
                warm_wait: false,
                spares_per_profile: 0,
            },
            launchers,
        );
        let gateway =
            crate::Gateway::new(invoker.clone(), crate::GatewayConfig { account_rate: 10_000.0, account_burst: 5_000 });
        gateway.install(Arc::new(catalog(&sha)));
        let client = crate::Client { addr: std::net::SocketAddr::from(([127, 0, 0, 1], 1)) };
        let mut answers = Vec::new();
        for path in ["/hello", "/bad", "/fail", "/own500", "/ghost", "/hello"] {
            let (parts, ()) = http::Request::get(path)
                .header("host", "abc123.execute-api.localhost")
                .body(())
                .expect("request")
                .into_parts();
            let body = http_body_util::Empty::<Bytes>::new();
            let resp = gateway.handle(parts, body, "abc123", path, client).await;
            let rid = resp.headers().get("apigw-requestid").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            answers.push((resp.status().as_u16(), rid));
        }
        // A request to an API that does not exist is counted nowhere.
        let (parts, ()) = http::Request::get("/").body(()).expect("request").into_parts();
        let _ = gateway.handle(parts, http_body_util::Empty::<Bytes>::new(), "nope", "/", client).await;
        let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
        assert_eq!(statuses, [200, 502, 500, 500, 500, 200]);

        let metrics = gateway.metrics();
        let s = scope();
        let now = epoch_ms(SystemTime::now());
        let points = metrics.series(&s, "abc123", now, 3);
        let sum = |get: fn(&ApiPoint) -> u64| points.iter().map(get).sum::<u64>();
        assert_eq!((sum(|p| p.requests), sum(|p| p.count_4xx), sum(|p| p.count_5xx)), (6, 0, 4));
        assert!(points.iter().any(|p| p.latency_p99_ms.is_some()));
        assert_eq!(metrics.usage(&s), [ApiUsage { api_id: "abc123".into(), requests: 6 }]);
        // The function's own 500 is not a failure of the gateway's.
        let failures = metrics.failures(&s, "abc123");
        let seen: Vec<_> = failures
            .iter()
            .map(|f| (f.status, f.reason.as_str(), f.route_key.as_deref(), f.function_name.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    500,
                    "Function not found: arn:aws:lambda:us-east-1:111122223333:function:ghost",
                    Some("GET /ghost"),
                    Some("ghost")
                ),
                (500, "The function returned an error: Test: boom", Some("ANY /{proxy+}"), Some("f")),
                (502, "body must be a string, got object", Some("ANY /{proxy+}"), Some("f")),
            ]
        );
        assert_eq!((failures[2].request_id.as_str(), failures[2].path.as_str()), (answers[1].1.as_str(), "/bad"));
        assert_eq!(failures[2].method, "GET");
        // The invocations were counted by the function's metrics too.
        let invoked = invoker.metrics().series(&s, "f", now, 3);
        assert_eq!(
            invoked.iter().map(|p| (p.invocations, p.errors)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
            (5, 1)
        );
        invoker.shutdown();
    }
}

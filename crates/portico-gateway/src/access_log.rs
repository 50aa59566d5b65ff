//! Access logs of HTTP API stages, as API Gateway writes them for a stage's
//! `AccessLogSettings`: after each request on the stage, one line made from the stage's
//! `Format` by replacing each `$context.name` (or `${context.name}`) with its value,
//! sent to the CloudWatch Logs group that `DestinationArn` names.
//!
//! - **Parsing.** A format is parsed once, when the snapshot that holds the stage is
//!   compiled ([`StageLog::for_stage`]); a request only fills in values.
//! - **Values** follow AWS's "Customize HTTP API access logs" table
//!   (`http-api-logging-variables`): `requestId` and `extendedRequestId` are both the
//!   `apigw-requestid` answer header; `requestTime` is CLF (`24/Nov/2026:19:44:28 +0000`)
//!   and `requestTimeEpoch` is in seconds; `responseLatency` and `integrationLatency` are in
//!   ms; `integrationStatus` is what the Lambda service answered (200 even when the
//!   function failed, 429 when it was throttled, 404 when it does not exist) and
//!   `integration.status` the function's own `statusCode`; `awsEndpointRequestId` (and
//!   `integration.requestId`) is the invocation's request id. A variable this table does
//!   not have, or one with no value for the request (an authorizer's, the route key of a
//!   request no route matched...), becomes `-`, as on AWS.
//! - **Answers the gateway gives itself** are logged too, with `error.message` (the
//!   `message` of the body: `Not Found`, `Too Many Requests`, `Internal Server Error`...)
//!   and `error.responseType` (`RESOURCE_NOT_FOUND`, `THROTTLED`, `REQUEST_TOO_LARGE`,
//!   `INTEGRATION_FAILURE` when the function was reached, `API_CONFIGURATION_ERROR` when it
//!   was not, `INTEGRATION_TIMEOUT`). A request that names no stage (an unknown API or
//!   stage) has no access log to go to, as on AWS.
//! - **Destination.** Lines go to the group in the ARN's account and region, in one
//!   stream per stage named `{apiId}/{stageName}` (e.g. `a1b2c3d4e5/$default`). As on
//!   AWS the group must exist already (`aws logs create-log-group`): lines for a missing
//!   group are dropped, with one warning in Portico's log until the group appears.
//! - **Nothing waits.** [`AccessLogWriter::send`] puts a line on a bounded queue and
//!   returns (a full queue drops and counts); one thread checks that each group exists
//!   (a read of the log store) and hands the lines to the [`LogSink`] function logs use.
//!
//! This module knows nothing of the store: it sees it through [`LogGroups`] and
//! [`LogSink`].

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portico_model::api::context_variables;
use portico_model::{FunctionArn, Qualifier, Scope, Stage};
use portico_runtime::{LogEvent, LogSink};

/// Most lines waiting for the writer thread; more are dropped (and counted).
const QUEUE_LINES: usize = 16 * 1024;

/// Most lines the writer thread takes from the queue at once.
const MAX_BATCH: usize = 1024;

/// What `integrationErrorMessage` says when API Gateway may not invoke the function
/// (AWS's text, from its knowledge-center article on HTTP API Lambda permissions).
pub const NO_PERMISSION: &str = "The IAM role configured on the integration or API Gateway doesn't have permissions to call the integration. Check the permissions and try again.";

/// `integrationErrorMessage` when the integration's function (or the version or alias
/// it names) does not exist: the Lambda service's `ResourceNotFoundException` message.
pub fn function_not_found(function: &FunctionArn) -> String {
    match &function.qualifier {
        None => format!("Function not found: {}", function.unqualified()),
        Some(Qualifier::Latest) => format!("Function not found: {}:$LATEST", function.unqualified()),
        Some(Qualifier::Named(q)) => format!("Function not found: {}:{q}", function.unqualified()),
    }
}

/// `integrationErrorMessage` when the function failed: `{errorType}: {errorMessage}` of
/// its error document (the document itself, cut to 1 KB, when it has neither).
pub fn function_error(payload: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Diagnostic {
        error_type: Option<String>,
        error_message: Option<String>,
    }
    match serde_json::from_slice::<Diagnostic>(payload) {
        Ok(Diagnostic { error_type: Some(t), error_message: Some(m) }) => format!("{t}: {m}"),
        Ok(Diagnostic { error_type: None, error_message: Some(m) }) => m,
        Ok(Diagnostic { error_type: Some(t), error_message: None }) => t,
        _ => String::from_utf8_lossy(&payload[..payload.len().min(1024)]).into_owned(),
    }
}

/// One `$context` variable an HTTP API access log can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    AccountId,
    ApiId,
    AwsEndpointRequestId,
    DomainName,
    DomainPrefix,
    ErrorMessage,
    ErrorMessageString,
    ErrorResponseType,
    HttpMethod,
    SourceIp,
    UserAgent,
    IntegrationError,
    IntegrationServiceStatus,
    IntegrationLatency,
    IntegrationStatus,
    Path,
    Protocol,
    RequestId,
    RequestTime,
    RequestTimeEpoch,
    ResponseLatency,
    ResponseLength,
    RouteKey,
    Stage,
    Status,
    /// A variable without a value in Portico (authorizers, IAM identities, client
    /// certificates, custom domains) or unknown to HTTP APIs: always `-`.
    Dash,
}

impl Var {
    fn parse(name: &str) -> Var {
        match name {
            "accountId" => Var::AccountId,
            "apiId" => Var::ApiId,
            "awsEndpointRequestId" | "integration.requestId" => Var::AwsEndpointRequestId,
            "domainName" => Var::DomainName,
            "domainPrefix" => Var::DomainPrefix,
            "error.message" => Var::ErrorMessage,
            "error.messageString" => Var::ErrorMessageString,
            "error.responseType" => Var::ErrorResponseType,
            "httpMethod" => Var::HttpMethod,
            "identity.sourceIp" => Var::SourceIp,
            "identity.userAgent" => Var::UserAgent,
            "integrationErrorMessage" | "integration.error" => Var::IntegrationError,
            "integrationStatus" | "integration.integrationStatus" => Var::IntegrationServiceStatus,
            "integrationLatency" | "integration.latency" => Var::IntegrationLatency,
            "integration.status" => Var::IntegrationStatus,
            "path" => Var::Path,
            "protocol" => Var::Protocol,
            "requestId" | "extendedRequestId" => Var::RequestId,
            "requestTime" => Var::RequestTime,
            "requestTimeEpoch" => Var::RequestTimeEpoch,
            "responseLatency" => Var::ResponseLatency,
            "responseLength" => Var::ResponseLength,
            "routeKey" => Var::RouteKey,
            "stage" => Var::Stage,
            "status" => Var::Status,
            _ => Var::Dash,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A stage's `Format`, parsed: literal text and variables in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Format {
    parts: Vec<Part>,
    /// Length of the literal text, a start for the line's capacity.
    text_len: usize,
}

impl Format {
    fn parse(format: &str) -> Format {
        let mut parts = Vec::new();
        let mut at = 0;
        for (range, name) in context_variables(format) {
            if range.start > at {
                parts.push(Part::Text(format[at..range.start].to_string()));
            }
            parts.push(Part::Var(Var::parse(name)));
            at = range.end;
        }
        if at < format.len() {
            parts.push(Part::Text(format[at..].to_string()));
        }
        let text_len = parts.iter().map(|p| if let Part::Text(t) = p { t.len() } else { 0 }).sum();
        Format { parts, text_len }
    }

    fn render(&self, v: &Values<'_>) -> String {
        let mut out = String::with_capacity(self.text_len + 16 * self.parts.len());
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(var) => {
                    let before = out.len();
                    v.write(*var, &mut out);
                    if out.len() == before {
                        out.push('-');
                    }
                }
            }
        }
        out
    }
}

/// One stage's access log: where its lines go and how they look. Built with the
/// snapshot, shared by the stage's requests.
#[derive(Debug)]
pub struct StageLog {
    /// Account and region of the destination group (the ARN's).
    scope: Scope,
    group: String,
    stream: String,
    account_id: String,
    api_id: String,
    stage_name: String,
    format: Format,
}

impl StageLog {
    /// The access log of `stage`, an API of `account_id`, when its `AccessLogSettings`
    /// name a log group and a format.
    pub fn for_stage(account_id: &str, stage: &Stage) -> Option<StageLog> {
        let (scope, group, format) = stage.access_log_settings.as_ref()?.target()?;
        Some(StageLog {
            scope,
            group: group.to_string(),
            stream: stream_name(&stage.api_id, &stage.stage_name),
            account_id: account_id.to_string(),
            api_id: stage.api_id.clone(),
            stage_name: stage.stage_name.clone(),
            format: Format::parse(format),
        })
    }
}

/// The log stream a stage's access log lines go to: `{apiId}/{stageName}`.
pub fn stream_name(api_id: &str, stage_name: &str) -> String {
    format!("{api_id}/{stage_name}")
}

/// What happened to the integration of one request.
#[derive(Debug, Default)]
struct Integration {
    /// The Lambda service's answer (200, 404, 429...).
    service_status: Option<u16>,
    /// The function's own `statusCode`, once its answer was mapped.
    status: Option<u16>,
    latency: Option<Duration>,
    error: Option<String>,
    request_id: Option<Arc<str>>,
}

/// What one request did, gathered while it is served. Empty, and never allocating,
/// unless its stage keeps an access log.
#[derive(Debug, Default)]
pub struct Pending {
    log: Option<Arc<StageLog>>,
    route_key: Option<String>,
    integration: Integration,
    /// Whether the answer is the function's (no `error.*` then, whatever its status).
    from_integration: bool,
}

impl Pending {
    /// The request is on a stage with (or without) an access log.
    pub fn stage(&mut self, log: Option<&Arc<StageLog>>) {
        self.log = log.cloned();
    }

    /// Whether the request is on a stage with an access log.
    pub fn is_on(&self) -> bool {
        self.log.is_some()
    }

    /// The route the request matched.
    pub fn route(&mut self, route_key: &str) {
        if self.is_on() {
            self.route_key = Some(route_key.to_string());
        }
    }

    /// The integration was called: it took `latency`, the Lambda service answered
    /// `service_status` (none when no answer came), for invocation `request_id`.
    pub fn integration(&mut self, latency: Duration, service_status: Option<u16>, request_id: &Arc<str>) {
        if self.is_on() {
            self.integration.latency = Some(latency);
            self.integration.service_status = service_status;
            self.integration.request_id = Some(request_id.clone());
        }
    }

    /// The Lambda service answered `service_status` without running the function.
    pub fn integration_refused(&mut self, service_status: u16) {
        if self.is_on() {
            self.integration.service_status = Some(service_status);
        }
    }

    /// What went wrong with the integration (`integrationErrorMessage`); `message` is
    /// only called when the stage keeps an access log.
    pub fn integration_error(&mut self, message: impl FnOnce() -> String) {
        if self.is_on() {
            self.integration.error = Some(message());
        }
    }

    /// The answer is the function's, mapped from its `statusCode`.
    pub fn integration_response(&mut self, status: u16) {
        self.from_integration = true;
        if self.is_on() {
            self.integration.status = Some(status);
        }
    }

    /// Formats the line for this request, answered with `status` and a body of
    /// `length` bytes, and queues it. Does nothing when the stage keeps no access log.
    pub fn finish(self, writer: &AccessLogWriter, request: &Request<'_>, status: u16, length: Option<u64>) {
        let Some(log) = &self.log else { return };
        let error = if self.from_integration { None } else { gateway_error(status, self.reached_function()) };
        let values = Values { log, pending: &self, request, status, length, error, now: Instant::now() };
        let message = log.format.render(&values);
        let timestamp_ms = millis_since_epoch(request.started_at);
        writer.send(Line { log: log.clone(), timestamp_ms, message });
    }

    fn reached_function(&self) -> bool {
        self.integration.service_status.is_some() || self.integration.latency.is_some()
    }
}

/// `error.message` and `error.responseType` of an answer the gateway gave itself, by
/// its status (each status has one body: `{"message":"Not Found"}`...).
fn gateway_error(status: u16, reached_function: bool) -> Option<(&'static str, &'static str)> {
    Some(match status {
        403 => ("Forbidden", "ACCESS_DENIED"),
        404 => ("Not Found", "RESOURCE_NOT_FOUND"),
        413 => ("Request Entity Too Large", "REQUEST_TOO_LARGE"),
        429 => ("Too Many Requests", "THROTTLED"),
        500 => {
            ("Internal Server Error", if reached_function { "INTEGRATION_FAILURE" } else { "API_CONFIGURATION_ERROR" })
        }
        502 => ("Internal Server Error", "INTEGRATION_FAILURE"),
        503 => ("Service Unavailable", "INTEGRATION_TIMEOUT"),
        s if (400..500).contains(&s) => ("", "DEFAULT_4XX"),
        s if (500..600).contains(&s) => ("", "DEFAULT_5XX"),
        _ => return None,
    })
}

/// The request itself, as the client sent it.
#[derive(Debug)]
pub struct Request<'a> {
    /// `apigw-requestid`.
    pub request_id: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The path as requested, named stage included.
    pub path: &'a str,
    /// `HTTP/1.1`...
    pub protocol: &'static str,
    /// The peer's address.
    pub source_ip: IpAddr,
    /// The `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// The `Host` header.
    pub host: Option<&'a str>,
    /// When the request arrived (for latency).
    pub started: Instant,
    /// When the request arrived (for `requestTime`).
    pub started_at: SystemTime,
}

fn millis_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Everything a variable can be read from.
struct Values<'a> {
    log: &'a StageLog,
    pending: &'a Pending,
    request: &'a Request<'a>,
    status: u16,
    length: Option<u64>,
    error: Option<(&'static str, &'static str)>,
    now: Instant,
}

impl Values<'_> {
    /// Appends `var`'s value to `out`; appends nothing when it has none.
    fn write(&self, var: Var, out: &mut String) {
        let r = self.request;
        let i = &self.pending.integration;
        let domain = r.host.map(|h| h.split(':').next().unwrap_or(h)).filter(|d| !d.is_empty());
        // Writing into a String cannot fail.
        let _ = match var {
            Var::AccountId => write!(out, "{}", self.log.account_id),
            Var::ApiId => write!(out, "{}", self.log.api_id),
            Var::Stage => write!(out, "{}", self.log.stage_name),
            Var::RequestId => write!(out, "{}", r.request_id),
            Var::HttpMethod => write!(out, "{}", r.method),
            Var::Path => write!(out, "{}", r.path),
            Var::Protocol => write!(out, "{}", r.protocol),
            Var::SourceIp => write!(out, "{}", r.source_ip),
            Var::UserAgent => write!(out, "{}", r.user_agent.unwrap_or("")),
            Var::DomainName => write!(out, "{}", domain.unwrap_or("")),
            Var::DomainPrefix => write!(out, "{}", domain.map_or("", |d| d.split('.').next().unwrap_or(d))),
            Var::RouteKey => write!(out, "{}", self.pending.route_key.as_deref().unwrap_or("")),
            Var::Status => write!(out, "{}", self.status),
            Var::ResponseLength => match self.length {
                Some(n) => write!(out, "{n}"),
                None => Ok(()),
            },
            Var::ResponseLatency => write!(out, "{}", self.now.saturating_duration_since(r.started).as_millis()),
            Var::RequestTime => {
                let at = chrono::DateTime::<chrono::Utc>::from(r.started_at);
                write!(out, "{}", at.format("%d/%b/%Y:%H:%M:%S %z"))
            }
            Var::RequestTimeEpoch => write!(out, "{}", millis_since_epoch(r.started_at) / 1000),
            Var::ErrorMessage => write!(out, "{}", self.error.map_or("", |e| e.0)),
            Var::ErrorMessageString => match self.error {
                Some((m, _)) if !m.is_empty() => write!(out, "\"{m}\""),
                _ => Ok(()),
            },
            Var::ErrorResponseType => write!(out, "{}", self.error.map_or("", |e| e.1)),
            Var::IntegrationError => write!(out, "{}", i.error.as_deref().unwrap_or("")),
            Var::IntegrationServiceStatus => match i.service_status {
                Some(s) => write!(out, "{s}"),
                None => Ok(()),
            },
            Var::IntegrationStatus => match i.status {
                Some(s) => write!(out, "{s}"),
                None => Ok(()),
            },
            Var::IntegrationLatency => match i.latency {
                Some(d) => write!(out, "{}", d.as_millis()),
                None => Ok(()),
            },
            Var::AwsEndpointRequestId => write!(out, "{}", i.request_id.as_deref().unwrap_or("")),
            Var::Dash => Ok(()),
        };
    }
}

/// Whether a CloudWatch Logs group exists: the log store, as the writer thread sees it.
pub trait LogGroups: Send + Sync + fmt::Debug + 'static {
    /// Whether `group` exists in `scope`. May block (it reads the store): it is only
    /// called from the writer thread.
    fn exists(&self, scope: &Scope, group: &str) -> bool;
}

/// One formatted line on its way to its stage's log group.
#[derive(Debug)]
struct Line {
    log: Arc<StageLog>,
    timestamp_ms: i64,
    message: String,
}

/// How many queued lines the writer thread has dealt with (written or dropped).
#[derive(Debug, Default)]
struct Progress {
    done: Mutex<u64>,
    changed: Condvar,
}

/// The queue of access log lines and the thread that writes them.
#[derive(Debug)]
pub struct AccessLogWriter {
    tx: SyncSender<Line>,
    /// Lines queued so far.
    queued: AtomicU64,
    /// Lines dropped because the queue was full.
    dropped: AtomicU64,
    progress: Arc<Progress>,
}

impl AccessLogWriter {
    /// Starts the writer thread: lines go to `sink`, for groups that `groups` says exist.
    pub fn start(sink: Arc<dyn LogSink>, groups: Arc<dyn LogGroups>) -> std::io::Result<AccessLogWriter> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let progress = Arc::new(Progress::default());
        let thread_progress = progress.clone();
        std::thread::Builder::new()
            .name("portico-access-logs".into())
            .spawn(move || write_lines(&rx, &*sink, &*groups, &thread_progress))?;
        Ok(AccessLogWriter { tx, queued: AtomicU64::new(0), dropped: AtomicU64::new(0), progress })
    }

    /// Queues `line`. Never blocks: when the writer is too far behind, the line is
    /// dropped and counted.
    fn send(&self, line: Line) {
        match self.tx.try_send(line) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::AcqRel);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let before = self.dropped.fetch_add(1, Ordering::Relaxed);
                // On the first drop and then at every power of ten, not on every line.
                if before == 0 || (before + 1).ilog10() > before.ilog10() {
                    tracing::warn!(dropped = before + 1, "access log lines dropped: the access log writer is behind");
                }
            }
        }
    }

    /// Lines dropped because the writer was behind, since start-up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every line queued before this call has been handed to the sink (or
    /// dropped for a missing group), at most `timeout`. Returns whether they were.
    pub fn sync(&self, timeout: Duration) -> bool {
        let target = self.queued.load(Ordering::Acquire);
        let deadline = Instant::now() + timeout;
        let mut done = self.progress.done.lock().unwrap_or_else(|e| e.into_inner());
        while *done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            done = self.progress.changed.wait_timeout(done, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }
}

/// The writer thread: takes what is queued, checks each destination group once per
/// batch, and appends each stream's lines in one call.
fn write_lines(rx: &Receiver<Line>, sink: &dyn LogSink, groups: &dyn LogGroups, progress: &Progress) {
    // Missing groups already warned about (warned again once they have existed).
    let mut warned: HashSet<(Scope, String)> = HashSet::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(line) => batch.push(line),
                Err(_) => break,
            }
        }
        let count = batch.len() as u64;
        // Lines by stream, each stream's in the order they came.
        let mut streams: Vec<(Arc<StageLog>, Vec<LogEvent>)> = Vec::new();
        for line in batch {
            let event = LogEvent { timestamp_ms: line.timestamp_ms, message: line.message };
            let same = |(d, _): &&mut (Arc<StageLog>, Vec<LogEvent>)| {
                d.scope == line.log.scope && d.group == line.log.group && d.stream == line.log.stream
            };
            match streams.iter_mut().find(same) {
                Some((_, events)) => events.push(event),
                None => streams.push((line.log, vec![event])),
            }
        }
        let mut exists: HashMap<(&Scope, &str), bool> = HashMap::new();
        for (log, events) in &streams {
            let found =
                *exists.entry((&log.scope, &log.group)).or_insert_with(|| groups.exists(&log.scope, &log.group));
            let key = (log.scope.clone(), log.group.clone());
            if found {
                warned.remove(&key);
                sink.append(&log.scope, &log.group, &log.stream, events.clone());
            } else if warned.insert(key) {
                tracing::warn!(
                    account = %log.scope.account_id, region = %log.scope.region, group = %log.group,
                    api = %log.api_id, stage = %log.stage_name,
                    "access log lines dropped: the log group does not exist (create it: aws logs create-log-group --log-group-name {})",
                    log.group
                );
            }
        }
        let mut done = progress.done.lock().unwrap_or_else(|e| e.into_inner());
        *done += count;
        progress.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_model::api::AccessLogSettings;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    const ARN: &str = "arn:aws:logs:us-east-1:111122223333:log-group:access";

    fn stage(format: &str) -> Stage {
        Stage {
            api_id: "a1b2c3d4e5".into(),
            stage_name: "prod".into(),
            auto_deploy: true,
            deployment_id: None,
            description: None,
            stage_variables: BTreeMap::new(),
            default_route_settings: Default::default(),
            route_settings: BTreeMap::new(),
            created_date: String::new(),
            last_updated_date: String::new(),
            tags: BTreeMap::new(),
            access_log_settings: Some(AccessLogSettings {
                destination_arn: Some(ARN.into()),
                format: Some(format.into()),
            }),
        }
    }

    fn request() -> Request<'static> {
        Request {
            request_id: "JYxQ8gHAoAMEbkQ=",
            method: "GET",
            path: "/prod/hello",
            protocol: "HTTP/1.1",
            source_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
            user_agent: Some("curl/8.5.0"),
            host: Some("a1b2c3d4e5.execute-api.localhost:4750"),
            started: Instant::now(),
            // 2026-11-24T19:44:28.123Z
            started_at: UNIX_EPOCH + Duration::from_millis(1_795_549_468_123),
        }
    }

    /// Renders `format` for a request that `setup` describes, answered with `status`.
    fn check(format: &str, setup: impl FnOnce(&mut Pending), status: u16, expected: &str) {
        let log = Arc::new(StageLog::for_stage("111122223333", &stage(format)).expect("a stage log"));
        let mut p = Pending::default();
        p.stage(Some(&log));
        setup(&mut p);
        let r = request();
        let error = if p.from_integration { None } else { gateway_error(status, p.reached_function()) };
        let v = Values { log: &log, pending: &p, request: &r, status, length: Some(11), error, now: r.started };
        assert_eq!(log.format.render(&v), expected, "{format}");
    }

    #[test]
    fn variables() {
        let ok = |p: &mut Pending| {
            p.route("GET /hello");
            p.integration(Duration::from_millis(42), Some(200), &Arc::from("1a2b-lambda"));
            p.integration_response(201);
        };
        for (format, expected) in [
            ("$context.requestId $context.extendedRequestId", "JYxQ8gHAoAMEbkQ= JYxQ8gHAoAMEbkQ="),
            ("$context.apiId/$context.stage $context.accountId", "a1b2c3d4e5/prod 111122223333"),
            ("$context.httpMethod $context.path $context.protocol", "GET /prod/hello HTTP/1.1"),
            (
                "$context.routeKey|$context.status|$context.responseLength|$context.responseLatency",
                "GET /hello|201|11|0",
            ),
            ("$context.identity.sourceIp \"$context.identity.userAgent\"", "10.0.0.7 \"curl/8.5.0\""),
            ("$context.domainName $context.domainPrefix", "a1b2c3d4e5.execute-api.localhost a1b2c3d4e5"),
            ("[$context.requestTime] $context.requestTimeEpoch", "[24/Nov/2026:19:44:28 +0000] 1795549468"),
            ("$context.integrationStatus $context.integration.integrationStatus", "200 200"),
            ("$context.integration.status $context.integrationLatency $context.integration.latency", "201 42 42"),
            ("$context.awsEndpointRequestId $context.integration.requestId", "1a2b-lambda 1a2b-lambda"),
            // The function answered: no gateway error, whatever its status.
            ("$context.error.message $context.error.messageString $context.error.responseType", "- - -"),
            ("$context.integrationErrorMessage $context.integration.error", "- -"),
            // Unknown to HTTP APIs, or without a value in Portico.
            ("$context.resourcePath $context.authorizer.claims.sub $context.identity.caller $context.nope", "- - - -"),
            ("${context.status}${context.requestId}", "201JYxQ8gHAoAMEbkQ="),
            ("{\"status\":\"$context.status\"}.", "{\"status\":\"201\"}."),
            ("no variables", "no variables"),
        ] {
            check(format, ok, 201, expected);
        }
    }

    #[test]
    fn gateway_answers_carry_their_error() {
        let f = "$context.status $context.routeKey [$context.error.message] $context.error.messageString $context.error.responseType $context.integrationStatus";
        check(f, |_| {}, 404, "404 - [Not Found] \"Not Found\" RESOURCE_NOT_FOUND -");
        check(f, |p| p.route("GET /x"), 429, "429 GET /x [Too Many Requests] \"Too Many Requests\" THROTTLED -");
        check(
            f,
            |p| p.route("GET /x"),
            500,
            "500 GET /x [Internal Server Error] \"Internal Server Error\" API_CONFIGURATION_ERROR -",
        );
        check(f, |_| {}, 413, "413 - [Request Entity Too Large] \"Request Entity Too Large\" REQUEST_TOO_LARGE -");
        check(f, |_| {}, 204, "204 - [-] - - -");
        let throttled = |p: &mut Pending| {
            p.route("GET /x");
            p.integration(Duration::ZERO, Some(429), &Arc::from("r"));
            p.integration_error(|| "Rate Exceeded.".into());
        };
        check(
            f,
            throttled,
            500,
            "500 GET /x [Internal Server Error] \"Internal Server Error\" INTEGRATION_FAILURE 429",
        );
        check("$context.integrationErrorMessage", throttled, 500, "Rate Exceeded.");
        let timed_out = |p: &mut Pending| p.integration(Duration::from_millis(50), None, &Arc::from("r"));
        check(f, timed_out, 503, "503 - [Service Unavailable] \"Service Unavailable\" INTEGRATION_TIMEOUT -");
        check(
            f,
            |p| p.integration(Duration::ZERO, Some(200), &Arc::from("r")),
            502,
            "502 - [Internal Server Error] \"Internal Server Error\" INTEGRATION_FAILURE 200",
        );
    }

    #[test]
    fn integration_error_messages() {
        let arn =
            FunctionArn::from_integration_uri("arn:aws:lambda:us-east-1:111122223333:function:f:live").expect("arn");
        assert_eq!(
            function_not_found(&arn),
            "Function not found: arn:aws:lambda:us-east-1:111122223333:function:f:live"
        );
        assert_eq!(function_error(br#"{"errorType":"TypeError","errorMessage":"bad","trace":[]}"#), "TypeError: bad");
        assert_eq!(function_error(br#"{"errorMessage":"only"}"#), "only");
        assert_eq!(function_error(b"not json"), "not json");
    }

    #[test]
    fn off_means_nothing_recorded() {
        let mut p = Pending::default();
        p.stage(None);
        p.route("GET /x");
        p.integration(Duration::ZERO, Some(200), &Arc::from("r"));
        p.integration_error(|| unreachable!("not called when the stage keeps no access log"));
        p.integration_response(200);
        assert!(!p.is_on() && p.route_key.is_none() && p.integration.request_id.is_none());
    }

    #[test]
    fn settings_without_a_log_group_keep_no_log() {
        let mut s = stage("$context.requestId");
        assert_eq!(StageLog::for_stage("111122223333", &s).map(|l| l.stream), Some("a1b2c3d4e5/prod".to_string()));
        s.access_log_settings = Some(AccessLogSettings { destination_arn: Some(ARN.into()), format: None });
        assert!(StageLog::for_stage("111122223333", &s).is_none());
        s.access_log_settings = None;
        assert!(StageLog::for_stage("111122223333", &s).is_none());
    }

    /// One `append`: scope, group, stream, events.
    type Appended = (Scope, String, String, Vec<LogEvent>);

    #[derive(Debug, Default)]
    struct Collect(Mutex<Vec<Appended>>);

    impl LogSink for Collect {
        fn append(&self, scope: &Scope, group: &str, stream: &str, events: Vec<LogEvent>) {
            self.0.lock().expect("lock").push((scope.clone(), group.into(), stream.into(), events));
        }
    }

    #[derive(Debug, Default)]
    struct Groups(Mutex<HashSet<String>>);

    impl LogGroups for Groups {
        fn exists(&self, _scope: &Scope, group: &str) -> bool {
            self.0.lock().expect("lock").contains(group)
        }
    }

    #[test]
    fn lines_reach_existing_groups_only() {
        let sink = Arc::new(Collect::default());
        let groups = Arc::new(Groups::default());
        let writer = AccessLogWriter::start(sink.clone(), groups.clone()).expect("writer thread");
        let log =
            Arc::new(StageLog::for_stage("111122223333", &stage("$context.requestId $context.status")).expect("log"));
        let send = |status: u16| {
            let mut p = Pending::default();
            p.stage(Some(&log));
            p.finish(&writer, &request(), status, Some(0));
        };
        // No group yet: dropped, as AWS drops them.
        send(200);
        assert!(writer.sync(Duration::from_secs(5)));
        assert!(sink.0.lock().expect("lock").is_empty());
        groups.0.lock().expect("lock").insert("access".into());
        send(200);
        send(404);
        assert!(writer.sync(Duration::from_secs(5)));
        let got = sink.0.lock().expect("lock");
        let lines: Vec<&str> =
            got.iter().flat_map(|(_, _, _, events)| events.iter().map(|e| e.message.as_str())).collect();
        assert_eq!(lines, ["JYxQ8gHAoAMEbkQ= 200", "JYxQ8gHAoAMEbkQ= 404"]);
        let (scope, group, stream, events) = &got[0];
        assert_eq!(
            (scope.region.as_str(), group.as_str(), stream.as_str()),
            ("us-east-1", "access", "a1b2c3d4e5/prod")
        );
        assert_eq!(events[0].timestamp_ms, 1_795_549_468_123);
        assert_eq!(writer.dropped(), 0);
    }
}

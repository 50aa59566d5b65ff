//! CloudWatch Logs (`POST /`, `X-Amz-Target: Logs_20140328.<Operation>`, JSON 1.1): the
//! operations `aws logs describe-log-groups`, `describe-log-streams`, `get-log-events`,
//! `filter-log-events` and CLI v2's `logs tail [--follow]` use, plus group management
//! and retention.
//!
//! One `parse` turns the target and body into a typed [`Action`]; `execute` runs it
//! against the [`LogStore`] (on a blocking thread: SQLite) and builds the answer. The
//! pagination tokens are this module's: GetLogEvents' `f/…` (forward) and `b/…`
//! (backward) hold the position of an event (56 digits: timestamp, then arrival order),
//! and return unchanged at the end of the stream, as AWS's do; the DescribeLogStreams and
//! DescribeLogGroups tokens hold the last item of the page.
//!
//! This module is also the ingestion side: [`sink`] adapts the store to the runtime's
//! [`LogSink`], as Lambda's platform sends function output to CloudWatch Logs.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use portico_model::Scope;
use portico_runtime::{LogEvent, LogSink};
use portico_store::logs::{
    Anchor, EventKey, EventRange, FilterPattern, GroupInfo, Lookup, NewEvent, Page, StreamCursor, StreamInfo,
    StreamOrder, StreamQuery, StreamSelect,
};
use portico_store::LogStore;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{AwsError, Call, Control, Result, Service};

/// `X-Amz-Target` prefix of every operation.
pub const TARGET_PREFIX: &str = "Logs_20140328.";
/// Most bytes of events in one answer (CloudWatch's 1 MB).
const MAX_PAGE_BYTES: usize = 1_048_576;
/// How long a query waits for appends made before it to be written.
const SYNC_WAIT: Duration = Duration::from_secs(2);
/// The values `retentionInDays` may take (the service model's `Days`).
const RETENTION_DAYS: [u32; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
const GROUP_NAME_PATTERN: &str = r"[\.\-_/#A-Za-z0-9]+";
const STREAM_NAME_PATTERN: &str = "[^:*]*";
const GROUP_CLASSES: [&str; 4] = ["STANDARD", "INFREQUENT_ACCESS", "DELIVERY", "ESSENTIALS"];
/// FilterLogEvents refuses `startFromHead: false` before this time (2024-01-01, ms).
const NEWEST_FIRST_SINCE_MS: i64 = 1_704_067_200_000;

/// The runtime's [`LogSink`] over the store.
#[derive(Debug)]
struct StoreSink(Arc<LogStore>);

impl LogSink for StoreSink {
    fn append(&self, scope: &Scope, group: &str, stream: &str, events: Vec<LogEvent>) {
        let events =
            events.into_iter().map(|e| NewEvent { timestamp_ms: e.timestamp_ms, message: e.message }).collect();
        self.0.append(scope, group, stream, events);
    }
}

/// Where the runtime sends function logs: into `store`.
pub fn sink(store: Arc<LogStore>) -> Arc<dyn LogSink> {
    Arc::new(StoreSink(store))
}

// --- errors: every CloudWatch Logs client error is a 400 ------------------------------------

fn error(code: &'static str, message: impl Into<String>) -> AwsError {
    AwsError { status: StatusCode::BAD_REQUEST, code, message: message.into(), fault: "User", reason: None }
}

fn invalid(message: impl Into<String>) -> AwsError {
    error("InvalidParameterException", message)
}

fn no_group() -> AwsError {
    error("ResourceNotFoundException", "The specified log group does not exist.")
}

fn no_stream() -> AwsError {
    error("ResourceNotFoundException", "The specified log stream does not exist.")
}

fn bad_token() -> AwsError {
    invalid("The specified nextToken is invalid.")
}

fn unavailable(message: impl Into<String>) -> AwsError {
    AwsError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "ServiceUnavailableException",
        message: message.into(),
        fault: "Service",
        reason: None,
    }
}

fn store_error(e: portico_store::Error) -> AwsError {
    unavailable(format!("log store: {e}"))
}

/// A name pattern as the model writes it, and the per-character test it stands for.
type NamePattern<'a> = (&'a str, fn(char) -> bool);

/// AWS's framework validation: every violated constraint, in one message.
#[derive(Debug, Default)]
struct Checks(Vec<String>);

impl Checks {
    fn fail(&mut self, value: &str, field: &str, constraint: &str) {
        self.0.push(format!("Value {value} at '{field}' failed to satisfy constraint: Member must {constraint}"));
    }

    fn required<T>(&mut self, field: &str, value: &Option<T>) {
        if value.is_none() {
            self.fail("null", field, "not be null");
        }
    }

    fn string(&mut self, field: &str, value: Option<&str>, min: usize, max: usize, pattern: Option<NamePattern<'_>>) {
        let Some(v) = value else { return };
        let shown = format!("'{v}'");
        if let Some((text, ok)) = pattern {
            if v.is_empty() && min > 0 || !v.chars().all(ok) {
                self.fail(&shown, field, &format!("satisfy regular expression pattern: {text}"));
            }
        }
        let len = v.chars().count();
        if len < min {
            self.fail(&shown, field, &format!("have length greater than or equal to {min}"));
        }
        if len > max {
            self.fail(&shown, field, &format!("have length less than or equal to {max}"));
        }
    }

    fn group_name(&mut self, field: &str, value: Option<&str>) {
        self.string(field, value, 1, 512, Some((GROUP_NAME_PATTERN, group_name_char)));
    }

    fn stream_name(&mut self, field: &str, value: Option<&str>) {
        self.string(field, value, 1, 512, Some((STREAM_NAME_PATTERN, |c| c != ':' && c != '*')));
    }

    fn number(&mut self, field: &str, value: Option<i64>, min: i64, max: i64) {
        let Some(v) = value else { return };
        if v < min {
            self.fail(&format!("'{v}'"), field, &format!("have value greater than or equal to {min}"));
        }
        if v > max {
            self.fail(&format!("'{v}'"), field, &format!("have value less than or equal to {max}"));
        }
    }

    fn one_of(&mut self, field: &str, value: Option<&str>, allowed: &[&str]) {
        if let Some(v) = value.filter(|v| !allowed.contains(v)) {
            self.fail(&format!("'{v}'"), field, &format!("satisfy enum value set: [{}]", allowed.join(", ")));
        }
    }

    /// The violations found so far, as one error.
    fn done(&mut self) -> Result<()> {
        let found = std::mem::take(&mut self.0);
        match found.len() {
            0 => Ok(()),
            1 => Err(invalid(format!("1 validation error detected: {}", found[0]))),
            n => Err(invalid(format!("{n} validation errors detected: {}", found.join("; ")))),
        }
    }
}

fn group_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#')
}

// --- tokens ----------------------------------------------------------------------------

/// A GetLogEvents/FilterLogEvents position token: `f/` (events after) or `b/` (events
/// before) and 56 digits, the event's timestamp (20) and arrival order (36).
fn event_token(forward: bool, key: EventKey) -> String {
    let ts = u64::try_from(key.timestamp_ms).unwrap_or(0);
    let seq = u64::try_from(key.seq).unwrap_or(0);
    format!("{}/{ts:020}{seq:036}", if forward { 'f' } else { 'b' })
}

fn parse_event_token(token: &str) -> Result<(bool, EventKey)> {
    let (dir, digits) = token.split_once('/').ok_or_else(bad_token)?;
    let forward = match dir {
        "f" => true,
        "b" => false,
        _ => return Err(bad_token()),
    };
    if digits.len() != 56 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_token());
    }
    let ts = digits[..20].parse::<i64>().map_err(|_| bad_token())?;
    let seq = digits[20..].parse::<u128>().ok().and_then(|s| i64::try_from(s).ok()).ok_or_else(bad_token)?;
    Ok((forward, EventKey { timestamp_ms: ts, seq }))
}

/// FilterLogEvents' `eventId`: the event's position, stable across calls (CLI v2's
/// `logs tail --follow` de-duplicates by it).
fn event_id(key: EventKey) -> String {
    event_token(true, key)[2..].to_string()
}

fn encode_token(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode_token<T: DeserializeOwned>(token: &str) -> Result<T> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad_token())?;
    serde_json::from_slice(&bytes).map_err(|_| bad_token())
}

// --- requests --------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogGroups {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    log_group_identifiers: Option<Vec<String>>,
    log_group_class: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogStreams {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetLogEvents {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterLogEvents {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateLogGroup {
    log_group_name: Option<String>,
    log_group_class: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupOnly {
    log_group_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutRetentionPolicy {
    log_group_name: Option<String>,
    retention_in_days: Option<i64>,
}

/// One CloudWatch Logs operation, parsed and validated.
#[derive(Debug)]
enum Action {
    /// Lists groups by name; legal always.
    DescribeLogGroups(DescribeLogGroups),
    /// Lists a group's streams; the group must exist.
    DescribeLogStreams { group: String, input: DescribeLogStreams },
    /// Reads a stream; group and stream must exist.
    GetLogEvents { group: String, stream: String, input: GetLogEvents },
    /// Searches a group; the group must exist.
    FilterLogEvents { group: String, streams: StreamSelect, pattern: FilterPattern, input: FilterLogEvents },
    /// Creates a group; the name must be free.
    CreateLogGroup { group: String, class: String },
    /// Deletes a group and its events; the group must exist.
    DeleteLogGroup { group: String },
    /// Sets (days) or removes (`None`) a group's retention; the group must exist.
    SetRetention { group: String, days: Option<u32> },
}

fn body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    // The control plane's one parser: its nesting limit holds for Logs too.
    crate::json::parse(Service::Logs, bytes)
}

/// The group a request names by `logGroupName` or `logGroupIdentifier` (a name or an
/// ARN), exactly one of them.
fn group_of(scope: &Scope, name: Option<String>, identifier: Option<String>, checks: &mut Checks) -> Result<String> {
    checks.group_name("logGroupName", name.as_deref());
    checks.string("logGroupIdentifier", identifier.as_deref(), 1, 2048, None);
    match (name, identifier) {
        (Some(n), None) => Ok(n),
        (None, Some(id)) => match id.strip_prefix("arn:") {
            None => Ok(id),
            Some(_) => group_from_arn(scope, &id).ok_or_else(no_group),
        },
        _ => Err(invalid("You must include either logGroupIdentifier or logGroupName, but not both.")),
    }
}

/// `arn:aws:logs:{region}:{account}:log-group:{name}[:*]` in the caller's scope.
fn group_from_arn(scope: &Scope, arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, service, region, account, rest) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if service != "logs" || region != scope.region || account != scope.account_id {
        return None;
    }
    let name = rest.strip_prefix("log-group:")?;
    Some(name.strip_suffix(":*").unwrap_or(name).to_string())
}

fn parse(scope: &Scope, operation: &str, bytes: &[u8]) -> Result<Action> {
    let mut checks = Checks::default();
    let action = match operation {
        "DescribeLogGroups" => {
            let input: DescribeLogGroups = body(bytes)?;
            checks.group_name("logGroupNamePrefix", input.log_group_name_prefix.as_deref());
            checks.string(
                "logGroupNamePattern",
                input.log_group_name_pattern.as_deref(),
                0,
                512,
                Some((r"[\.\-_/#A-Za-z0-9]*", group_name_char)),
            );
            checks.number("limit", input.limit, 1, 50);
            checks.one_of("logGroupClass", input.log_group_class.as_deref(), &GROUP_CLASSES);
            if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
                return Err(invalid("LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters."));
            }
            Action::DescribeLogGroups(input)
        }
        "DescribeLogStreams" => {
            let mut input: DescribeLogStreams = body(bytes)?;
            let group = group_of(scope, input.log_group_name.take(), input.log_group_identifier.take(), &mut checks)?;
            checks.stream_name("logStreamNamePrefix", input.log_stream_name_prefix.as_deref());
            checks.one_of("orderBy", input.order_by.as_deref(), &["LogStreamName", "LastEventTime"]);
            checks.number("limit", input.limit, 1, 50);
            checks.done()?;
            if input.order_by.as_deref() == Some("LastEventTime") && input.log_stream_name_prefix.is_some() {
                return Err(invalid("Cannot order by LastEventTime with a logStreamNamePrefix."));
            }
            Action::DescribeLogStreams { group, input }
        }
        "GetLogEvents" => {
            let mut input: GetLogEvents = body(bytes)?;
            let group = group_of(scope, input.log_group_name.take(), input.log_group_identifier.take(), &mut checks)?;
            checks.required("logStreamName", &input.log_stream_name);
            checks.stream_name("logStreamName", input.log_stream_name.as_deref());
            checks.number("startTime", input.start_time, 0, i64::MAX);
            checks.number("endTime", input.end_time, 0, i64::MAX);
            checks.number("limit", input.limit, 1, 10_000);
            checks.done()?;
            let stream = input.log_stream_name.take().unwrap_or_default();
            Action::GetLogEvents { group, stream, input }
        }
        "FilterLogEvents" => {
            let mut input: FilterLogEvents = body(bytes)?;
            let group = group_of(scope, input.log_group_name.take(), input.log_group_identifier.take(), &mut checks)?;
            if let Some(names) = &input.log_stream_names {
                if names.is_empty() || names.len() > 100 {
                    checks.fail("'[...]'", "logStreamNames", "have length between 1 and 100");
                }
                for n in names {
                    checks.stream_name("logStreamNames.member", Some(n));
                }
            }
            checks.stream_name("logStreamNamePrefix", input.log_stream_name_prefix.as_deref());
            checks.string("filterPattern", input.filter_pattern.as_deref(), 0, 1024, None);
            checks.number("startTime", input.start_time, 0, i64::MAX);
            checks.number("endTime", input.end_time, 0, i64::MAX);
            checks.number("limit", input.limit, 1, 10_000);
            checks.done()?;
            let streams = match (input.log_stream_names.take(), input.log_stream_name_prefix.take()) {
                (Some(_), Some(_)) => {
                    return Err(invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters."))
                }
                (Some(names), None) => StreamSelect::Names(names),
                (None, Some(prefix)) => StreamSelect::Prefix(prefix),
                (None, None) => StreamSelect::All,
            };
            if input.start_from_head == Some(false)
                && input.next_token.is_none()
                && input.start_time.is_some_and(|t| t < NEWEST_FIRST_SINCE_MS)
            {
                return Err(invalid(
                    "startFromHead set to false is supported only when startTime is on or after Jan 1, 2024 00:00:00 UTC.",
                ));
            }
            let pattern = FilterPattern::parse(input.filter_pattern.as_deref().unwrap_or(""))
                .map_err(|e| invalid(e.to_string()))?;
            Action::FilterLogEvents { group, streams, pattern, input }
        }
        "CreateLogGroup" => {
            let input: CreateLogGroup = body(bytes)?;
            checks.required("logGroupName", &input.log_group_name);
            checks.group_name("logGroupName", input.log_group_name.as_deref());
            checks.one_of("logGroupClass", input.log_group_class.as_deref(), &GROUP_CLASSES);
            checks.done()?;
            let class = input.log_group_class.unwrap_or_else(|| "STANDARD".into());
            Action::CreateLogGroup { group: input.log_group_name.unwrap_or_default(), class }
        }
        "DeleteLogGroup" | "DeleteRetentionPolicy" => {
            let input: GroupOnly = body(bytes)?;
            checks.required("logGroupName", &input.log_group_name);
            checks.group_name("logGroupName", input.log_group_name.as_deref());
            checks.done()?;
            let group = input.log_group_name.unwrap_or_default();
            if operation == "DeleteLogGroup" {
                Action::DeleteLogGroup { group }
            } else {
                Action::SetRetention { group, days: None }
            }
        }
        "PutRetentionPolicy" => {
            let input: PutRetentionPolicy = body(bytes)?;
            checks.required("logGroupName", &input.log_group_name);
            checks.group_name("logGroupName", input.log_group_name.as_deref());
            checks.required("retentionInDays", &input.retention_in_days);
            let days =
                input.retention_in_days.and_then(|d| u32::try_from(d).ok()).filter(|d| RETENTION_DAYS.contains(d));
            if let (Some(d), None) = (input.retention_in_days, days) {
                let allowed: Vec<String> = RETENTION_DAYS.iter().map(u32::to_string).collect();
                checks.fail(
                    &format!("'{d}'"),
                    "retentionInDays",
                    &format!("satisfy enum value set: [{}]", allowed.join(", ")),
                );
            }
            checks.done()?;
            Action::SetRetention { group: input.log_group_name.unwrap_or_default(), days }
        }
        other => return Err(error("UnknownOperationException", format!("Unknown operation {other}"))),
    };
    checks.done()?;
    Ok(action)
}

// --- execution -------------------------------------------------------------------------

fn group_json(scope: &Scope, g: &GroupInfo, brief: bool) -> Value {
    let arn = format!("arn:aws:logs:{}:{}:log-group:{}", scope.region, scope.account_id, g.name);
    if brief {
        // With logGroupNamePattern, AWS answers only these three members.
        return json!({ "logGroupName": g.name, "creationTime": g.created_ms, "arn": format!("{arn}:*") });
    }
    let mut doc = json!({
        "logGroupName": g.name,
        "creationTime": g.created_ms,
        "metricFilterCount": 0,
        "arn": format!("{arn}:*"),
        "storedBytes": g.stored_bytes,
        "logGroupClass": g.class,
        "logGroupArn": arn,
    });
    if let Some(days) = g.retention_days {
        doc["retentionInDays"] = json!(days);
    }
    doc
}

fn stream_json(scope: &Scope, group: &str, s: &StreamInfo) -> Value {
    let mut doc = json!({
        "logStreamName": s.name,
        "creationTime": s.created_ms,
        "arn": format!("arn:aws:logs:{}:{}:log-group:{group}:log-stream:{}", scope.region, scope.account_id, s.name),
        // AWS reports 0 for streams since 2019.
        "storedBytes": 0,
    });
    for (member, value) in [
        ("firstEventTimestamp", s.first_event_ms),
        ("lastEventTimestamp", s.last_event_ms),
        ("lastIngestionTime", s.last_ingestion_ms),
    ] {
        if let Some(v) = value {
            doc[member] = json!(v);
        }
    }
    doc
}

fn limit(value: Option<i64>, default: usize) -> usize {
    value.and_then(|v| usize::try_from(v).ok()).unwrap_or(default)
}

fn execute(store: &LogStore, scope: &Scope, action: Action) -> Result<Option<Value>> {
    let found = |l: Lookup<Page>| match l {
        Lookup::Found(p) => Ok(p),
        Lookup::NoGroup => Err(no_group()),
        Lookup::NoStream => Err(no_stream()),
    };
    match action {
        Action::DescribeLogGroups(input) => {
            store.sync(SYNC_WAIT);
            let page = limit(input.limit, 50);
            let after: Option<String> = input.next_token.as_deref().map(decode_token).transpose()?;
            let brief = input.log_group_name_pattern.is_some();
            let mut groups = match &input.log_group_identifiers {
                Some(ids) => {
                    let mut v = Vec::new();
                    for id in ids {
                        let name = if id.starts_with("arn:") { group_from_arn(scope, id) } else { Some(id.clone()) };
                        if let Some(g) =
                            name.map(|n| store.group(scope, &n)).transpose().map_err(store_error)?.flatten()
                        {
                            v.push(g);
                        }
                    }
                    v.sort_by(|a, b| a.name.cmp(&b.name));
                    v.retain(|g| after.as_ref().is_none_or(|a| g.name > *a));
                    v.truncate(page.saturating_add(1));
                    v
                }
                None => store
                    .groups(
                        scope,
                        input.log_group_name_prefix.as_deref(),
                        input.log_group_name_pattern.as_deref(),
                        after.as_deref(),
                        page.saturating_add(1),
                    )
                    .map_err(store_error)?,
            };
            let next = if groups.len() > page {
                groups.truncate(page);
                groups.last().map(|g| encode_token(&json!(g.name)))
            } else {
                None
            };
            // The class filter applies after paging: a page may come back short.
            if let Some(class) = &input.log_group_class {
                let wanted: &[&str] = match class.as_str() {
                    "INFREQUENT_ACCESS" | "ESSENTIALS" => &["INFREQUENT_ACCESS", "ESSENTIALS"],
                    other => &[other][..],
                };
                groups.retain(|g| wanted.contains(&g.class.as_str()));
            }
            let mut doc =
                json!({ "logGroups": groups.iter().map(|g| group_json(scope, g, brief)).collect::<Vec<_>>() });
            if let Some(t) = next {
                doc["nextToken"] = json!(t);
            }
            Ok(Some(doc))
        }
        Action::DescribeLogStreams { group, input } => {
            store.sync(SYNC_WAIT);
            let page = limit(input.limit, 50);
            let order = match input.order_by.as_deref() {
                Some("LastEventTime") => StreamOrder::LastEventTime,
                _ => StreamOrder::Name,
            };
            let after = input
                .next_token
                .as_deref()
                .map(decode_token::<(i64, String)>)
                .transpose()?
                .map(|(last_event_ms, name)| StreamCursor { last_event_ms, name });
            let query = StreamQuery {
                prefix: input.log_stream_name_prefix.as_deref(),
                order,
                descending: input.descending.unwrap_or(false),
                after: after.as_ref(),
                limit: page.saturating_add(1),
            };
            let streams = store.streams(scope, &group, query).map_err(store_error)?;
            let Lookup::Found(mut streams) = streams else { return Err(no_group()) };
            let next = if streams.len() > page {
                streams.truncate(page);
                streams.last().map(|s| encode_token(&json!([s.last_event_ms.unwrap_or(0), s.name])))
            } else {
                None
            };
            let mut doc =
                json!({ "logStreams": streams.iter().map(|s| stream_json(scope, &group, s)).collect::<Vec<_>>() });
            if let Some(t) = next {
                doc["nextToken"] = json!(t);
            }
            Ok(Some(doc))
        }
        Action::GetLogEvents { group, stream, input } => {
            let token = input.next_token.as_deref().map(parse_event_token).transpose()?;
            let anchor = match token {
                Some((true, k)) => Anchor::After(k),
                Some((false, k)) => Anchor::Before(k),
                None if input.start_from_head == Some(true) => Anchor::Head,
                None => Anchor::Tail,
            };
            let range = EventRange {
                start_ms: input.start_time,
                end_ms: input.end_time,
                limit: limit(input.limit, 10_000),
                max_bytes: MAX_PAGE_BYTES,
            };
            store.sync(SYNC_WAIT);
            let page = found(store.stream_events(scope, &group, &stream, anchor, range).map_err(store_error)?)?;
            let (forward, backward) = match (page.events.first(), page.events.last(), token) {
                (Some(first), Some(last), _) => (event_token(true, last.key), event_token(false, first.key)),
                // Nothing there: the same position both ways, and the token passed in
                // comes back unchanged (the end of the stream).
                (_, _, Some((true, k))) => {
                    (event_token(true, k), event_token(false, EventKey { seq: k.seq.saturating_add(1), ..k }))
                }
                (_, _, Some((false, k))) => {
                    (event_token(true, EventKey { seq: k.seq.saturating_sub(1), ..k }), event_token(false, k))
                }
                (_, _, None) => (
                    event_token(true, EventKey { timestamp_ms: 0, seq: 0 }),
                    event_token(false, EventKey { timestamp_ms: i64::MAX, seq: i64::MAX }),
                ),
            };
            let events: Vec<Value> = page
                .events
                .iter()
                .map(|e| json!({ "timestamp": e.key.timestamp_ms, "message": e.message, "ingestionTime": e.ingestion_ms }))
                .collect();
            Ok(Some(json!({ "events": events, "nextForwardToken": forward, "nextBackwardToken": backward })))
        }
        Action::FilterLogEvents { group, streams, pattern, input } => {
            let token = input.next_token.as_deref().map(parse_event_token).transpose()?;
            let forward = token.map_or(input.start_from_head != Some(false), |(f, _)| f);
            let anchor = match (token, forward) {
                (Some((_, k)), true) => Anchor::After(k),
                (Some((_, k)), false) => Anchor::Before(k),
                (None, true) => Anchor::Head,
                (None, false) => Anchor::Tail,
            };
            let range = EventRange {
                start_ms: input.start_time,
                // FilterLogEvents includes events at endTime.
                end_ms: input.end_time.map(|t| t.saturating_add(1)),
                limit: limit(input.limit, 10_000),
                max_bytes: MAX_PAGE_BYTES,
            };
            store.sync(SYNC_WAIT);
            let page =
                found(store.filter_events(scope, &group, &streams, &pattern, anchor, range).map_err(store_error)?)?;
            let events: Vec<Value> = page
                .events
                .iter()
                .map(|e| {
                    json!({
                        "logStreamName": e.stream,
                        "timestamp": e.key.timestamp_ms,
                        "message": e.message,
                        "ingestionTime": e.ingestion_ms,
                        "eventId": event_id(e.key),
                    })
                })
                .collect();
            // AWS stopped reporting searched streams in 2020: the list is always empty.
            let mut doc = json!({ "events": events, "searchedLogStreams": [] });
            if let (true, Some(last)) = (page.more, page.events.last()) {
                doc["nextToken"] = json!(event_token(forward, last.key));
            }
            Ok(Some(doc))
        }
        Action::CreateLogGroup { group, class } => {
            if !store.create_group(scope, &group, &class).map_err(store_error)? {
                return Err(error("ResourceAlreadyExistsException", "The specified log group already exists"));
            }
            Ok(None)
        }
        Action::DeleteLogGroup { group } => {
            store.sync(SYNC_WAIT);
            if !store.delete_group(scope, &group).map_err(store_error)? {
                return Err(no_group());
            }
            Ok(None)
        }
        Action::SetRetention { group, days } => {
            if !store.set_retention(scope, &group, days).map_err(store_error)? {
                return Err(no_group());
            }
            Ok(None)
        }
    }
}

/// Handles one CloudWatch Logs request.
pub(crate) async fn handle(c: &Control, call: &Call) -> Result<Response<Full<Bytes>>> {
    let operation = call.header("x-amz-target").and_then(|t| t.strip_prefix(TARGET_PREFIX)).unwrap_or("");
    let action = parse(&call.scope, operation, &call.body)?;
    let store = c.cfg.logs.clone();
    let scope = call.scope.clone();
    let doc = tokio::task::spawn_blocking(move || execute(&store, &scope, action))
        .await
        .map_err(|e| unavailable(format!("log query failed: {e}")))??;
    // Operations without output answer an empty body.
    let body = doc.map_or_else(Bytes::new, |d| Bytes::from(d.to_string()));
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope { account_id: "111122223333".into(), region: "us-east-1".into() }
    }

    #[test]
    fn event_tokens_round_trip_and_refuse_garbage() {
        let key = EventKey { timestamp_ms: 1_764_000_000_123, seq: 42 };
        let f = event_token(true, key);
        assert_eq!(f.len(), 58);
        assert!(f.starts_with("f/00000001764000000123"));
        assert_eq!(parse_event_token(&f).expect("parse"), (true, key));
        assert_eq!(parse_event_token(&event_token(false, key)).expect("parse"), (false, key));
        assert_eq!(event_id(key).len(), 56);
        let max = EventKey { timestamp_ms: i64::MAX, seq: i64::MAX };
        assert_eq!(parse_event_token(&event_token(false, max)).expect("parse"), (false, max));
        for bad in ["", "f/", "x/0", "f/123", &format!("f/{}", "9".repeat(56)), &f.replace('f', "F")] {
            let e = parse_event_token(bad).expect_err(bad);
            assert_eq!(
                (e.code, e.message.as_str()),
                ("InvalidParameterException", "The specified nextToken is invalid.")
            );
        }
    }

    #[test]
    fn validation_errors_read_as_aws_writes_them() {
        let e = parse(&scope(), "CreateLogGroup", br#"{"logGroupName":"bad name!"}"#).expect_err("invalid");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "InvalidParameterException",
                r"1 validation error detected: Value 'bad name!' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+"
            )
        );
        let e = parse(&scope(), "DescribeLogGroups", br#"{"logGroupNamePrefix":"","limit":51}"#).expect_err("invalid");
        assert_eq!(
            e.message,
            r"3 validation errors detected: Value '' at 'logGroupNamePrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+; Value '' at 'logGroupNamePrefix' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '51' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 50"
        );
        let e =
            parse(&scope(), "PutRetentionPolicy", br#"{"logGroupName":"g","retentionInDays":2}"#).expect_err("days");
        assert!(e.message.contains("Value '2' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14,"), "{}", e.message);
        let e = parse(&scope(), "GetLogEvents", br#"{"logGroupName":"g"}"#).expect_err("stream");
        assert!(e
            .message
            .contains("Value null at 'logStreamName' failed to satisfy constraint: Member must not be null"));
        let e = parse(&scope(), "GetLogEvents", br#"{"logStreamName":"s"}"#).expect_err("group");
        assert_eq!(e.message, "You must include either logGroupIdentifier or logGroupName, but not both.");
        let e = parse(
            &scope(),
            "DescribeLogStreams",
            br#"{"logGroupName":"g","orderBy":"LastEventTime","logStreamNamePrefix":"a"}"#,
        )
        .expect_err("order");
        assert_eq!(e.message, "Cannot order by LastEventTime with a logStreamNamePrefix.");
        let e = parse(&scope(), "GetLogEvents", br#"{"logGroupName":7}"#).expect_err("type");
        assert_eq!(e.code, "SerializationException");
        // Nesting past the control plane's limit, even in a member no operation reads.
        let deep = format!(r#"{{"logGroupNamePrefix":"a","x":{}{}}}"#, "[".repeat(99), "]".repeat(99));
        let e = parse(&scope(), "DescribeLogGroups", deep.as_bytes()).expect_err("deep");
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "SerializationException"));
        let e = parse(&scope(), "PutLogEvents", b"{}").expect_err("unknown");
        assert_eq!(e.code, "UnknownOperationException");
        let e = parse(&scope(), "FilterLogEvents", br#"{"logGroupName":"g","filterPattern":"{ $.a = 1 }"}"#)
            .expect_err("json pattern");
        assert_eq!(e.code, "InvalidParameterException");
    }

    #[test]
    fn groups_are_named_by_name_or_arn_in_the_callers_scope() {
        let s = scope();
        assert_eq!(
            group_from_arn(&s, "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/f:*"),
            Some("/aws/lambda/f".into())
        );
        assert_eq!(
            group_from_arn(&s, "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/f"),
            Some("/aws/lambda/f".into())
        );
        assert_eq!(group_from_arn(&s, "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/f"), None);
        assert_eq!(group_from_arn(&s, "arn:aws:lambda:us-east-1:111122223333:function:f"), None);
        let Action::GetLogEvents { group, stream, .. } = parse(
            &s,
            "GetLogEvents",
            br#"{"logGroupIdentifier":"arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/f:*","logStreamName":"s"}"#,
        )
        .expect("parse") else {
            panic!("wrong action")
        };
        assert_eq!((group.as_str(), stream.as_str()), ("/aws/lambda/f", "s"));
    }

    #[test]
    fn list_tokens_round_trip() {
        let t = encode_token(&json!([5, "2026/01/01/[$LATEST]abc"]));
        assert_eq!(decode_token::<(i64, String)>(&t).expect("decode"), (5, "2026/01/01/[$LATEST]abc".to_string()));
        assert_eq!(decode_token::<String>("!!").expect_err("bad").code, "InvalidParameterException");
    }
}

//! Function logs, kept the way CloudWatch Logs keeps them: log groups (per account and
//! region), log streams in a group, and events in a stream.
//!
//! The log store is its own SQLite file (`<state dir>/logs.db`, WAL) so log traffic
//! never contends with the catalog's writer. Appends come from the invocation path and
//! must never block it: [`LogStore::append`] hands the events to a bounded queue read by
//! one writer thread, which inserts whatever has accumulated in one transaction. When the
//! queue is full the events are dropped and counted ([`LogStore::dropped`]) with a
//! warning, rather than slowing a function down.
//!
//! Retention is bounded twice: a group's own `retentionInDays` (PutRetentionPolicy), and
//! a global cap ([`LogConfig`]) on age and on the total size of stored messages, enforced
//! by the writer thread every minute and at start-up.
//!
//! Queries serve the CloudWatch Logs API; the wire tokens are the control plane's, built
//! from the typed cursors ([`EventKey`], [`StreamCursor`]) returned here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portico_model::Scope;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::{Error, Result};

/// How often retention is enforced.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// Most append calls waiting for the writer.
const QUEUE_CALLS: usize = 16 * 1024;
/// Most message bytes waiting for the writer (bounds memory under a log flood).
const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Most events written in one transaction.
const BATCH_EVENTS: usize = 20_000;
/// How long the writer gathers appends into one transaction after the first arrives.
/// A commit costs far more than a row, so under load this turns thousands of small
/// transactions a second into a few dozen; readers do not wait for it (see [`LogStore::sync`]).
const LINGER: Duration = Duration::from_millis(25);

/// Most events one retention pass deletes (one transaction, a few milliseconds).
const RETENTION_PASS_EVENTS: usize = 2_000;
/// The pause between two retention passes while events past the bounds remain.
const RETENTION_PAUSE: Duration = Duration::from_millis(20);
/// Most free pages one retention pass gives back to the file system (4 MB).
const VACUUM_PAGES: u32 = 1_000;
/// Rows written between two yields of the CPU (about 0.1 ms of work).
const YIELD_EVERY: usize = 64;
/// CloudWatch counts 26 bytes of overhead per event towards a response's 1 MB.
pub const EVENT_OVERHEAD: usize = 26;
const DAY_MS: i64 = 86_400_000;

/// Bounds of the log store, resolved once at start-up.
#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    /// Events older than this many days are deleted, whatever a group's own retention.
    pub retention_days: u32,
    /// When stored messages exceed this many bytes, the oldest events are deleted.
    pub max_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig { retention_days: 7, max_bytes: 1024 * 1024 * 1024 }
    }
}

/// One event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// When it happened (ms since the epoch).
    pub timestamp_ms: i64,
    /// The message, as CloudWatch shows it.
    pub message: String,
}

/// A log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// `logGroupName`.
    pub name: String,
    /// `creationTime` (ms).
    pub created_ms: i64,
    /// `retentionInDays`, when a retention policy is set.
    pub retention_days: Option<u32>,
    /// `storedBytes`: bytes of the messages kept.
    pub stored_bytes: u64,
    /// `logGroupClass`.
    pub class: String,
}

/// A log stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// `logStreamName`.
    pub name: String,
    /// `creationTime` (ms).
    pub created_ms: i64,
    /// `firstEventTimestamp`.
    pub first_event_ms: Option<i64>,
    /// `lastEventTimestamp`.
    pub last_event_ms: Option<i64>,
    /// `lastIngestionTime`.
    pub last_ingestion_ms: Option<i64>,
}

/// The position of an event: events are ordered by timestamp, then by arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    /// The event's timestamp (ms).
    pub timestamp_ms: i64,
    /// Arrival order, unique across the store and never reused.
    pub seq: i64,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Where it sits in the order of events.
    pub key: EventKey,
    /// The stream it belongs to.
    pub stream: String,
    /// When it was stored (ms).
    pub ingestion_ms: i64,
    /// The message.
    pub message: String,
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The events, in the order the query asked for.
    pub events: Vec<StoredEvent>,
    /// Whether more events follow in that direction (the page was cut by its limit or
    /// its size).
    pub more: bool,
}

/// Where a page of events starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The oldest events, oldest first.
    Head,
    /// The newest events (returned oldest first).
    Tail,
    /// Events after this position, oldest first.
    After(EventKey),
    /// Events before this position, nearest first (GetLogEvents returns them re-sorted
    /// oldest first; FilterLogEvents newest first).
    Before(EventKey),
}

/// Bounds of an event query.
#[derive(Debug, Clone, Copy)]
pub struct EventRange {
    /// Events at or after this time (ms).
    pub start_ms: Option<i64>,
    /// Events before this time (ms); GetLogEvents excludes it, FilterLogEvents includes
    /// it (the caller passes `endTime + 1` there).
    pub end_ms: Option<i64>,
    /// Most events returned.
    pub limit: usize,
    /// Most bytes of messages (plus [`EVENT_OVERHEAD`] each) returned; at least one
    /// event is returned when any matches.
    pub max_bytes: usize,
}

/// The outcome of a lookup in a group or stream that may not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// Found.
    Found(T),
    /// The log group does not exist.
    NoGroup,
    /// The log stream does not exist.
    NoStream,
}

/// How DescribeLogStreams orders streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOrder {
    /// By name.
    Name,
    /// By the time of the last event, then by name.
    LastEventTime,
}

/// The position after the last stream of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCursor {
    /// Last event time of that stream (for [`StreamOrder::LastEventTime`]).
    pub last_event_ms: i64,
    /// Its name.
    pub name: String,
}

/// A DescribeLogStreams page request.
#[derive(Debug, Clone, Copy)]
pub struct StreamQuery<'a> {
    /// Only streams whose name starts with this.
    pub prefix: Option<&'a str>,
    /// The order.
    pub order: StreamOrder,
    /// Reverse the order.
    pub descending: bool,
    /// The previous page's last stream.
    pub after: Option<&'a StreamCursor>,
    /// Most streams returned.
    pub limit: usize,
}

/// Which streams FilterLogEvents searches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSelect {
    /// Every stream of the group.
    All,
    /// Streams with these names.
    Names(Vec<String>),
    /// Streams whose name starts with this.
    Prefix(String),
}

/// A filter pattern in CloudWatch's text syntax: `ERROR` (term), `"a phrase"`,
/// `-term` (exclusion), `?term` (alternatives). Matching is case-sensitive and looks for
/// each term anywhere in the message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterPattern {
    /// Alternatives: the event matches when every term of one group is present. Empty:
    /// every event matches.
    any_of: Vec<Vec<String>>,
    /// Terms none of which may be present.
    none_of: Vec<String>,
}

/// Why a filter pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A quote is not closed.
    #[error("Invalid filter pattern: unterminated quoted term in {0:?}")]
    Unterminated(String),
    /// JSON, space-delimited and regex patterns are not implemented.
    #[error(
        "Portico matches text filter patterns (terms, \"phrases\", ?alternatives, -exclusions); JSON ({{...}}), space-delimited ([...]) and %regex% patterns are not supported"
    )]
    Unsupported,
}

impl FilterPattern {
    /// Parses a pattern (an empty one matches every event).
    pub fn parse(text: &str) -> std::result::Result<FilterPattern, PatternError> {
        let text = text.trim();
        if text.starts_with('{') || text.starts_with('[') || (text.len() > 1 && text.starts_with('%')) {
            return Err(PatternError::Unsupported);
        }
        let mut pattern = FilterPattern::default();
        let mut current: Vec<String> = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let mut op = None;
            if first == '?' || first == '-' {
                chars.next();
                match chars.peek() {
                    Some(c) if !c.is_whitespace() => op = Some(first),
                    // A lone `?` or `-` is a term of its own.
                    _ => {
                        current.push(first.to_string());
                        continue;
                    }
                }
            }
            let mut term = String::new();
            if chars.next_if_eq(&'"').is_some() {
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                term.push(escaped);
                            }
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => term.push(c),
                    }
                }
                if !closed {
                    return Err(PatternError::Unterminated(text.to_string()));
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    term.push(c);
                }
            }
            // `""` matches everything: it adds no condition.
            if term.is_empty() {
                continue;
            }
            match op {
                Some('-') => pattern.none_of.push(term),
                Some(_) => {
                    // Each `?` term starts an alternative; plain terms after it join it.
                    if !current.is_empty() {
                        pattern.any_of.push(std::mem::take(&mut current));
                    }
                    current.push(term);
                }
                None => current.push(term),
            }
        }
        if !current.is_empty() {
            pattern.any_of.push(current);
        }
        Ok(pattern)
    }

    /// Whether `message` matches (the same rule as the SQL form, for callers that hold
    /// events in memory).
    pub fn matches(&self, message: &str) -> bool {
        (self.any_of.is_empty() || self.any_of.iter().any(|g| g.iter().all(|t| message.contains(t.as_str()))))
            && !self.none_of.iter().any(|t| message.contains(t.as_str()))
    }

    /// The pattern as an SQL condition on `e.message`, its values appended to `args`.
    fn sql(&self, args: &mut Vec<Value>) -> String {
        let mut parts = Vec::new();
        if !self.any_of.is_empty() {
            let groups: Vec<String> = self
                .any_of
                .iter()
                .map(|g| {
                    let terms: Vec<&str> = g
                        .iter()
                        .map(|t| {
                            args.push(Value::Text(t.clone()));
                            "instr(e.message, ?) > 0"
                        })
                        .collect();
                    format!("({})", terms.join(" AND "))
                })
                .collect();
            parts.push(format!("({})", groups.join(" OR ")));
        }
        for t in &self.none_of {
            args.push(Value::Text(t.clone()));
            parts.push("instr(e.message, ?) = 0".to_string());
        }
        if parts.is_empty() {
            "1".to_string()
        } else {
            parts.join(" AND ")
        }
    }
}

/// One append call waiting for the writer.
#[derive(Debug)]
struct Append {
    seq: u64,
    account: String,
    region: String,
    group: String,
    stream: String,
    events: Vec<NewEvent>,
    bytes: usize,
}

/// State shared by appenders, the writer thread and readers.
#[derive(Debug, Default)]
struct Progress {
    /// Sequence number of the last append written (appends are numbered in queue order).
    written: Mutex<u64>,
    changed: Condvar,
    /// A reader waits: the writer ends its linger and writes what is queued.
    flush: std::sync::atomic::AtomicBool,
    /// The writer thread, unparked by a reader's flush.
    writer: std::sync::OnceLock<std::thread::Thread>,
}

/// The durable log store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct LogStore {
    /// Connection for queries and control-plane writes (the writer thread has its own).
    conn: Mutex<Connection>,
    /// Sender side of the writer's queue, and the last sequence number sent: one lock, so
    /// that queue order and numbering agree.
    queue: Mutex<(SyncSender<Append>, u64)>,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
    dropped: std::sync::atomic::AtomicU64,
    progress: Arc<Progress>,
    cfg: LogConfig,
}

/// The current time in ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn open_conn(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // Must precede the first table: lets deleted events give space back to the file.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // Logs trade the last transactions on power loss for cheaper commits; a committed
    // batch survives a crash of Portico itself.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log_groups (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    retention_days INTEGER,
    class TEXT NOT NULL DEFAULT 'STANDARD',
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account, region, name));
CREATE TABLE IF NOT EXISTS log_streams (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    first_event INTEGER,
    last_event INTEGER,
    last_ingestion INTEGER,
    UNIQUE (group_id, name));
CREATE TABLE IF NOT EXISTS log_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id INTEGER NOT NULL,
    stream_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    ingested INTEGER NOT NULL,
    message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS log_events_by_stream ON log_events (stream_id, ts, id);
CREATE INDEX IF NOT EXISTS log_events_by_group ON log_events (group_id, ts, id);
";

impl LogStore {
    /// Opens (creating when absent) `dir/logs.db` and starts its writer thread.
    pub fn open(dir: &Path, cfg: LogConfig) -> Result<Arc<LogStore>> {
        let (store, rx) = LogStore::open_unstarted(dir, cfg, QUEUE_CALLS)?;
        let writer = Writer {
            conn: open_conn(&dir.join("logs.db"))?,
            rx,
            queued_bytes: store.queued_bytes.clone(),
            progress: store.progress.clone(),
            cfg,
            shedding: false,
        };
        let thread = std::thread::Builder::new()
            .name("portico-logs".into())
            .spawn(move || writer.run())
            .map_err(|source| Error::Io { what: "starting the log writer".into(), source })?;
        let _ = store.progress.writer.set(thread.thread().clone());
        Ok(Arc::new(store))
    }

    fn open_unstarted(dir: &Path, cfg: LogConfig, capacity: usize) -> Result<(LogStore, Receiver<Append>)> {
        std::fs::create_dir_all(dir)
            .map_err(|source| Error::Io { what: format!("create {}", dir.display()), source })?;
        let conn = open_conn(&dir.join("logs.db"))?;
        conn.execute_batch(SCHEMA)?;
        let (tx, rx) = mpsc::sync_channel(capacity);
        let store = LogStore {
            conn: Mutex::new(conn),
            queue: Mutex::new((tx, 0)),
            queued_bytes: Arc::default(),
            dropped: Default::default(),
            progress: Arc::default(),
            cfg,
        };
        Ok((store, rx))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // SQLite rolls back a transaction interrupted by a panic: the lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `events` for `stream` of `group` (both created when absent). Never blocks:
    /// when the writer is too far behind the events are dropped and counted.
    pub fn append(&self, scope: &Scope, group: &str, stream: &str, events: Vec<NewEvent>) {
        use std::sync::atomic::Ordering;
        if events.is_empty() {
            return;
        }
        let bytes: usize = events.iter().map(|e| e.message.len()).sum();
        let count = events.len() as u64;
        if self.queued_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > QUEUE_BYTES {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.count_dropped(count);
            return;
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let (tx, last) = &mut *queue;
        let append = Append {
            seq: *last + 1,
            account: scope.account_id.clone(),
            region: scope.region.clone(),
            group: group.to_string(),
            stream: stream.to_string(),
            events,
            bytes,
        };
        match tx.try_send(append) {
            Ok(()) => *last += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                drop(queue);
                self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                self.count_dropped(count);
            }
        }
    }

    fn count_dropped(&self, count: u64) {
        let before = self.dropped.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        // Warn on the first drop and then at every power of ten, not on every line.
        let after = before + count;
        if before == 0 || after.ilog10() > before.ilog10() {
            tracing::warn!(dropped = after, "function log events dropped: the log writer is behind");
        }
    }

    /// Events dropped because the writer was behind, since start-up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until everything appended before this call is written, at most `timeout`.
    /// Returns whether it was. Queries call it so a caller reads its own invocation's logs.
    pub fn sync(&self, timeout: Duration) -> bool {
        let target = self.queue.lock().unwrap_or_else(|e| e.into_inner()).1;
        let deadline = Instant::now() + timeout;
        let mut written = self.progress.written.lock().unwrap_or_else(|e| e.into_inner());
        if *written < target {
            // Cuts the writer's linger short.
            self.progress.flush.store(true, std::sync::atomic::Ordering::Release);
            if let Some(writer) = self.progress.writer.get() {
                writer.unpark();
            }
        }
        while *written < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            written = self.progress.changed.wait_timeout(written, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    /// Creates a group. Returns false when it exists already.
    pub fn create_group(&self, scope: &Scope, name: &str, class: &str) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO log_groups (account, region, name, created, class) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![scope.account_id, scope.region, name, now_ms(), class],
        )?;
        Ok(n == 1)
    }

    /// Deletes a group with its streams and events. Returns false when it does not exist.
    pub fn delete_group(&self, scope: &Scope, name: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(id) = group_id(&tx, scope, name)? else { return Ok(false) };
        tx.execute("DELETE FROM log_events WHERE group_id = ?1", [id])?;
        tx.execute("DELETE FROM log_streams WHERE group_id = ?1", [id])?;
        tx.execute("DELETE FROM log_groups WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(true)
    }

    /// Sets (or with `None` removes) a group's retention. Returns false when the group
    /// does not exist.
    pub fn set_retention(&self, scope: &Scope, name: &str, days: Option<u32>) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE log_groups SET retention_days = ?4 WHERE account = ?1 AND region = ?2 AND name = ?3",
            params![scope.account_id, scope.region, name, days],
        )?;
        Ok(n == 1)
    }

    /// Groups whose name starts with `prefix` or contains `pattern`, by name, after
    /// `after`; at most `limit`.
    pub fn groups(
        &self,
        scope: &Scope,
        prefix: Option<&str>,
        pattern: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GroupInfo>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT name, created, retention_days, stored_bytes, class FROM log_groups
             WHERE account = ?1 AND region = ?2
               AND (?3 IS NULL OR substr(name, 1, length(?3)) = ?3)
               AND (?4 IS NULL OR instr(name, ?4) > 0)
               AND (?5 IS NULL OR name > ?5)
             ORDER BY name LIMIT ?6",
        )?;
        let rows =
            stmt.query_map(params![scope.account_id, scope.region, prefix, pattern, after, sql_limit(limit)], |r| {
                Ok(GroupInfo {
                    name: r.get(0)?,
                    created_ms: r.get(1)?,
                    retention_days: r.get(2)?,
                    stored_bytes: r.get::<_, i64>(3).map(|b| u64::try_from(b).unwrap_or(0))?,
                    class: r.get(4)?,
                })
            })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One group.
    pub fn group(&self, scope: &Scope, name: &str) -> Result<Option<GroupInfo>> {
        Ok(self.groups(scope, Some(name), None, None, usize::MAX)?.into_iter().find(|g| g.name == name))
    }

    /// A page of a group's streams. `after` is the cursor of the previous page's last
    /// stream.
    pub fn streams(&self, scope: &Scope, group: &str, q: StreamQuery<'_>) -> Result<Lookup<Vec<StreamInfo>>> {
        let conn = self.conn();
        let Some(gid) = group_id(&conn, scope, group)? else { return Ok(Lookup::NoGroup) };
        // `?3`/`?4` are the cursor: the previous page's last stream.
        let (cmp, dir) = match (q.order, q.descending) {
            (StreamOrder::Name, false) => ("name > ?4", "name"),
            (StreamOrder::Name, true) => ("name < ?4", "name DESC"),
            (StreamOrder::LastEventTime, false) => {
                ("(COALESCE(last_event, 0), name) > (?3, ?4)", "COALESCE(last_event, 0), name")
            }
            (StreamOrder::LastEventTime, true) => {
                ("(COALESCE(last_event, 0), name) < (?3, ?4)", "COALESCE(last_event, 0) DESC, name DESC")
            }
        };
        let sql = format!(
            "SELECT name, created, first_event, last_event, last_ingestion FROM log_streams
             WHERE group_id = ?1 AND (?2 IS NULL OR substr(name, 1, length(?2)) = ?2)
               AND (?4 IS NULL OR {cmp})
             ORDER BY {dir} LIMIT ?5"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                gid,
                q.prefix,
                q.after.map(|c| c.last_event_ms),
                q.after.map(|c| c.name.as_str()),
                sql_limit(q.limit)
            ],
            |r| {
                Ok(StreamInfo {
                    name: r.get(0)?,
                    created_ms: r.get(1)?,
                    first_event_ms: r.get(2)?,
                    last_event_ms: r.get(3)?,
                    last_ingestion_ms: r.get(4)?,
                })
            },
        )?;
        Ok(Lookup::Found(rows.collect::<rusqlite::Result<_>>()?))
    }

    /// A page of one stream's events (GetLogEvents), oldest first.
    pub fn stream_events(
        &self,
        scope: &Scope,
        group: &str,
        stream: &str,
        anchor: Anchor,
        range: EventRange,
    ) -> Result<Lookup<Page>> {
        let conn = self.conn();
        let Some(gid) = group_id(&conn, scope, group)? else { return Ok(Lookup::NoGroup) };
        let sid: Option<i64> = conn
            .query_row("SELECT id FROM log_streams WHERE group_id = ?1 AND name = ?2", params![gid, stream], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(sid) = sid else { return Ok(Lookup::NoStream) };
        let mut args = vec![Value::Integer(sid)];
        let mut page = query_events(&conn, "e.stream_id = ?", &mut args, anchor, range, stream)?;
        if matches!(anchor, Anchor::Tail | Anchor::Before(_)) {
            page.events.reverse();
        }
        Ok(Lookup::Found(page))
    }

    /// A page of a group's events matching `pattern` (FilterLogEvents), in the anchor's
    /// direction: oldest first, or newest first for [`Anchor::Tail`]/[`Anchor::Before`].
    pub fn filter_events(
        &self,
        scope: &Scope,
        group: &str,
        streams: &StreamSelect,
        pattern: &FilterPattern,
        anchor: Anchor,
        range: EventRange,
    ) -> Result<Lookup<Page>> {
        let conn = self.conn();
        let Some(gid) = group_id(&conn, scope, group)? else { return Ok(Lookup::NoGroup) };
        let mut args = vec![Value::Integer(gid)];
        let mut cond = "e.group_id = ?".to_string();
        match streams {
            StreamSelect::All => {}
            StreamSelect::Names(names) => {
                cond.push_str(" AND s.name IN (");
                cond.push_str(&vec!["?"; names.len()].join(", "));
                cond.push(')');
                args.extend(names.iter().map(|n| Value::Text(n.clone())));
            }
            StreamSelect::Prefix(p) => {
                cond.push_str(" AND substr(s.name, 1, length(?)) = ?");
                args.push(Value::Text(p.clone()));
                args.push(Value::Text(p.clone()));
            }
        }
        cond.push_str(" AND ");
        cond.push_str(&pattern.sql(&mut args));
        Ok(Lookup::Found(query_events(&conn, &cond, &mut args, anchor, range, "")?))
    }

    /// Applies the retention bounds now (the writer thread does this every minute).
    /// Returns the number of events deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64> {
        let (mut deleted, mut shedding) = (0, false);
        loop {
            let pass = enforce_retention(&mut self.conn(), &self.cfg, now_ms, RETENTION_PASS_EVENTS, &mut shedding)?;
            deleted += pass.deleted;
            if !pass.more {
                return Ok(deleted);
            }
        }
    }
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn group_id(conn: &Connection, scope: &Scope, name: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT id FROM log_groups WHERE account = ?1 AND region = ?2 AND name = ?3",
            params![scope.account_id, scope.region, name],
            |r| r.get(0),
        )
        .optional()?)
}

/// Runs an event query. `cond` filters `e` (events) joined with `s` (their streams);
/// `stream` names the stream when the condition pins one (saves the join's name).
fn query_events(
    conn: &Connection,
    cond: &str,
    args: &mut Vec<Value>,
    anchor: Anchor,
    range: EventRange,
    stream: &str,
) -> Result<Page> {
    let mut sql = format!(
        "SELECT e.ts, e.id, e.ingested, e.message, {} FROM log_events e JOIN log_streams s ON s.id = e.stream_id WHERE {cond}",
        if stream.is_empty() { "s.name" } else { "''" }
    );
    if let Some(start) = range.start_ms {
        sql.push_str(" AND e.ts >= ?");
        args.push(Value::Integer(start));
    }
    if let Some(end) = range.end_ms {
        sql.push_str(" AND e.ts < ?");
        args.push(Value::Integer(end));
    }
    let descending = match anchor {
        Anchor::Head => false,
        Anchor::Tail => true,
        Anchor::After(k) => {
            sql.push_str(" AND (e.ts, e.id) > (?, ?)");
            args.extend([Value::Integer(k.timestamp_ms), Value::Integer(k.seq)]);
            false
        }
        Anchor::Before(k) => {
            sql.push_str(" AND (e.ts, e.id) < (?, ?)");
            args.extend([Value::Integer(k.timestamp_ms), Value::Integer(k.seq)]);
            true
        }
    };
    sql.push_str(if descending { " ORDER BY e.ts DESC, e.id DESC LIMIT ?" } else { " ORDER BY e.ts, e.id LIMIT ?" });
    // One more than asked tells whether more follow.
    args.push(Value::Integer(sql_limit(range.limit.saturating_add(1))));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(r) = rows.next()? {
        let message: String = r.get(3)?;
        bytes += message.len() + EVENT_OVERHEAD;
        if out.len() == range.limit || (bytes > range.max_bytes && !out.is_empty()) {
            return Ok(Page { events: out, more: true });
        }
        let name: String = r.get(4)?;
        out.push(StoredEvent {
            key: EventKey { timestamp_ms: r.get(0)?, seq: r.get(1)? },
            stream: if stream.is_empty() { name } else { stream.to_string() },
            ingestion_ms: r.get(2)?,
            message,
        });
    }
    Ok(Page { events: out, more: false })
}

/// What one bounded pass of retention did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RetentionPass {
    /// Events deleted.
    deleted: u64,
    /// Whether events past the bounds remain (the pass stopped at its budget).
    more: bool,
}

/// Deletes at most `budget` events past their group's retention or the global bounds,
/// in one transaction. A store at its size cap sheds about a tenth of a gigabyte, a
/// million rows: in one transaction that held the writer for seconds while appends
/// queued up (and were dropped once the queue was full), so the writer calls this
/// between its append batches until `more` is false. `shedding` carries, from one pass
/// to the next, that the size cap was crossed and the oldest events go until the store
/// is 10 % below it.
fn enforce_retention(
    conn: &mut Connection,
    cfg: &LogConfig,
    now_ms: i64,
    budget: usize,
    shedding: &mut bool,
) -> Result<RetentionPass> {
    let tx = conn.transaction()?;
    let mut left = budget;
    let mut deleted = 0u64;
    let groups: Vec<(i64, Option<u32>)> = {
        let mut stmt = tx.prepare_cached("SELECT id, retention_days FROM log_groups")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (gid, days) in groups {
        if left == 0 {
            break;
        }
        let days = days.map_or(cfg.retention_days, |d| d.min(cfg.retention_days));
        let cutoff = now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
        let expired: Vec<(i64, i64)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, length(CAST(message AS BLOB)) FROM log_events WHERE group_id = ?1 AND ts < ?2 LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![gid, cutoff, sql_limit(left)], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if !expired.is_empty() {
            let bytes = delete_events(&tx, &expired)?;
            shrink_group(&tx, gid, bytes)?;
            deleted += expired.len() as u64;
            left -= expired.len();
        }
        if left > 0 {
            // A stream whose events have all expired goes too.
            tx.execute(
                "DELETE FROM log_streams WHERE group_id = ?1 AND COALESCE(last_event, created) < ?2
                   AND NOT EXISTS (SELECT 1 FROM log_events e WHERE e.stream_id = log_streams.id)",
                params![gid, cutoff],
            )?;
        }
    }
    // The budget ran out before every group was looked at: expired events may remain.
    let expired_left = left == 0;
    // The size cap: drop the oldest arrivals until 10 % below it.
    let max = i64::try_from(cfg.max_bytes).unwrap_or(i64::MAX);
    let mut total: i64 = tx.query_row("SELECT COALESCE(SUM(stored_bytes), 0) FROM log_groups", [], |r| r.get(0))?;
    let target = max - max / 10;
    *shedding |= total > max;
    if *shedding && left > 0 {
        let oldest: Vec<(i64, i64, i64)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, group_id, length(CAST(message AS BLOB)) FROM log_events ORDER BY id LIMIT ?1",
            )?;
            let rows = stmt.query_map([sql_limit(left)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut freed: HashMap<i64, i64> = HashMap::new();
        let mut last = None;
        for &(id, gid, len) in &oldest {
            if total <= target {
                break;
            }
            *freed.entry(gid).or_default() += len;
            total -= len;
            last = Some(id);
            deleted += 1;
        }
        if let Some(last) = last {
            tx.execute("DELETE FROM log_events WHERE id <= ?1", [last])?;
        }
        for (gid, bytes) in freed {
            shrink_group(&tx, gid, bytes)?;
        }
    }
    tx.commit()?;
    if deleted > 0 {
        // Give the freed pages back to the file system, a pass's worth at a time (a
        // no-op on files made before incremental vacuum was enabled).
        conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
    }
    *shedding &= total > target;
    Ok(RetentionPass { deleted, more: expired_left || *shedding })
}

/// Takes `bytes` of deleted messages off a group's stored size.
fn shrink_group(tx: &rusqlite::Transaction<'_>, gid: i64, bytes: i64) -> Result<()> {
    tx.prepare_cached("UPDATE log_groups SET stored_bytes = MAX(0, stored_bytes - ?2) WHERE id = ?1")?
        .execute(params![gid, bytes])?;
    Ok(())
}

/// Deletes events by id; returns their message bytes.
fn delete_events(tx: &rusqlite::Transaction<'_>, events: &[(i64, i64)]) -> Result<i64> {
    let mut delete = tx.prepare_cached("DELETE FROM log_events WHERE id = ?1")?;
    let mut bytes = 0i64;
    for &(id, len) in events {
        delete.execute([id])?;
        bytes += len;
    }
    Ok(bytes)
}

/// The writer thread: batches queued appends into transactions and enforces retention.
struct Writer {
    conn: Connection,
    rx: Receiver<Append>,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
    progress: Arc<Progress>,
    cfg: LogConfig,
    /// The size cap was crossed and retention passes continue down to 10 % below it.
    shedding: bool,
}

impl Writer {
    fn run(mut self) {
        // Writing logs is never urgent, and a commit is a burst of CPU: at the lowest
        // priority (nice 19, this thread only) it takes what the invocations leave
        // instead of delaying them, and still gets its share on a saturated machine
        // (unlike SCHED_IDLE, which could starve it and fill the queue).
        let _ = rustix::process::setpriority_process(None, 19);
        let mut next_maintenance = Instant::now() + self.maintain();
        loop {
            let wait = next_maintenance.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(first) => {
                    let (batch, closed) = self.gather(first);
                    self.write(batch);
                    if closed {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= next_maintenance {
                next_maintenance = Instant::now() + self.maintain();
            }
        }
    }

    /// One transaction's appends: `first` and what arrives within [`LINGER`] (cut short
    /// by a reader's flush), up to [`BATCH_EVENTS`]. Also says whether the queue has closed.
    /// The thread sleeps through the linger instead of waking for every append: a wake-up
    /// per invocation cost more than the rows.
    fn gather(&self, first: Append) -> (Vec<Append>, bool) {
        use std::sync::atomic::Ordering;
        let until = Instant::now() + LINGER;
        while !self.progress.flush.swap(false, Ordering::AcqRel) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::park_timeout(left);
        }
        let mut events = first.events.len();
        let mut batch = vec![first];
        while events < BATCH_EVENTS {
            match self.rx.try_recv() {
                Ok(a) => {
                    events += a.events.len();
                    batch.push(a);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return (batch, true),
            }
        }
        (batch, false)
    }

    /// One bounded retention pass; returns how long until the next one (soon while
    /// events past the bounds remain, so appends are written between passes).
    fn maintain(&mut self) -> Duration {
        match enforce_retention(&mut self.conn, &self.cfg, now_ms(), RETENTION_PASS_EVENTS, &mut self.shedding) {
            Ok(pass) => {
                if pass.deleted > 0 {
                    tracing::debug!(deleted = pass.deleted, more = pass.more, "log retention applied");
                }
                if pass.more {
                    return RETENTION_PAUSE;
                }
            }
            Err(e) => tracing::error!("log retention failed: {e}"),
        }
        MAINTENANCE_EVERY
    }

    fn write(&mut self, batch: Vec<Append>) {
        let last = batch.last().map_or(0, |a| a.seq);
        let bytes: usize = batch.iter().map(|a| a.bytes).sum();
        let events: usize = batch.iter().map(|a| a.events.len()).sum();
        if let Err(e) = insert(&mut self.conn, &batch) {
            tracing::error!(events, "writing function log events failed: {e}");
        }
        self.queued_bytes.fetch_sub(bytes, std::sync::atomic::Ordering::Relaxed);
        let mut written = self.progress.written.lock().unwrap_or_else(|e| e.into_inner());
        *written = last;
        self.progress.changed.notify_all();
    }
}

fn insert(conn: &mut Connection, batch: &[Append]) -> Result<()> {
    let now = now_ms();
    let tx = conn.transaction()?;
    {
        let mut ids: HashMap<(&str, &str, &str, &str), (i64, i64)> = HashMap::new();
        let mut add_group = tx.prepare_cached(
            "INSERT OR IGNORE INTO log_groups (account, region, name, created) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut get_group =
            tx.prepare_cached("SELECT id FROM log_groups WHERE account = ?1 AND region = ?2 AND name = ?3")?;
        let mut add_stream =
            tx.prepare_cached("INSERT OR IGNORE INTO log_streams (group_id, name, created) VALUES (?1, ?2, ?3)")?;
        let mut get_stream = tx.prepare_cached("SELECT id FROM log_streams WHERE group_id = ?1 AND name = ?2")?;
        let mut add_event = tx.prepare_cached(
            "INSERT INTO log_events (group_id, stream_id, ts, ingested, message) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut touch_stream = tx.prepare_cached(
            "UPDATE log_streams SET first_event = MIN(COALESCE(first_event, ?2), ?2),
                 last_event = MAX(COALESCE(last_event, ?3), ?3), last_ingestion = ?4 WHERE id = ?1",
        )?;
        let mut grow_group =
            tx.prepare_cached("UPDATE log_groups SET stored_bytes = stored_bytes + ?2 WHERE id = ?1")?;
        // Per stream: first and last event time; per group: bytes added. Written once per
        // batch, not once per append (a busy stream gets dozens of appends a batch).
        let mut spans: HashMap<i64, (i64, i64)> = HashMap::new();
        let mut grown: HashMap<i64, usize> = HashMap::new();
        let mut inserted = 0usize;
        for a in batch {
            let key = (a.account.as_str(), a.region.as_str(), a.group.as_str(), a.stream.as_str());
            let (gid, sid) = match ids.get(&key) {
                Some(&ids) => ids,
                None => {
                    add_group.execute(params![a.account, a.region, a.group, now])?;
                    let gid: i64 = get_group.query_row(params![a.account, a.region, a.group], |r| r.get(0))?;
                    add_stream.execute(params![gid, a.stream, now])?;
                    let sid: i64 = get_stream.query_row(params![gid, a.stream], |r| r.get(0))?;
                    ids.insert(key, (gid, sid));
                    (gid, sid)
                }
            };
            let (first, last) = spans.entry(sid).or_insert((i64::MAX, i64::MIN));
            for e in &a.events {
                inserted += 1;
                if inserted.is_multiple_of(YIELD_EVERY) {
                    // A batch takes milliseconds of CPU: let whatever waits for this CPU
                    // (a runtime, a request) go first now and then.
                    std::thread::yield_now();
                }
                add_event.execute(params![gid, sid, e.timestamp_ms, now, e.message])?;
                *first = (*first).min(e.timestamp_ms);
                *last = (*last).max(e.timestamp_ms);
            }
            *grown.entry(gid).or_default() += a.bytes;
        }
        for (sid, (first, last)) in spans {
            touch_stream.execute(params![sid, first, last, now])?;
        }
        for (gid, bytes) in grown {
            grow_group.execute(params![gid, i64::try_from(bytes).unwrap_or(i64::MAX)])?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope { account_id: "111122223333".into(), region: "us-east-1".into() }
    }

    fn ev(ts: i64, m: &str) -> NewEvent {
        NewEvent { timestamp_ms: ts, message: m.to_string() }
    }

    fn query(order: StreamOrder, descending: bool, after: Option<&StreamCursor>, limit: usize) -> StreamQuery<'_> {
        StreamQuery { prefix: None, order, descending, after, limit }
    }

    fn range() -> EventRange {
        EventRange { start_ms: None, end_ms: None, limit: 10_000, max_bytes: 1 << 20 }
    }

    fn open(dir: &Path) -> Arc<LogStore> {
        LogStore::open(dir, LogConfig { retention_days: 3653, max_bytes: 1 << 30 }).expect("open")
    }

    fn messages(l: Lookup<Page>) -> Vec<String> {
        match l {
            Lookup::Found(p) => p.events.into_iter().map(|e| e.message).collect(),
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[test]
    fn appends_are_written_and_read_in_time_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let now = now_ms();
        s.append(&scope(), "/aws/lambda/f", "st", vec![ev(now, "b"), ev(now - 5, "a")]);
        s.append(&scope(), "/aws/lambda/f", "st", vec![ev(now, "c")]);
        assert!(s.sync(Duration::from_secs(5)));
        let got = s.stream_events(&scope(), "/aws/lambda/f", "st", Anchor::Head, range()).expect("query");
        assert_eq!(messages(got), ["a", "b", "c"]);
        let g = s.group(&scope(), "/aws/lambda/f").expect("group").expect("exists");
        assert_eq!(g.stored_bytes, 3);
        assert_eq!(g.retention_days, None);
        let other = Scope { region: "eu-west-1".into(), ..scope() };
        assert_eq!(s.group(&other, "/aws/lambda/f").expect("group"), None, "groups are per region");
        let Lookup::Found(streams) =
            s.streams(&scope(), "/aws/lambda/f", query(StreamOrder::Name, false, None, 50)).expect("streams")
        else {
            panic!("group exists")
        };
        assert_eq!(streams.len(), 1);
        assert_eq!((streams[0].first_event_ms, streams[0].last_event_ms), (Some(now - 5), Some(now)));
    }

    #[test]
    fn pages_move_both_ways() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let t = now_ms();
        s.append(&scope(), "g", "st", (0..10).map(|i| ev(t + i, &format!("m{i}"))).collect());
        assert!(s.sync(Duration::from_secs(5)));
        let page = |anchor, limit| {
            let r = EventRange { limit, ..range() };
            match s.stream_events(&scope(), "g", "st", anchor, r).expect("query") {
                Lookup::Found(p) => p.events,
                other => panic!("{other:?}"),
            }
        };
        let head = page(Anchor::Head, 3);
        assert_eq!(head.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["m0", "m1", "m2"]);
        let tail = page(Anchor::Tail, 3);
        assert_eq!(tail.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["m7", "m8", "m9"]);
        let next = page(Anchor::After(head[2].key), 3);
        assert_eq!(next[0].message, "m3");
        let back = page(Anchor::Before(tail[0].key), 2);
        assert_eq!(back.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["m5", "m6"]);
        assert!(page(Anchor::After(tail[2].key), 3).is_empty());
        // The size bound cuts a page but never empties it.
        let tiny = EventRange { max_bytes: 1, ..range() };
        let one = s.stream_events(&scope(), "g", "st", Anchor::Head, tiny).expect("query");
        assert_eq!(one, Lookup::Found(Page { events: head[..1].to_vec(), more: true }));
        let Lookup::Found(all) = s.stream_events(&scope(), "g", "st", Anchor::Head, range()).expect("q") else {
            panic!("exists")
        };
        assert!(!all.more && all.events.len() == 10);
        let Lookup::Found(ten) =
            s.stream_events(&scope(), "g", "st", Anchor::Head, EventRange { limit: 10, ..range() }).expect("q")
        else {
            panic!("exists")
        };
        assert!(!ten.more, "exactly the limit left: nothing more");
        let Lookup::Found(nine) =
            s.stream_events(&scope(), "g", "st", Anchor::Head, EventRange { limit: 9, ..range() }).expect("q")
        else {
            panic!("exists")
        };
        assert!(nine.more && nine.events.len() == 9);
        // Time bounds: start inclusive, end exclusive.
        let r = EventRange { start_ms: Some(t + 2), end_ms: Some(t + 4), ..range() };
        assert_eq!(messages(s.stream_events(&scope(), "g", "st", Anchor::Head, r).expect("q")), ["m2", "m3"]);
        assert_eq!(s.stream_events(&scope(), "g", "nope", Anchor::Head, range()).expect("q"), Lookup::NoStream);
        assert_eq!(s.stream_events(&scope(), "nope", "st", Anchor::Head, range()).expect("q"), Lookup::NoGroup);
    }

    #[test]
    fn filter_patterns_match_as_cloudwatch_text_patterns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let t = now_ms();
        let lines = [
            "START RequestId: 1 Version: $LATEST\n",
            "INFO hello world\n",
            "ERROR disk full\n",
            "WARN Exiting soon\n",
            "REPORT RequestId: 1\tDuration: 1.00 ms\n",
        ];
        s.append(&scope(), "g", "a", lines.iter().zip(0..).map(|(l, i)| ev(t + i, l)).collect());
        s.append(&scope(), "g", "b", vec![ev(t, "ERROR in b\n")]);
        assert!(s.sync(Duration::from_secs(5)));
        let check = |pattern: &str, want: &[&str]| {
            let p = FilterPattern::parse(pattern).expect("parse");
            let got = s.filter_events(&scope(), "g", &StreamSelect::All, &p, Anchor::Head, range()).expect("filter");
            let got = messages(got);
            let got: Vec<&str> = got.iter().map(|m| m.trim_end()).collect();
            assert_eq!(got, want, "pattern {pattern:?}");
            for m in lines {
                assert_eq!(p.matches(m), want.contains(&m.trim_end()), "matches() agrees for {m:?} / {pattern:?}");
            }
        };
        check("REPORT", &["REPORT RequestId: 1\tDuration: 1.00 ms"]);
        check(
            "",
            &[
                "START RequestId: 1 Version: $LATEST",
                "ERROR in b",
                "INFO hello world",
                "ERROR disk full",
                "WARN Exiting soon",
                "REPORT RequestId: 1\tDuration: 1.00 ms",
            ],
        );
        check("\"hello world\"", &["INFO hello world"]);
        check("hello world", &["INFO hello world"]);
        check("world hello", &["INFO hello world"]);
        check("\"world hello\"", &[]);
        check("error", &[]);
        check("ERROR -full", &["ERROR in b"]);
        check("?ERROR ?WARN", &["ERROR in b", "ERROR disk full", "WARN Exiting soon"]);
        check("RequestId -START", &["REPORT RequestId: 1\tDuration: 1.00 ms"]);
        check("\"Duration: 1.00 ms\"", &["REPORT RequestId: 1\tDuration: 1.00 ms"]);
        let p = FilterPattern::parse("ERROR").expect("parse");
        let only_a = StreamSelect::Names(vec!["a".into()]);
        let got = s.filter_events(&scope(), "g", &only_a, &p, Anchor::Head, range()).expect("filter");
        assert_eq!(messages(got), ["ERROR disk full\n"]);
        let prefix = StreamSelect::Prefix("b".into());
        let got = s.filter_events(&scope(), "g", &prefix, &p, Anchor::Head, range()).expect("filter");
        assert_eq!(messages(got), ["ERROR in b\n"]);
        let newest_first = s.filter_events(&scope(), "g", &StreamSelect::All, &p, Anchor::Tail, range()).expect("f");
        assert_eq!(messages(newest_first), ["ERROR disk full\n", "ERROR in b\n"]);
        assert_eq!(FilterPattern::parse("{ $.level = \"x\" }"), Err(PatternError::Unsupported));
        assert!(matches!(FilterPattern::parse("\"open"), Err(PatternError::Unterminated(_))));
    }

    #[test]
    fn groups_list_by_name_with_prefix_and_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        for n in ["/aws/lambda/b", "/aws/lambda/a", "/other", "/aws/lambda/c"] {
            assert!(s.create_group(&scope(), n, "STANDARD").expect("create"));
        }
        assert!(!s.create_group(&scope(), "/other", "STANDARD").expect("create"), "exists already");
        let names = |v: Vec<GroupInfo>| v.into_iter().map(|g| g.name).collect::<Vec<_>>();
        assert_eq!(
            names(s.groups(&scope(), Some("/aws/lambda/"), None, None, 2).expect("list")),
            ["/aws/lambda/a", "/aws/lambda/b"]
        );
        assert_eq!(
            names(s.groups(&scope(), Some("/aws/lambda/"), None, Some("/aws/lambda/b"), 2).expect("list")),
            ["/aws/lambda/c"]
        );
        assert_eq!(names(s.groups(&scope(), None, Some("ther"), None, 50).expect("list")), ["/other"]);
        assert!(s.set_retention(&scope(), "/other", Some(14)).expect("retention"));
        assert_eq!(s.group(&scope(), "/other").expect("get").map(|g| g.retention_days), Some(Some(14)));
        assert!(!s.set_retention(&scope(), "/missing", Some(14)).expect("retention"));
        assert!(s.delete_group(&scope(), "/other").expect("delete"));
        assert!(!s.delete_group(&scope(), "/other").expect("delete"));
    }

    #[test]
    fn streams_order_by_name_or_last_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let t = now_ms();
        s.append(&scope(), "g", "b", vec![ev(t - 100, "x")]);
        s.append(&scope(), "g", "a", vec![ev(t, "x")]);
        s.append(&scope(), "g", "c", vec![ev(t - 50, "x")]);
        assert!(s.sync(Duration::from_secs(5)));
        let list = |order, desc, after: Option<&StreamCursor>, limit| match s
            .streams(&scope(), "g", query(order, desc, after, limit))
            .expect("streams")
        {
            Lookup::Found(v) => v.into_iter().map(|x| x.name).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(list(StreamOrder::Name, false, None, 50), ["a", "b", "c"]);
        assert_eq!(list(StreamOrder::Name, true, None, 50), ["c", "b", "a"]);
        assert_eq!(list(StreamOrder::LastEventTime, false, None, 50), ["b", "c", "a"]);
        assert_eq!(list(StreamOrder::LastEventTime, true, None, 2), ["a", "c"]);
        let cursor = StreamCursor { last_event_ms: t - 50, name: "c".into() };
        assert_eq!(list(StreamOrder::LastEventTime, true, Some(&cursor), 2), ["b"]);
        let cursor = StreamCursor { last_event_ms: 0, name: "a".into() };
        assert_eq!(list(StreamOrder::Name, false, Some(&cursor), 50), ["b", "c"]);
        assert_eq!(
            s.streams(&scope(), "missing", query(StreamOrder::Name, false, None, 50)).expect("streams"),
            Lookup::NoGroup
        );
    }

    #[test]
    fn retention_deletes_by_group_policy_global_age_and_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = LogStore::open(dir.path(), LogConfig { retention_days: 7, max_bytes: 1000 }).expect("open");
        let now = now_ms();
        s.append(&scope(), "short", "st", vec![ev(now - 2 * DAY_MS, "two days old"), ev(now, "fresh")]);
        s.append(&scope(), "long", "old", vec![ev(now - 8 * DAY_MS, "eight days old")]);
        s.append(&scope(), "long", "st", vec![ev(now - 2 * DAY_MS, "two days old"), ev(now, "fresh")]);
        assert!(s.sync(Duration::from_secs(5)));
        assert!(s.set_retention(&scope(), "short", Some(1)).expect("retention"));
        assert_eq!(s.enforce_retention(now).expect("retention"), 2);
        let got = s.stream_events(&scope(), "short", "st", Anchor::Head, range()).expect("q");
        assert_eq!(messages(got), ["fresh"]);
        let got = s.stream_events(&scope(), "long", "st", Anchor::Head, range()).expect("q");
        assert_eq!(messages(got), ["two days old", "fresh"], "the global 7 days keep these");
        assert_eq!(
            s.stream_events(&scope(), "long", "old", Anchor::Head, range()).expect("q"),
            Lookup::NoStream,
            "a stream with nothing left goes"
        );
        // Size: 1000 bytes at most; the oldest arrivals go first, down to 900.
        let big = "x".repeat(100);
        s.append(&scope(), "long", "st", (0..20).map(|i| ev(now + i, &big)).collect());
        assert!(s.sync(Duration::from_secs(5)));
        s.enforce_retention(now).expect("retention");
        let total: u64 = s.groups(&scope(), None, None, None, 50).expect("groups").iter().map(|g| g.stored_bytes).sum();
        assert!(total <= 900, "stored bytes {total}");
        let Lookup::Found(Page { events: left, .. }) =
            s.stream_events(&scope(), "long", "st", Anchor::Head, range()).expect("q")
        else {
            panic!("stream exists")
        };
        let real: usize = left.iter().map(|e| e.message.len()).sum::<usize>()
            + match s.stream_events(&scope(), "short", "st", Anchor::Head, range()).expect("q") {
                Lookup::Found(p) => p.events.iter().map(|e| e.message.len()).sum(),
                _ => 0,
            };
        assert_eq!(u64::try_from(real).expect("fits"), total, "stored bytes track what is stored");
        assert_eq!(left.last().map(|e| e.key.timestamp_ms), Some(now + 19), "the newest stay");
    }

    #[test]
    fn retention_runs_in_bounded_passes_and_sheds_down_to_the_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = LogConfig { retention_days: 7, max_bytes: 100_000 };
        let s = LogStore::open(dir.path(), cfg).expect("open");
        let now = now_ms();
        // 5 000 expired events: three passes of at most 2 000.
        s.append(&scope(), "g", "old", (0..5_000).map(|i| ev(now - 8 * DAY_MS + i, "expired")).collect());
        assert!(s.sync(Duration::from_secs(5)));
        let mut shedding = false;
        let passes: Vec<RetentionPass> =
            (0..3).map(|_| enforce_retention(&mut s.conn(), &cfg, now, 2_000, &mut shedding).expect("pass")).collect();
        assert_eq!(
            passes,
            [
                RetentionPass { deleted: 2_000, more: true },
                RetentionPass { deleted: 2_000, more: true },
                RetentionPass { deleted: 1_000, more: false }
            ]
        );
        // 150 000 bytes of fresh events, over the 100 000 cap: passes of 100 events (10 000
        // bytes) continue past the cap until the store is at most 90 000 bytes.
        let line = "y".repeat(100);
        s.append(&scope(), "g", "new", (0..1_500).map(|i| ev(now + i, &line)).collect());
        assert!(s.sync(Duration::from_secs(5)));
        let mut rounds = 0;
        loop {
            rounds += 1;
            let pass = enforce_retention(&mut s.conn(), &cfg, now, 100, &mut shedding).expect("pass");
            assert!(pass.deleted <= 100);
            if !pass.more {
                break;
            }
        }
        let total: u64 = s.groups(&scope(), None, None, None, 50).expect("groups").iter().map(|g| g.stored_bytes).sum();
        assert_eq!((rounds, total), (6, 90_000), "60 000 bytes shed in passes of 10 000");
        assert!(!shedding);
        let again = enforce_retention(&mut s.conn(), &cfg, now, 100, &mut shedding).expect("pass");
        assert_eq!(again, RetentionPass { deleted: 0, more: false }, "below the cap nothing more goes");
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        // No writer thread: the queue of two fills up.
        let (s, _rx) = LogStore::open_unstarted(dir.path(), LogConfig::default(), 2).expect("open");
        for _ in 0..5 {
            s.append(&scope(), "g", "st", vec![ev(1, "a"), ev(2, "b")]);
        }
        assert_eq!(s.dropped(), 6);
        assert!(!s.sync(Duration::from_millis(10)), "nothing was written");
    }

    #[test]
    fn logs_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = now_ms();
        {
            let s = open(dir.path());
            s.append(&scope(), "g", "st", vec![ev(now, "kept")]);
            assert!(s.sync(Duration::from_secs(5)));
        }
        let s = open(dir.path());
        assert_eq!(messages(s.stream_events(&scope(), "g", "st", Anchor::Head, range()).expect("q")), ["kept"]);
    }
}

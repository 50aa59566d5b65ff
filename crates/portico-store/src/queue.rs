//! The durable queue of asynchronous invocations (`InvocationType=Event`).
//!
//! Lambda acknowledges an asynchronous invoke (202) only once the event is queued, and
//! runs it at least once: an event survives a restart, and one that was running when
//! Portico stopped runs again. The embedded backend keeps the queue in its own SQLite
//! file so queue traffic never contends with the catalog's writer.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::Result;

/// One queued invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// Queue position (unique).
    pub id: i64,
    /// The invocation's request id, kept across retries as Lambda does.
    pub request_id: String,
    /// Unqualified ARN of the function.
    pub function_arn: String,
    /// The event document.
    pub payload: Vec<u8>,
    /// Attempts that ended in a function error so far.
    pub attempts: u32,
    /// When the event was accepted (ms since the epoch).
    pub enqueued_ms: i64,
}

/// Durable storage of asynchronous invocations.
pub trait EventQueue: Send + Sync + std::fmt::Debug {
    /// Queues an event durably.
    fn push(&self, request_id: &str, function_arn: &str, payload: &[u8], now_ms: i64) -> Result<()>;
    /// Takes up to `limit` events due at `now_ms`; they are not handed out again until
    /// [`EventQueue::retry`] or a restart.
    fn take_due(&self, now_ms: i64, limit: usize) -> Result<Vec<QueuedEvent>>;
    /// Removes a finished (or abandoned) event.
    fn finish(&self, id: i64) -> Result<()>;
    /// Puts a taken event back, due at `not_before_ms`, with its attempt count.
    fn retry(&self, id: i64, attempts: u32, not_before_ms: i64) -> Result<()>;
    /// When the earliest event not taken is due, if any.
    fn next_due_ms(&self) -> Result<Option<i64>>;
}

/// [`EventQueue`] in a SQLite file.
#[derive(Debug)]
pub struct SqliteEventQueue {
    conn: Mutex<Connection>,
}

impl SqliteEventQueue {
    /// Opens (creating when absent) `dir/queue.db`. Events that were taken when the
    /// previous process stopped are due again.
    pub fn open(dir: &Path) -> Result<SqliteEventQueue> {
        std::fs::create_dir_all(dir)
            .map_err(|source| crate::Error::Io { what: format!("create {}", dir.display()), source })?;
        let conn = Connection::open(dir.join("queue.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 request_id TEXT NOT NULL,
                 function_arn TEXT NOT NULL,
                 payload BLOB NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 enqueued_ms INTEGER NOT NULL,
                 not_before_ms INTEGER NOT NULL,
                 taken INTEGER NOT NULL DEFAULT 0);
             CREATE INDEX IF NOT EXISTS events_due ON events (taken, not_before_ms);
             UPDATE events SET taken = 0 WHERE taken = 1;",
        )?;
        Ok(SqliteEventQueue { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // SQLite rolls back a transaction interrupted by a panic: the lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl EventQueue for SqliteEventQueue {
    fn push(&self, request_id: &str, function_arn: &str, payload: &[u8], now_ms: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO events (request_id, function_arn, payload, enqueued_ms, not_before_ms)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![request_id, function_arn, payload, now_ms],
        )?;
        Ok(())
    }

    fn take_due(&self, now_ms: i64, limit: usize) -> Result<Vec<QueuedEvent>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let events = {
            let mut stmt = tx.prepare(
                "SELECT id, request_id, function_arn, payload, attempts, enqueued_ms FROM events
                 WHERE taken = 0 AND not_before_ms <= ?1 ORDER BY not_before_ms, id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(QueuedEvent {
                    id: r.get(0)?,
                    request_id: r.get(1)?,
                    function_arn: r.get(2)?,
                    payload: r.get(3)?,
                    attempts: r.get(4)?,
                    enqueued_ms: r.get(5)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        for e in &events {
            tx.execute("UPDATE events SET taken = 1 WHERE id = ?1", params![e.id])?;
        }
        tx.commit()?;
        Ok(events)
    }

    fn finish(&self, id: i64) -> Result<()> {
        self.conn().execute("DELETE FROM events WHERE id = ?1", params![id])?;
        Ok(())
    }

    fn retry(&self, id: i64, attempts: u32, not_before_ms: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE events SET taken = 0, attempts = ?2, not_before_ms = ?3 WHERE id = ?1",
            params![id, attempts, not_before_ms],
        )?;
        Ok(())
    }

    fn next_due_ms(&self) -> Result<Option<i64>> {
        let next: Option<Option<i64>> = self
            .conn()
            .query_row("SELECT MIN(not_before_ms) FROM events WHERE taken = 0", [], |r| r.get(0))
            .optional()?;
        Ok(next.flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_taken_once_retried_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let q = SqliteEventQueue::open(dir.path()).expect("open");
            q.push("r1", "arn:f", b"{}", 100).expect("push");
            q.push("r2", "arn:f", b"[1]", 200).expect("push");
            assert_eq!(q.take_due(50, 10).expect("take").len(), 0, "nothing is due before its time");
            let due = q.take_due(150, 10).expect("take");
            assert_eq!(due.iter().map(|e| e.request_id.as_str()).collect::<Vec<_>>(), ["r1"]);
            assert!(q.take_due(150, 10).expect("take").is_empty(), "a taken event is not handed out twice");
            q.retry(due[0].id, 1, 1_000).expect("retry");
            assert_eq!(q.next_due_ms().expect("next"), Some(200));
            let due = q.take_due(300, 10).expect("take");
            assert_eq!(due.len(), 1);
            q.finish(due[0].id).expect("finish");
            // r1 is waiting for its retry; taking it now simulates a crash mid-run.
            let taken = q.take_due(1_000, 10).expect("take");
            assert_eq!(taken[0].attempts, 1);
        }
        let q = SqliteEventQueue::open(dir.path()).expect("reopen");
        let again = q.take_due(1_000, 10).expect("take");
        assert_eq!(again.len(), 1, "an event running at a crash runs again");
        assert_eq!((again[0].request_id.as_str(), again[0].payload.as_slice()), ("r1", b"{}".as_slice()));
    }
}

//! Portico's durable state behind one interface, [`Store`].
//!
//! A store keeps [`Record`]s by `(kind, key)`, numbers every commit with a revision,
//! publishes each commit on a change feed, and keeps code blobs by SHA-256. The
//! embedded backend ([`SqliteStore`]) is the default; a PostgreSQL backend for
//! multi-node deployments implements the same trait. Commits are durable before
//! [`Store::commit`] returns.
//!
//! The store owns the persisted encoding of records (JSON of the model's serde form,
//! under [`SCHEMA_VERSION`]); nothing else reads the database.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod keys;
pub mod logs;
pub mod queue;
mod sqlite;

use std::sync::Arc;

use portico_model::{Change, Record};

pub use keys::{AccessKey, KeyInfo, KeyStore};
pub use logs::{LogConfig, LogStore};
pub use queue::{EventQueue, QueuedEvent, SqliteEventQueue};
pub use sqlite::SqliteStore;

/// Version of the persisted record encoding; bump with a migration.
pub const SCHEMA_VERSION: i64 = 1;

/// Errors of a store backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored record could not be decoded.
    #[error("corrupt record {kind}/{key}: {source}")]
    Corrupt {
        /// Record kind.
        kind: String,
        /// Record key.
        key: String,
        /// The decode error.
        source: serde_json::Error,
    },
    /// The data was written by a newer Portico.
    #[error("data dir schema version {found} is newer than this Portico's {SCHEMA_VERSION}")]
    NewerSchema {
        /// The version found on disk.
        found: i64,
    },
}

/// Store result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One durable commit, as published on the change feed.
#[derive(Debug)]
pub struct Commit {
    /// The revision this commit produced.
    pub revision: u64,
    /// What changed, in order.
    pub changes: Vec<Change>,
}

/// Everything in the store at one revision.
#[derive(Debug)]
pub struct Snapshot {
    /// The revision of the last commit.
    pub revision: u64,
    /// Every record.
    pub records: Vec<Record>,
}

/// Durable storage of Portico's resources.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Loads every record.
    fn load(&self) -> Result<Snapshot>;
    /// Applies `changes` atomically and durably; returns the new revision. The commit
    /// is published on the change feed before this returns.
    fn commit(&self, changes: Vec<Change>) -> Result<u64>;
    /// Subscribes to the change feed. A subscriber that lags behind receives
    /// `RecvError::Lagged` and must [`Store::load`] again.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Commit>>;
    /// Stores a code blob under its lower-case hex SHA-256 (idempotent).
    fn put_blob(&self, sha256_hex: &str, bytes: &[u8]) -> Result<()>;
    /// Reads a code blob.
    fn get_blob(&self, sha256_hex: &str) -> Result<Option<Vec<u8>>>;
}

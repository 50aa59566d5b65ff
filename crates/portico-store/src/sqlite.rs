//! The embedded backend: one SQLite database (WAL, `synchronous=FULL`) and a folder of
//! content-addressed blobs, both under the data dir.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use portico_model::{Change, Record};
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::broadcast;

use crate::{Commit, Error, Result, Snapshot, Store, SCHEMA_VERSION};

/// SQLite-backed [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    // One connection: SQLite serialises writers anyway, and the control plane is not
    // the hot path. The lock is never held across an `.await`.
    conn: Mutex<Connection>,
    blob_dir: PathBuf,
    feed: broadcast::Sender<Arc<Commit>>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

impl SqliteStore {
    /// Opens (creating when absent) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let blob_dir = dir.join("blobs");
        fs::create_dir_all(&blob_dir).map_err(io(format!("create {}", blob_dir.display())))?;
        let conn = Connection::open(dir.join("portico.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS records (
                 kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL,
                 revision INTEGER NOT NULL, PRIMARY KEY (kind, key));
             INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0);",
        )?;
        let found: Option<i64> =
            conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional()?;
        match found {
            Some(v) if v > SCHEMA_VERSION => return Err(Error::NewerSchema { found: v }),
            Some(_) => {}
            None => {
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?1)", params![SCHEMA_VERSION])?;
            }
        }
        let (feed, _) = broadcast::channel(1024);
        Ok(SqliteStore { conn: Mutex::new(conn), blob_dir, feed })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (the
        // transaction rolls back), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn blob_path(&self, sha256_hex: &str) -> PathBuf {
        self.blob_dir.join(format!("{sha256_hex}.zip"))
    }
}

fn encode(record: &Record) -> String {
    serde_json::to_string(record).expect("model records always serialise")
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Snapshot> {
        let conn = self.conn();
        let revision: i64 = conn.query_row("SELECT value FROM meta WHERE key = 'revision'", [], |r| r.get(0))?;
        let mut stmt = conn.prepare("SELECT kind, key, body FROM records")?;
        let rows =
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
        let mut records = Vec::new();
        for row in rows {
            let (kind, key, body) = row?;
            let record = serde_json::from_str(&body).map_err(|source| Error::Corrupt { kind, key, source })?;
            records.push(record);
        }
        Ok(Snapshot { revision: u64::try_from(revision).unwrap_or(0), records })
    }

    fn commit(&self, changes: Vec<Change>) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let revision: i64 =
            tx.query_row("UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value", [], |r| r.get(0))?;
        for change in &changes {
            match change {
                Change::Put(record) => {
                    tx.execute(
                        "INSERT INTO records (kind, key, body, revision) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, revision = excluded.revision",
                        params![record.kind().as_str(), record.key(), encode(record), revision],
                    )?;
                }
                Change::Delete(kind, key) => {
                    tx.execute("DELETE FROM records WHERE kind = ?1 AND key = ?2", params![kind.as_str(), key])?;
                }
            }
        }
        tx.commit()?;
        let revision = u64::try_from(revision).unwrap_or(0);
        // No subscriber is not an error: the feed is for whoever listens.
        let _ = self.feed.send(Arc::new(Commit { revision, changes }));
        Ok(revision)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Commit>> {
        self.feed.subscribe()
    }

    fn put_blob(&self, sha256_hex: &str, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(sha256_hex);
        if path.exists() {
            return Ok(());
        }
        // One name per write: two uploads of the same zip at once must not share a temp file
        // (the second rename would fail, and truncation could expose a partial blob).
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let tmp = self.blob_dir.join(format!(".{sha256_hex}.{}.{n}.tmp", std::process::id()));
        let mut f = fs::File::create(&tmp).map_err(io(format!("create {}", tmp.display())))?;
        f.write_all(bytes).map_err(io("write blob"))?;
        f.sync_all().map_err(io("sync blob"))?;
        fs::rename(&tmp, &path).map_err(io("rename blob"))?;
        fs::File::open(&self.blob_dir).and_then(|d| d.sync_all()).map_err(io("sync blob dir"))?;
        Ok(())
    }

    fn get_blob(&self, sha256_hex: &str) -> Result<Option<Vec<u8>>> {
        match fs::read(self.blob_path(sha256_hex)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { what: "read blob".into(), source: e }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_model::{Api, RecordKind, Scope};

    fn api(id: &str) -> Record {
        Record::Api(Api {
            scope: Scope { account_id: "111122223333".into(), region: "us-east-1".into() },
            api_id: id.into(),
            name: "n".into(),
            description: None,
            protocol_type: "HTTP".into(),
            route_selection_expression: "$request.method $request.path".into(),
            api_key_selection_expression: "$request.header.x-api-key".into(),
            cors: None,
            disable_execute_api_endpoint: false,
            version: None,
            created_date: "2026-11-24T00:00:00Z".into(),
            tags: Default::default(),
        })
    }

    #[test]
    fn commits_survive_reopen_and_are_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = SqliteStore::open(dir.path()).expect("open");
            let mut feed = store.subscribe();
            assert_eq!(
                store.commit(vec![Change::Put(api("aaaaaaaaaa")), Change::Put(api("bbbbbbbbbb"))]).expect("commit"),
                1
            );
            assert_eq!(store.commit(vec![Change::Delete(RecordKind::Api, "aaaaaaaaaa".into())]).expect("commit"), 2);
            assert_eq!(feed.try_recv().expect("first").revision, 1);
            assert_eq!(feed.try_recv().expect("second").changes.len(), 1);
            store.put_blob("ab", b"zip").expect("blob");
        }
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let snap = store.load().expect("load");
        assert_eq!(snap.revision, 2);
        assert_eq!(snap.records, vec![api("bbbbbbbbbb")]);
        assert_eq!(store.get_blob("ab").expect("get").as_deref(), Some(&b"zip"[..]));
        assert_eq!(store.get_blob("cd").expect("get"), None);
    }

    #[test]
    fn the_same_blob_written_at_once_by_many_uploads_is_stored_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(dir.path()).expect("open"));
        let bytes: Arc<Vec<u8>> = Arc::new((0..4 << 20).map(|i: u32| (i % 251) as u8).collect());
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let (store, bytes) = (store.clone(), bytes.clone());
                std::thread::spawn(move || store.put_blob("samezip", &bytes))
            })
            .collect();
        for w in writers {
            w.join().expect("writer").expect("every upload of the same zip succeeds");
        }
        assert_eq!(store.get_blob("samezip").expect("get").as_deref(), Some(&bytes[..]));
        let leftovers: Vec<_> = fs::read_dir(&store.blob_dir)
            .expect("blob dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

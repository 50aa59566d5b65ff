//! Access keys: who may call the control plane, and for which account.
//!
//! Each key is an access key id (`AKIA` + 16 base-32 characters, as AWS spells them), a
//! secret access key (40 characters) and the account it acts for. SigV4 verification
//! needs the secret itself (the signing key is an HMAC chain over it), so secrets are
//! stored as they are, in their own SQLite file `<state>/keys.db`, mode `0600`, inside
//! the `0700` data dir; SQLite gives its `-wal` and `-shm` files the same mode.
//!
//! The file is shared between the server and `portico keys ...` run beside it: a key
//! created by another process works at once and a deleted one stops at once. The server
//! looks a key up on every request ([`KeyStore::lookup`]) and keeps the keys it found
//! for as long as the database is unchanged, which SQLite itself tells: `PRAGMA
//! data_version` changes whenever another connection (another process's included) has
//! committed, and this store's own writes drop the cache. Otherwise a key is read again
//! (one indexed read).
//! Secrets are never logged: [`AccessKey`]'s `Debug` hides them.

use std::collections::HashMap;

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{Error, Result};

/// One access key, secret included.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// The public half: `AKIA...`.
    pub access_key_id: String,
    /// The signing secret.
    pub secret_access_key: String,
    /// The 12-digit account the key acts for.
    pub account_id: String,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("created_ms", &self.created_ms)
            .finish()
    }
}

impl AccessKey {
    /// The key as a profile of the AWS shared-credentials file (`~/.aws/credentials`).
    pub fn credentials_profile(&self, profile: &str) -> String {
        format!(
            "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            self.access_key_id, self.secret_access_key
        )
    }
}

/// What `list` shows of a key: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The access key id.
    pub access_key_id: String,
    /// Its account.
    pub account_id: String,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
}

/// The access keys, in `<dir>/keys.db`.
#[derive(Debug)]
pub struct KeyStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Keys found, and the `data_version` they were read under (see the module doc).
    cache: Mutex<KeyCache>,
}

/// Most keys kept: enough for every key of a data dir; more callers only cost reads.
const MAX_CACHED_KEYS: usize = 1024;

/// Keys found, and the database's `data_version` they were read under.
#[derive(Debug, Default)]
struct KeyCache {
    version: Option<i64>,
    keys: HashMap<String, AccessKey>,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// Characters of an access key id after `AKIA` (RFC 4648 base 32, as AWS's).
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Characters of a secret (base 64, as AWS's).
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..len).map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())])).collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl KeyStore {
    /// Opens (creating when absent) `dir/keys.db`, readable by its owner only.
    pub fn open(dir: &Path) -> Result<KeyStore> {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let path = dir.join("keys.db");
        // Create the file with its final mode before SQLite opens it, so the secrets are
        // never readable by others, not even for a moment.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("create {}", path.display())))?;
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS access_keys (
                 access_key_id TEXT PRIMARY KEY,
                 secret_access_key TEXT NOT NULL,
                 account_id TEXT NOT NULL,
                 created_ms INTEGER NOT NULL);",
        )?;
        // A file made by an older Portico, or copied in, is narrowed too.
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(format!("restrict {}", p.display())))?;
            }
        }
        Ok(KeyStore { conn: Mutex::new(conn), path, cache: Mutex::new(KeyCache::default()) })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        // The cache is only ever left whole: a poisoned lock is safe to reuse.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the keys live.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // SQLite rolls back a transaction interrupted by a panic: the lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a key for `account_id` (validated by the caller).
    pub fn create(&self, account_id: &str) -> Result<AccessKey> {
        let key = AccessKey {
            access_key_id: format!("AKIA{}", random_string(ID_ALPHABET, 16)),
            secret_access_key: random_string(SECRET_ALPHABET, 40),
            account_id: account_id.to_string(),
            created_ms: now_ms(),
        };
        // 80 random bits make a clash practically impossible; a clash fails the insert
        // rather than replacing a key.
        self.conn().execute(
            "INSERT INTO access_keys (access_key_id, secret_access_key, account_id, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![key.access_key_id, key.secret_access_key, key.account_id, key.created_ms],
        )?;
        Ok(key)
    }

    /// The key with this id, if it exists: from the cache while the database is
    /// unchanged since the key was read, else from the database (see the module doc).
    pub fn lookup(&self, access_key_id: &str) -> Result<Option<AccessKey>> {
        let conn = self.conn();
        // Changes when another connection has committed since this one last looked.
        let version: i64 = conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        {
            let mut cache = self.cache();
            if cache.version != Some(version) {
                cache.keys.clear();
                cache.version = Some(version);
            } else if let Some(key) = cache.keys.get(access_key_id) {
                return Ok(Some(key.clone()));
            }
        }
        let found = Self::read(&conn, access_key_id)?;
        if let Some(key) = &found {
            let mut cache = self.cache();
            if cache.keys.len() >= MAX_CACHED_KEYS {
                cache.keys.clear();
            }
            cache.keys.insert(access_key_id.to_string(), key.clone());
        }
        Ok(found)
    }

    /// The key with this id, read from the database.
    fn read(conn: &Connection, access_key_id: &str) -> Result<Option<AccessKey>> {
        let mut stmt = conn.prepare_cached(
            "SELECT secret_access_key, account_id, created_ms FROM access_keys WHERE access_key_id = ?1",
        )?;
        Ok(stmt
            .query_row(params![access_key_id], |r| {
                Ok(AccessKey {
                    access_key_id: access_key_id.to_string(),
                    secret_access_key: r.get(0)?,
                    account_id: r.get(1)?,
                    created_ms: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// Every key (without secrets), oldest first.
    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT access_key_id, account_id, created_ms FROM access_keys ORDER BY created_ms, access_key_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(KeyInfo { access_key_id: r.get(0)?, account_id: r.get(1)?, created_ms: r.get(2)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a key; `false` when there was none.
    pub fn delete(&self, access_key_id: &str) -> Result<bool> {
        let deleted =
            self.conn().execute("DELETE FROM access_keys WHERE access_key_id = ?1", params![access_key_id])?;
        // This connection's own commits leave its data_version as it was.
        self.cache().keys.clear();
        Ok(deleted > 0)
    }

    /// Whether no key exists (a data dir's first start).
    pub fn is_empty(&self) -> Result<bool> {
        let n: i64 = self.conn().query_row("SELECT COUNT(*) FROM access_keys", [], |r| r.get(0))?;
        Ok(n == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_found_listed_and_deleted_across_handles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = KeyStore::open(dir.path()).expect("open");
        assert!(server.is_empty().expect("empty"));
        // Another process (`portico keys create`) opens the same file.
        let cli = KeyStore::open(dir.path()).expect("open again");
        let key = cli.create("111122223333").expect("create");
        assert!(key.access_key_id.starts_with("AKIA") && key.access_key_id.len() == 20, "{key:?}");
        assert_eq!(key.secret_access_key.len(), 40);
        assert_eq!(server.lookup(&key.access_key_id).expect("lookup"), Some(key.clone()));
        assert_eq!(server.lookup("AKIANOTAKEY").expect("lookup"), None);
        let other = cli.create("444455556666").expect("create");
        let listed: Vec<_> = server.list().expect("list").into_iter().map(|k| k.access_key_id).collect();
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&other.access_key_id));
        assert!(cli.delete(&key.access_key_id).expect("delete"));
        assert!(!cli.delete(&key.access_key_id).expect("delete again"));
        assert_eq!(server.lookup(&key.access_key_id).expect("lookup"), None);
        assert!(!format!("{other:?}").contains(&other.secret_access_key));
        let mode = std::fs::metadata(server.path()).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            other.credentials_profile("default"),
            format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                other.access_key_id, other.secret_access_key
            )
        );
    }

    #[test]
    fn cached_keys_follow_every_writer_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = KeyStore::open(dir.path()).expect("open");
        let cli = KeyStore::open(dir.path()).expect("open again");
        let key = cli.create("111122223333").expect("create");
        for _ in 0..3 {
            assert_eq!(server.lookup(&key.access_key_id).expect("lookup"), Some(key.clone()));
        }
        assert!(server.cache().keys.contains_key(&key.access_key_id), "a found key is kept");
        // Another handle's commit (another process's, as far as the file is concerned).
        let other = cli.create("444455556666").expect("create");
        assert_eq!(server.lookup(&other.access_key_id).expect("lookup"), Some(other.clone()));
        assert_eq!(server.lookup(&key.access_key_id).expect("lookup"), Some(key.clone()));
        assert!(server.cache().keys.contains_key(&key.access_key_id));
        // A writer that is not a KeyStore at all.
        let raw = Connection::open(dir.path().join("keys.db")).expect("raw open");
        raw.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
        raw.execute(
            "UPDATE access_keys SET account_id = '999988887777' WHERE access_key_id = ?1",
            params![key.access_key_id],
        )
        .expect("update");
        let changed = server.lookup(&key.access_key_id).expect("lookup").expect("still there");
        assert_eq!(changed.account_id, "999988887777");
        assert!(cli.delete(&key.access_key_id).expect("delete"));
        assert_eq!(server.lookup(&key.access_key_id).expect("lookup"), None);
        // The store's own delete, through the connection that cached the key.
        let own = server.create("111122223333").expect("create");
        assert_eq!(server.lookup(&own.access_key_id).expect("lookup"), Some(own.clone()));
        assert!(server.delete(&own.access_key_id).expect("delete"));
        assert_eq!(server.lookup(&own.access_key_id).expect("lookup"), None);
        // Many commits later (the WAL is checkpointed and restarted), still current.
        for _ in 0..50 {
            let k = cli.create("111122223333").expect("create");
            assert!(cli.delete(&k.access_key_id).expect("delete"));
        }
        raw.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").expect("checkpoint");
        assert!(cli.delete(&other.access_key_id).expect("delete"));
        assert_eq!(server.lookup(&other.access_key_id).expect("lookup"), None);
    }

    #[test]
    fn a_data_dir_made_again_is_read_afresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let first = KeyStore::open(&state).expect("open");
        let key = first.create("111122223333").expect("create");
        assert_eq!(first.lookup(&key.access_key_id).expect("lookup"), Some(key.clone()));
        drop(first);
        std::fs::remove_dir_all(&state).expect("remove");
        let second = KeyStore::open(&state).expect("open again");
        assert_eq!(second.lookup(&key.access_key_id).expect("lookup"), None);
        let other = second.create("111122223333").expect("create");
        assert_eq!(second.lookup(&other.access_key_id).expect("lookup"), Some(other.clone()));
        assert!(second.delete(&other.access_key_id).expect("delete"));
        assert_eq!(second.lookup(&other.access_key_id).expect("lookup"), None);
    }
}

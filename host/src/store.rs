//! The embedded database (SQLite, one file in the data directory): tenant key-value state
//! now, provisioning jobs and their events beside it.
//!
//! rusqlite is blocking; every call runs on tokio's blocking pool so a slow disk never
//! stalls the request threads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS kv (
    tenant TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE IF NOT EXISTS tenant_secrets (
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
";

/// Largest key and value a policy may store, so one tenant cannot fill the disk through
/// a loop of `kv-set` calls without noticing.
pub const MAX_KV_KEY: usize = 1024;
pub const MAX_KV_VALUE: usize = 64 * 1024;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Open (or create) `ztpd.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join("ztpd.db");
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)
            .map_err(|source| StoreError::Open { path, source })?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// A private in-memory database (dry runs, tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Run `f` with the connection on the blocking pool.
    pub async fn with<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Task("database lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Run `f` with the connection on this thread (start-up only).
    pub fn with_sync<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| StoreError::Task("database lock poisoned".into()))?;
        f(&mut guard)
    }

    /// A secret the host keeps for a tenant (never visible to policies): the stored one,
    /// or `make()`'s, stored now.
    pub async fn tenant_secret(
        &self,
        tenant: &str,
        name: &str,
        make: impl FnOnce() -> String + Send + 'static,
    ) -> Result<String, StoreError> {
        let (tenant, name) = (tenant.to_owned(), name.to_owned());
        self.with(move |c| {
            let found: Option<String> = c
                .query_row(
                    "SELECT value FROM tenant_secrets WHERE tenant = ?1 AND name = ?2",
                    params![tenant, name],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(v) = found {
                return Ok(v);
            }
            let value = make();
            c.execute(
                "INSERT INTO tenant_secrets (tenant, name, value) VALUES (?1, ?2, ?3)",
                params![tenant, name, value],
            )?;
            Ok(value)
        })
        .await
    }

    pub async fn kv_get(&self, tenant: &str, key: &str) -> Result<Option<String>, StoreError> {
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT value FROM kv WHERE tenant = ?1 AND key = ?2",
                params![tenant, key],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    pub async fn kv_set(&self, tenant: &str, key: &str, value: &str) -> Result<(), StoreError> {
        let (tenant, key, value) = (tenant.to_owned(), key.to_owned(), value.to_owned());
        self.with(move |c| {
            c.execute(
                "INSERT INTO kv (tenant, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value",
                params![tenant, key, value],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn kv_delete(&self, tenant: &str, key: &str) -> Result<(), StoreError> {
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        self.with(move |c| {
            c.execute(
                "DELETE FROM kv WHERE tenant = ?1 AND key = ?2",
                params![tenant, key],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kv_is_per_tenant_and_persists() {
        let dir = std::env::temp_dir().join(format!("ztpd-store-{}", std::process::id()));
        {
            let s = Store::open(&dir).unwrap();
            s.kv_set("a", "next-ip", "10").await.unwrap();
            s.kv_set("b", "next-ip", "20").await.unwrap();
            s.kv_set("a", "next-ip", "11").await.unwrap();
        }
        let s = Store::open(&dir).unwrap();
        assert_eq!(
            s.kv_get("a", "next-ip").await.unwrap().as_deref(),
            Some("11")
        );
        assert_eq!(
            s.kv_get("b", "next-ip").await.unwrap().as_deref(),
            Some("20")
        );
        s.kv_delete("a", "next-ip").await.unwrap();
        assert_eq!(s.kv_get("a", "next-ip").await.unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

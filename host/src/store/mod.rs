//! The embedded database (SQLite, one file `ztpd.db` in the data directory) behind one
//! interface: every table ztpd keeps and every statement that touches one lives here, so
//! the rest of ztpd calls typed methods and a second back end can sit beside this one.
//!
//! - [`schema`]: numbered migrations, run at open;
//! - [`kv`]: policies' tenant-scoped key-value state; [`secrets`]: secrets the host
//!   generates per tenant;
//! - [`jobs`]: provisioning jobs and their events; [`host_keys`]: SSH host keys seen on
//!   first use;
//! - [`versions`]: policy versions and activations; [`audit`]: the audit log;
//! - [`claims`]: which address and token speak for a serial (call-back trust);
//! - [`outbox`]: webhook events waiting for delivery; [`leases`]: the DHCP server's leases;
//! - [`retention`]: pruning what is older than the retention period.
//!
//! rusqlite is blocking; every call runs on tokio's blocking pool so a slow disk never
//! stalls the request threads. The data directory is created `0700` and the database
//! `0600`: they hold call-back secrets, configs and transcripts.

pub mod audit;
pub mod claims;
pub mod host_keys;
pub mod jobs;
pub mod kv;
pub mod leases;
pub mod outbox;
pub mod retention;
mod schema;
pub mod secrets;
pub mod versions;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("data directory {path}: {detail}")]
    DataDir { path: PathBuf, detail: String },
    #[error("database migration {number} failed: {source}")]
    Migration {
        number: usize,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} was written by a newer ztpd (schema {found}, this ztpd knows {known}); run that ztpd or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

/// Every table, on one database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Stores {
    pub db: Db,
    pub kv: kv::KvStore,
    pub secrets: secrets::SecretStore,
    pub jobs: jobs::JobStore,
    pub host_keys: host_keys::HostKeys,
    pub versions: versions::VersionStore,
    pub audit: audit::AuditLog,
    pub claims: claims::ClaimStore,
    pub outbox: outbox::OutboxStore,
    pub leases: leases::LeaseStore,
}

impl Stores {
    /// Open the database in `data_dir` (policy versions are kept in `data_dir/policies`).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Ok(Self::on(Db::open(data_dir)?, data_dir))
    }

    /// A private in-memory database (dry runs, checks, tests); policy versions go to
    /// `scratch`.
    pub fn in_memory(scratch: &Path) -> Result<Self, StoreError> {
        Ok(Self::on(Db::in_memory()?, scratch))
    }

    fn on(db: Db, data_dir: &Path) -> Self {
        Stores {
            kv: kv::KvStore::new(db.clone()),
            secrets: secrets::SecretStore::new(db.clone()),
            jobs: jobs::JobStore::new(db.clone()),
            host_keys: host_keys::HostKeys::new(db.clone()),
            versions: versions::VersionStore::new(db.clone(), data_dir),
            audit: audit::AuditLog::new(db.clone()),
            claims: claims::ClaimStore::new(db.clone()),
            outbox: outbox::OutboxStore::new(db.clone()),
            leases: leases::LeaseStore::new(db.clone()),
            db,
        }
    }
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "ztpd.db";

impl Db {
    /// Open (or create) `ztpd.db` in `data_dir`, creating the folder `0700`. A data
    /// directory that others may write to is refused: whoever can write there can plant
    /// compiled code ztpd would run.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        prepare_data_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_error)?;
        restrict_file(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_error)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(open_error)?;
        let db = Db {
            conn: Arc::new(Mutex::new(conn)),
        };
        db.migrate(&path)?;
        Ok(db)
    }

    /// A private in-memory database (dry runs, tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        let db = Db {
            conn: Arc::new(Mutex::new(Connection::open_in_memory()?)),
        };
        db.migrate(Path::new(":memory:"))?;
        Ok(db)
    }

    fn migrate(&self, path: &Path) -> Result<(), StoreError> {
        self.with_sync(|c| {
            let done: usize = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if done > schema::MIGRATIONS.len() {
                return Err(StoreError::TooNew {
                    path: path.to_owned(),
                    found: done,
                    known: schema::MIGRATIONS.len(),
                });
            }
            for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(done) {
                let number = i + 1;
                let failed = |source| StoreError::Migration { number, source };
                let tx = c.transaction().map_err(failed)?;
                tx.execute_batch(sql).map_err(failed)?;
                tx.pragma_update(None, "user_version", number)
                    .map_err(failed)?;
                tx.commit().map_err(failed)?;
            }
            Ok(())
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

    /// Run `f` with the connection on this thread (start-up and tests only).
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
}

/// Create `dir` (`0700`) or check an existing one is not writable by group or others.
pub fn prepare_data_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let fail = |detail: String| StoreError::DataDir {
        path: dir.to_owned(),
        detail,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail(format!("cannot create it: {e}")))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| fail(format!("cannot read it: {e}")))?;
    if !meta.is_dir() {
        return Err(fail("is not a folder".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(fail(format!(
            "is writable by its group or by others (mode {mode:o}); it holds secrets and compiled code: chmod 700 {}",
            dir.display()
        )));
    }
    Ok(())
}

/// Make a file ztpd wrote readable by ztpd's user only.
pub fn restrict_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        StoreError::DataDir {
            path: path.to_owned(),
            detail: format!("cannot make it private (chmod 600): {e}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn data_dir_and_database_are_private_and_shared_folders_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let _db = Db::open(&data).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join(DB_FILE)), 0o600);
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o775)).unwrap();
        let err = Db::open(&data).unwrap_err().to_string();
        assert!(err.contains("chmod 700") && err.contains("775"), "{err}");
    }

    #[test]
    fn migrations_run_once_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Db::open(dir.path()).unwrap());
        drop(Db::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let v: usize = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, schema::MIGRATIONS.len());
        c.pragma_update(None, "user_version", 999).unwrap();
        drop(c);
        let err = Db::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("newer ztpd"), "{err}");
    }
}

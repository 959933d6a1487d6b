//! Policy versions and the audit log, in the database; version files by content hash in
//! `data_dir/policies/`.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::jobs::now_ms;
use crate::store::{Store, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS policy_versions (
    tenant      TEXT NOT NULL,
    slot        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, slot, hash)
);
CREATE TABLE IF NOT EXISTS policy_activations (
    tenant TEXT NOT NULL,
    slot   TEXT NOT NULL,
    hash   TEXT NOT NULL,
    actor  TEXT NOT NULL,
    at_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS policy_activations_by_slot ON policy_activations (tenant, slot, at_ms);
CREATE TABLE IF NOT EXISTS audit_log (
    at_ms  INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    tenant TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    hash   TEXT,
    detail TEXT NOT NULL
);
";

#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub hash: String,
    pub size: i64,
    pub uploaded_by: String,
    pub uploaded_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Activation {
    pub hash: String,
    pub actor: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub tenant: String,
    pub action: String,
    pub target: String,
    pub hash: Option<String>,
    pub detail: String,
}

/// Versions, activations and audit entries.
#[derive(Debug, Clone)]
pub struct VersionStore {
    db: Store,
    dir: PathBuf,
}

impl VersionStore {
    pub fn new(db: Store, data_dir: &Path) -> Result<Self, StoreError> {
        db.with_sync(|c| Ok(c.execute_batch(SCHEMA)?))?;
        Ok(VersionStore {
            db,
            dir: data_dir.join("policies"),
        })
    }

    /// Where the bytes of version `hash` live.
    pub fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}.wasm"))
    }

    /// Keep the bytes of a version (idempotent: content-addressed).
    pub fn save_bytes(&self, hash: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(hash);
        if !path.is_file() {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(path)
    }

    pub async fn record_upload(
        &self,
        tenant: &str,
        slot: &str,
        hash: &str,
        size: usize,
        actor: &str,
    ) -> Result<(), StoreError> {
        let (t, s, h, a) = (
            tenant.to_owned(),
            slot.to_owned(),
            hash.to_owned(),
            actor.to_owned(),
        );
        self.db
            .with(move |c| {
                c.execute(
                    "INSERT INTO policy_versions (tenant, slot, hash, size, uploaded_by, uploaded_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                    params![t, s, h, size as i64, a, now_ms()],
                )?;
                Ok(())
            })
            .await
    }

    pub async fn record_activation(
        &self,
        tenant: &str,
        slot: &str,
        hash: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let (t, s, h, a) = (
            tenant.to_owned(),
            slot.to_owned(),
            hash.to_owned(),
            actor.to_owned(),
        );
        self.db
            .with(move |c| {
                c.execute(
                    "INSERT INTO policy_activations (tenant, slot, hash, actor, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![t, s, h, a, now_ms()],
                )?;
                Ok(())
            })
            .await
    }

    pub async fn versions(&self, tenant: &str, slot: &str) -> Result<Vec<Version>, StoreError> {
        let (t, s) = (tenant.to_owned(), slot.to_owned());
        self.db
            .with(move |c| {
                let mut stmt = c.prepare(
                    "SELECT hash, size, uploaded_by, uploaded_ms FROM policy_versions
                     WHERE tenant = ?1 AND slot = ?2 ORDER BY uploaded_ms, rowid",
                )?;
                let rows = stmt
                    .query_map(params![t, s], |r| {
                        Ok(Version {
                            hash: r.get(0)?,
                            size: r.get(1)?,
                            uploaded_by: r.get(2)?,
                            uploaded_ms: r.get(3)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await
    }

    /// Activations of a slot, newest first.
    pub async fn activations(
        &self,
        tenant: &str,
        slot: &str,
    ) -> Result<Vec<Activation>, StoreError> {
        let (t, s) = (tenant.to_owned(), slot.to_owned());
        self.db
            .with(move |c| {
                let mut stmt = c.prepare(
                    "SELECT hash, actor, at_ms FROM policy_activations
                     WHERE tenant = ?1 AND slot = ?2 ORDER BY at_ms DESC, rowid DESC",
                )?;
                let rows = stmt
                    .query_map(params![t, s], |r| {
                        Ok(Activation {
                            hash: r.get(0)?,
                            actor: r.get(1)?,
                            at_ms: r.get(2)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await
    }

    pub async fn has_version(
        &self,
        tenant: &str,
        slot: &str,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let (t, s, h) = (tenant.to_owned(), slot.to_owned(), hash.to_owned());
        self.db
            .with(move |c| {
                Ok(c.query_row(
                    "SELECT 1 FROM policy_versions WHERE tenant = ?1 AND slot = ?2 AND hash = ?3",
                    params![t, s, h],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
            })
            .await
    }

    pub async fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.db
            .with(move |c| {
                c.execute(
                    "INSERT INTO audit_log (at_ms, actor, tenant, action, target, hash, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        entry.at_ms,
                        entry.actor,
                        entry.tenant,
                        entry.action,
                        entry.target,
                        entry.hash,
                        entry.detail
                    ],
                )?;
                Ok(())
            })
            .await
    }

    /// The audit log, newest first, optionally of one tenant.
    pub async fn audit_log(&self, tenant: Option<String>) -> Result<Vec<AuditEntry>, StoreError> {
        self.db
            .with(move |c| {
                let mut stmt = c.prepare(
                    "SELECT at_ms, actor, tenant, action, target, hash, detail FROM audit_log
                     WHERE ?1 IS NULL OR tenant = ?1 ORDER BY at_ms DESC, rowid DESC LIMIT 1000",
                )?;
                let rows = stmt
                    .query_map(params![tenant], |r| {
                        Ok(AuditEntry {
                            at_ms: r.get(0)?,
                            actor: r.get(1)?,
                            tenant: r.get(2)?,
                            action: r.get(3)?,
                            target: r.get(4)?,
                            hash: r.get(5)?,
                            detail: r.get(6)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await
    }
}

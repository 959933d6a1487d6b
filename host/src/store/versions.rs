//! Policy versions (uploads) and activations, in the database; each version's bytes by
//! content hash in `data_dir/policies/`.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Db, StoreError};
use crate::clock::now_ms;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Version {
    pub hash: String,
    pub size: i64,
    pub uploaded_by: String,
    pub uploaded_ms: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Activation {
    pub hash: String,
    pub actor: String,
    pub at_ms: i64,
}

/// Versions and activations.
#[derive(Debug, Clone)]
pub struct VersionStore {
    db: Db,
    dir: PathBuf,
}

impl VersionStore {
    pub fn new(db: Db, data_dir: &Path) -> Self {
        VersionStore {
            db,
            dir: data_dir.join("policies"),
        }
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
}

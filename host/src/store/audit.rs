//! The audit log: who changed what (policy uploads and activations, templates, approvals,
//! refused authentication), for which tenant, when.

use rusqlite::params;
use serde::Serialize;

use super::{Db, StoreError};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub tenant: String,
    pub action: String,
    pub target: String,
    pub hash: Option<String>,
    pub detail: String,
}

/// The audit log on the shared database.
#[derive(Debug, Clone)]
pub struct AuditLog {
    db: Db,
}

impl AuditLog {
    pub fn new(db: Db) -> Self {
        AuditLog { db }
    }

    pub async fn record(&self, entry: AuditEntry) -> Result<(), StoreError> {
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
    pub async fn entries(&self, tenant: Option<String>) -> Result<Vec<AuditEntry>, StoreError> {
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

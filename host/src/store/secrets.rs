//! Secrets the host generates for a tenant (the call-back token key) and keeps across
//! restarts. Policies never see them.

use rusqlite::{OptionalExtension, params};

use super::{Db, StoreError};

#[derive(Debug, Clone)]
pub struct SecretStore {
    db: Db,
}

impl SecretStore {
    pub fn new(db: Db) -> Self {
        SecretStore { db }
    }

    /// The stored secret `name` of `tenant`, or `make()`'s, stored now.
    pub async fn get_or_create(
        &self,
        tenant: &str,
        name: &str,
        make: impl FnOnce() -> String + Send + 'static,
    ) -> Result<String, StoreError> {
        let (tenant, name) = (tenant.to_owned(), name.to_owned());
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                let found: Option<String> = tx
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
                tx.execute(
                    "INSERT INTO tenant_secrets (tenant, name, value) VALUES (?1, ?2, ?3)",
                    params![tenant, name, value],
                )?;
                tx.commit()?;
                Ok(value)
            })
            .await
    }
}

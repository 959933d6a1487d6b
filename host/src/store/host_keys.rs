//! SSH host keys seen on first use, so a later push to the same device refuses a
//! different key.

use rusqlite::{OptionalExtension, params};

use super::{Db, StoreError};
use crate::clock::now_ms;

#[derive(Debug, Clone)]
pub struct HostKeys {
    db: Db,
}

impl HostKeys {
    pub fn new(db: Db) -> Self {
        HostKeys { db }
    }

    /// The host key recorded at first use for `address` (`host:port`).
    pub async fn get(&self, tenant: &str, address: &str) -> Result<Option<String>, StoreError> {
        let (tenant, address) = (tenant.to_owned(), address.to_owned());
        self.db
            .with(move |c| {
                Ok(c.query_row(
                    "SELECT key FROM host_keys WHERE tenant = ?1 AND address = ?2",
                    params![tenant, address],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await
    }

    pub async fn record(&self, tenant: &str, address: &str, key: &str) -> Result<(), StoreError> {
        let (tenant, address, key) = (tenant.to_owned(), address.to_owned(), key.to_owned());
        self.db
            .with(move |c| {
                c.execute(
                    "INSERT INTO host_keys (tenant, address, key, seen_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, address) DO NOTHING",
                    params![tenant, address, key, now_ms()],
                )?;
                Ok(())
            })
            .await
    }
}

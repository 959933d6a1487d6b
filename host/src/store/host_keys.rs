//! SSH host keys seen on first use, per device (its serial, or its key): a later push to
//! the same device refuses a different key, whatever address the device has then. An
//! operator forgets a key when a device is replaced.

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

    /// The key recorded at first use for `device` of `tenant`.
    pub async fn get(&self, tenant: &str, device: &str) -> Result<Option<String>, StoreError> {
        let (tenant, device) = (tenant.to_owned(), device.to_owned());
        self.db
            .with(move |c| {
                Ok(c.query_row(
                    "SELECT key FROM device_host_keys WHERE tenant = ?1 AND device = ?2",
                    params![tenant, device],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await
    }

    /// Record `key` for `device`, unless one is recorded already.
    pub async fn record(&self, tenant: &str, device: &str, key: &str) -> Result<(), StoreError> {
        let (tenant, device, key) = (tenant.to_owned(), device.to_owned(), key.to_owned());
        self.db
            .with(move |c| {
                c.execute(
                    "INSERT INTO device_host_keys (tenant, device, key, seen_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, device) DO NOTHING",
                    params![tenant, device, key, now_ms()],
                )?;
                Ok(())
            })
            .await
    }

    /// Forget `device`'s key; returns whether there was one.
    pub async fn forget(&self, tenant: &str, device: &str) -> Result<bool, StoreError> {
        let (tenant, device) = (tenant.to_owned(), device.to_owned());
        self.db
            .with(move |c| {
                Ok(c.execute(
                    "DELETE FROM device_host_keys WHERE tenant = ?1 AND device = ?2",
                    params![tenant, device],
                )? > 0)
            })
            .await
    }
}

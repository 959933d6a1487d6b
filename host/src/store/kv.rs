//! Policies' key-value state, per tenant. A policy call reads through [`KvStore::get`]
//! and commits all its writes at once with [`KvStore::commit`], checking that what it
//! read is still there (optimistic concurrency) and that the tenant stays inside its
//! quota; usage is kept in `kv_usage` by the same transaction.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Db, StoreError};

/// Bytes a key and a value may have at most.
pub const MAX_KEY: usize = 1024;
pub const MAX_VALUE: usize = 64 * 1024;

/// What one tenant may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvQuota {
    pub keys: u64,
    /// Key and value bytes together.
    pub bytes: u64,
}

/// A tenant's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KvUsage {
    pub keys: u64,
    pub bytes: u64,
}

/// A call's changes: what it read (each key's value as it saw it, to be checked at
/// commit) and what it writes (`None` deletes).
#[derive(Debug, Clone, Default)]
pub struct KvChanges {
    pub read: BTreeMap<String, Option<String>>,
    pub write: BTreeMap<String, Option<String>>,
}

impl KvChanges {
    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.write.is_empty()
    }
}

/// How a commit went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// Another call changed `key` after this one read it: run the call again.
    Conflict {
        key: String,
    },
    /// The writes would take the tenant past its quota; nothing was written.
    OverQuota {
        usage: KvUsage,
        quota: KvQuota,
    },
}

#[derive(Debug, Clone)]
pub struct KvStore {
    db: Db,
}

fn value_of(tx: &Transaction<'_>, tenant: &str, key: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT value FROM kv WHERE tenant = ?1 AND key = ?2",
        params![tenant, key],
        |r| r.get(0),
    )
    .optional()
}

fn size(key: &str, value: &str) -> u64 {
    (key.len() + value.len()) as u64
}

impl KvStore {
    pub fn new(db: Db) -> Self {
        KvStore { db }
    }

    pub async fn get(&self, tenant: &str, key: &str) -> Result<Option<String>, StoreError> {
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        self.db
            .with(move |c| {
                Ok(c.query_row(
                    "SELECT value FROM kv WHERE tenant = ?1 AND key = ?2",
                    params![tenant, key],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await
    }

    pub async fn usage(&self, tenant: &str) -> Result<KvUsage, StoreError> {
        let tenant = tenant.to_owned();
        self.db
            .with(move |c| {
                Ok(c.query_row(
                    "SELECT keys, bytes FROM kv_usage WHERE tenant = ?1",
                    params![tenant],
                    |r| {
                        Ok(KvUsage {
                            keys: r.get(0)?,
                            bytes: r.get(1)?,
                        })
                    },
                )
                .optional()?
                .unwrap_or_default())
            })
            .await
    }

    /// Apply `changes` atomically if every value read is unchanged and the result fits
    /// `quota`.
    pub async fn commit(
        &self,
        tenant: &str,
        changes: KvChanges,
        quota: KvQuota,
    ) -> Result<Commit, StoreError> {
        if changes.write.is_empty() && changes.read.is_empty() {
            return Ok(Commit::Done);
        }
        let tenant = tenant.to_owned();
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                for (key, seen) in &changes.read {
                    if value_of(&tx, &tenant, key)? != *seen {
                        return Ok(Commit::Conflict { key: key.clone() });
                    }
                }
                if changes.write.is_empty() {
                    return Ok(Commit::Done);
                }
                let mut usage: KvUsage = tx
                    .query_row(
                        "SELECT keys, bytes FROM kv_usage WHERE tenant = ?1",
                        params![tenant],
                        |r| {
                            Ok(KvUsage {
                                keys: r.get(0)?,
                                bytes: r.get(1)?,
                            })
                        },
                    )
                    .optional()?
                    .unwrap_or_default();
                let before = usage;
                for (key, new) in &changes.write {
                    if let Some(old) = value_of(&tx, &tenant, key)? {
                        usage.keys = usage.keys.saturating_sub(1);
                        usage.bytes = usage.bytes.saturating_sub(size(key, &old));
                    }
                    if let Some(new) = new {
                        usage.keys += 1;
                        usage.bytes += size(key, new);
                    }
                }
                let grows = usage.keys > before.keys || usage.bytes > before.bytes;
                if grows && (usage.keys > quota.keys || usage.bytes > quota.bytes) {
                    return Ok(Commit::OverQuota {
                        usage: before,
                        quota,
                    });
                }
                for (key, new) in &changes.write {
                    match new {
                        Some(v) => tx.execute(
                            "INSERT INTO kv (tenant, key, value) VALUES (?1, ?2, ?3)
                             ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value",
                            params![tenant, key, v],
                        )?,
                        None => tx.execute(
                            "DELETE FROM kv WHERE tenant = ?1 AND key = ?2",
                            params![tenant, key],
                        )?,
                    };
                }
                tx.execute(
                    "INSERT INTO kv_usage (tenant, keys, bytes) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant) DO UPDATE SET keys = excluded.keys, bytes = excluded.bytes",
                    params![tenant, usage.keys, usage.bytes],
                )?;
                tx.commit()?;
                Ok(Commit::Done)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: KvQuota = KvQuota {
        keys: 1000,
        bytes: 1 << 20,
    };

    fn set(k: &str, v: &str) -> KvChanges {
        KvChanges {
            write: [(k.to_owned(), Some(v.to_owned()))].into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn kv_is_per_tenant_persists_and_counts_usage() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = KvStore::new(Db::open(dir.path()).unwrap());
            assert_eq!(
                s.commit("a", set("next-ip", "10"), BIG).await.unwrap(),
                Commit::Done
            );
            s.commit("b", set("next-ip", "20"), BIG).await.unwrap();
            s.commit("a", set("next-ip", "11"), BIG).await.unwrap();
        }
        let s = KvStore::new(Db::open(dir.path()).unwrap());
        assert_eq!(s.get("a", "next-ip").await.unwrap().as_deref(), Some("11"));
        assert_eq!(s.get("b", "next-ip").await.unwrap().as_deref(), Some("20"));
        assert_eq!(s.usage("a").await.unwrap(), KvUsage { keys: 1, bytes: 9 });
        let delete = KvChanges {
            write: [("next-ip".to_owned(), None)].into(),
            ..Default::default()
        };
        s.commit("a", delete, BIG).await.unwrap();
        assert_eq!(s.get("a", "next-ip").await.unwrap(), None);
        assert_eq!(s.usage("a").await.unwrap(), KvUsage::default());
    }

    #[tokio::test]
    async fn a_stale_read_conflicts_and_a_quota_holds() {
        let s = KvStore::new(Db::in_memory().unwrap());
        s.commit("t", set("n", "1"), BIG).await.unwrap();
        let stale = KvChanges {
            read: [("n".to_owned(), None)].into(),
            write: [("n".to_owned(), Some("1".to_owned()))].into(),
        };
        assert_eq!(
            s.commit("t", stale, BIG).await.unwrap(),
            Commit::Conflict { key: "n".into() }
        );
        let small = KvQuota {
            keys: 2,
            bytes: 100,
        };
        s.commit("t", set("m", "2"), small).await.unwrap();
        let third = s.commit("t", set("o", "3"), small).await.unwrap();
        assert!(matches!(third, Commit::OverQuota { .. }), "{third:?}");
        assert_eq!(s.get("t", "o").await.unwrap(), None);
        // Overwriting within the quota still works.
        assert_eq!(
            s.commit("t", set("m", "3"), small).await.unwrap(),
            Commit::Done
        );
    }
}

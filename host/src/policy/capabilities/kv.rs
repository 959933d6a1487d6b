//! `kv`: tenant-scoped, persistent key-value state (allocating hostnames or addresses from
//! a pool, as ZTPServer's `allocate()` does).
//!
//! A call is a transaction. Reads go to the database (and see the call's own writes);
//! writes are kept in the call and committed together when the call returns a decision,
//! after checking that every value the call read is unchanged. A call that fails (an
//! error, a trap, a limit) leaves nothing behind; a call that lost a race is run again by
//! the engine ([`crate::policy::PolicyEngine::call`]). `compare-and-swap` and `increment`
//! are built on the same reads and writes, so 32 calls allocating at once get 32 distinct
//! values. Quotas (`limits.kv_keys`, `limits.kv_kib`) are checked at commit.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::TenantCaps;
use crate::policy::contract::v0_2::ztpd::policy::kv as wit;
use crate::policy::state::HostState;
use crate::store::kv::{KvChanges, KvQuota, KvStore, MAX_KEY, MAX_VALUE};

/// Keys one call may write (a call is a transaction held in memory until it ends).
pub const MAX_WRITES_PER_CALL: usize = 1000;

pub(crate) struct KvCall {
    tenant: Arc<str>,
    store: KvStore,
    quota: KvQuota,
    changes: KvChanges,
}

/// What a finished call leaves for the engine to commit.
pub(crate) struct KvCallResult {
    pub(crate) changes: KvChanges,
    pub(crate) quota: KvQuota,
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(format!(
            "kv key must be 1 to {MAX_KEY} bytes, got {}",
            key.len()
        ));
    }
    Ok(())
}

impl KvCall {
    pub(crate) fn new(caps: &Arc<TenantCaps>) -> Self {
        KvCall {
            tenant: caps.tenant.clone(),
            store: caps.kv.clone(),
            quota: caps.kv_quota,
            changes: KvChanges::default(),
        }
    }

    pub(crate) fn into_result(self) -> KvCallResult {
        KvCallResult {
            changes: self.changes,
            quota: self.quota,
        }
    }

    /// The value as this call sees it: its own write, else the stored value (remembered,
    /// so the commit can check nobody changed it meanwhile).
    pub(crate) async fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        check_key(key)?;
        if let Some(written) = self.changes.write.get(key) {
            return Ok(written.clone());
        }
        if let Some(seen) = self.changes.read.get(key) {
            return Ok(seen.clone());
        }
        let value = self
            .store
            .get(&self.tenant, key)
            .await
            .map_err(|e| format!("kv get {key:?}: {e}"))?;
        self.changes.read.insert(key.to_owned(), value.clone());
        Ok(value)
    }

    fn write(&mut self, key: &str, value: Option<String>) -> Result<(), String> {
        check_key(key)?;
        if let Some(v) = &value
            && v.len() > MAX_VALUE
        {
            return Err(format!(
                "kv set {key:?}: value is {} bytes, the limit is {MAX_VALUE}",
                v.len()
            ));
        }
        if !self.changes.write.contains_key(key) && self.changes.write.len() >= MAX_WRITES_PER_CALL
        {
            return Err(format!(
                "kv: one call may write at most {MAX_WRITES_PER_CALL} keys"
            ));
        }
        self.changes.write.insert(key.to_owned(), value);
        Ok(())
    }

    pub(crate) fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        self.write(key, Some(value))
    }

    pub(crate) fn delete(&mut self, key: &str) -> Result<(), String> {
        self.write(key, None)
    }

    pub(crate) async fn compare_and_swap(
        &mut self,
        key: &str,
        expected: Option<String>,
        new: Option<String>,
    ) -> Result<bool, String> {
        if self.get(key).await? != expected {
            return Ok(false);
        }
        self.write(key, new)?;
        Ok(true)
    }

    pub(crate) async fn increment(&mut self, key: &str, delta: i64) -> Result<i64, String> {
        let current = match self.get(key).await? {
            None => 0,
            Some(text) => text.trim().parse::<i64>().map_err(|_| {
                format!(
                    "kv increment {key:?}: the value {:?} is not an integer",
                    text.chars().take(40).collect::<String>()
                )
            })?,
        };
        let new = current
            .checked_add(delta)
            .ok_or_else(|| format!("kv increment {key:?}: {current} + {delta} overflows"))?;
        self.write(key, Some(new.to_string()))?;
        Ok(new)
    }
}

impl wit::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<String>, String> {
        self.in_import = Some("kv.get");
        let out = self.kv.get(&key).await;
        self.in_import = None;
        out
    }

    async fn set(&mut self, key: String, value: String) -> Result<(), String> {
        self.kv.set(&key, value)
    }

    async fn delete(&mut self, key: String) -> Result<(), String> {
        self.kv.delete(&key)
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
    ) -> Result<bool, String> {
        self.in_import = Some("kv.compare-and-swap");
        let out = self.kv.compare_and_swap(&key, expected, new).await;
        self.in_import = None;
        out
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, String> {
        self.in_import = Some("kv.increment");
        let out = self.kv.increment(&key, delta).await;
        self.in_import = None;
        out
    }
}

pub(in crate::policy) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

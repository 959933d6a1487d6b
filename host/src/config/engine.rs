//! `[engine]`: the policy engine's pool, and the per-tenant `limits` a policy call runs
//! under.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    max_instances: Option<u32>,
    max_memory_mib: Option<u32>,
}

/// Engine-wide settings: the size of the instance pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Instances that may run at once across all tenants (the pool size).
    pub max_instances: u32,
    /// Largest memory limit any tenant may set; the pool reserves slots this big.
    pub max_memory_bytes: usize,
    /// Folder for compiled policies; none compiles at every start.
    pub cache_dir: Option<std::path::PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_instances: 256,
            max_memory_bytes: 256 << 20,
            cache_dir: None,
        }
    }
}

impl RawEngine {
    pub(super) fn validate(self) -> Result<EngineConfig, String> {
        let d = EngineConfig::default();
        let engine = EngineConfig {
            max_instances: self.max_instances.unwrap_or(d.max_instances),
            max_memory_bytes: self
                .max_memory_mib
                .map_or(d.max_memory_bytes, |m| (m as usize) << 20),
            cache_dir: None,
        };
        if engine.max_instances == 0 {
            return Err("engine.max_instances must be at least 1".into());
        }
        if engine.max_instances > 10_000 {
            return Err("engine.max_instances must be at most 10000".into());
        }
        Ok(engine)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    memory_mib: Option<u32>,
    instances: Option<u32>,
    /// Device requests per second (a burst of the same size is allowed).
    rate_per_s: Option<u32>,
    cpu_ms: Option<u64>,
    wall_ms: Option<u64>,
    reply_kib: Option<u32>,
    log_lines: Option<u32>,
    log_kib: Option<u32>,
    plan_steps: Option<u32>,
    kv_keys: Option<u64>,
    kv_kib: Option<u64>,
    pushes: Option<usize>,
    jobs: Option<usize>,
}

/// Per-tenant limits for one policy call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory an instance may grow to.
    pub memory_bytes: usize,
    /// CPU time the guest may run for.
    pub cpu: Duration,
    /// Wall time for the whole call, host imports included.
    pub wall: Duration,
    /// Largest reply body (or rendered config) the policy may produce.
    pub reply_bytes: usize,
    /// Instances of this tenant's policies that may run at once.
    pub instances: usize,
    /// Device requests per second; none means unlimited.
    pub rate_per_s: Option<u32>,
    /// Log lines a call may write (its own and what it prints); more are counted.
    pub log_lines: u32,
    /// Log bytes a call may write.
    pub log_bytes: usize,
    /// Steps a plan may have.
    pub plan_steps: usize,
    /// Keys the tenant may keep in kv.
    pub kv_keys: u64,
    /// Key and value bytes the tenant may keep in kv.
    pub kv_bytes: u64,
    /// SSH pushes of this tenant at once (within `jobs.max_concurrent_pushes`).
    pub pushes: usize,
    /// Jobs of this tenant running at once; further call-backs are refused (429 with
    /// Retry-After).
    pub jobs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 32 << 20,
            cpu: Duration::from_millis(100),
            wall: Duration::from_secs(5),
            reply_bytes: 4 << 20,
            instances: 32,
            rate_per_s: None,
            log_lines: 100,
            log_bytes: 64 << 10,
            plan_steps: 64,
            kv_keys: 10_000,
            kv_bytes: 16 << 20,
            pushes: 16,
            jobs: 1024,
        }
    }
}

impl RawLimits {
    pub(super) fn validate(self, tenant: &str, engine: &EngineConfig) -> Result<Limits, String> {
        let d = Limits::default();
        let limits = Limits {
            memory_bytes: self
                .memory_mib
                .map_or(d.memory_bytes, |m| (m as usize) << 20),
            cpu: self.cpu_ms.map_or(d.cpu, Duration::from_millis),
            wall: self.wall_ms.map_or(d.wall, Duration::from_millis),
            reply_bytes: self.reply_kib.map_or(d.reply_bytes, |k| (k as usize) << 10),
            instances: self.instances.map_or(d.instances, |n| n as usize),
            rate_per_s: self.rate_per_s.filter(|r| *r > 0),
            log_lines: self.log_lines.unwrap_or(d.log_lines),
            log_bytes: self.log_kib.map_or(d.log_bytes, |k| (k as usize) << 10),
            plan_steps: self.plan_steps.map_or(d.plan_steps, |n| n as usize),
            kv_keys: self.kv_keys.unwrap_or(d.kv_keys),
            kv_bytes: self.kv_kib.map_or(d.kv_bytes, |k| k << 10),
            pushes: self.pushes.unwrap_or(d.pushes).max(1),
            jobs: self.jobs.unwrap_or(d.jobs).max(1),
        };
        if limits.instances == 0 {
            return Err(format!(
                "tenant {tenant:?}: limits.instances must be at least 1"
            ));
        }
        if limits.memory_bytes > engine.max_memory_bytes {
            return Err(format!(
                "tenant {tenant:?}: limits.memory_mib = {} is above engine.max_memory_mib = {}",
                limits.memory_bytes >> 20,
                engine.max_memory_bytes >> 20
            ));
        }
        if limits.cpu.is_zero() || limits.wall.is_zero() {
            return Err(format!(
                "tenant {tenant:?}: limits.cpu_ms and limits.wall_ms must be above 0"
            ));
        }
        if limits.reply_bytes == 0 {
            return Err(format!(
                "tenant {tenant:?}: limits.reply_kib must be at least 1"
            ));
        }
        Ok(limits)
    }
}

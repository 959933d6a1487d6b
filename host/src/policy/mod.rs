//! The policy engine: runs tenants' WebAssembly policies, one fresh sandboxed instance per
//! device request.
//!
//! Shape (after wasmtime's `examples/fast_instantiation.rs`): one [`Engine`] with the
//! pooling allocator, one [`Linker`] holding the imports of every contract version, one
//! pre-instantiated policy per loaded version ([`contract::Pre`]), and per call a new
//! [`Store`], instance, call and drop. A semaphore sized to the pool stands in front.
//!
//! - [`capabilities`]: the host imports, one file each (log, inventory, templates,
//!   settings, kv).
//! - [`contract`]: the bindings of each supported WIT version.
//! - [`state`]: what one call's store holds.
//! - [`cache`]: compiled policies on disk.
//!
//! Limits per call, each turned into an error that names the tenant and the limit:
//! - CPU: an epoch ticker thread advances the engine's epoch every [`TICK`]; at every tick
//!   a running guest yields to the async runtime (so a spinning policy cannot starve other
//!   requests) and is trapped once it has run for its CPU budget.
//! - Wall time: a tokio timeout around the call, because an epoch cannot interrupt a guest
//!   that waits in a host import; the error says whether it was waiting in an import or
//!   for a turn on a busy host.
//! - Memory: a `ResourceLimiter` refuses linear-memory growth past the tenant's limit.
//! - Stack: wasmtime's `max_wasm_stack`; unbounded recursion traps.
//! - The decision: its bytes (bodies, variables, step data) against the reply limit, its
//!   steps against the plan limit.
//!
//! A call is a transaction over the tenant's kv state ([`capabilities::kv`]): its writes
//! commit when it returns a decision; a call that lost a race is run again, within the
//! same wall-time budget.
//!
//! WASI is linked with an empty context (no preopens, no environment, no network, stdin
//! closed) because a std Rust guest imports it even when unused; stdout and stderr are
//! captured and written to the log.

mod cache;
pub mod capabilities;
pub mod contract;
pub(crate) mod state;

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

pub use crate::config::{EngineConfig, Limits};
use crate::model::{Decision, DeviceRequest};
use crate::store::kv::Commit;
pub use cache::{CacheUse, CompiledCache};
pub use capabilities::TenantCaps;
use state::{CallInfo, Exceeded, HostState};

/// How often the epoch advances: the granularity of CPU limits and of yielding.
pub const TICK: Duration = Duration::from_millis(2);

/// How many times a call that lost a kv race is run again before it fails.
pub const KV_RETRIES: u32 = 64;

/// Why a policy could not be loaded or a call failed. Messages name the policy and the
/// tenant and say what to change.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {policy}: not a valid WebAssembly component: {detail}")]
    Compile { policy: String, detail: String },
    #[error(
        "policy {policy} does not fit any contract version ztpd supports (guest-sdk/wit/policy.wit): {detail}; build it with the ztpd-guest SDK and export_policy!"
    )]
    Contract { policy: String, detail: String },
    #[error("policy engine: {0}")]
    Engine(String),
    #[error(
        "policy {policy} of tenant {tenant} ran longer than its CPU limit of {limit_ms} ms (limits.cpu_ms)"
    )]
    Cpu {
        policy: String,
        tenant: String,
        limit_ms: u128,
    },
    #[error(
        "policy {policy} of tenant {tenant} did not finish within {limit_ms} ms (limits.wall_ms): {waiting}"
    )]
    WallTime {
        policy: String,
        tenant: String,
        limit_ms: u128,
        waiting: String,
    },
    #[error(
        "policy {policy} of tenant {tenant} tried to grow its memory past its limit of {limit_mib} MiB (limits.memory_mib)"
    )]
    Memory {
        policy: String,
        tenant: String,
        limit_mib: usize,
    },
    #[error("policy {policy} of tenant {tenant} overflowed its stack (unbounded recursion?)")]
    Stack { policy: String, tenant: String },
    #[error(
        "policy {policy} of tenant {tenant} returned a decision of {size} bytes, over its limit of {limit} bytes (limits.reply_kib)"
    )]
    ReplyTooLarge {
        policy: String,
        tenant: String,
        size: usize,
        limit: usize,
    },
    #[error(
        "policy {policy} of tenant {tenant} returned a plan of {steps} steps, over its limit of {limit} (limits.plan_steps)"
    )]
    TooManySteps {
        policy: String,
        tenant: String,
        steps: usize,
        limit: usize,
    },
    #[error(
        "policy {policy} of tenant {tenant}: its kv writes would exceed the tenant's quota of {keys} keys and {kib} KiB (limits.kv_keys, limits.kv_kib); nothing was written"
    )]
    KvQuota {
        policy: String,
        tenant: String,
        keys: u64,
        kib: u64,
    },
    #[error(
        "policy {policy} of tenant {tenant}: kv key {key:?} kept changing under it; gave up after {tries} runs"
    )]
    KvContention {
        policy: String,
        tenant: String,
        key: String,
        tries: u32,
    },
    #[error("policy {policy} of tenant {tenant}: cannot commit its kv writes: {detail}")]
    KvStore {
        policy: String,
        tenant: String,
        detail: String,
    },
    #[error("policy {policy} of tenant {tenant} crashed: {detail}")]
    Trap {
        policy: String,
        tenant: String,
        detail: String,
    },
    #[error("policy {policy} of tenant {tenant} returned an error: {message}")]
    Returned {
        policy: String,
        tenant: String,
        message: String,
    },
}

/// Longest policy error message kept (in the log and the job's record).
pub const MAX_POLICY_ERROR: usize = 1024;

/// A compiled policy, validated against a contract version and ready to instantiate.
pub struct LoadedPolicy {
    name: Arc<str>,
    hash: String,
    pre: contract::Pre,
}

impl std::fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .field("contract", &self.pre.version())
            .finish()
    }
}

impl LoadedPolicy {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the component bytes, hex: the policy version recorded with decisions.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The contract version it was built against (`0.1.0`, `0.2.0`).
    pub fn contract(&self) -> &'static str {
        self.pre.version()
    }
}

/// The policy engine. Cheap to share behind an `Arc`.
pub struct PolicyEngine {
    engine: Engine,
    linker: Linker<HostState>,
    permits: Arc<Semaphore>,
    max_memory_bytes: usize,
    cache: Option<CompiledCache>,
    _ticker: EpochTicker,
}

/// One run's outcome, before the kv commit.
enum Run {
    Decided(Decision, capabilities::kv::KvCallResult),
    Failed(PolicyError),
}

impl PolicyEngine {
    pub fn new(config: &EngineConfig) -> Result<Self, PolicyError> {
        let engine_err = |e: wasmtime::Error| PolicyError::Engine(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 2)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 2)
            .total_stacks(config.max_instances)
            .max_memory_size(config.max_memory_bytes)
            // Keep a little of each memory slot resident: reusing a slot then costs no
            // page faults for the guest's stack and small heap.
            .linear_memory_keep_resident(128 << 10)
            .table_keep_resident(16 << 10)
            // Host imports run on the fiber stack; keeping its top resident saves the
            // page faults of a freshly decommitted stack on every call.
            .async_stack_keep_resident(64 << 10);
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .max_wasm_stack(512 << 10)
            .async_stack_size(1 << 20)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(engine_err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        contract::add_to_linker(&mut linker).map_err(engine_err)?;
        let ticker = EpochTicker::start(&engine);
        Ok(PolicyEngine {
            engine,
            linker,
            permits: Arc::new(Semaphore::new(config.max_instances as usize)),
            max_memory_bytes: config.max_memory_bytes,
            cache: config.cache_dir.clone().map(CompiledCache::new),
            _ticker: ticker,
        })
    }

    /// The largest per-tenant memory limit this engine can honour.
    pub fn max_memory_bytes(&self) -> usize {
        self.max_memory_bytes
    }

    /// Compile and validate a policy. This is CPU-heavy (Cranelift); call it off the
    /// request path (`spawn_blocking`).
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<LoadedPolicy, PolicyError> {
        let hash = hex::encode(Sha256::digest(bytes));
        let compile_error = |e: wasmtime::Error| PolicyError::Compile {
            policy: name.to_owned(),
            detail: format!("{e:#}"),
        };
        let component = match &self.cache {
            Some(cache) => {
                let (component, used) = cache
                    .load(&self.engine, bytes, &hash)
                    .map_err(compile_error)?;
                tracing::debug!(policy = name, ?used, "policy code loaded");
                component
            }
            None => Component::new(&self.engine, bytes).map_err(compile_error)?,
        };
        let contract = |detail: String| PolicyError::Contract {
            policy: name.to_owned(),
            detail,
        };
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| contract(format!("{e:#}")))?;
        let pre = contract::Pre::new(instance_pre).map_err(contract)?;
        Ok(LoadedPolicy {
            name: name.into(),
            hash,
            pre,
        })
    }

    /// Run `policy` on one request in a fresh instance (again, if its kv reads went stale
    /// before it could commit), within the tenant's wall-time limit.
    pub async fn call(
        &self,
        policy: &LoadedPolicy,
        caps: &Arc<TenantCaps>,
        request: &DeviceRequest,
    ) -> Result<Decision, PolicyError> {
        let limits = caps.limits;
        let info = CallInfo {
            tenant: caps.tenant.clone(),
            device: request.identity.label(),
            policy: policy.name.clone(),
        };
        let deadline = tokio::time::Instant::now() + limits.wall;
        let mut tries = 0;
        loop {
            tries += 1;
            match self.run_once(policy, caps, request, &info, deadline).await {
                Run::Failed(e) => return Err(e),
                Run::Decided(decision, kv) => {
                    if kv.changes.is_empty() {
                        return Ok(decision);
                    }
                    let commit = caps
                        .kv
                        .commit(&caps.tenant, kv.changes, kv.quota)
                        .await
                        .map_err(|e| PolicyError::KvStore {
                            policy: policy.name.to_string(),
                            tenant: caps.tenant.to_string(),
                            detail: e.to_string(),
                        })?;
                    match commit {
                        Commit::Done => return Ok(decision),
                        Commit::OverQuota { quota, .. } => {
                            return Err(PolicyError::KvQuota {
                                policy: policy.name.to_string(),
                                tenant: caps.tenant.to_string(),
                                keys: quota.keys,
                                kib: quota.bytes >> 10,
                            });
                        }
                        Commit::Conflict { key } if tries >= KV_RETRIES => {
                            return Err(PolicyError::KvContention {
                                policy: policy.name.to_string(),
                                tenant: caps.tenant.to_string(),
                                key,
                                tries,
                            });
                        }
                        Commit::Conflict { key } => {
                            tracing::debug!(tenant = &*caps.tenant, policy = &*policy.name, %key, tries, "kv read went stale; running the call again");
                        }
                    }
                }
            }
        }
    }

    async fn run_once(
        &self,
        policy: &LoadedPolicy,
        caps: &Arc<TenantCaps>,
        request: &DeviceRequest,
        info: &CallInfo,
        deadline: tokio::time::Instant,
    ) -> Run {
        let limits = caps.limits;
        let tenant = || caps.tenant.to_string();
        let name = || policy.name.to_string();
        let _permit = match self.permits.acquire().await {
            Ok(p) => p,
            Err(_) => {
                return Run::Failed(PolicyError::Engine("policy engine is shutting down".into()));
            }
        };
        let cpu_ticks = limits.cpu.as_millis().div_ceil(TICK.as_millis()).max(1) as u32;
        let state = HostState::new(caps, info.clone(), cpu_ticks);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if state.cpu_ticks_left == 0 {
                state.exceeded = Some(Exceeded::Cpu);
                return Ok(wasmtime::UpdateDeadline::Interrupt);
            }
            state.cpu_ticks_left -= 1;
            state.cpu_ticks_used += 1;
            // tokio's yield_now puts the call behind every other ready task (a plain
            // self-wake would re-run it at once from the worker's LIFO slot), so a
            // spinning policy gets one tick at a time and others run in between.
            Ok(wasmtime::UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        let outcome = tokio::time::timeout_at(deadline, policy.pre.call(&mut store, request)).await;
        let state = store.data_mut();
        state.flush_output();
        let state = store.data();
        let failed = match outcome {
            Err(_elapsed) => PolicyError::WallTime {
                policy: name(),
                tenant: tenant(),
                limit_ms: limits.wall.as_millis(),
                waiting: match state.in_import {
                    Some(import) => format!("it was waiting in the host import {import}"),
                    None => format!(
                        "it had run {} ms of CPU and was waiting for a turn on a busy host",
                        u128::from(state.cpu_ticks_used) * TICK.as_millis()
                    ),
                },
            },
            Ok(Err(trap)) => match state.exceeded() {
                Some(Exceeded::Cpu) => PolicyError::Cpu {
                    policy: name(),
                    tenant: tenant(),
                    limit_ms: limits.cpu.as_millis(),
                },
                Some(Exceeded::Memory) => PolicyError::Memory {
                    policy: name(),
                    tenant: tenant(),
                    limit_mib: limits.memory_bytes >> 20,
                },
                None if matches!(trap.downcast_ref::<Trap>(), Some(Trap::StackOverflow)) => {
                    PolicyError::Stack {
                        policy: name(),
                        tenant: tenant(),
                    }
                }
                None => PolicyError::Trap {
                    policy: name(),
                    tenant: tenant(),
                    detail: state.describe_trap(&trap),
                },
            },
            Ok(Ok(Err(message))) => PolicyError::Returned {
                policy: name(),
                tenant: tenant(),
                message: capabilities::log::escape(&message, MAX_POLICY_ERROR),
            },
            Ok(Ok(Ok(decision))) => {
                let size = decision.bytes();
                if size > limits.reply_bytes {
                    return Run::Failed(PolicyError::ReplyTooLarge {
                        policy: name(),
                        tenant: tenant(),
                        size,
                        limit: limits.reply_bytes,
                    });
                }
                if let Decision::Plan(plan) = &decision
                    && plan.steps.len() > limits.plan_steps
                {
                    return Run::Failed(PolicyError::TooManySteps {
                        policy: name(),
                        tenant: tenant(),
                        steps: plan.steps.len(),
                        limit: limits.plan_steps,
                    });
                }
                let kv = store.into_data().kv.into_result();
                return Run::Decided(decision, kv);
            }
        };
        Run::Failed(failed)
    }
}

/// Advances the engine's epoch every [`TICK`] on its own thread. Holds only a weak
/// reference, and stops when dropped or when the engine is gone.
struct EpochTicker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("ztpd-epoch".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            });
        if let Err(e) = spawned {
            // Without a ticker no CPU limit fires; say so loudly rather than run unguarded.
            tracing::error!("cannot start the epoch ticker thread: {e}; CPU limits will not fire");
        }
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

//! The policy engine: runs tenants' WebAssembly policies, one fresh sandboxed instance per
//! device request.
//!
//! Shape (after wasmtime's `examples/fast_instantiation.rs`): one [`Engine`] with the
//! pooling allocator, one [`Linker`], one `PolicyPre` (an `InstancePre` checked against
//! the contract) per loaded policy, and per call a new [`Store`], instance, call and drop.
//! A semaphore sized to the pool stands in front of it.
//!
//! Limits per call, each turned into an error that names the tenant and the limit:
//! - CPU: an epoch ticker thread advances the engine's epoch every [`TICK`]; at every tick
//!   a running guest yields to the async runtime (so a spinning policy cannot starve other
//!   requests) and is trapped once it has run for its CPU budget.
//! - Wall time: a tokio timeout around the call, because an epoch cannot interrupt a guest
//!   that waits in a host import.
//! - Memory: a `ResourceLimiter` refuses linear-memory growth past the tenant's limit.
//! - Stack: wasmtime's `max_wasm_stack`; unbounded recursion traps.
//! - Reply size: checked when the decision is lifted out of the guest.
//!
//! WASI is linked with an empty context (no preopens, no environment, no network, stdin
//! closed) because a std Rust guest imports it even when unused; stdout and stderr are
//! captured and written to the log.

mod cache;
mod convert;
mod host;

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

use crate::decision::Decision;
use crate::request::DeviceRequest;

pub use cache::{CacheUse, CompiledCache};
pub use host::Capabilities;
use host::{Exceeded, HostState};

/// The host's bindings of `guest-sdk/wit/policy.wit`: the same file the guest SDK binds.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../guest-sdk/wit",
        world: "policy",
        imports: { default: async },
        exports: { default: async },
    });
}

/// How often the epoch advances: the granularity of CPU limits and of yielding.
pub const TICK: Duration = Duration::from_millis(2);

/// Engine-wide settings: the size of the instance pool.
#[derive(Debug, Clone)]
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 32 << 20,
            cpu: Duration::from_millis(100),
            wall: Duration::from_secs(5),
            reply_bytes: 4 << 20,
            instances: 32,
        }
    }
}

/// Why a policy could not be loaded or a call failed. Messages name the policy and the
/// tenant and say what to change.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {policy}: not a valid WebAssembly component: {detail}")]
    Compile { policy: String, detail: String },
    #[error(
        "policy {policy} does not fit ztpd's contract (guest-sdk/wit/policy.wit): {detail}; build it with the ztpd-guest SDK and export_policy!"
    )]
    Contract { policy: String, detail: String },
    #[error("policy engine: {0}")]
    Engine(String),
    #[error("policy {policy} of tenant {tenant} ran longer than its CPU limit of {limit_ms} ms")]
    Cpu {
        policy: String,
        tenant: String,
        limit_ms: u128,
    },
    #[error(
        "policy {policy} of tenant {tenant} did not finish within {limit_ms} ms (waiting in a host call)"
    )]
    WallTime {
        policy: String,
        tenant: String,
        limit_ms: u128,
    },
    #[error(
        "policy {policy} of tenant {tenant} tried to grow its memory past its limit of {limit_mib} MiB"
    )]
    Memory {
        policy: String,
        tenant: String,
        limit_mib: usize,
    },
    #[error("policy {policy} of tenant {tenant} overflowed its stack (unbounded recursion?)")]
    Stack { policy: String, tenant: String },
    #[error(
        "policy {policy} of tenant {tenant} produced a reply of {size} bytes, over its limit of {limit} bytes"
    )]
    ReplyTooLarge {
        policy: String,
        tenant: String,
        size: usize,
        limit: usize,
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

/// A compiled policy, validated against the contract and ready to instantiate.
pub struct LoadedPolicy {
    name: String,
    hash: String,
    pre: bindings::PolicyPre<HostState>,
}

impl std::fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("name", &self.name)
            .field("hash", &self.hash)
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
        bindings::Policy::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
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
        let contract = |e: wasmtime::Error| PolicyError::Contract {
            policy: name.to_owned(),
            detail: format!("{e:#}"),
        };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(contract)?;
        let pre = bindings::PolicyPre::new(instance_pre).map_err(contract)?;
        Ok(LoadedPolicy {
            name: name.to_owned(),
            hash,
            pre,
        })
    }

    /// Run `policy` on one request in a fresh instance.
    pub async fn call(
        &self,
        policy: &LoadedPolicy,
        caps: Arc<Capabilities>,
        limits: &Limits,
        request: &DeviceRequest,
    ) -> Result<Decision, PolicyError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PolicyError::Engine("policy engine is shutting down".into()))?;
        let tenant = caps.tenant.clone();
        let device = request.identity.label();
        let cpu_ticks = limits.cpu.as_millis().div_ceil(TICK.as_millis()).max(1) as u32;
        let state = HostState::new(caps, device.clone(), limits.memory_bytes, cpu_ticks);
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
            // tokio's yield_now puts the call behind every other ready task (a plain
            // self-wake would re-run it at once from the worker's LIFO slot), so a
            // spinning policy gets one tick at a time and others run in between.
            Ok(wasmtime::UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        let wit_request = convert::request_to_wit(request);

        let run = async {
            let instance = policy.pre.instantiate_async(&mut store).await?;
            instance.call_handle(&mut store, &wit_request).await
        };
        let outcome = tokio::time::timeout(limits.wall, run).await;
        let state = store.data();
        state.flush_output(&policy.name);

        match outcome {
            Err(_elapsed) => Err(PolicyError::WallTime {
                policy: policy.name.clone(),
                tenant,
                limit_ms: limits.wall.as_millis(),
            }),
            Ok(Err(trap)) => Err(match state.exceeded() {
                Some(Exceeded::Cpu) => PolicyError::Cpu {
                    policy: policy.name.clone(),
                    tenant,
                    limit_ms: limits.cpu.as_millis(),
                },
                Some(Exceeded::Memory) => PolicyError::Memory {
                    policy: policy.name.clone(),
                    tenant,
                    limit_mib: limits.memory_bytes >> 20,
                },
                None if matches!(trap.downcast_ref::<Trap>(), Some(Trap::StackOverflow)) => {
                    PolicyError::Stack {
                        policy: policy.name.clone(),
                        tenant,
                    }
                }
                None => PolicyError::Trap {
                    policy: policy.name.clone(),
                    tenant,
                    detail: state.describe_trap(&trap),
                },
            }),
            Ok(Ok(Err(message))) => Err(PolicyError::Returned {
                policy: policy.name.clone(),
                tenant,
                message,
            }),
            Ok(Ok(Ok(decision))) => {
                let decision = convert::decision_from_wit(decision);
                let size = convert::reply_size(&decision);
                if size > limits.reply_bytes {
                    return Err(PolicyError::ReplyTooLarge {
                        policy: policy.name.clone(),
                        tenant,
                        size,
                        limit: limits.reply_bytes,
                    });
                }
                Ok(decision)
            }
        }
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

//! Per-call store state and the host imports a policy may use (`interface host` in the
//! WIT): log, inventory lookup, template rendering and key-value state — each scoped to
//! the tenant the request was routed to, which the policy cannot choose.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::ztpd::policy::{host, types};
use crate::inventory::Inventory;
use crate::store::{MAX_KV_KEY, MAX_KV_VALUE, Store};
use crate::templates::Templates;

/// What a tenant's policy can reach: its own inventory, templates and key-value state.
pub struct Capabilities {
    pub tenant: String,
    pub inventory: Arc<Inventory>,
    pub templates: Arc<Templates>,
    pub store: Store,
}

/// Which limit a call hit, recorded by the limiter or the epoch callback so the trap can
/// be reported as what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exceeded {
    Cpu,
    Memory,
}

/// How much a policy may print to stdout and stderr per call; more is a trap.
const OUTPUT_CAPACITY: usize = 64 << 10;
/// Log lines from a policy are cut here.
const MAX_LOG_LINE: usize = 4 << 10;

pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: Limiter,
    caps: Arc<Capabilities>,
    device: String,
    pub(super) cpu_ticks_left: u32,
    pub(super) exceeded: Option<Exceeded>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl HostState {
    pub(super) fn new(
        caps: Arc<Capabilities>,
        device: String,
        memory_bytes: usize,
        cpu_ticks: u32,
    ) -> Self {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        // The defaults already mean: no preopens, no env, no args, stdin closed, every
        // socket address denied, no name lookups. Say the network part explicitly.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_bytes,
                exceeded: false,
            },
            caps,
            device,
            cpu_ticks_left: cpu_ticks,
            exceeded: None,
            stdout,
            stderr,
        }
    }

    /// Write what the guest printed to the log, one event per line.
    pub(super) fn flush_output(&self, policy: &str) {
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            if bytes.is_empty() {
                continue;
            }
            for line in String::from_utf8_lossy(&bytes).lines() {
                tracing::info!(
                    target: "ztpd::policy",
                    tenant = %self.caps.tenant,
                    device = %self.device,
                    policy,
                    stream,
                    "{line}"
                );
            }
        }
    }

    /// A trap's message, with what the guest last wrote to stderr: a Rust panic prints
    /// `thread '..' panicked at file:line:col:` and then its message just before the abort.
    pub(super) fn describe_trap(&self, trap: &wasmtime::Error) -> String {
        let what = match trap.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::UnreachableCodeReached) => "it panicked or aborted".to_owned(),
            // A guest's shadow stack sits at the bottom of linear memory; overflowing it
            // wraps the stack pointer to an address far out of bounds.
            Some(wasmtime::Trap::MemoryOutOfBounds) => {
                "it accessed memory out of bounds (usually a stack overflow from unbounded recursion)".to_owned()
            }
            Some(t) => t.to_string(),
            None => format!("{trap:#}"),
        };
        match panic_message(&String::from_utf8_lossy(&self.stderr.contents())) {
            Some(message) => format!("{what}: {message}"),
            None => what,
        }
    }
}

/// The panic message (or else the last meaningful line) in a guest's stderr.
fn panic_message(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    match lines.iter().rposition(|l| l.contains(" panicked at ")) {
        Some(at) if at + 1 < lines.len() => Some(lines[at + 1..].join(" ")),
        Some(at) => Some(lines[at].to_owned()),
        None => lines.last().map(|l| (*l).to_owned()),
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past the tenant's limit and remembers that it did.
pub(super) struct Limiter {
    memory_bytes: usize,
    exceeded: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.exceeded = true;
            // Trap at once: a Rust guest would abort on the failed allocation anyway,
            // and the trap carries the reason.
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes exceeded",
                self.memory_bytes
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl HostState {
    /// The limit this call hit, if any.
    pub(super) fn exceeded(&self) -> Option<Exceeded> {
        if self.limiter.exceeded {
            Some(Exceeded::Memory)
        } else {
            self.exceeded
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    async fn log(&mut self, level: host::Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [cut]");
        }
        let (tenant, device) = (&self.caps.tenant, &self.device);
        match level {
            host::Level::Trace => {
                tracing::trace!(target: "ztpd::policy", %tenant, %device, "{message}")
            }
            host::Level::Debug => {
                tracing::debug!(target: "ztpd::policy", %tenant, %device, "{message}")
            }
            host::Level::Info => {
                tracing::info!(target: "ztpd::policy", %tenant, %device, "{message}")
            }
            host::Level::Warn => {
                tracing::warn!(target: "ztpd::policy", %tenant, %device, "{message}")
            }
            host::Level::Error => {
                tracing::error!(target: "ztpd::policy", %tenant, %device, "{message}")
            }
        }
    }

    async fn inventory_lookup(
        &mut self,
        field: String,
        value: String,
    ) -> Result<Option<String>, String> {
        self.caps
            .inventory
            .lookup(&field, &value)
            .await
            .map(|found| found.map(|json| json.to_string()))
    }

    async fn render(&mut self, template: String, vars: String) -> Result<String, String> {
        self.caps
            .templates
            .render_json(&template, &vars)
            .map(|text| text.to_string())
            .map_err(|e| e.to_string())
    }

    async fn kv_get(&mut self, key: String) -> Result<Option<String>, String> {
        check_kv_key(&key)?;
        self.caps
            .store
            .kv_get(&self.caps.tenant, &key)
            .await
            .map_err(|e| e.to_string())
    }

    async fn kv_set(&mut self, key: String, value: String) -> Result<(), String> {
        check_kv_key(&key)?;
        if value.len() > MAX_KV_VALUE {
            return Err(format!(
                "kv-set {key:?}: value is {} bytes, the limit is {MAX_KV_VALUE}",
                value.len()
            ));
        }
        self.caps
            .store
            .kv_set(&self.caps.tenant, &key, &value)
            .await
            .map_err(|e| e.to_string())
    }

    async fn kv_delete(&mut self, key: String) -> Result<(), String> {
        check_kv_key(&key)?;
        self.caps
            .store
            .kv_delete(&self.caps.tenant, &key)
            .await
            .map_err(|e| e.to_string())
    }
}

fn check_kv_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KV_KEY {
        return Err(format!(
            "kv key must be 1 to {MAX_KV_KEY} bytes, got {}",
            key.len()
        ));
    }
    Ok(())
}

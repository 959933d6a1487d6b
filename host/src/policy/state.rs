//! What one policy call's `Store` holds: the empty WASI context a std guest needs, the
//! memory limiter, the call's identity and CPU budget, and each capability's per-call
//! state (see [`super::capabilities`]).

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::capabilities::{
    TenantCaps, inventory::InventoryCall, kv::KvCall, log::LogCall, settings::SettingsCall,
    templates::TemplatesCall,
};

/// Which limit a call hit, recorded by the limiter or the epoch callback so the trap can
/// be reported as what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exceeded {
    Cpu,
    Memory,
}

/// How much a policy may print to stdout and stderr per call; more is a trap.
const OUTPUT_CAPACITY: usize = 64 << 10;

/// Who is calling, for log lines and error messages.
#[derive(Debug, Clone)]
pub(crate) struct CallInfo {
    pub(crate) tenant: Arc<str>,
    pub(crate) device: String,
    pub(crate) policy: Arc<str>,
}

pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: Limiter,
    pub(crate) info: CallInfo,
    pub(super) cpu_ticks_left: u32,
    pub(super) cpu_ticks_used: u32,
    pub(super) exceeded: Option<Exceeded>,
    /// The host import the guest is waiting in, if any (for the wall-time message).
    pub(crate) in_import: Option<&'static str>,
    pub(crate) log: LogCall,
    pub(crate) inventory: InventoryCall,
    pub(crate) templates: TemplatesCall,
    pub(crate) settings: SettingsCall,
    pub(crate) kv: KvCall,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl HostState {
    pub(super) fn new(caps: &Arc<TenantCaps>, info: CallInfo, cpu_ticks: u32) -> Self {
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
                memory_bytes: caps.limits.memory_bytes,
                exceeded: false,
            },
            cpu_ticks_left: cpu_ticks,
            cpu_ticks_used: 0,
            exceeded: None,
            in_import: None,
            log: LogCall::new(caps),
            inventory: InventoryCall::new(caps),
            templates: TemplatesCall::new(caps),
            settings: SettingsCall::new(caps),
            kv: KvCall::new(caps),
            info,
            stdout,
            stderr,
        }
    }

    /// Write what the guest printed to the log (through the log budget), then the log's
    /// summary of lines it did not write.
    pub(super) fn flush_output(&mut self) {
        for (stream, pipe) in [
            ("stdout", self.stdout.clone()),
            ("stderr", self.stderr.clone()),
        ] {
            let bytes = pipe.contents();
            if bytes.is_empty() {
                continue;
            }
            for line in String::from_utf8_lossy(&bytes).lines() {
                self.log.write_output(&self.info, stream, line);
            }
        }
        self.log.finish(&self.info);
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
            Some(message) => format!(
                "{what}: {}",
                super::capabilities::log::escape(&message, 1024)
            ),
            None => what,
        }
    }

    /// The limit this call hit, if any.
    pub(super) fn exceeded(&self) -> Option<Exceeded> {
        if self.limiter.exceeded {
            Some(Exceeded::Memory)
        } else {
            self.exceeded
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
        Some(at) => match lines.get(at + 1..) {
            Some(rest) if !rest.is_empty() => Some(rest.join(" ")),
            _ => lines.get(at).map(|l| (*l).to_owned()),
        },
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

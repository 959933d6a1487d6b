//! `log`: a policy writes lines to ztpd's log, tagged with tenant, device and policy.
//!
//! A call has a budget of lines and bytes (`limits.log_lines`, `limits.log_kib`): past it,
//! lines are counted, not written, and one line at the end of the call says how many were
//! dropped. Control characters — newlines, ANSI escapes — are escaped, so a policy cannot
//! forge a log line or repaint a terminal; a line is cut at [`MAX_LINE`] bytes. What a
//! policy prints to stdout or stderr goes through the same budget.

use std::fmt::Write as _;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::TenantCaps;
use crate::policy::contract::v0_2::ztpd::policy::log as wit;
use crate::policy::state::{CallInfo, HostState};

/// Longest line written; longer ones are cut and marked.
pub const MAX_LINE: usize = 4 << 10;

/// Severity, as the contract names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One call's log budget.
pub(crate) struct LogCall {
    lines_left: u32,
    bytes_left: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
}

/// `text` with control characters escaped (`\n`, `\x1b`, ...) and cut at `max` bytes.
pub fn escape(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 8);
    for c in text.chars() {
        if out.len() >= max {
            out.push_str(" [cut]");
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

impl LogCall {
    pub(crate) fn new(caps: &Arc<TenantCaps>) -> Self {
        LogCall {
            lines_left: caps.limits.log_lines,
            bytes_left: caps.limits.log_bytes,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }

    /// Take budget for a line of `len` bytes; false if there is none left.
    fn take(&mut self, len: usize) -> bool {
        if self.lines_left == 0 || self.bytes_left < len {
            self.dropped_lines += 1;
            self.dropped_bytes += len as u64;
            return false;
        }
        self.lines_left -= 1;
        self.bytes_left -= len;
        true
    }

    pub(crate) fn write(&mut self, info: &CallInfo, level: Level, message: &str) {
        if !self.take(message.len()) {
            return;
        }
        let line = escape(message, MAX_LINE);
        let (tenant, device, policy) = (&*info.tenant, &info.device, &*info.policy);
        match level {
            Level::Trace => {
                tracing::trace!(target: "ztpd::policy", tenant, device, policy, "{line}")
            }
            Level::Debug => {
                tracing::debug!(target: "ztpd::policy", tenant, device, policy, "{line}")
            }
            Level::Info => {
                tracing::info!(target: "ztpd::policy", tenant, device, policy, "{line}")
            }
            Level::Warn => {
                tracing::warn!(target: "ztpd::policy", tenant, device, policy, "{line}")
            }
            Level::Error => {
                tracing::error!(target: "ztpd::policy", tenant, device, policy, "{line}")
            }
        }
    }

    /// A line the guest printed to stdout or stderr.
    pub(crate) fn write_output(&mut self, info: &CallInfo, stream: &str, line: &str) {
        if !self.take(line.len()) {
            return;
        }
        let line = escape(line, MAX_LINE);
        tracing::info!(
            target: "ztpd::policy",
            tenant = &*info.tenant,
            device = %info.device,
            policy = &*info.policy,
            stream,
            "{line}"
        );
    }

    /// Say once how much the budget dropped.
    pub(crate) fn finish(&mut self, info: &CallInfo) {
        if self.dropped_lines > 0 {
            tracing::warn!(
                target: "ztpd::policy",
                tenant = &*info.tenant,
                device = %info.device,
                policy = &*info.policy,
                "the policy's log was over its budget (limits.log_lines, limits.log_kib): {} lines, {} bytes not written",
                self.dropped_lines,
                self.dropped_bytes
            );
            self.dropped_lines = 0;
            self.dropped_bytes = 0;
        }
    }
}

impl From<wit::Level> for Level {
    fn from(l: wit::Level) -> Self {
        match l {
            wit::Level::Trace => Level::Trace,
            wit::Level::Debug => Level::Debug,
            wit::Level::Info => Level::Info,
            wit::Level::Warn => Level::Warn,
            wit::Level::Error => Level::Error,
        }
    }
}

impl wit::Host for HostState {
    async fn write(&mut self, level: wit::Level, message: String) {
        self.log.write(&self.info, level.into(), &message);
    }
}

pub(in crate::policy) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_lines_cut() {
        assert_eq!(
            escape("a\nb\x1b[31mred\r\t", 100),
            "a\\nb\\x1b[31mred\\r\\t"
        );
        let long = "x".repeat(10);
        assert_eq!(escape(&long, 4), "xxxx [cut]");
    }
}

//! Where the SDK's imports go: to the host through the contract in a WebAssembly build,
//! to the in-memory [`crate::testing::TestHost`] in a native build (a policy's own
//! `cargo test`).

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::bindings::ztpd::policy::{inventory, kv, log, settings, templates};

    pub(crate) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::write(level, message);
    }

    pub(crate) fn lookup(field: &str, value: &str) -> Result<Option<String>, String> {
        inventory::lookup(field, value)
    }

    pub(crate) fn render(template: &str, vars: &str) -> Result<String, String> {
        templates::render(template, vars)
    }

    pub(crate) fn setting(key: &str) -> Option<String> {
        settings::get(key)
    }

    pub(crate) fn settings() -> Vec<(String, String)> {
        settings::get_all()
    }

    pub(crate) fn kv_get(key: &str) -> Result<Option<String>, String> {
        kv::get(key)
    }

    pub(crate) fn kv_set(key: &str, value: &str) -> Result<(), String> {
        kv::set(key, value)
    }

    pub(crate) fn kv_delete(key: &str) -> Result<(), String> {
        kv::delete(key)
    }

    pub(crate) fn kv_compare_and_swap(
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, String> {
        kv::compare_and_swap(key, expected, new)
    }

    pub(crate) fn kv_increment(key: &str, delta: i64) -> Result<i64, String> {
        kv::increment(key, delta)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;
    use crate::testing::with_host;

    pub(crate) fn log(level: Level, message: &str) {
        with_host(|h| h.log(level, message));
    }

    pub(crate) fn lookup(field: &str, value: &str) -> Result<Option<String>, String> {
        with_host(|h| h.lookup(field, value))
    }

    pub(crate) fn render(template: &str, vars: &str) -> Result<String, String> {
        with_host(|h| h.render_json(template, vars))
    }

    pub(crate) fn setting(key: &str) -> Option<String> {
        with_host(|h| h.setting(key))
    }

    pub(crate) fn settings() -> Vec<(String, String)> {
        with_host(|h| h.settings())
    }

    pub(crate) fn kv_get(key: &str) -> Result<Option<String>, String> {
        with_host(|h| h.kv_get(key))
    }

    pub(crate) fn kv_set(key: &str, value: &str) -> Result<(), String> {
        with_host(|h| h.kv_put(key, Some(value)))
    }

    pub(crate) fn kv_delete(key: &str) -> Result<(), String> {
        with_host(|h| h.kv_put(key, None))
    }

    pub(crate) fn kv_compare_and_swap(
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, String> {
        with_host(|h| {
            if h.kv_get(key)?.as_deref() != expected {
                return Ok(false);
            }
            h.kv_put(key, new)?;
            Ok(true)
        })
    }

    pub(crate) fn kv_increment(key: &str, delta: i64) -> Result<i64, String> {
        with_host(|h| {
            let now = match h.kv_get(key)? {
                None => 0,
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("kv increment {key:?}: the value is not an integer"))?,
            };
            let new = now
                .checked_add(delta)
                .ok_or_else(|| format!("kv increment {key:?} overflows"))?;
            h.kv_put(key, Some(&new.to_string()))?;
            Ok(new)
        })
    }
}

pub(crate) use imp::*;

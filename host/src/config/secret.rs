//! Secrets in the configuration: every secret setting may be written inline (`token`),
//! named as an environment variable (`token_env`) or as a file (`token_file`), exactly one
//! of them. They are read here, once, while the configuration is validated, and held as
//! [`SecretString`]s whose `Debug` prints nothing, so no secret reaches a log line or an
//! error message by accident.

use std::path::Path;

pub use secrecy::{ExposeSecret, SecretString};

/// Where a secret setting comes from, as written: `{key}`, `{key}_env`, `{key}_file`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretSource<'a> {
    pub inline: Option<&'a str>,
    pub env: Option<&'a str>,
    pub file: Option<&'a Path>,
}

impl SecretSource<'_> {
    /// Whether any of the three forms is given.
    pub fn is_given(&self) -> bool {
        self.inline.is_some() || self.env.is_some() || self.file.is_some()
    }
}

/// Read a secret written as `{key}`, `{key}_env` or `{key}_file` (exactly one of them).
/// `what` names the setting in messages, e.g. `tenant "lab": inventory 1 (netbox)`. A
/// file's trailing newline is dropped; an empty secret is refused.
pub fn resolve(what: &str, key: &str, source: SecretSource<'_>) -> Result<SecretString, String> {
    let value = match (source.inline, source.env, source.file) {
        (Some(v), None, None) => v.to_owned(),
        (None, Some(var), None) => std::env::var(var)
            .map_err(|_| format!("{what}: {key}_env names {var}, which is not set"))?,
        (None, None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("{what}: cannot read {key}_file {}: {e}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        _ => {
            return Err(format!(
                "{what}: give exactly one of {key}, {key}_env or {key}_file"
            ));
        }
    };
    if value.is_empty() {
        return Err(format!("{what}: {key} is empty"));
    }
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_source_and_never_printed() {
        let s = resolve(
            "t",
            "token",
            SecretSource {
                inline: Some("hunter2-hunter2"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.expose_secret(), "hunter2-hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let err = resolve(
            "tenant \"lab\"",
            "token",
            SecretSource {
                inline: Some("a"),
                env: Some("B"),
                file: None,
            },
        )
        .unwrap_err();
        assert!(err.contains("exactly one") && err.contains("lab"), "{err}");
        let err = resolve(
            "x",
            "token",
            SecretSource {
                env: Some("ZTPD_TEST_SURELY_UNSET_VAR"),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.contains("ZTPD_TEST_SURELY_UNSET_VAR"), "{err}");
    }
}

//! The configuration file (TOML): raw serde structs that refuse unknown keys, validated
//! into plain data ([`Config`]) with every path resolved against the file's own folder and
//! every secret (environment variable, file) read once, here.
//!
//! This module is a leaf: it imports nothing else of ztpd, so every other module may use
//! its types. One file per section:
//!
//! - [`tenant`]: `[[tenants]]`, with its `limits` ([`engine`]), `inventory`
//!   ([`inventory`]), `credentials` ([`credentials`]), `monitoring` and `webhooks`
//!   ([`monitoring`]) and `dhcp` ([`dhcp`]) tables;
//! - [`engine`]: `[engine]`; [`jobs`]: `[jobs]`; [`admin`]: `[[admin.tokens]]`, `[api]`;
//!   [`http`]: `[http]`;
//! - [`secret`]: how `x`, `x_env` and `x_file` settings are read.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data_dir = "ztpd-data"
//!
//! [[tenants]]
//! name = "default"
//! default = true
//! policy = "target/wasm32-wasip2/policy/arista_dynamic.wasm"
//! templates = "templates/arista"
//! inventory = { file = "inventory/arista/swinfo.json", key = "mac" }
//! limits = { memory_mib = 32, cpu_ms = 100 }
//! ```

pub mod admin;
pub mod credentials;
pub mod dhcp;
pub mod engine;
pub mod http;
pub mod inventory;
pub mod jobs;
pub mod monitoring;
pub mod secret;
pub mod tenant;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use admin::{AdminToken, ApiConfig};
pub use credentials::{CredentialConfig, CredentialSecret};
pub use dhcp::SubnetConfig;
pub use engine::{EngineConfig, Limits};
pub use http::HttpConfig;
pub use inventory::{InventoryConfig, KeyKind, NetBoxConfig};
pub use jobs::{JobsConfig, SshSettings};
pub use monitoring::{HostEvent, PrtgAuth, PrtgConfig, SinkConfig, WebhookConfig};
pub use secret::{ExposeSecret, SecretString};
pub use tenant::{Approval, CallbackConfig, PolicySlot, Reclaim, SmokeRequest, TenantConfig};

/// The demo site's configuration, built into the binary: `ztpd serve` with no `--config`
/// runs it. Its relative paths point into the source tree ztpd was built from.
pub const DEMO_CONFIG: &str = include_str!("../../../ztpd.toml");
/// Where the demo configuration's relative paths are resolved.
pub const DEMO_BASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// Environment variable that overrides the listen address.
pub const LISTEN_ENV: &str = "ZTPD_LISTEN";
/// Environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "ZTPD_DATA_DIR";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration {origin}: {detail}")]
    Parse { origin: String, detail: String },
    #[error("configuration {origin}: {detail}")]
    Invalid { origin: String, detail: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    /// Watch policy and template files and swap in changes while serving.
    watch: Option<bool>,
    #[serde(default)]
    engine: engine::RawEngine,
    #[serde(default)]
    jobs: jobs::RawJobs,
    #[serde(default)]
    api: admin::RawApi,
    #[serde(default)]
    http: http::RawHttp,
    #[serde(default)]
    admin: admin::RawAdmin,
    #[serde(default)]
    tenants: Vec<tenant::RawTenant>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from, for messages: a path or "built-in demo".
    pub origin: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub engine: EngineConfig,
    pub jobs: JobsConfig,
    /// The status and admin APIs: their listener and tokens.
    pub api: ApiConfig,
    /// Limits every HTTP client is held to.
    pub http: HttpConfig,
    /// Watch policy and template files and swap in changes.
    pub watch: bool,
    /// Tokens of the admin API.
    pub admin_tokens: Vec<AdminToken>,
    pub tenants: Vec<TenantConfig>,
}

impl Config {
    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// The built-in demo site.
    pub fn demo() -> Result<Self, ConfigError> {
        Self::parse(
            DEMO_CONFIG,
            "built-in demo (ztpd.toml)",
            Path::new(DEMO_BASE),
        )
    }

    /// Validate configuration text; relative paths are resolved against `base`.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            detail: e.to_string(),
        })?;
        Self::validate(raw, origin, base).map_err(|detail| ConfigError::Invalid {
            origin: origin.to_owned(),
            detail,
        })
    }

    fn validate(raw: RawConfig, origin: &str, base: &Path) -> Result<Self, String> {
        let listen_text = std::env::var(LISTEN_ENV)
            .ok()
            .or(raw.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            format!(
                "listen address {listen_text:?} is not an IP:port such as 127.0.0.1:8080 (set by `listen` or {LISTEN_ENV})"
            )
        })?;
        let resolve_path = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let engine = raw.engine.validate()?;
        if raw.tenants.is_empty() {
            return Err(
                "no tenants: add a [[tenants]] table with name, policy, templates and inventory"
                    .into(),
            );
        }
        let mut tenants: Vec<TenantConfig> = Vec::new();
        for t in raw.tenants {
            if tenants.iter().any(|o| o.name == t.name()) {
                return Err(format!("tenant {:?} is defined twice", t.name()));
            }
            let t = t.validate(&engine, &resolve_path)?;
            if t.default && tenants.iter().any(|o| o.default) {
                return Err(format!(
                    "tenant {:?} and another tenant both say default = true; only one may",
                    t.name
                ));
            }
            tenants.push(t);
        }
        dhcp::check_all(
            tenants
                .iter()
                .flat_map(|t| t.dhcp.iter().map(|d| (t.name.as_str(), d))),
        )?;
        let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
        let admin_tokens = raw.admin.validate(&names)?;
        let api = raw.api.validate(listen, !admin_tokens.is_empty())?;
        let http = raw.http.validate()?;
        let data_dir = match std::env::var_os(DATA_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => resolve_path(&raw.data_dir.unwrap_or_else(|| PathBuf::from("ztpd-data"))),
        };
        let engine = EngineConfig {
            cache_dir: Some(data_dir.join("compiled")),
            ..engine
        };
        Ok(Config {
            origin: origin.to_owned(),
            listen,
            data_dir,
            engine,
            jobs: raw.jobs.validate()?,
            api,
            http,
            watch: raw.watch.unwrap_or(true),
            admin_tokens,
            tenants,
        })
    }
}

/// A URL setting that must be `http://` or `https://`; stored without a trailing slash.
fn http_url(what: &str, key: &str, url: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(format!(
            "{what}: {key} = {url:?} must start with http:// or https://"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[api]
open = true
[[tenants]]
name = "lab"
policy = "p.wasm"
templates = "t"
inventory = { file = "i.json", key = "mac" }
"#;

    #[test]
    fn paths_resolve_against_the_file() {
        let c = Config::parse(MIN, "x.toml", Path::new("/etc/ztpd")).unwrap();
        assert_eq!(
            c.tenants[0].policies,
            vec![PolicySlot {
                dialect: None,
                path: Path::new("/etc/ztpd/p.wasm").to_owned()
            }]
        );
        assert_eq!(c.data_dir, Path::new("/etc/ztpd/ztpd-data"));
        assert_eq!(c.tenants[0].limits, Limits::default());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = Config::parse(&format!("lisen = \"x\"\n{MIN}"), "x.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml") && err.contains("lisen"), "{err}");
    }

    #[test]
    fn bad_values_say_what_to_do() {
        let err = Config::parse(
            &MIN.replace("\"lab\"", "\"Lab A\""),
            "x.toml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("a-z"), "{err}");
        let err = Config::parse("", "x.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[[tenants]]"), "{err}");
        let err = Config::parse(
            &format!("{MIN}limits = {{ memory_mib = 100000 }}\n"),
            "x.toml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_memory_mib"), "{err}");
    }

    #[test]
    fn settings_are_text_and_bounded() {
        let c = Config::parse(
            &format!("{MIN}settings = {{ credential = \"ztp\", wait_s = 30, save = true }}\n"),
            "x.toml",
            Path::new("."),
        )
        .unwrap();
        let s = &c.tenants[0].settings;
        assert_eq!(s.get("credential").map(String::as_str), Some("ztp"));
        assert_eq!(s.get("wait_s").map(String::as_str), Some("30"));
        assert_eq!(s.get("save").map(String::as_str), Some("true"));
        let err = Config::parse(
            &format!("{MIN}settings = {{ list = [1, 2] }}\n"),
            "x.toml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("settings.list") && err.contains("array"),
            "{err}"
        );
    }

    #[test]
    fn the_demo_parses() {
        let c = Config::demo().unwrap();
        assert!(c.tenants.iter().any(|t| t.default));
    }
}

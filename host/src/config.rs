//! The configuration file (TOML): raw serde structs that refuse unknown keys, validated
//! into [`Config`] with every path resolved against the file's own folder.
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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::credentials::{RawCredential, resolve_secret};
use crate::inventory::KeyKind;
use crate::jobs::RunnerConfig;
use crate::monitoring::{PrtgAuth, PrtgConfig, SinkConfig, WebhookConfig};
use crate::netbox::NetBoxConfig;
use crate::policy::{EngineConfig, Limits};
use crate::request::Dialect;
use crate::ssh::SshSettings;

/// The demo site's configuration, built into the binary: `ztpd serve` with no `--config`
/// runs it. Its relative paths point into the source tree ztpd was built from.
pub const DEMO_CONFIG: &str = include_str!("../../ztpd.toml");
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
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    jobs: RawJobs,
    #[serde(default)]
    api: RawApi,
    /// Watch policy and template files and swap in changes while serving.
    watch: Option<bool>,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    tenants: Vec<RawTenant>,
}

/// A sample request a new policy version must answer without failing before it goes live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeRequest {
    pub dialect: Dialect,
    /// Path and query, e.g. `/dynconfig` or `/dynconfig?site=lab`.
    #[serde(default = "default_smoke_path")]
    pub path: String,
    pub mac: Option<String>,
    pub serial: Option<String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

fn default_smoke_path() -> String {
    "/".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobs {
    max_concurrent_pushes: Option<usize>,
    job_timeout_s: Option<u64>,
    ssh_connect_timeout_s: Option<u64>,
    ssh_command_timeout_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    #[serde(default)]
    tokens: Vec<RawAdminToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdminToken {
    /// Recorded in the audit log as who made a change.
    name: String,
    /// Only this tenant; none means an operator token (every tenant).
    tenant: Option<String>,
    token: Option<String>,
    token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    /// Environment variable holding the bearer token the status API requires.
    token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCallback {
    url: Option<String>,
    token_ttl_s: Option<u64>,
    secret_env: Option<String>,
    script_credential: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    max_instances: Option<u32>,
    max_memory_mib: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    name: String,
    #[serde(default)]
    default: bool,
    /// Source networks of this tenant's devices: devices there use the plain paths, and
    /// requests from elsewhere are refused (`/t/{tenant}/...` included).
    #[serde(default)]
    sources: Vec<ipnet::IpNet>,
    /// One policy for every dialect...
    policy: Option<PathBuf>,
    /// ...or one per dialect: `arista-eos`, `cisco-iosxe`, `generic`.
    #[serde(default)]
    policies: std::collections::BTreeMap<Dialect, PathBuf>,
    templates: PathBuf,
    inventory: OneOrMany<RawInventory>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    callback: RawCallback,
    #[serde(default)]
    credentials: std::collections::HashMap<String, RawCredential>,
    smoke: Option<SmokeRequest>,
    /// Monitoring sinks by name, for plans' `register-monitoring` steps.
    #[serde(default)]
    monitoring: std::collections::BTreeMap<String, RawSink>,
    /// Webhooks by name: job events and plans' `webhook` steps.
    #[serde(default)]
    webhooks: std::collections::BTreeMap<String, RawWebhook>,
    /// DHCP subnets: exported by `ztpd dhcp export`, served by the built-in server.
    #[serde(default)]
    dhcp: Vec<crate::dhcp::RawSubnet>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

/// An inventory back end: a file (`file`, `key`) or a NetBox (`netbox` and a token).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    file: Option<PathBuf>,
    key: Option<KeyKind>,
    /// NetBox base URL.
    netbox: Option<String>,
    token: Option<String>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    timeout_s: Option<u64>,
    retries: Option<u32>,
    cache_s: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SinkKind {
    Prtg,
}

/// A PRTG object id, written as a number or a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ObjectId {
    Number(u64),
    Text(String),
}

impl ObjectId {
    fn into_text(self) -> String {
        match self {
            ObjectId::Number(n) => n.to_string(),
            ObjectId::Text(t) => t,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    kind: SinkKind,
    url: String,
    apitoken: Option<String>,
    apitoken_env: Option<String>,
    apitoken_file: Option<PathBuf>,
    username: Option<String>,
    passhash: Option<String>,
    passhash_env: Option<String>,
    passhash_file: Option<PathBuf>,
    /// Group new devices go into.
    group: Option<ObjectId>,
    /// Device that new devices are copied from.
    template: Option<ObjectId>,
    timeout_s: Option<u64>,
    retries: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    secret: Option<String>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    #[serde(default)]
    events: Vec<String>,
    max_attempts: Option<u32>,
    backoff_ms: Option<u64>,
    timeout_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mib: Option<u32>,
    instances: Option<u32>,
    /// Device requests per second (a burst of the same size is allowed).
    rate_per_s: Option<u32>,
    cpu_ms: Option<u64>,
    wall_ms: Option<u64>,
    reply_kib: Option<u32>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from, for messages: a path or "built-in demo".
    pub origin: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub engine: EngineConfig,
    pub jobs: RunnerConfig,
    /// The bearer token the status API requires, if any.
    pub api_token: Option<String>,
    /// Watch policy and template files and swap in changes.
    pub watch: bool,
    /// Tokens of the admin API.
    pub admin_tokens: Vec<crate::admin::AdminToken>,
    pub tenants: Vec<TenantConfig>,
}

#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub name: String,
    /// Devices that use the plain paths (`/dynconfig`) belong to this tenant.
    pub default: bool,
    /// Source networks; empty means devices may come from anywhere.
    pub sources: Vec<ipnet::IpNet>,
    /// Device requests per second; none means unlimited.
    pub rate_per_s: Option<u32>,
    /// Policy files: `None` answers every dialect without a policy of its own.
    pub policies: Vec<(Option<Dialect>, PathBuf)>,
    pub templates: PathBuf,
    /// Inventory back ends, asked in order.
    pub inventory: Vec<InventoryConfig>,
    pub limits: Limits,
    pub callback: CallbackConfig,
    /// Credentials by name, secrets not yet resolved.
    pub credentials: std::collections::HashMap<String, RawCredential>,
    /// A request every new policy version must answer before it goes live.
    pub smoke: Option<SmokeRequest>,
    /// Monitoring sinks by name.
    pub monitoring: std::collections::BTreeMap<String, SinkConfig>,
    /// Webhooks by name.
    pub webhooks: std::collections::BTreeMap<String, WebhookConfig>,
    /// DHCP subnets (see [`crate::dhcp`]).
    pub dhcp: Vec<crate::dhcp::SubnetConfig>,
}

/// How the IOS XE script calls back, and how its token is checked.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// Base URL the served script calls back to (`http://192.0.2.1:8080`); none means
    /// the scheme and Host of the script request.
    pub url: Option<String>,
    pub token_ttl_s: u64,
    /// The token secret, from the environment variable the configuration names; none
    /// means a secret generated once and kept in the database.
    pub secret: Option<String>,
    /// The credential whose username and password the script creates on the device.
    pub script_credential: Option<String>,
}

#[derive(Debug, Clone)]
pub enum InventoryConfig {
    File { path: PathBuf, key: KeyKind },
    NetBox(NetBoxConfig),
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
        let invalid = |detail: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            detail,
        };
        let listen_text = std::env::var(LISTEN_ENV)
            .ok()
            .or(raw.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(format!(
                "listen address {listen_text:?} is not an IP:port such as 127.0.0.1:8080 (set by `listen` or {LISTEN_ENV})"
            ))
        })?;
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let engine = {
            let d = EngineConfig::default();
            EngineConfig {
                max_instances: raw.engine.max_instances.unwrap_or(d.max_instances),
                max_memory_bytes: raw
                    .engine
                    .max_memory_mib
                    .map_or(d.max_memory_bytes, |m| (m as usize) << 20),
                cache_dir: None,
            }
        };
        if engine.max_instances == 0 {
            return Err(invalid("engine.max_instances must be at least 1".into()));
        }
        if raw.tenants.is_empty() {
            return Err(invalid(
                "no tenants: add a [[tenants]] table with name, policy, templates and inventory"
                    .into(),
            ));
        }
        let mut tenants: Vec<TenantConfig> = Vec::new();
        for t in raw.tenants {
            if !valid_name(&t.name) {
                return Err(invalid(format!(
                    "tenant name {:?} must be 1-64 characters of a-z, 0-9, '-' or '_' (it appears in URLs: /t/{{tenant}}/...)",
                    t.name
                )));
            }
            if tenants.iter().any(|o| o.name == t.name) {
                return Err(invalid(format!("tenant {:?} is defined twice", t.name)));
            }
            if t.default && tenants.iter().any(|o| o.default) {
                return Err(invalid(format!(
                    "tenant {:?} and another tenant both say default = true; only one may",
                    t.name
                )));
            }
            let d = Limits::default();
            let limits = Limits {
                memory_bytes: t
                    .limits
                    .memory_mib
                    .map_or(d.memory_bytes, |m| (m as usize) << 20),
                cpu: t.limits.cpu_ms.map_or(d.cpu, Duration::from_millis),
                wall: t.limits.wall_ms.map_or(d.wall, Duration::from_millis),
                reply_bytes: t
                    .limits
                    .reply_kib
                    .map_or(d.reply_bytes, |k| (k as usize) << 10),
                instances: t.limits.instances.map_or(d.instances, |n| n as usize),
            };
            if limits.instances == 0 {
                return Err(invalid(format!(
                    "tenant {:?}: limits.instances must be at least 1",
                    t.name
                )));
            }
            if limits.memory_bytes > engine.max_memory_bytes {
                return Err(invalid(format!(
                    "tenant {:?}: limits.memory_mib = {} is above engine.max_memory_mib = {}",
                    t.name,
                    limits.memory_bytes >> 20,
                    engine.max_memory_bytes >> 20
                )));
            }
            if limits.cpu.is_zero() || limits.wall.is_zero() {
                return Err(invalid(format!(
                    "tenant {:?}: limits.cpu_ms and limits.wall_ms must be above 0",
                    t.name
                )));
            }
            let secret = match &t.callback.secret_env {
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    invalid(format!(
                        "tenant {:?}: callback.secret_env names {var}, which is not set",
                        t.name
                    ))
                })?),
                None => None,
            };
            if let Some(c) = &t.callback.script_credential
                && !t.credentials.contains_key(c)
            {
                return Err(invalid(format!(
                    "tenant {:?}: callback.script_credential = {c:?} but there is no [tenants.credentials.{c}]",
                    t.name
                )));
            }
            let credentials = t
                .credentials
                .into_iter()
                .map(|(name, mut c)| {
                    c.password_file = c.password_file.map(|p| resolve(&p));
                    c.key_file = c.key_file.map(|p| resolve(&p));
                    (name, c)
                })
                .collect();
            let mut policies: Vec<(Option<Dialect>, PathBuf)> = t
                .policies
                .iter()
                .map(|(d, p)| (Some(*d), resolve(p)))
                .collect();
            if let Some(p) = &t.policy {
                policies.push((None, resolve(p)));
            }
            if policies.is_empty() {
                return Err(invalid(format!(
                    "tenant {:?} has no policy: set policy = \"file.wasm\" or [tenants.policies] per dialect",
                    t.name
                )));
            }
            let what = format!("tenant {:?}", t.name);
            let inventory = t
                .inventory
                .into_vec()
                .into_iter()
                .enumerate()
                .map(|(i, raw)| {
                    inventory_config(&format!("{what}: inventory {}", i + 1), raw, &resolve)
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(invalid)?;
            let monitoring = t
                .monitoring
                .into_iter()
                .map(|(name, raw)| {
                    let c = sink_config(&format!("{what}: monitoring.{name}"), raw, &resolve)?;
                    Ok((name, c))
                })
                .collect::<Result<_, String>>()
                .map_err(invalid)?;
            let webhooks = t
                .webhooks
                .into_iter()
                .map(|(name, raw)| {
                    let c = webhook_config(&format!("{what}: webhooks.{name}"), raw, &resolve)?;
                    Ok((name, c))
                })
                .collect::<Result<_, String>>()
                .map_err(invalid)?;
            let dhcp = t
                .dhcp
                .into_iter()
                .map(|d| crate::dhcp::SubnetConfig::validate(&t.name, d, t.callback.url.as_deref()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid)?;
            tenants.push(TenantConfig {
                name: t.name,
                default: t.default,
                sources: t.sources,
                rate_per_s: t.limits.rate_per_s.filter(|r| *r > 0),
                policies,
                templates: resolve(&t.templates),
                inventory,
                limits,
                callback: CallbackConfig {
                    url: t.callback.url.map(|u| u.trim_end_matches('/').to_owned()),
                    token_ttl_s: t.callback.token_ttl_s.unwrap_or(3600),
                    secret,
                    script_credential: t.callback.script_credential,
                },
                credentials,
                smoke: t.smoke,
                monitoring,
                webhooks,
                dhcp,
            });
        }
        crate::dhcp::check_all(
            tenants
                .iter()
                .flat_map(|t| t.dhcp.iter().map(|d| (t.name.as_str(), d))),
        )
        .map_err(invalid)?;
        let jobs = {
            let d = RunnerConfig::default();
            let ssh = SshSettings::default();
            RunnerConfig {
                max_concurrent_pushes: raw
                    .jobs
                    .max_concurrent_pushes
                    .unwrap_or(d.max_concurrent_pushes),
                job_timeout: raw
                    .jobs
                    .job_timeout_s
                    .map_or(d.job_timeout, Duration::from_secs),
                ssh: SshSettings {
                    connect_timeout: raw
                        .jobs
                        .ssh_connect_timeout_s
                        .map_or(ssh.connect_timeout, Duration::from_secs),
                    command_timeout: raw
                        .jobs
                        .ssh_command_timeout_s
                        .map_or(ssh.command_timeout, Duration::from_secs),
                    ..ssh
                },
            }
        };
        let mut admin_tokens = Vec::new();
        for t in raw.admin.tokens {
            if let Some(tenant) = &t.tenant
                && !tenants.iter().any(|c| &c.name == tenant)
            {
                return Err(invalid(format!(
                    "admin token {:?} names tenant {tenant:?}, which is not configured",
                    t.name
                )));
            }
            let secret = match (t.token, t.token_env) {
                (Some(s), None) => s,
                (None, Some(var)) => std::env::var(&var).map_err(|_| {
                    invalid(format!(
                        "admin token {:?}: token_env names {var}, which is not set",
                        t.name
                    ))
                })?,
                _ => {
                    return Err(invalid(format!(
                        "admin token {:?}: give exactly one of token or token_env",
                        t.name
                    )));
                }
            };
            if secret.len() < 16 {
                return Err(invalid(format!(
                    "admin token {:?} is shorter than 16 characters; use a long random value",
                    t.name
                )));
            }
            admin_tokens.push(crate::admin::AdminToken {
                name: t.name,
                tenant: t.tenant,
                secret,
            });
        }
        let api_token = match raw.api.token_env {
            Some(var) => Some(
                std::env::var(&var)
                    .map_err(|_| invalid(format!("api.token_env names {var}, which is not set")))?,
            ),
            None => None,
        };
        let data_dir = match std::env::var_os(DATA_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => resolve(&raw.data_dir.unwrap_or_else(|| PathBuf::from("ztpd-data"))),
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
            jobs,
            api_token,
            watch: raw.watch.unwrap_or(true),
            admin_tokens,
            tenants,
        })
    }
}

fn http_url(what: &str, key: &str, url: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(format!(
            "{what}: {key} = {url:?} must start with http:// or https://"
        ))
    }
}

fn inventory_config(
    what: &str,
    raw: RawInventory,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<InventoryConfig, String> {
    match (raw.file, raw.netbox) {
        (Some(file), None) => {
            let key = raw.key.ok_or_else(|| {
                format!("{what}: a file inventory needs key = \"mac\" or key = \"serial\"")
            })?;
            if raw.token.is_some() || raw.token_env.is_some() || raw.token_file.is_some() {
                return Err(format!(
                    "{what}: token settings belong to a netbox inventory, not a file"
                ));
            }
            Ok(InventoryConfig::File {
                path: resolve(&file),
                key,
            })
        }
        (None, Some(url)) => {
            let what = format!("{what} (netbox)");
            if raw.key.is_some() {
                return Err(format!(
                    "{what}: key is for file inventories; NetBox is searched by serial, MAC or name"
                ));
            }
            let token_file = raw.token_file.map(|p| resolve(&p));
            let token = resolve_secret(
                &what,
                "token",
                raw.token.as_deref(),
                raw.token_env.as_deref(),
                token_file.as_deref(),
            )?;
            Ok(InventoryConfig::NetBox(NetBoxConfig {
                url: http_url(&what, "netbox", &url)?,
                token,
                timeout: Duration::from_secs(raw.timeout_s.unwrap_or(2).max(1)),
                retries: raw.retries.unwrap_or(2),
                cache_ttl: Duration::from_secs(raw.cache_s.unwrap_or(30)),
            }))
        }
        _ => Err(format!(
            "{what}: give either file (with key) or netbox (a URL, with token or token_env)"
        )),
    }
}

fn sink_config(
    what: &str,
    raw: RawSink,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<SinkConfig, String> {
    match raw.kind {
        SinkKind::Prtg => {
            let any_token =
                raw.apitoken.is_some() || raw.apitoken_env.is_some() || raw.apitoken_file.is_some();
            let auth = match (any_token, raw.username) {
                (true, None) => PrtgAuth::ApiToken(resolve_secret(
                    what,
                    "apitoken",
                    raw.apitoken.as_deref(),
                    raw.apitoken_env.as_deref(),
                    raw.apitoken_file.map(|p| resolve(&p)).as_deref(),
                )?),
                (false, Some(username)) => PrtgAuth::Passhash {
                    username,
                    passhash: resolve_secret(
                        what,
                        "passhash",
                        raw.passhash.as_deref(),
                        raw.passhash_env.as_deref(),
                        raw.passhash_file.map(|p| resolve(&p)).as_deref(),
                    )?,
                },
                _ => {
                    return Err(format!(
                        "{what}: give either an API token (apitoken, apitoken_env or apitoken_file) or username with passhash (passhash, passhash_env or passhash_file)"
                    ));
                }
            };
            Ok(SinkConfig::Prtg(PrtgConfig {
                url: http_url(what, "url", &raw.url)?,
                auth,
                group: raw.group.map(ObjectId::into_text),
                template: raw.template.map(ObjectId::into_text),
                timeout: Duration::from_secs(raw.timeout_s.unwrap_or(10).max(1)),
                retries: raw.retries.unwrap_or(3),
            }))
        }
    }
}

fn webhook_config(
    what: &str,
    raw: RawWebhook,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<WebhookConfig, String> {
    use crate::monitoring::webhook::{FAILED, PROVISIONED};
    if let Some(e) = raw
        .events
        .iter()
        .find(|e| ![PROVISIONED, FAILED].contains(&e.as_str()))
    {
        return Err(format!(
            "{what}: unknown event {e:?}; ztpd sends {PROVISIONED} and {FAILED} by itself (plans may send any event through a webhook step)"
        ));
    }
    let secret = resolve_secret(
        what,
        "secret",
        raw.secret.as_deref(),
        raw.secret_env.as_deref(),
        raw.secret_file.map(|p| resolve(&p)).as_deref(),
    )?;
    if secret.expose().len() < 16 {
        return Err(format!(
            "{what}: the secret is shorter than 16 characters; use a long random value"
        ));
    }
    Ok(WebhookConfig {
        url: http_url(what, "url", &raw.url)?,
        secret,
        events: raw.events,
        max_attempts: raw.max_attempts.unwrap_or(8).max(1),
        backoff: Duration::from_millis(raw.backoff_ms.unwrap_or(1000).max(10)),
        timeout: Duration::from_secs(raw.timeout_s.unwrap_or(10).max(1)),
    })
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
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
            vec![(None, Path::new("/etc/ztpd/p.wasm").to_owned())]
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
    fn the_demo_parses() {
        let c = Config::demo().unwrap();
        assert!(c.tenants.iter().any(|t| t.default));
    }
}

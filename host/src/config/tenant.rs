//! `[[tenants]]`: one customer or site — its policies, templates, inventory, limits,
//! credentials, settings, monitoring, webhooks and DHCP subnets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::credentials::{CredentialConfig, RawCredential};
use super::dhcp::{RawSubnet, SubnetConfig};
use super::engine::{EngineConfig, Limits, RawLimits};
use super::inventory::{InventoryConfig, RawInventory};
use super::monitoring::{RawSink, RawWebhook, SinkConfig, WebhookConfig};
use super::secret::{SecretSource, SecretString, resolve};

/// Most `[tenants.settings]` entries, and the longest key and value: settings are read by
/// every policy call.
pub const MAX_SETTINGS: usize = 256;
pub const MAX_SETTING_KEY: usize = 128;
pub const MAX_SETTING_VALUE: usize = 4096;

#[serde_with::serde_as]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    name: String,
    #[serde(default)]
    default: bool,
    /// Source networks of this tenant's devices: devices there use the plain paths, and
    /// requests from elsewhere are refused (`/t/{tenant}/...` included).
    #[serde(default)]
    sources: Vec<ipnet::IpNet>,
    /// One policy for every dialect...
    policy: Option<PathBuf>,
    /// ...or one per dialect (`arista-eos`, `cisco-iosxe`, ...).
    #[serde(default)]
    policies: BTreeMap<String, PathBuf>,
    templates: PathBuf,
    /// One inventory table or a list of them.
    #[serde_as(as = "serde_with::OneOrMany<_>")]
    inventory: Vec<RawInventory>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    callback: RawCallback,
    #[serde(default)]
    credentials: BTreeMap<String, RawCredential>,
    smoke: Option<RawSmoke>,
    /// Monitoring sinks by name, for plans' `register-monitoring` steps.
    #[serde(default)]
    monitoring: BTreeMap<String, RawSink>,
    /// Webhooks by name: job events and plans' `webhook` steps.
    #[serde(default)]
    webhooks: BTreeMap<String, RawWebhook>,
    /// DHCP subnets: exported by `ztpd dhcp export`, served by the built-in server.
    #[serde(default)]
    dhcp: Vec<RawSubnet>,
    /// Site values policies read through the `setting` import.
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
    /// Folder of files a policy may serve as they are (installer images, firmware).
    files: Option<PathBuf>,
    /// Networks a plan may push to besides the device's own address.
    #[serde(default)]
    push_networks: Vec<ipnet::IpNet>,
    /// With the built-in DHCP server: answer a MAC's bootfile request only from the
    /// address leased to that MAC.
    #[serde(default)]
    lease_bound: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCallback {
    url: Option<String>,
    token_ttl_s: Option<u64>,
    secret_env: Option<String>,
    user: Option<String>,
    script_credential: Option<String>,
    address_field: Option<String>,
    #[serde(default)]
    approval: Approval,
    approval_timeout_s: Option<u64>,
    #[serde(default)]
    reclaim: Reclaim,
}

/// Whether a new device's call-back may start its job at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// The job starts when the call-back is accepted.
    #[default]
    Auto,
    /// The job waits in `pending-approval` until an operator approves or denies it.
    Manual,
}

/// Whether a serial already claimed may be claimed again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reclaim {
    /// Never: any later claim of the serial (another address, another token) is a
    /// conflict an operator resolves.
    #[default]
    Never,
    /// A new claim from the address of the first, once its job has finished, starts a new
    /// job (a device re-running ZTP at the same lease); anything else is a conflict.
    SameAddress,
}

/// A sample request a new policy version must answer without failing before it goes live.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmoke {
    dialect: String,
    #[serde(default = "default_smoke_path")]
    path: String,
    mac: Option<String>,
    serial: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn default_smoke_path() -> String {
    "/".into()
}

/// A sample request every new policy version must answer before it goes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeRequest {
    pub dialect: String,
    /// Path and query, e.g. `/dynconfig` or `/dynconfig?site=lab`.
    pub path: String,
    pub mac: Option<String>,
    pub serial: Option<String>,
    pub headers: BTreeMap<String, String>,
}

/// How the IOS XE script calls back, and what a call-back must fit.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// Base URL the served script calls back to (`http://192.0.2.1:8080`); none means
    /// the scheme and Host of the script request.
    pub url: Option<String>,
    pub token_ttl_s: u64,
    /// The token secret, from the environment variable the configuration names; none
    /// means a secret generated once and kept in the database.
    pub secret: Option<SecretString>,
    /// The temporary user the script creates, with a one-time password per script; a
    /// plan's ssh-push names it as its credential.
    pub user: Option<String>,
    /// A configured credential whose static username and password every script carries
    /// (explicit opt-in; warned about at start).
    pub script_credential: Option<String>,
    /// Inventory field holding the address a device calls back from; a call-back for that
    /// serial from any other address is refused.
    pub address_field: Option<String>,
    pub approval: Approval,
    pub approval_timeout: std::time::Duration,
    pub reclaim: Reclaim,
}

impl CallbackConfig {
    /// The user name of the temporary account the script creates, if any.
    pub fn script_user(&self, credentials: &BTreeMap<String, CredentialConfig>) -> Option<String> {
        self.user.clone().or_else(|| {
            self.script_credential
                .as_ref()
                .and_then(|c| credentials.get(c))
                .map(|c| c.username.clone())
        })
    }
}

/// One policy file and the dialect it answers (none: every dialect without its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySlot {
    pub dialect: Option<String>,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub name: String,
    /// Devices that use the plain paths (`/dynconfig`) belong to this tenant.
    pub default: bool,
    /// Source networks; empty means devices may come from anywhere.
    pub sources: Vec<ipnet::IpNet>,
    pub policies: Vec<PolicySlot>,
    pub templates: PathBuf,
    /// Inventory back ends, asked in order.
    pub inventory: Vec<InventoryConfig>,
    pub limits: Limits,
    pub callback: CallbackConfig,
    /// Credentials by name, secrets read.
    pub credentials: BTreeMap<String, CredentialConfig>,
    /// A request every new policy version must answer before it goes live.
    pub smoke: Option<SmokeRequest>,
    /// Monitoring sinks by name.
    pub monitoring: BTreeMap<String, SinkConfig>,
    /// Webhooks by name.
    pub webhooks: BTreeMap<String, WebhookConfig>,
    /// DHCP subnets.
    pub dhcp: Vec<SubnetConfig>,
    /// Site values policies read through the `setting` import.
    pub settings: BTreeMap<String, String>,
    /// Folder of files a policy may serve (`serve-file` decisions); none: no files.
    pub files: Option<PathBuf>,
    /// Networks a plan's ssh-push may name besides the device's own address.
    pub push_networks: Vec<ipnet::IpNet>,
    /// Answer a MAC only from the address the built-in DHCP server leased to it.
    pub lease_bound: bool,
}

impl TenantConfig {
    /// Does the tenant have a policy that answers `dialect`?
    pub fn speaks(&self, dialect: &str) -> bool {
        self.policies
            .iter()
            .any(|p| p.dialect.as_deref().is_none_or(|d| d == dialect))
    }
}

/// Tenant names appear in URLs (`/t/{tenant}/...`), log lines and file names.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Dialect names as they appear in `[tenants.policies]` and the policy contract.
pub fn valid_dialect_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl RawTenant {
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn validate(
        self,
        engine: &EngineConfig,
        resolve_path: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<TenantConfig, String> {
        let t = self;
        if !valid_name(&t.name) {
            return Err(format!(
                "tenant name {:?} must be 1-64 characters of a-z, 0-9, '-' or '_' (it appears in URLs: /t/{{tenant}}/...)",
                t.name
            ));
        }
        let what = format!("tenant {:?}", t.name);
        let limits = t.limits.validate(&t.name, engine)?;
        let secret = match &t.callback.secret_env {
            Some(var) => Some(resolve(
                &format!("{what}: callback"),
                "secret",
                SecretSource {
                    env: Some(var),
                    ..Default::default()
                },
            )?),
            None => None,
        };
        if let Some(c) = &t.callback.script_credential
            && !t.credentials.contains_key(c)
        {
            return Err(format!(
                "{what}: callback.script_credential = {c:?} but there is no [tenants.credentials.{c}]"
            ));
        }
        if t.callback.user.is_some() && t.callback.script_credential.is_some() {
            return Err(format!(
                "{what}: set callback.user (a one-time password per device, recommended) or callback.script_credential (one static password for every device), not both"
            ));
        }
        if let Some(u) = &t.callback.user {
            let ok = (1..=32).contains(&u.len())
                && u.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(format!(
                    "{what}: callback.user = {u:?} must be 1-32 letters, digits, '-' or '_' (it becomes a device account)"
                ));
            }
            if t.credentials.contains_key(u) {
                return Err(format!(
                    "{what}: callback.user = {u:?} is also a [tenants.credentials.{u}]; plans name the one-time user by that name, so rename one"
                ));
            }
        }
        let credentials = t
            .credentials
            .into_iter()
            .map(|(name, c)| {
                let c = c.validate(&format!("{what}: credential {name}"), resolve_path)?;
                Ok((name, c))
            })
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        let mut policies: Vec<PolicySlot> = Vec::new();
        for (dialect, path) in &t.policies {
            if !valid_dialect_name(dialect) {
                return Err(format!(
                    "{what}: [tenants.policies] key {dialect:?} is not a dialect name (a-z, 0-9, '-')"
                ));
            }
            policies.push(PolicySlot {
                dialect: Some(dialect.clone()),
                path: resolve_path(path),
            });
        }
        if let Some(p) = &t.policy {
            policies.push(PolicySlot {
                dialect: None,
                path: resolve_path(p),
            });
        }
        if policies.is_empty() {
            return Err(format!(
                "{what} has no policy: set policy = \"file.wasm\" or [tenants.policies] per dialect"
            ));
        }
        let inventory = t
            .inventory
            .into_iter()
            .enumerate()
            .map(|(i, raw)| raw.validate(&format!("{what}: inventory {}", i + 1), resolve_path))
            .collect::<Result<Vec<_>, String>>()?;
        let monitoring = t
            .monitoring
            .into_iter()
            .map(|(name, raw)| {
                let c = raw.validate(&format!("{what}: monitoring.{name}"), resolve_path)?;
                Ok((name, c))
            })
            .collect::<Result<_, String>>()?;
        let webhooks = t
            .webhooks
            .into_iter()
            .map(|(name, raw)| {
                let c = raw.validate(&format!("{what}: webhooks.{name}"), resolve_path)?;
                Ok((name, c))
            })
            .collect::<Result<_, String>>()?;
        let dhcp = t
            .dhcp
            .into_iter()
            .map(|d| SubnetConfig::validate(&t.name, d, t.callback.url.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let dhcp_served = dhcp.iter().any(|d: &SubnetConfig| d.interface.is_some());
        let settings = settings(&what, t.settings)?;
        let smoke = t
            .smoke
            .map(|s| {
                if !valid_dialect_name(&s.dialect) {
                    return Err(format!(
                        "{what}: smoke.dialect {:?} is not a dialect name",
                        s.dialect
                    ));
                }
                Ok(SmokeRequest {
                    dialect: s.dialect,
                    path: s.path,
                    mac: s.mac,
                    serial: s.serial,
                    headers: s.headers,
                })
            })
            .transpose()?;
        Ok(TenantConfig {
            name: t.name,
            default: t.default,
            sources: t.sources,
            policies,
            templates: resolve_path(&t.templates),
            inventory,
            limits,
            callback: CallbackConfig {
                url: match t.callback.url {
                    Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                        return Err(format!(
                            "{what}: callback.url = {u:?}: give the base URL devices reach ztpd at, such as http://192.0.2.1:8080"
                        ));
                    }
                    u => u.map(|u| u.trim_end_matches('/').to_owned()),
                },
                token_ttl_s: t.callback.token_ttl_s.unwrap_or(3600),
                secret,
                user: t.callback.user,
                script_credential: t.callback.script_credential,
                address_field: t.callback.address_field,
                approval: t.callback.approval,
                approval_timeout: std::time::Duration::from_secs(
                    t.callback.approval_timeout_s.unwrap_or(3600).max(1),
                ),
                reclaim: t.callback.reclaim,
            },
            credentials,
            smoke,
            monitoring,
            webhooks,
            dhcp,
            settings,
            files: t.files.map(|f| resolve_path(&f)),
            push_networks: t.push_networks,
            lease_bound: if t.lease_bound && !dhcp_served {
                return Err(format!(
                    "{what}: lease_bound = true needs the built-in DHCP server: give one of its [[tenants.dhcp]] subnets an interface"
                ));
            } else {
                t.lease_bound
            },
        })
    }
}

/// `[tenants.settings]`: strings as they are, numbers and booleans as their text.
fn settings(
    what: &str,
    raw: BTreeMap<String, toml::Value>,
) -> Result<BTreeMap<String, String>, String> {
    if raw.len() > MAX_SETTINGS {
        return Err(format!(
            "{what}: {} settings; at most {MAX_SETTINGS} are allowed",
            raw.len()
        ));
    }
    raw.into_iter()
        .map(|(key, value)| {
            if key.is_empty() || key.len() > MAX_SETTING_KEY {
                return Err(format!(
                    "{what}: settings key {key:?} must be 1 to {MAX_SETTING_KEY} bytes"
                ));
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "{what}: settings.{key} is {}; settings are strings, numbers or booleans",
                        other.type_str()
                    ));
                }
            };
            if text.len() > MAX_SETTING_VALUE {
                return Err(format!(
                    "{what}: settings.{key} is {} bytes; at most {MAX_SETTING_VALUE}",
                    text.len()
                ));
            }
            Ok((key, text))
        })
        .collect()
}

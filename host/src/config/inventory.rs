//! Inventory back ends of a tenant: a JSON or YAML file keyed by MAC or serial, or a
//! NetBox (`netbox` URL and a token).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::secret::{SecretSource, SecretString, resolve};

/// What the records of a file inventory are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Mac,
    Serial,
}

impl KeyKind {
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Mac => "MAC",
            KeyKind::Serial => "serial",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInventory {
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

#[derive(Debug, Clone)]
pub enum InventoryConfig {
    File { path: PathBuf, key: KeyKind },
    NetBox(NetBoxConfig),
}

/// A NetBox back end as configured for a tenant.
#[derive(Debug, Clone)]
pub struct NetBoxConfig {
    /// Base URL, without a trailing slash (`https://netbox.example.net`).
    pub url: String,
    /// An API token: a v2 token (`nbt_<key>.<token>`, sent as `Bearer`) or a v1 token
    /// (40 hex characters, sent as `Token`).
    pub token: SecretString,
    /// Per request.
    pub timeout: Duration,
    /// Further attempts after a 5xx answer, a 429 or a connection error.
    pub retries: u32,
    /// How long a look-up's answer is reused; zero turns the cache off.
    pub cache_ttl: Duration,
}

impl RawInventory {
    pub(super) fn validate(
        self,
        what: &str,
        resolve_path: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<InventoryConfig, String> {
        match (self.file, self.netbox) {
            (Some(file), None) => {
                let key = self.key.ok_or_else(|| {
                    format!("{what}: a file inventory needs key = \"mac\" or key = \"serial\"")
                })?;
                if self.token.is_some() || self.token_env.is_some() || self.token_file.is_some() {
                    return Err(format!(
                        "{what}: token settings belong to a netbox inventory, not a file"
                    ));
                }
                Ok(InventoryConfig::File {
                    path: resolve_path(&file),
                    key,
                })
            }
            (None, Some(url)) => {
                let what = format!("{what} (netbox)");
                if self.key.is_some() {
                    return Err(format!(
                        "{what}: key is for file inventories; NetBox is searched by serial, MAC or name"
                    ));
                }
                let token_file = self.token_file.map(|p| resolve_path(&p));
                let token = resolve(
                    &what,
                    "token",
                    SecretSource {
                        inline: self.token.as_deref(),
                        env: self.token_env.as_deref(),
                        file: token_file.as_deref(),
                    },
                )?;
                Ok(InventoryConfig::NetBox(NetBoxConfig {
                    url: super::http_url(&what, "netbox", &url)?,
                    token,
                    timeout: Duration::from_secs(self.timeout_s.unwrap_or(2).max(1)),
                    retries: self.retries.unwrap_or(2),
                    cache_ttl: Duration::from_secs(self.cache_s.unwrap_or(30)),
                }))
            }
            _ => Err(format!(
                "{what}: give either file (with key) or netbox (a URL, with token or token_env)"
            )),
        }
    }
}

//! A tenant: one customer or site, with its own policies, templates, inventory, state,
//! credentials, settings and limits. A policy only ever sees its own tenant's
//! capabilities.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::ratelimit::RateLimit;
use crate::config::{InventoryConfig, Limits, TenantConfig};
use crate::policy::{LoadedPolicy, PolicyEngine, PolicyError, TenantCaps};
use crate::render::{Renderer, TemplateError, Templates};
use crate::sources::{FileInventory, Inventory, InventoryError, NetBox, Source};
use crate::ssh::{Credential, CredentialError};
use crate::store::Stores;
use crate::store::kv::KvQuota;
use crate::trust::token::TokenKey;

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant {tenant}: cannot read policy {path}: {source}; build it with `just policies`")]
    ReadPolicy {
        tenant: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("tenant {tenant}: {source}")]
    Policy { tenant: String, source: PolicyError },
    #[error("tenant {tenant}: {source}")]
    Templates {
        tenant: String,
        source: TemplateError,
    },
    #[error("tenant {tenant}: {source}")]
    Inventory {
        tenant: String,
        source: InventoryError,
    },
    #[error("tenant {tenant}: {source}")]
    Credentials {
        tenant: String,
        source: CredentialError,
    },
    #[error("tenant {tenant}: cannot get the call-back token secret: {detail}")]
    Secret { tenant: String, detail: String },
    #[error("tenant {tenant}: {detail}")]
    Setting { tenant: String, detail: String },
    #[error(
        "tenant {tenant}: [tenants.policies] names dialect {dialect:?}, which this ztpd does not speak; it speaks: {known}"
    )]
    UnknownDialect {
        tenant: String,
        dialect: String,
        known: String,
    },
    #[error("tenant {tenant}: loading was interrupted: {detail}")]
    Task { tenant: String, detail: String },
}

/// The slot name of a tenant's general policy (one for every dialect without its own).
pub const ANY_SLOT: &str = "any";

/// A policy slot's name: its dialect, or [`ANY_SLOT`].
pub fn slot_name(dialect: Option<&str>) -> &str {
    dialect.unwrap_or(ANY_SLOT)
}

pub struct Tenant {
    pub name: String,
    pub is_default: bool,
    pub limits: Limits,
    /// SSH credentials by name; plans name them.
    pub credentials: BTreeMap<String, Credential>,
    /// Signs and checks the tokens of IOS XE call-backs.
    pub callback_key: TokenKey,
    /// Bounds this tenant's concurrent policy instances, so one tenant cannot take the
    /// whole pool.
    pub instance_permits: tokio::sync::Semaphore,
    /// Device requests per second, if limited.
    pub rate: Option<RateLimit>,
    /// This tenant's SSH pushes at once (`limits.pushes`).
    pub push_permits: tokio::sync::Semaphore,
    /// The configuration it was built from (policy paths, templates folder, smoke request).
    pub config: TenantConfig,
    /// Monitoring sinks by name (`register-monitoring` steps).
    pub sinks: BTreeMap<String, crate::monitoring::Sink>,
    /// Per dialect (`None`: every other dialect). Each is replaced as a whole when a new
    /// version is activated; a request holds the snapshot it started with.
    policies: Vec<(Option<String>, ArcSwap<LoadedPolicy>)>,
    caps: ArcSwap<TenantCaps>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("name", &self.name)
            .field("policies", &self.policies.len())
            .finish()
    }
}

/// Compile one policy file (CPU-heavy: call on the blocking pool).
fn load_policy(
    engine: &PolicyEngine,
    tenant: &str,
    path: &Path,
) -> Result<LoadedPolicy, TenantError> {
    let bytes = std::fs::read(path).map_err(|source| TenantError::ReadPolicy {
        tenant: tenant.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let label = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "policy".to_owned());
    engine
        .load(&label, &bytes)
        .map_err(|source| TenantError::Policy {
            tenant: tenant.to_owned(),
            source,
        })
}

impl Tenant {
    /// Load everything a tenant needs; compiling and file reading run on the blocking pool.
    /// `dialects` are the dialect names this ztpd speaks.
    pub async fn load(
        config: &TenantConfig,
        engine: Arc<PolicyEngine>,
        stores: &Stores,
        dialects: &[&str],
    ) -> Result<Self, TenantError> {
        let tenant = config.name.clone();
        let task = |e: tokio::task::JoinError| TenantError::Task {
            tenant: tenant.clone(),
            detail: e.to_string(),
        };
        let mut policies = Vec::new();
        for slot in &config.policies {
            if let Some(d) = &slot.dialect
                && !dialects.contains(&d.as_str())
            {
                return Err(TenantError::UnknownDialect {
                    tenant: tenant.clone(),
                    dialect: d.clone(),
                    known: dialects.join(", "),
                });
            }
            let (path, t, engine) = (slot.path.clone(), tenant.clone(), engine.clone());
            let policy = tokio::task::spawn_blocking(move || load_policy(&engine, &t, &path))
                .await
                .map_err(task)??;
            policies.push((slot.dialect.clone(), ArcSwap::from_pointee(policy)));
        }
        let templates = {
            let (dir, t) = (config.templates.clone(), tenant.clone());
            tokio::task::spawn_blocking(move || {
                Templates::load_dir(&dir)
                    .map_err(|source| TenantError::Templates { tenant: t, source })
            })
            .await
            .map_err(task)??
        };
        let mut sources = Vec::new();
        for inventory in &config.inventory {
            match inventory {
                InventoryConfig::File { path, key } => {
                    let (path, key, t) = (path.clone(), *key, tenant.clone());
                    let file = tokio::task::spawn_blocking(move || {
                        FileInventory::load(&path, key)
                            .map_err(|source| TenantError::Inventory { tenant: t, source })
                    })
                    .await
                    .map_err(task)??;
                    sources.push(Source::File(file));
                }
                InventoryConfig::NetBox(c) => {
                    // Look-ups run inside the policy call, so its wall-time limit bounds them.
                    if c.timeout >= config.limits.wall {
                        tracing::warn!(
                            tenant = %tenant,
                            "NetBox {}: timeout_s ({:?}) is not below limits.wall_ms ({:?}); a slow NetBox will fail policy calls on the wall-time limit before ztpd can retry",
                            c.url,
                            c.timeout,
                            config.limits.wall
                        );
                    }
                    let netbox = NetBox::new(c).map_err(|e| TenantError::Setting {
                        tenant: tenant.clone(),
                        detail: e.to_string(),
                    })?;
                    sources.push(Source::NetBox(Arc::new(netbox)));
                }
            }
        }
        let credentials = config
            .credentials
            .iter()
            .map(|(name, c)| {
                Credential::from_config(name, c)
                    .map(|c| (name.clone(), c))
                    .map_err(|source| TenantError::Credentials {
                        tenant: tenant.clone(),
                        source,
                    })
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let secret_error = |detail: String| TenantError::Secret {
            tenant: tenant.clone(),
            detail,
        };
        let secret = match &config.callback.secret {
            Some(s) => crate::config::ExposeSecret::expose_secret(s).to_owned(),
            None => {
                let generated =
                    crate::trust::token::new_secret().map_err(|e| secret_error(e.to_string()))?;
                stores
                    .secrets
                    .get_or_create(&tenant, "callback-token", move || generated)
                    .await
                    .map_err(|e| secret_error(e.to_string()))?
            }
        };
        let sinks = config
            .monitoring
            .iter()
            .map(|(name, c)| {
                let sink = crate::monitoring::Sink::new(c).map_err(|e| TenantError::Setting {
                    tenant: tenant.clone(),
                    detail: format!("monitoring.{name}: {e}"),
                })?;
                Ok((name.clone(), sink))
            })
            .collect::<Result<_, TenantError>>()?;
        let inventory = Arc::new(Inventory::new(sources));
        let renderer = Renderer::new(Arc::new(templates), inventory.netbox().cloned());
        let caps = TenantCaps {
            tenant: config.name.as_str().into(),
            limits: config.limits,
            inventory,
            renderer: Arc::new(renderer),
            settings: Arc::new(config.settings.clone()),
            kv: stores.kv.clone(),
            kv_quota: KvQuota {
                keys: config.limits.kv_keys,
                bytes: config.limits.kv_bytes,
            },
        };
        Ok(Tenant {
            sinks,
            name: config.name.clone(),
            is_default: config.default,
            limits: config.limits,
            credentials,
            callback_key: TokenKey::new(
                &config.name,
                secret.as_bytes(),
                config.callback.token_ttl_s,
            ),
            instance_permits: tokio::sync::Semaphore::new(config.limits.instances),
            rate: config.limits.rate_per_s.map(RateLimit::new),
            push_permits: tokio::sync::Semaphore::new(config.limits.pushes),
            config: config.clone(),
            policies,
            caps: ArcSwap::from_pointee(caps),
        })
    }

    /// The policy a request of `dialect` runs now: the dialect's own, else the tenant's
    /// general one.
    pub fn policy_for(&self, dialect: &str) -> Option<Arc<LoadedPolicy>> {
        self.policies
            .iter()
            .find(|(d, _)| d.as_deref() == Some(dialect))
            .or_else(|| self.policies.iter().find(|(d, _)| d.is_none()))
            .map(|(_, p)| p.load_full())
    }

    /// Whether the tenant has the slot `dialect` exactly as configured.
    pub fn has_slot(&self, dialect: Option<&str>) -> bool {
        self.policies.iter().any(|(d, _)| d.as_deref() == dialect)
    }

    /// The live version (content hash) of the slot `dialect` exactly as configured.
    pub fn policy_for_slot(&self, dialect: Option<&str>) -> Option<String> {
        self.policies
            .iter()
            .find(|(d, _)| d.as_deref() == dialect)
            .map(|(_, p)| p.load().hash().to_owned())
    }

    /// Every loaded policy: (its dialect, or none for all others; the policy).
    pub fn policies(&self) -> Vec<(Option<String>, Arc<LoadedPolicy>)> {
        self.policies
            .iter()
            .map(|(d, p)| (d.clone(), p.load_full()))
            .collect()
    }

    /// Whether a device at `ip` may be served by this tenant.
    pub fn admits(&self, ip: std::net::IpAddr) -> bool {
        self.config.sources.is_empty() || self.config.sources.iter().any(|n| n.contains(&ip))
    }

    pub fn capabilities(&self) -> Arc<TenantCaps> {
        self.caps.load_full()
    }

    /// Make `policy` the live version for the slot `dialect` (as configured). Requests
    /// already running keep the version they started with. Returns the replaced version.
    pub fn set_policy(
        &self,
        dialect: Option<&str>,
        policy: LoadedPolicy,
    ) -> Option<Arc<LoadedPolicy>> {
        self.policies
            .iter()
            .find(|(d, _)| d.as_deref() == dialect)
            .map(|(_, slot)| slot.swap(Arc::new(policy)))
    }

    /// Make `templates` the live template set (with an empty render cache).
    pub fn set_templates(&self, templates: Templates) {
        let old = self.caps.load_full();
        let renderer = old.renderer.with_templates(Arc::new(templates));
        self.caps.store(Arc::new(old.with_renderer(renderer)));
    }
}

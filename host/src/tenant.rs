//! A tenant: one customer or site, with its own policies, templates, inventory, state,
//! credentials and limits. A policy only ever sees its own tenant's capabilities.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::callback_token::TokenKey;
use crate::config::{InventoryConfig, TenantConfig};
use crate::credentials::Credentials;
use crate::inventory::{FileInventory, Inventory, Source};
use crate::policy::{Capabilities, Limits, LoadedPolicy, PolicyEngine};
use crate::request::Dialect;
use crate::store::Store;
use crate::templates::Templates;

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant {tenant}: cannot read policy {path}: {source}; build it with `just policies`")]
    ReadPolicy {
        tenant: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("tenant {tenant}: {source}")]
    Policy {
        tenant: String,
        source: crate::policy::PolicyError,
    },
    #[error("tenant {tenant}: {source}")]
    Templates {
        tenant: String,
        source: crate::templates::TemplateError,
    },
    #[error("tenant {tenant}: {source}")]
    Inventory {
        tenant: String,
        source: crate::inventory::InventoryError,
    },
    #[error("tenant {tenant}: {source}")]
    Credentials {
        tenant: String,
        source: crate::credentials::CredentialError,
    },
    #[error("tenant {tenant}: cannot get the call-back token secret: {detail}")]
    Secret { tenant: String, detail: String },
    #[error("tenant {tenant}: {detail}")]
    Setting { tenant: String, detail: String },
    #[error("tenant {tenant}: loading was interrupted: {detail}")]
    Task { tenant: String, detail: String },
}

pub struct Tenant {
    pub name: String,
    pub is_default: bool,
    pub limits: Limits,
    pub credentials: Credentials,
    /// Signs and checks the tokens of IOS XE call-backs.
    pub callback_key: TokenKey,
    /// Base URL the served script calls back to, if configured.
    pub callback_url: Option<String>,
    /// Credential whose username and password the served script creates.
    pub script_credential: Option<String>,
    /// Bounds this tenant's concurrent policy instances, so one tenant cannot take the
    /// whole pool.
    pub instance_permits: tokio::sync::Semaphore,
    /// Device requests per second, if limited.
    pub rate: Option<RateLimit>,
    /// The configuration it was built from (policy paths, templates folder, smoke request).
    pub config: TenantConfig,
    /// Monitoring sinks by name (`register-monitoring` steps).
    pub sinks: std::collections::BTreeMap<String, crate::monitoring::Sink>,
    /// Per dialect (`None`: every other dialect). Each is replaced as a whole when a new
    /// version is activated; a request holds the snapshot it started with.
    policies: Vec<(Option<Dialect>, ArcSwap<LoadedPolicy>)>,
    caps: ArcSwap<Capabilities>,
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
    pub async fn load(
        config: &TenantConfig,
        engine: Arc<PolicyEngine>,
        store: Store,
    ) -> Result<Self, TenantError> {
        let tenant = config.name.clone();
        let task = |e: tokio::task::JoinError| TenantError::Task {
            tenant: tenant.clone(),
            detail: e.to_string(),
        };
        let mut policies = Vec::new();
        for (dialect, path) in &config.policies {
            let (path, t, engine) = (path.clone(), tenant.clone(), engine.clone());
            let policy = tokio::task::spawn_blocking(move || load_policy(&engine, &t, &path))
                .await
                .map_err(task)??;
            policies.push((*dialect, ArcSwap::from_pointee(policy)));
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
                    let netbox =
                        crate::netbox::NetBox::new(c).map_err(|e| TenantError::Setting {
                            tenant: tenant.clone(),
                            detail: e.to_string(),
                        })?;
                    sources.push(Source::NetBox(Arc::new(netbox)));
                }
            }
        }
        let credentials = Credentials::resolve(&config.credentials).map_err(|source| {
            TenantError::Credentials {
                tenant: tenant.clone(),
                source,
            }
        })?;
        let secret_error = |detail: String| TenantError::Secret {
            tenant: tenant.clone(),
            detail,
        };
        let secret = match &config.callback.secret {
            Some(s) => s.clone(),
            None => {
                let generated =
                    crate::callback_token::new_secret().map_err(|e| secret_error(e.to_string()))?;
                store
                    .tenant_secret(&tenant, "callback-token", move || generated)
                    .await
                    .map_err(|e| secret_error(e.to_string()))?
            }
        };
        let sinks = config
            .monitoring
            .iter()
            .map(|(name, c)| {
                let sink =
                    crate::monitoring::Sink::new(c).map_err(|detail| TenantError::Setting {
                        tenant: tenant.clone(),
                        detail: format!("monitoring.{name}: {detail}"),
                    })?;
                Ok((name.clone(), sink))
            })
            .collect::<Result<_, TenantError>>()?;
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
            callback_url: config.callback.url.clone(),
            script_credential: config.callback.script_credential.clone(),
            instance_permits: tokio::sync::Semaphore::new(config.limits.instances),
            rate: config.rate_per_s.map(RateLimit::new),
            config: config.clone(),
            policies,
            caps: ArcSwap::from_pointee(Capabilities {
                tenant: config.name.clone(),
                inventory: Arc::new(Inventory::new(sources)),
                templates: Arc::new(templates),
                store,
            }),
        })
    }

    /// The policy a request of `dialect` runs now: the dialect's own, else the tenant's
    /// general one.
    pub fn policy_for(&self, dialect: Dialect) -> Option<Arc<LoadedPolicy>> {
        self.policies
            .iter()
            .find(|(d, _)| *d == Some(dialect))
            .or_else(|| self.policies.iter().find(|(d, _)| d.is_none()))
            .map(|(_, p)| p.load_full())
    }

    /// The live version (content hash) of the slot `dialect` exactly as configured.
    pub fn policy_for_slot(&self, dialect: Option<Dialect>) -> Option<String> {
        self.policies
            .iter()
            .find(|(d, _)| *d == dialect)
            .map(|(_, p)| p.load().hash().to_owned())
    }

    /// Every loaded policy: (its dialect, or none for all others; the policy).
    pub fn policies(&self) -> Vec<(Option<Dialect>, Arc<LoadedPolicy>)> {
        self.policies
            .iter()
            .map(|(d, p)| (*d, p.load_full()))
            .collect()
    }

    /// Whether a device at `ip` may be served by this tenant.
    pub fn admits(&self, ip: std::net::IpAddr) -> bool {
        self.config.sources.is_empty() || self.config.sources.iter().any(|n| n.contains(&ip))
    }

    pub fn capabilities(&self) -> Arc<Capabilities> {
        self.caps.load_full()
    }

    /// Make `policy` the live version for the slot `dialect` (as configured). Requests
    /// already running keep the version they started with. Returns the replaced version.
    pub fn set_policy(
        &self,
        dialect: Option<Dialect>,
        policy: LoadedPolicy,
    ) -> Option<Arc<LoadedPolicy>> {
        self.policies
            .iter()
            .find(|(d, _)| *d == dialect)
            .map(|(_, slot)| slot.swap(Arc::new(policy)))
    }

    /// Make `templates` the live template set (with an empty render cache).
    pub fn set_templates(&self, templates: Templates) {
        let old = self.caps.load_full();
        self.caps.store(Arc::new(Capabilities {
            tenant: old.tenant.clone(),
            inventory: old.inventory.clone(),
            templates: Arc::new(templates),
            store: old.store.clone(),
        }));
    }
}

/// A token bucket: `rate` requests per second with a burst of the same size. Hand-rolled
/// because it is one counter under a lock; a rate-limiting crate would bring keyed
/// limiters and clocks ztpd does not need.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    bucket: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl RateLimit {
    pub fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second);
        RateLimit {
            rate,
            bucket: std::sync::Mutex::new((rate, std::time::Instant::now())),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.rate
    }

    /// Take one request's token, or say how long until one is free.
    pub fn take(&self) -> Result<(), std::time::Duration> {
        let Ok(mut bucket) = self.bucket.lock() else {
            return Ok(());
        };
        let now = std::time::Instant::now();
        let (tokens, last) = *bucket;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.rate);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            Ok(())
        } else {
            *bucket = (tokens, now);
            Err(std::time::Duration::from_secs_f64(
                (1.0 - tokens) / self.rate,
            ))
        }
    }
}

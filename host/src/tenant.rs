//! A tenant: one customer or site, with its own policy, templates, inventory, state and
//! limits. A policy only ever sees its own tenant's capabilities.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{InventoryConfig, TenantConfig};
use crate::inventory::{FileInventory, Inventory};
use crate::policy::{Capabilities, Limits, LoadedPolicy, PolicyEngine};
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
    #[error("tenant {tenant}: loading was interrupted: {detail}")]
    Task { tenant: String, detail: String },
}

pub struct Tenant {
    pub name: String,
    pub is_default: bool,
    pub limits: Limits,
    /// Replaced as a whole when a new version is activated; a request holds the snapshot
    /// it started with.
    policy: ArcSwap<LoadedPolicy>,
    caps: ArcSwap<Capabilities>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("name", &self.name)
            .field("policy", &self.policy.load().hash())
            .finish()
    }
}

impl Tenant {
    /// Load everything a tenant needs; compiling the policy runs on the blocking pool.
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
        let policy = {
            let (path, name, t) = (config.policy.clone(), config.name.clone(), tenant.clone());
            tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&path).map_err(|source| TenantError::ReadPolicy {
                    tenant: t.clone(),
                    path: path.clone(),
                    source,
                })?;
                let label = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or(name);
                engine
                    .load(&label, &bytes)
                    .map_err(|source| TenantError::Policy { tenant: t, source })
            })
            .await
            .map_err(task)??
        };
        let templates =
            Templates::load_dir(&config.templates).map_err(|source| TenantError::Templates {
                tenant: tenant.clone(),
                source,
            })?;
        let inventory = match &config.inventory {
            InventoryConfig::File { path, key } => {
                let (path, key, t) = (path.clone(), *key, tenant.clone());
                tokio::task::spawn_blocking(move || {
                    FileInventory::load(&path, key)
                        .map_err(|source| TenantError::Inventory { tenant: t, source })
                })
                .await
                .map_err(task)??
            }
        };
        Ok(Tenant {
            name: config.name.clone(),
            is_default: config.default,
            limits: config.limits,
            policy: ArcSwap::from_pointee(policy),
            caps: ArcSwap::from_pointee(Capabilities {
                tenant: config.name.clone(),
                inventory: Arc::new(Inventory::File(inventory)),
                templates: Arc::new(templates),
                store,
            }),
        })
    }

    /// The policy version requests start on now.
    pub fn policy(&self) -> Arc<LoadedPolicy> {
        self.policy.load_full()
    }

    pub fn capabilities(&self) -> Arc<Capabilities> {
        self.caps.load_full()
    }
}

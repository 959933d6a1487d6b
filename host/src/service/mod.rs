//! The provisioning service: tenants, the policy engine and the stores, and the one path
//! every device request takes — request → tenant → policy → decision → outcome.
//!
//! - [`tenant`]: a tenant's policies, capabilities, credentials and limits.
//! - [`decide`]: [`Service::decide`], the path every dialect calls.
//! - [`activate`]: new policy versions and templates, checked before they go live.
//! - [`watch`]: hot swap from files on disk.
//!
//! Dialects call [`Service::decide`] and turn the [`Outcome`] back into a reply; the dry
//! run (`ztpd render`) goes through the same dialects without a socket.

pub mod activate;
pub mod decide;
pub mod ratelimit;
pub mod tenant;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;

pub use activate::ActivationError;
pub use decide::{Answer, Body, DecideError, Outcome};
pub use tenant::{ANY_SLOT, Tenant, TenantError, slot_name};

use crate::config::Config;
use crate::policy::PolicyEngine;
use crate::store::Stores;

pub struct Service {
    engine: Arc<PolicyEngine>,
    stores: Stores,
    tenants: HashMap<String, Arc<Tenant>>,
    default_tenant: Option<Arc<Tenant>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("tenants", &self.tenants)
            .finish()
    }
}

impl Service {
    /// Build every tenant of `config` on `engine`, with state in `stores`; `dialects` are
    /// the dialect names this ztpd speaks (policy slots must name one of them).
    pub async fn build(
        config: &Config,
        engine: Arc<PolicyEngine>,
        stores: Stores,
        dialects: &[&str],
    ) -> Result<Self, TenantError> {
        let mut tenants = HashMap::new();
        let mut default_tenant = None;
        for t in &config.tenants {
            let tenant = Arc::new(Tenant::load(t, engine.clone(), &stores, dialects).await?);
            for (dialect, policy) in tenant.policies() {
                tracing::info!(
                    tenant = %tenant.name,
                    dialect = slot_name(dialect.as_deref()),
                    policy = %policy.name(),
                    version = %policy.hash().get(..12).unwrap_or_default(),
                    contract = policy.contract(),
                    "policy loaded"
                );
            }
            if tenant.is_default {
                default_tenant = Some(tenant.clone());
            }
            tenants.insert(t.name.clone(), tenant);
        }
        let service = Service {
            engine,
            stores,
            tenants,
            default_tenant,
        };
        service.restore_activations().await;
        Ok(service)
    }

    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    pub fn engine(&self) -> &Arc<PolicyEngine> {
        &self.engine
    }

    pub fn tenant(&self, name: &str) -> Option<&Arc<Tenant>> {
        self.tenants.get(name)
    }

    pub fn default_tenant(&self) -> Option<&Arc<Tenant>> {
        self.default_tenant.as_ref()
    }

    /// The tenant for a request on the plain paths from `ip`: the tenant whose source
    /// networks contain it (the most specific network wins), else the default tenant.
    pub fn tenant_for_source(&self, ip: std::net::IpAddr) -> Option<&Arc<Tenant>> {
        self.tenants
            .values()
            .filter_map(|t| {
                t.config
                    .sources
                    .iter()
                    .filter(|n| n.contains(&ip))
                    .map(|n| n.prefix_len())
                    .max()
                    .map(|len| (len, t))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, t)| t)
            .or(self.default_tenant.as_ref())
    }

    pub fn tenant_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tenants.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

impl crate::monitoring::webhook::WebhookDirectory for Service {
    fn webhook(&self, tenant: &str, name: &str) -> Option<crate::monitoring::WebhookConfig> {
        self.tenant(tenant)?.config.webhooks.get(name).cloned()
    }
}

//! The provisioning service: tenants, the policy engine and the store, and the one path
//! every device request takes — request → policy → decision → outcome. Vendor adapters
//! (HTTP routes) call [`Service::decide`] and turn the [`Outcome`] back into a reply;
//! the dry run (`ztpd render`) goes through the same routes without a socket.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::decision::{Decision, Plan};
use crate::policy::{PolicyEngine, PolicyError};
use crate::request::DeviceRequest;
use crate::store::Store;
use crate::templates::TemplateError;
use crate::tenant::{Tenant, TenantError};

/// A reply body: the policy's own bytes, or a (possibly memoised) rendered config.
#[derive(Debug, Clone)]
pub enum Body {
    Owned(Vec<u8>),
    Shared(Arc<str>),
}

impl Body {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Owned(b) => b,
            Body::Shared(s) => s.as_bytes(),
        }
    }
}

/// What to answer a device with.
#[derive(Debug)]
pub enum Outcome {
    Reply { content_type: String, body: Body },
    UnknownDevice(String),
    Rejected(String),
    Plan(Plan),
}

/// An outcome and the policy version (content hash) that decided it.
#[derive(Debug)]
pub struct Answer {
    pub outcome: Outcome,
    pub policy_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("tenant {tenant}: {source}")]
    Template {
        tenant: String,
        source: TemplateError,
    },
    #[error("ztpd is shutting down")]
    Closed,
    #[error("tenant {tenant}: {detail}")]
    NetBox { tenant: String, detail: String },
    #[error(
        "tenant {tenant} has no policy for {dialect} devices; set policy or [tenants.policies] {dialect}"
    )]
    NoPolicy {
        tenant: String,
        dialect: &'static str,
    },
    #[error("tenant {tenant}: rendered config is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        tenant: String,
        size: usize,
        limit: usize,
    },
}

pub struct Service {
    engine: Arc<PolicyEngine>,
    versions: crate::admin::versions::VersionStore,
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
    /// Build every tenant of `config` on `engine`, with state in `store`.
    pub async fn build(
        config: &Config,
        engine: Arc<PolicyEngine>,
        store: Store,
    ) -> Result<Self, TenantError> {
        let versions = crate::admin::versions::VersionStore::new(store.clone(), &config.data_dir)
            .map_err(|e| TenantError::Task {
            tenant: "-".into(),
            detail: format!("policy version tables: {e}"),
        })?;
        let mut tenants = HashMap::new();
        let mut default_tenant = None;
        for t in &config.tenants {
            let tenant = Arc::new(Tenant::load(t, engine.clone(), store.clone()).await?);
            for (dialect, policy) in tenant.policies() {
                tracing::info!(
                    tenant = %tenant.name,
                    dialect = dialect.map_or("any", |d| d.as_str()),
                    policy = %policy.name(),
                    version = %&policy.hash()[..12],
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
            versions,
            tenants,
            default_tenant,
        };
        service.restore_activations().await;
        Ok(service)
    }

    pub fn versions(&self) -> &crate::admin::versions::VersionStore {
        &self.versions
    }

    /// After a restart, a version activated through the admin API stays live unless the
    /// configured policy file changed after that activation.
    async fn restore_activations(&self) {
        for tenant in self.tenants.values() {
            for (dialect, path) in &tenant.config.policies {
                let slot = crate::admin::slot_name(*dialect);
                let Ok(history) = self.versions.activations(&tenant.name, slot).await else {
                    continue;
                };
                let Some(latest) = history.first() else {
                    // First start with this slot: record the configured version, so
                    // later activations can roll back to it.
                    if let (Some(hash), Ok(bytes)) =
                        (tenant.policy_for_slot(*dialect), std::fs::read(path))
                    {
                        let actor = format!("file {}", path.display());
                        let _ = self.versions.save_bytes(&hash, &bytes);
                        let _ = self
                            .versions
                            .record_upload(&tenant.name, slot, &hash, bytes.len(), &actor)
                            .await;
                        let _ = self
                            .versions
                            .record_activation(&tenant.name, slot, &hash, &actor)
                            .await;
                    }
                    continue;
                };
                let file_ms = std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64);
                let live = tenant.policy_for_slot(*dialect);
                if latest.at_ms < file_ms || live.as_deref() == Some(latest.hash.as_str()) {
                    continue;
                }
                let Ok(bytes) = std::fs::read(self.versions.path(&latest.hash)) else {
                    continue;
                };
                match self
                    .prepare_policy(tenant, &format!("{}.wasm", &latest.hash[..12]), bytes)
                    .await
                {
                    Ok(policy) => {
                        tenant.set_policy(*dialect, policy);
                        tracing::info!(tenant = %tenant.name, slot, version = %&latest.hash[..12], "restored the version activated by {}", latest.actor);
                    }
                    Err(e) => {
                        tracing::error!(tenant = %tenant.name, slot, "cannot restore version {}: {e}", latest.hash)
                    }
                }
            }
        }
    }

    /// Compile `bytes` (off the request path), check them against the contract and the
    /// tenant's smoke request. The result is ready for [`Tenant::set_policy`].
    pub async fn prepare_policy(
        &self,
        tenant: &Tenant,
        label: &str,
        bytes: Vec<u8>,
    ) -> Result<crate::policy::LoadedPolicy, String> {
        let (engine, label) = (self.engine.clone(), label.to_owned());
        let policy = tokio::task::spawn_blocking(move || engine.load(&label, &bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        self.smoke_test(tenant, &policy).await?;
        Ok(policy)
    }

    /// Compile the policy at `path`, check it, and make it live for `tenant`'s slot
    /// `dialect`. Returns the new version (content hash), or none when that version is
    /// already live. On any failure the live version stays.
    pub async fn activate_policy_file(
        &self,
        tenant: &str,
        dialect: Option<crate::request::Dialect>,
        path: &std::path::Path,
    ) -> Result<Option<String>, String> {
        let tenant = self
            .tenant(tenant)
            .cloned()
            .ok_or_else(|| format!("no tenant named {tenant:?}"))?;
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        if tenant.policy_for_slot(dialect).as_deref() == Some(hash.as_str()) {
            return Ok(None);
        }
        let label = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "policy".to_owned());
        let policy = self.prepare_policy(&tenant, &label, bytes.clone()).await?;
        tenant
            .set_policy(dialect, policy)
            .ok_or_else(|| format!("tenant {} has no policy slot for that dialect", tenant.name))?;
        // Keep the version and who activated it, as an upload through the admin API does,
        // so `ztpd policy list` shows it and a rollback can return to the one before.
        let slot = crate::admin::slot_name(dialect);
        let actor = format!("file {}", path.display());
        let record = async {
            self.versions
                .save_bytes(&hash, &bytes)
                .map_err(|e| e.to_string())?;
            self.versions
                .record_upload(&tenant.name, slot, &hash, bytes.len(), &actor)
                .await
                .map_err(|e| e.to_string())?;
            self.versions
                .record_activation(&tenant.name, slot, &hash, &actor)
                .await
                .map_err(|e| e.to_string())?;
            self.versions
                .audit(crate::admin::versions::AuditEntry {
                    at_ms: crate::jobs::now_ms(),
                    actor: actor.clone(),
                    tenant: tenant.name.clone(),
                    action: "policy.activate".into(),
                    target: slot.into(),
                    hash: Some(hash.clone()),
                    detail: "file changed on disk".into(),
                })
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(e) = record.await {
            // The new version is live; only its record failed. Say so, do not undo it.
            tracing::error!(tenant = %tenant.name, slot, "version {hash} is live but could not be recorded: {e}");
        }
        Ok(Some(hash))
    }

    /// Run the tenant's smoke request (if configured) against `policy`: it must decide
    /// without failing.
    pub async fn smoke_test(
        &self,
        tenant: &Tenant,
        policy: &crate::policy::LoadedPolicy,
    ) -> Result<(), String> {
        let Some(smoke) = &tenant.config.smoke else {
            return Ok(());
        };
        let request = smoke_request(&tenant.name, smoke)?;
        self.engine
            .call(policy, tenant.capabilities(), &tenant.limits, &request)
            .await
            .map(|_| ())
            .map_err(|e| format!("smoke request {} failed: {e}", smoke.path))
    }

    /// Reload `tenant`'s template folder and make it live. Returns how many templates.
    pub async fn reload_templates(&self, tenant: &str) -> Result<usize, String> {
        let tenant = self
            .tenant(tenant)
            .cloned()
            .ok_or_else(|| format!("no tenant named {tenant:?}"))?;
        let dir = tenant.config.templates.clone();
        let templates =
            tokio::task::spawn_blocking(move || crate::templates::Templates::load_dir(&dir))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        let n = templates.names().len();
        tenant.set_templates(templates);
        Ok(n)
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

    /// Run the tenant's policy on `request` and carry out a render decision.
    pub async fn decide(
        &self,
        tenant: &Tenant,
        request: &DeviceRequest,
    ) -> Result<Answer, DecideError> {
        self.decide_with(tenant, request, None).await
    }

    /// Like [`Service::decide`], and a render sees `host_vars` as the variable `ztpd`:
    /// values only the host knows (a call-back URL and token, a temporary credential for
    /// the device) that must reach the device but never the policy.
    pub async fn decide_with(
        &self,
        tenant: &Tenant,
        request: &DeviceRequest,
        host_vars: Option<serde_json::Value>,
    ) -> Result<Answer, DecideError> {
        let policy = tenant
            .policy_for(request.dialect)
            .ok_or_else(|| DecideError::NoPolicy {
                tenant: tenant.name.clone(),
                dialect: request.dialect.as_str(),
            })?;
        let caps = tenant.capabilities();
        let _permit = tenant
            .instance_permits
            .acquire()
            .await
            .map_err(|_| DecideError::Closed)?;
        let decision = self
            .engine
            .call(&policy, caps.clone(), &tenant.limits, request)
            .await?;
        let outcome = match decision {
            Decision::Reply(c) => Outcome::Reply {
                content_type: c.content_type,
                body: Body::Owned(c.body),
            },
            Decision::Render(r) => {
                let template_error = |source| DecideError::Template {
                    tenant: tenant.name.clone(),
                    source,
                };
                let text: Arc<str> = match host_vars {
                    None if r.template == crate::netbox::RENDER_IN_NETBOX => {
                        let netbox_error = |detail: String| DecideError::NetBox {
                            tenant: tenant.name.clone(),
                            detail,
                        };
                        let netbox = caps.inventory.netbox().ok_or_else(|| {
                            netbox_error(format!(
                                "the policy asked for {} but the tenant has no NetBox inventory",
                                r.template
                            ))
                        })?;
                        netbox
                            .render_record(&r.vars)
                            .await
                            .map_err(|e| netbox_error(e.to_string()))?
                            .into()
                    }
                    None => caps
                        .templates
                        .render_json(&r.template, &r.vars)
                        .map_err(template_error)?,
                    Some(extra) => {
                        let mut vars: serde_json::Value =
                            serde_json::from_str(&r.vars).map_err(|e| {
                                template_error(TemplateError::Vars {
                                    name: r.template.clone(),
                                    detail: e.to_string(),
                                })
                            })?;
                        if let Some(map) = vars.as_object_mut() {
                            map.insert("ztpd".to_owned(), extra);
                        }
                        caps.templates
                            .render(&r.template, &vars)
                            .map_err(template_error)?
                            .into()
                    }
                };
                if text.len() > tenant.limits.reply_bytes {
                    return Err(DecideError::TooLarge {
                        tenant: tenant.name.clone(),
                        size: text.len(),
                        limit: tenant.limits.reply_bytes,
                    });
                }
                Outcome::Reply {
                    content_type: r.content_type,
                    body: Body::Shared(text),
                }
            }
            Decision::Plan(plan) => Outcome::Plan(plan),
            Decision::UnknownDevice(reason) => Outcome::UnknownDevice(reason),
            Decision::Reject(reason) => Outcome::Rejected(reason),
        };
        Ok(Answer {
            outcome,
            policy_hash: policy.hash().to_owned(),
        })
    }
}

/// The device request a smoke configuration describes.
fn smoke_request(
    tenant: &str,
    smoke: &crate::config::SmokeRequest,
) -> Result<DeviceRequest, String> {
    let mut identity =
        crate::identity::Identity::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    identity.mac = match &smoke.mac {
        Some(m) => Some(m.parse().map_err(|e| format!("smoke.mac: {e}"))?),
        None => None,
    };
    identity.serial = smoke.serial.clone();
    let (path, query) = smoke.path.split_once('?').unwrap_or((&smoke.path, ""));
    Ok(DeviceRequest {
        tenant: tenant.to_owned(),
        stage: crate::request::Stage::Bootstrap,
        dialect: smoke.dialect,
        identity,
        path: path.to_owned(),
        headers: smoke
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        query: form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        body: Default::default(),
    })
}

impl crate::monitoring::webhook::WebhookDirectory for Service {
    fn webhook(&self, tenant: &str, name: &str) -> Option<crate::monitoring::WebhookConfig> {
        self.tenant(tenant)?.config.webhooks.get(name).cloned()
    }
}

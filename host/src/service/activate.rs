//! New policy versions and template sets, checked before they go live: compiled off the
//! request path, checked against the contract and the tenant's smoke request, then
//! swapped in atomically (requests already running finish on the version they started
//! with). Every activation is recorded with who made it; after a restart, a version
//! activated through the admin API stays live unless its file changed since.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Service, Tenant, slot_name};
use crate::clock::now_ms;
use crate::config::SmokeRequest;
use crate::model::{DeviceRequest, Identity, stage};
use crate::policy::{LoadedPolicy, PolicyError};
use crate::render::{TemplateError, Templates};
use crate::store::StoreError;
use crate::store::audit::AuditEntry;

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("no tenant named {0:?}")]
    NoTenant(String),
    #[error("tenant {tenant} has no policy slot {slot}")]
    NoSlot { tenant: String, slot: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("smoke request {path} failed: {source}")]
    Smoke { path: String, source: PolicyError },
    #[error("smoke request: {0}")]
    SmokeRequest(String),
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error("recording the version: {0}")]
    Store(#[from] StoreError),
    #[error("the compile task failed: {0}")]
    Task(String),
}

impl Service {
    /// Compile `bytes` (off the request path), check them against the contract and the
    /// tenant's smoke request. The result is ready for [`Tenant::set_policy`].
    pub async fn prepare_policy(
        &self,
        tenant: &Tenant,
        label: &str,
        bytes: Vec<u8>,
    ) -> Result<LoadedPolicy, ActivationError> {
        let (engine, label) = (self.engine.clone(), label.to_owned());
        let policy = tokio::task::spawn_blocking(move || engine.load(&label, &bytes))
            .await
            .map_err(|e| ActivationError::Task(e.to_string()))??;
        self.smoke_test(tenant, &policy).await?;
        Ok(policy)
    }

    /// Run the tenant's smoke request (if configured) against `policy`: it must decide
    /// without failing.
    pub async fn smoke_test(
        &self,
        tenant: &Tenant,
        policy: &LoadedPolicy,
    ) -> Result<(), ActivationError> {
        let Some(smoke) = &tenant.config.smoke else {
            return Ok(());
        };
        let request = smoke_request(&tenant.name, smoke)?;
        self.engine
            .call(policy, &tenant.capabilities(), &request)
            .await
            .map(|_| ())
            .map_err(|source| ActivationError::Smoke {
                path: smoke.path.clone(),
                source,
            })
    }

    /// Compile the policy at `path`, check it, and make it live for `tenant`'s slot
    /// `dialect`. Returns the new version (content hash), or none when that version is
    /// already live. On any failure the live version stays, and the refusal is audited.
    pub async fn activate_policy_file(
        &self,
        tenant: &str,
        dialect: Option<&str>,
        path: &Path,
    ) -> Result<Option<String>, ActivationError> {
        let tenant = self
            .tenant(tenant)
            .cloned()
            .ok_or_else(|| ActivationError::NoTenant(tenant.to_owned()))?;
        let slot = slot_name(dialect);
        let actor = format!("file {}", path.display());
        let bytes = std::fs::read(path).map_err(|source| ActivationError::Read {
            path: path.to_owned(),
            source,
        })?;
        let hash = hex::encode(Sha256::digest(&bytes));
        if tenant.policy_for_slot(dialect).as_deref() == Some(hash.as_str()) {
            return Ok(None);
        }
        let label = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "policy".to_owned());
        let policy = match self.prepare_policy(&tenant, &label, bytes.clone()).await {
            Ok(p) => p,
            Err(e) => {
                self.audit(
                    &tenant,
                    &actor,
                    "policy.rejected",
                    slot,
                    Some(&hash),
                    e.to_string(),
                )
                .await;
                return Err(e);
            }
        };
        tenant
            .set_policy(dialect, policy)
            .ok_or_else(|| ActivationError::NoSlot {
                tenant: tenant.name.clone(),
                slot: slot.to_owned(),
            })?;
        // Keep the version and who activated it, as an upload through the admin API does,
        // so `ztpd policy list` shows it and a rollback can return to the one before.
        let record = async {
            let versions = &self.stores.versions;
            versions
                .save_bytes(&hash, &bytes)
                .map_err(|e| StoreError::Task(e.to_string()))?;
            versions
                .record_upload(&tenant.name, slot, &hash, bytes.len(), &actor)
                .await?;
            versions
                .record_activation(&tenant.name, slot, &hash, &actor)
                .await
        };
        if let Err(e) = record.await {
            // The new version is live; only its record failed. Say so, do not undo it.
            tracing::error!(tenant = %tenant.name, slot, "version {hash} is live but could not be recorded: {e}");
        }
        self.audit(
            &tenant,
            &actor,
            "policy.activate",
            slot,
            Some(&hash),
            "file changed on disk".into(),
        )
        .await;
        Ok(Some(hash))
    }

    /// Write an audit entry; a failure to write it is logged, not returned (the change it
    /// records has happened).
    pub async fn audit(
        &self,
        tenant: &Tenant,
        actor: &str,
        action: &str,
        target: &str,
        hash: Option<&str>,
        detail: String,
    ) {
        let entry = AuditEntry {
            at_ms: now_ms(),
            actor: actor.to_owned(),
            tenant: tenant.name.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            hash: hash.map(str::to_owned),
            detail,
        };
        if let Err(e) = self.stores.audit.record(entry).await {
            tracing::error!(tenant = %tenant.name, action, "cannot write the audit log: {e}");
        }
    }

    /// Reload `tenant`'s template folder and make it live. Returns how many templates.
    pub async fn reload_templates(&self, tenant: &str) -> Result<usize, ActivationError> {
        let tenant = self
            .tenant(tenant)
            .cloned()
            .ok_or_else(|| ActivationError::NoTenant(tenant.to_owned()))?;
        let dir = tenant.config.templates.clone();
        let templates = tokio::task::spawn_blocking(move || Templates::load_dir(&dir))
            .await
            .map_err(|e| ActivationError::Task(e.to_string()))??;
        let n = templates.names().len();
        tenant.set_templates(templates);
        Ok(n)
    }

    /// After a restart, a version activated through the admin API stays live unless the
    /// configured policy file changed after that activation.
    pub(super) async fn restore_activations(&self) {
        for tenant in self.tenants.values() {
            for configured in &tenant.config.policies {
                self.restore_slot(tenant, configured.dialect.as_deref(), &configured.path)
                    .await;
            }
        }
    }

    async fn restore_slot(&self, tenant: &Arc<Tenant>, dialect: Option<&str>, path: &Path) {
        let slot = slot_name(dialect);
        let versions = &self.stores.versions;
        let Ok(history) = versions.activations(&tenant.name, slot).await else {
            return;
        };
        let Some(latest) = history.first() else {
            // First start with this slot: record the configured version, so later
            // activations can roll back to it.
            if let (Some(hash), Ok(bytes)) = (tenant.policy_for_slot(dialect), std::fs::read(path))
            {
                let actor = format!("file {}", path.display());
                let _ = versions.save_bytes(&hash, &bytes);
                let _ = versions
                    .record_upload(&tenant.name, slot, &hash, bytes.len(), &actor)
                    .await;
                let _ = versions
                    .record_activation(&tenant.name, slot, &hash, &actor)
                    .await;
            }
            return;
        };
        let file_ms = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let live = tenant.policy_for_slot(dialect);
        if latest.at_ms < file_ms || live.as_deref() == Some(latest.hash.as_str()) {
            return;
        }
        let Ok(bytes) = std::fs::read(versions.path(&latest.hash)) else {
            return;
        };
        let label = format!("{}.wasm", latest.hash.get(..12).unwrap_or(&latest.hash));
        match self.prepare_policy(tenant, &label, bytes).await {
            Ok(policy) => {
                tenant.set_policy(dialect, policy);
                tracing::info!(tenant = %tenant.name, slot, version = %label, "restored the version activated by {}", latest.actor);
            }
            Err(e) => {
                tracing::error!(tenant = %tenant.name, slot, "cannot restore version {}: {e}", latest.hash)
            }
        }
    }
}

/// The device request a smoke configuration describes.
fn smoke_request(tenant: &str, smoke: &SmokeRequest) -> Result<DeviceRequest, ActivationError> {
    let mut identity = Identity::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    identity.mac = match &smoke.mac {
        Some(m) => Some(
            m.parse()
                .map_err(|e| ActivationError::SmokeRequest(format!("smoke.mac: {e}")))?,
        ),
        None => None,
    };
    identity.serial = smoke.serial.clone();
    let (path, query) = smoke.path.split_once('?').unwrap_or((&smoke.path, ""));
    Ok(DeviceRequest {
        tenant: tenant.to_owned(),
        stage: stage::BOOTSTRAP.into(),
        dialect: smoke.dialect.clone().into(),
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

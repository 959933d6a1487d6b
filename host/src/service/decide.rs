//! The one path every device request takes: run the tenant's policy for the request's
//! dialect and carry out what can be carried out at once — a reply, a render, a file —
//! leaving a plan to the job runner.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::{Service, Tenant};
use crate::model::{Decision, DeviceRequest, Plan};
use crate::policy::PolicyError;
use crate::render::{RenderError, RenderLimits};

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
    Reply {
        content_type: String,
        body: Body,
    },
    /// A file of the tenant's files folder, streamed as it is.
    File {
        path: PathBuf,
        content_type: Option<String>,
    },
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
    Render { tenant: String, source: RenderError },
    #[error("tenant {tenant}: serve-file {name:?}: {detail}")]
    File {
        tenant: String,
        name: String,
        detail: String,
    },
    #[error("ztpd is shutting down")]
    Closed,
    #[error(
        "tenant {tenant} has no policy for {dialect} devices; set policy or [tenants.policies] {dialect}"
    )]
    NoPolicy { tenant: String, dialect: String },
}

impl Service {
    /// Run the tenant's policy on `request` and carry out a render decision. A render sees
    /// `host_vars` as the variable `ztpd`: values only the host knows (a call-back URL and
    /// token, a one-time credential for the device) that must reach the device but never
    /// the policy.
    pub async fn decide(
        &self,
        tenant: &Tenant,
        request: &DeviceRequest,
        host_vars: Option<Value>,
    ) -> Result<Answer, DecideError> {
        let policy = tenant
            .policy_for(&request.dialect)
            .ok_or_else(|| DecideError::NoPolicy {
                tenant: tenant.name.clone(),
                dialect: request.dialect.to_string(),
            })?;
        let caps = tenant.capabilities();
        let _permit = tenant
            .instance_permits
            .acquire()
            .await
            .map_err(|_| DecideError::Closed)?;
        let decision = self.engine.call(&policy, &caps, request).await?;
        let outcome = match decision {
            Decision::Reply(c) => Outcome::Reply {
                content_type: c.content_type,
                body: Body::Owned(c.body),
            },
            Decision::Render(r) => {
                let limits = RenderLimits {
                    max_output: tenant.limits.reply_bytes,
                };
                let text = caps
                    .renderer
                    .render(&r.template, &r.vars, host_vars.as_ref(), limits)
                    .await
                    .map_err(|source| DecideError::Render {
                        tenant: tenant.name.clone(),
                        source,
                    })?;
                Outcome::Reply {
                    content_type: r.content_type,
                    body: Body::Shared(text),
                }
            }
            Decision::ServeFile(f) => {
                let path = file_path(tenant, &f.name).map_err(|detail| DecideError::File {
                    tenant: tenant.name.clone(),
                    name: f.name.clone(),
                    detail,
                })?;
                Outcome::File {
                    path,
                    content_type: f.content_type,
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

/// The file `name` inside the tenant's files folder: a relative path of plain names, not
/// leaving the folder through `..` or a symbolic link.
fn file_path(tenant: &Tenant, name: &str) -> Result<PathBuf, String> {
    let root = tenant.config.files.as_ref().ok_or_else(|| {
        "the tenant has no files folder; set files = \"path\" in its configuration".to_owned()
    })?;
    if name.is_empty()
        || name.len() > 512
        || name
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == ".." || p.starts_with('.'))
    {
        return Err("must be a relative path of plain names such as onie/installer.bin".into());
    }
    let root = root
        .canonicalize()
        .map_err(|e| format!("files folder {}: {e}", root.display()))?;
    let path = root
        .join(name)
        .canonicalize()
        .map_err(|_| "no such file in the tenant's files folder".to_owned())?;
    if !path.starts_with(&root) || !path.is_file() {
        return Err("no such file in the tenant's files folder".into());
    }
    Ok(path)
}

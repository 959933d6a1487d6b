//! An operator's decisions about a device: approve a job waiting for approval, pick one
//! side of a conflict, deny, or reset the device (it must call back again). Each wakes the
//! jobs held for it; the admin API audits them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{JobError, JobRunner, JobState, NewJob};
use crate::service::{Service, Tenant};
use crate::store::StoreError;
use crate::store::jobs::Update;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("device {0} has no call-back waiting for a decision")]
    Nothing(String),
    #[error(
        "device {serial} is in conflict between {addresses}: name the address to approve (--address)"
    )]
    WhichAddress { serial: String, addresses: String },
    #[error("device {serial} has no claim from {address}; its claims come from {addresses}")]
    NoSuchClaim {
        serial: String,
        address: IpAddr,
        addresses: String,
    },
    #[error("the approved call-back's stored request is unreadable; reset the device")]
    Request,
    #[error(
        "the tenant is provisioning {0} devices, its limit (limits.jobs); approve again when fewer run"
    )]
    Full(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an approval did, for the reply and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approved {
    /// A job waiting for approval goes on.
    Pending { job: i64 },
    /// The claim from `address` won the conflict; its job goes on or was started.
    Claim { address: String, job: Option<i64> },
}

impl JobRunner {
    /// Approve `serial`'s device: the job waiting for approval, or — in a conflict — the
    /// call-back from `address`.
    pub async fn approve(
        &self,
        service: &Arc<Service>,
        tenant: &Tenant,
        serial: &str,
        address: Option<IpAddr>,
        actor: &str,
    ) -> Result<Approved, ResolveError> {
        let stores = &self.inner.stores;
        let claims = stores.claims.of_serial(&tenant.name, serial).await?;
        let contested = claims.iter().any(|c| c.state == "contender");
        if !contested {
            let job = self
                .inner
                .jobs
                .latest_for(serial.to_owned(), Some(tenant.name.clone()))
                .await?;
            if let Some(job) = job.filter(|j| j.state == JobState::PendingApproval)
                && self.inner.jobs.approve(job.id, actor).await?
            {
                self.wake_held();
                return Ok(Approved::Pending { job: job.id });
            }
            return Err(ResolveError::Nothing(serial.to_owned()));
        }
        let addresses = claims
            .iter()
            .map(|c| c.source_ip.clone())
            .collect::<Vec<_>>()
            .join(" and ");
        let Some(address) = address else {
            return Err(ResolveError::WhichAddress {
                serial: serial.to_owned(),
                addresses,
            });
        };
        let winner = claims
            .iter()
            .find(|c| c.source_ip == address.to_string())
            .cloned()
            .ok_or_else(|| ResolveError::NoSuchClaim {
                serial: serial.to_owned(),
                address,
                addresses: addresses.clone(),
            })?;
        let losers = stores
            .claims
            .approve(&tenant.name, serial, winner.id)
            .await?;
        self.wake_held();
        if winner.job_id.is_some() {
            return Ok(Approved::Claim {
                address: winner.source_ip,
                job: winner.job_id,
            });
        }
        // The winner was a contender: its job starts once the losing job has let go of
        // the device (a held job ends as soon as it is woken).
        for loser in &losers {
            if let Some(id) = loser.job_id {
                self.wait_until_ended(id).await;
            }
        }
        let request = winner
            .request
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .ok_or(ResolveError::Request)?;
        let submitted = self
            .submit(
                service.clone(),
                NewJob {
                    request,
                    plan: None,
                    nonce: Some(winner.nonce.clone()),
                    pending_approval: false,
                },
            )
            .await?;
        let job = match submitted {
            super::Submitted::Started(id) | super::Submitted::AlreadyRunning(id) => id,
            super::Submitted::TenantFull { running } => {
                return Err(ResolveError::Full(running));
            }
        };
        stores.claims.set_job(winner.id, job).await?;
        Ok(Approved::Claim {
            address: winner.source_ip,
            job: Some(job),
        })
    }

    /// Deny `serial`'s device: a job waiting for approval fails; a conflict is reset.
    /// Returns how many jobs it ended.
    pub async fn deny(
        &self,
        tenant: &Tenant,
        serial: &str,
        actor: &str,
    ) -> Result<usize, ResolveError> {
        let job = self
            .inner
            .jobs
            .latest_for(serial.to_owned(), Some(tenant.name.clone()))
            .await?;
        if let Some(job) = job.filter(|j| j.state == JobState::PendingApproval) {
            let reason = format!("denied by {actor}");
            self.inner
                .jobs
                .transition(
                    job.id,
                    JobState::Failed,
                    reason.clone(),
                    Update {
                        error: Some(reason),
                        ..Default::default()
                    },
                )
                .await?;
            self.wake_held();
            return Ok(1);
        }
        self.reset(tenant, serial).await
    }

    /// Forget every claim of `serial`: its held jobs fail and the device must fetch the
    /// script and call back again. Returns how many claims there were.
    pub async fn reset(&self, tenant: &Tenant, serial: &str) -> Result<usize, ResolveError> {
        let claims = self.inner.stores.claims.reset(&tenant.name, serial).await?;
        if claims.is_empty() {
            return Err(ResolveError::Nothing(serial.to_owned()));
        }
        self.wake_held();
        Ok(claims.len())
    }

    /// Wait (bounded) until job `id`'s task has ended.
    async fn wait_until_ended(&self, id: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            let running = self
                .inner
                .jobs
                .get(id)
                .await
                .ok()
                .flatten()
                .is_some_and(|j| !j.state.is_finished());
            if !running && !self.is_active(id) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(job = id, "the superseded job did not end within 10 s");
    }
}

impl From<JobError> for ResolveError {
    fn from(e: JobError) -> Self {
        ResolveError::Store(StoreError::Task(e.to_string()))
    }
}

//! One function per plan step. Each step does its work and records its outcome with the
//! job's next step index in one transition, so a restarted job resumes at the first step
//! not done (and a completed SSH push is never repeated).

mod register_monitoring;
mod render;
mod ssh_push;
mod update_inventory;
mod wait;
mod webhook;

use std::sync::Arc;

use super::runner::Inner;
use super::{Job, JobError};
use crate::model::{Plan, Step};
use crate::service::Tenant;
use crate::store::jobs::Update;

/// What a step works with.
pub(super) struct StepCtx<'a> {
    pub(super) runner: &'a Inner,
    pub(super) tenant: &'a Arc<Tenant>,
    pub(super) job: &'a mut Job,
    pub(super) plan: &'a Plan,
    /// This step's index in the plan.
    pub(super) index: usize,
}

impl StepCtx<'_> {
    /// The update that marks this step done.
    fn done(&self) -> Update {
        Update {
            step: Some(self.index + 1),
            ..Default::default()
        }
    }
}

pub(super) async fn run(ctx: &mut StepCtx<'_>, step: &Step) -> Result<(), JobError> {
    match step {
        Step::Render(r) => render::run(ctx, r).await,
        Step::Wait { seconds } => wait::run(ctx, *seconds).await,
        Step::SshPush(p) => ssh_push::run(ctx, p).await,
        Step::RegisterMonitoring(m) => register_monitoring::run(ctx, m).await,
        Step::UpdateInventory(c) => update_inventory::run(ctx, c).await,
        Step::Webhook(w) => webhook::run(ctx, w).await,
        Step::Extension(e) => Err(JobError::failed(format!(
            "plan step {:?} is not a step this ztpd knows; it runs render, wait, ssh-push, register-monitoring, update-inventory and webhook",
            e.kind.chars().take(64).collect::<String>()
        ))),
    }
}

/// Whether a step reaches the device or the outside world (and so waits while the
/// device's serial is in conflict). Rendering and waiting stay inside ztpd.
pub(super) fn reaches_out(step: &Step) -> bool {
    !matches!(step, Step::Render(_) | Step::Wait { .. })
}

/// One line naming a plan's steps, for the job's event log.
pub(super) fn summary(steps: &[Step]) -> String {
    if steps.is_empty() {
        return "no steps".into();
    }
    steps
        .iter()
        .map(|s| match s {
            Step::Render(r) => format!("render {}", r.template),
            Step::Wait { seconds } => format!("wait {seconds} s"),
            Step::SshPush(p) => format!("ssh-push ({})", p.platform),
            Step::RegisterMonitoring(m) => format!("register in {}", m.sink),
            Step::UpdateInventory(_) => "update inventory".into(),
            Step::Webhook(w) => format!("webhook {}", w.name),
            Step::Extension(e) => {
                format!("{} (unknown)", e.kind.chars().take(64).collect::<String>())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tenant's NetBox, or a failure naming the step and how to configure one.
fn netbox_of(tenant: &Tenant, step: &str) -> Result<Arc<crate::sources::NetBox>, JobError> {
    tenant
        .capabilities()
        .inventory
        .netbox()
        .cloned()
        .ok_or_else(|| {
            JobError::failed(format!(
                "{step}: tenant {} has no NetBox inventory; add inventory = {{ netbox = \"https://...\", token_env = \"...\" }}",
                tenant.name
            ))
        })
}

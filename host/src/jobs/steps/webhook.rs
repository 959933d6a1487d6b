//! `webhook`: queue a signed event for one of the tenant's webhooks; the outbox delivers
//! it in the background.

use super::{JobError, StepCtx};
use crate::jobs::JobState;
use crate::model::Webhook;
use crate::monitoring::JobEvent;

pub(super) async fn run(ctx: &mut StepCtx<'_>, w: &Webhook) -> Result<(), JobError> {
    let tenant = ctx.tenant;
    if !tenant.config.webhooks.contains_key(&w.name) {
        return Err(JobError::failed(format!(
            "webhook: tenant {} has no webhook named {:?} (it has: {}); add [tenants.webhooks.{}]",
            tenant.name,
            w.name,
            tenant
                .config
                .webhooks
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            w.name
        )));
    }
    let data: serde_json::Value = serde_json::from_str(&w.data).map_err(|e| {
        JobError::failed(format!(
            "webhook {}: the policy's data is not JSON: {e}",
            w.name
        ))
    })?;
    let body = JobEvent {
        event: &w.event,
        tenant: &ctx.job.tenant,
        job: ctx.job,
        error: None,
        data,
    }
    .body();
    let delivery = ctx
        .runner
        .outbox
        .enqueue(&ctx.job.tenant, &w.name, &w.event, &body)
        .await
        .map_err(|e| JobError::failed(format!("webhook {}: {e}", w.name)))?;
    ctx.runner
        .jobs
        .transition(
            ctx.job.id,
            JobState::Registering,
            format!(
                "webhook {}: event {} queued (delivery {delivery})",
                w.name, w.event
            ),
            ctx.done(),
        )
        .await?;
    Ok(())
}

//! `register-monitoring`: add the device to a monitoring sink of the tenant (PRTG).

use super::{JobError, StepCtx};
use crate::jobs::JobState;
use crate::model::{MonitoringAdd, Step};

pub(super) async fn run(ctx: &mut StepCtx<'_>, m: &MonitoringAdd) -> Result<(), JobError> {
    let tenant = ctx.tenant;
    let sink = tenant.sinks.get(&m.sink).ok_or_else(|| {
        JobError::failed(format!(
            "register-monitoring: tenant {} has no monitoring sink named {:?} (it has: {}); add [tenants.monitoring.{}]",
            tenant.name,
            m.sink,
            tenant.sinks.keys().cloned().collect::<Vec<_>>().join(", "),
            m.sink
        ))
    })?;
    // The address the device was pushed to, else the one it called from.
    let host = m
        .host
        .clone()
        .or_else(|| {
            ctx.plan.steps.iter().rev().find_map(|s| match s {
                Step::SshPush(p) => p.address.clone(),
                _ => None,
            })
        })
        .unwrap_or_else(|| ctx.job.source_ip.clone());
    let line = sink
        .register(&m.name, &host, m.group.as_deref(), m.template.as_deref())
        .await
        .map_err(|e| JobError::failed(format!("register-monitoring {}: {e}", m.sink)))?;
    ctx.runner
        .jobs
        .transition(ctx.job.id, JobState::Registering, line, ctx.done())
        .await?;
    Ok(())
}

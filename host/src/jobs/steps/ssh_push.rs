//! `ssh-push`: send the rendered configuration to the device over SSH and save it.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{JobError, StepCtx};
use crate::jobs::JobState;
use crate::model::SshPush;
use crate::ssh::{self, Platform, Target};
use crate::store::jobs::Update;

pub(super) async fn run(ctx: &mut StepCtx<'_>, p: &SshPush) -> Result<(), JobError> {
    let tenant = ctx.tenant;
    let config = ctx.job.config.clone().ok_or_else(|| {
        JobError::failed(
            "ssh-push needs a rendered config: put a render step before it in the plan",
        )
    })?;
    let platform = Platform::parse(&p.platform).ok_or_else(|| {
        JobError::failed(format!(
            "ssh-push: unknown platform {:?}; ztpd drives cisco_iosxe and arista_eos",
            p.platform
        ))
    })?;
    let credential = tenant.credentials.get(&p.credential).cloned().ok_or_else(|| {
        JobError::failed(format!(
            "ssh-push: tenant {} has no credential named {:?} (it has: {}); add [tenants.credentials.{}]",
            tenant.name,
            p.credential,
            tenant
                .credentials
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            p.credential
        ))
    })?;
    let host = p
        .address
        .clone()
        .unwrap_or_else(|| ctx.job.source_ip.clone());
    let port = p.port.unwrap_or(22);
    let addr = format!("{host}:{port}");
    let host_keys = &ctx.runner.stores.host_keys;
    let known_key = host_keys.get(&ctx.job.tenant, &addr).await?;
    let target = Target {
        host,
        port,
        platform,
        credential,
        pinned_key: p.host_key.clone(),
        known_key: known_key.clone(),
    };
    let lines = ssh::config_lines(&config);
    let _permit = ctx
        .runner
        .push_permits
        .acquire()
        .await
        .map_err(|_| JobError::failed("ztpd is shutting down"))?;
    let jobs = &ctx.runner.jobs;
    jobs.transition(
        ctx.job.id,
        JobState::Pushing,
        format!(
            "pushing {} lines to {addr} as {} ({})",
            lines.len(),
            target.credential.username,
            p.platform
        ),
        Update::default(),
    )
    .await?;
    let deadline = Instant::now() + ctx.runner.config.job_timeout;
    let in_flight = ctx.runner.pushes_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    ctx.runner
        .peak_pushes
        .fetch_max(in_flight, Ordering::Relaxed);
    let result = ssh::push(&ctx.runner.config.ssh, &target, &lines, p.save, deadline).await;
    ctx.runner.pushes_in_flight.fetch_sub(1, Ordering::Relaxed);
    match result {
        Ok(pushed) => {
            if known_key.is_none() && p.host_key.is_none() {
                host_keys
                    .record(&ctx.job.tenant, &addr, &pushed.host_key)
                    .await?;
            }
            jobs.transition(
                ctx.job.id,
                JobState::Pushing,
                format!(
                    "pushed {} lines to {addr}{} ({} connection attempts)",
                    pushed.lines,
                    if p.save { " and saved" } else { "" },
                    pushed.attempts
                ),
                Update {
                    push_done: true,
                    transcript: Some(pushed.transcript),
                    ..ctx.done()
                },
            )
            .await?;
            Ok(())
        }
        Err(e) => {
            if let Some(t) = e.transcript() {
                let _ = jobs
                    .transition(
                        ctx.job.id,
                        JobState::Pushing,
                        "push failed; transcript kept",
                        Update {
                            transcript: Some(t.to_owned()),
                            ..Default::default()
                        },
                    )
                    .await;
            }
            Err(JobError::failed(format!("ssh-push: {e}")))
        }
    }
}

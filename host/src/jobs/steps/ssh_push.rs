//! `ssh-push`: send the rendered configuration to the device over SSH and save it.
//!
//! - Where: the address the call-back came from, an address the inventory declares for
//!   the device (`callback.address_field`), or one inside the tenant's `push_networks`;
//!   anything else fails the job naming the address and the setting, and no connection
//!   is made.
//! - As whom: the named credential; the tenant's `callback.user` is the one-time user the
//!   served script created, whose password is derived again from the job's token nonce.
//!   When the push logs in as the script's temporary user, it removes that user as its
//!   last configuration line and checks it is gone before saving.
//! - Host keys: a key pinned by the plan wins; else the key seen first for this device
//!   (its serial), whatever its address.
//! - Slots: connecting holds none (a dead address costs this job its time only); the push
//!   itself takes one of the tenant's slots (`limits.pushes`) and one global slot
//!   (`jobs.max_concurrent_pushes`).

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{JobError, StepCtx};
use crate::config::ExposeSecret;
use crate::jobs::JobState;
use crate::model::SshPush;
use crate::ssh::{self, Credential, Platform, Push, Target};
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
    let credential = credential(ctx, &p.credential)?;
    let host = target_address(ctx, p).await?;
    let port = p.port.unwrap_or(22);
    let addr = format!("{host}:{port}");
    let host_keys = &ctx.runner.stores.host_keys;
    let known_key = host_keys.get(&ctx.job.tenant, &ctx.job.device).await?;
    let script_user = tenant
        .config
        .callback
        .script_user(&tenant.config.credentials);
    let remove_user = script_user.filter(|u| *u == credential.username);
    let target = Target {
        host: host.to_string(),
        port,
        platform,
        credential,
        pinned_key: p.host_key.clone(),
        known_key: known_key.clone(),
    };
    let lines = ssh::config_lines(&config);
    let jobs = &ctx.runner.jobs;
    jobs.transition(
        ctx.job.id,
        JobState::Pushing,
        format!(
            "connecting to {addr} as {} ({})",
            target.credential.username, p.platform
        ),
        Update::default(),
    )
    .await?;
    let deadline = Instant::now() + ctx.runner.config.job_timeout;
    let settings = &ctx.runner.config.ssh;
    let result = async {
        let session = ssh::connect(settings, &target, deadline).await?;
        let _tenant_slot = tenant.push_permits.acquire().await;
        let _slot = ctx.runner.push_permits.acquire().await;
        let in_flight = ctx.runner.pushes_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        ctx.runner
            .peak_pushes
            .fetch_max(in_flight, Ordering::Relaxed);
        let push = Push {
            lines: &lines,
            save: p.save,
            remove_user: remove_user.clone(),
            masks: masks(ctx),
        };
        let pushed = session.configure(settings, platform, push).await;
        ctx.runner.pushes_in_flight.fetch_sub(1, Ordering::Relaxed);
        pushed
    }
    .await;
    match result {
        Ok(pushed) => {
            if known_key.is_none() && p.host_key.is_none() {
                host_keys
                    .record(&ctx.job.tenant, &ctx.job.device, &pushed.host_key)
                    .await?;
            }
            let removed = remove_user
                .map(|u| format!(", removed the temporary user {u}"))
                .unwrap_or_default();
            jobs.transition(
                ctx.job.id,
                JobState::Pushing,
                format!(
                    "pushed {} lines to {addr}{removed}{} ({} connection attempts)",
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

/// The credential a plan names: the one-time user of this job's script, or a configured
/// one.
fn credential(ctx: &StepCtx<'_>, name: &str) -> Result<Credential, JobError> {
    let tenant = ctx.tenant;
    if tenant.config.callback.user.as_deref() == Some(name) {
        let nonce = ctx.job.nonce.as_deref().ok_or_else(|| {
            JobError::failed(format!(
                "ssh-push: credential {name:?} is the one-time user of a served script, but this job did not come from a call-back"
            ))
        })?;
        return Ok(Credential::password(
            name,
            tenant.callback_key.password(nonce),
        ));
    }
    tenant.credentials.get(name).cloned().ok_or_else(|| {
        JobError::failed(format!(
            "ssh-push: tenant {} has no credential named {name:?} (it has: {}); add [tenants.credentials.{name}]",
            tenant.name,
            tenant
                .credentials
                .keys()
                .cloned()
                .chain(tenant.config.callback.user.clone())
                .collect::<Vec<_>>()
                .join(", "),
        ))
    })
}

/// Every secret the transcript must not show: the tenant's passwords and this job's
/// one-time password.
fn masks(ctx: &StepCtx<'_>) -> Vec<String> {
    let tenant = ctx.tenant;
    let mut out: Vec<String> = tenant
        .credentials
        .values()
        .filter_map(Credential::secret_text)
        .collect();
    if let Some(nonce) = &ctx.job.nonce {
        out.push(
            tenant
                .callback_key
                .password(nonce)
                .expose_secret()
                .to_owned(),
        );
    }
    out
}

/// The address `callback.address_field` declares for the job's serial, if any.
async fn declared_address(ctx: &StepCtx<'_>) -> Result<Option<IpAddr>, JobError> {
    let tenant = ctx.tenant;
    let (Some(field), Some(serial)) = (&tenant.config.callback.address_field, &ctx.job.serial)
    else {
        return Ok(None);
    };
    let record = tenant
        .capabilities()
        .inventory
        .lookup("serial", serial)
        .await
        .map_err(|e| JobError::failed(format!("ssh-push: looking up {serial}'s {field}: {e}")))?;
    let Some(record) = record else {
        return Ok(None);
    };
    let record: serde_json::Value = serde_json::from_str(&record).unwrap_or_default();
    Ok(record
        .get(field)
        .and_then(|v| v.as_str())
        .and_then(|text| text.split('/').next()?.parse().ok()))
}

/// Where the push may go: the device's own address (where it called back from, or where
/// the inventory says it is), or inside the tenant's `push_networks`. Where the inventory
/// declares the device's address (`callback.address_field`), the call-back's source counts
/// only if it is that address: checked again here because the call-back may have been
/// accepted while the source of truth could not be asked.
async fn target_address(ctx: &StepCtx<'_>, p: &SshPush) -> Result<IpAddr, JobError> {
    let source: IpAddr = ctx.job.source_ip.parse().map_err(|_| {
        JobError::failed(format!(
            "ssh-push: the job's source address {:?} is not an address",
            ctx.job.source_ip
        ))
    })?;
    let wanted: IpAddr = match &p.address {
        None => source,
        Some(text) => text.parse().map_err(|_| {
            JobError::failed(format!("ssh-push: address {text:?} is not an IP address"))
        })?,
    };
    let tenant = ctx.tenant;
    if tenant
        .config
        .push_networks
        .iter()
        .any(|n| n.contains(&wanted))
    {
        return Ok(wanted);
    }
    let declared = declared_address(ctx).await?;
    match declared {
        Some(d) if d == wanted => return Ok(wanted),
        Some(d) => {
            return Err(JobError::failed(format!(
                "ssh-push to {wanted} refused: the inventory declares {serial} at {d} ({field}); the call-back came from {source}",
                serial = ctx.job.serial.as_deref().unwrap_or("the device"),
                field = tenant
                    .config
                    .callback
                    .address_field
                    .as_deref()
                    .unwrap_or("?"),
            )));
        }
        None if wanted == source => return Ok(wanted),
        None => {}
    }
    Err(JobError::failed(format!(
        "ssh-push to {wanted} refused: it is not the device's address ({source}) and not inside the tenant's push_networks ({}); add the network to push_networks if the device is managed there",
        if tenant.config.push_networks.is_empty() {
            "none".to_owned()
        } else {
            tenant
                .config
                .push_networks
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    )))
}

//! Accepting a call-back, for every dialect whose device calls back after a served script
//! ran (IOS XE today). IOS XE's own ZTP authenticates nothing, so ztpd binds what it can
//! observe and refuses what does not fit:
//!
//! 1. The token must come from the address that fetched the script, within its lifetime
//!    (`401` missing, `403` forged, expired or from another address; the last is audited
//!    with both addresses).
//! 2. If ztpd knows where the device should be — an address the inventory declares
//!    (`callback.address_field`) or the address the built-in DHCP server leased to the
//!    serial's MAC — a call-back from anywhere else is refused (`403`, audited).
//! 3. The first accepted call-back binds the serial to its address and token nonce; each
//!    nonce claims once. Another claim of the serial (another address or token, while its
//!    job runs or after) is refused with `409`, puts the device in conflict (held before
//!    it reaches the device, visible in status, audited, `device.conflict` webhook) until
//!    an operator approves one side or resets the device ([`crate::jobs::resolve`]).
//! 4. With `callback.approval = "manual"` the job waits for an operator before anything.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::{Ctx, DeviceError, DeviceReply};
use crate::config::{Approval, HostEvent, Reclaim};
use crate::jobs::{NewJob, Submitted};
use crate::model::{DeviceRequest, Mac};
use crate::service::Tenant;
use crate::sources::MAC_FIELDS;
use crate::store::claims::{Claimed, NewClaim};
use crate::trust::token::TokenError;

/// The header a call-back carries its token in.
pub const TOKEN_HEADER: &str = "x-ztpd-token";

/// Check a call-back and start (or find) its job; the acknowledgement to send.
pub async fn accept(
    ctx: &Ctx,
    tenant: &Arc<Tenant>,
    headers: &HeaderMap,
    request: DeviceRequest,
) -> Result<DeviceReply, DeviceError> {
    let source = request.identity.source_ip;
    let serial =
        request.identity.serial.clone().ok_or_else(|| {
            DeviceError::BadRequest("the call-back names no serial number".into())
        })?;
    let token = headers.get(TOKEN_HEADER).and_then(|t| t.to_str().ok());
    let claims = match tenant.callback_key.verify(token, source) {
        Ok(c) => c,
        Err(TokenError::Missing) => {
            return Err(DeviceError::Unauthorized(TokenError::Missing.to_string()));
        }
        Err(e @ TokenError::WrongAddress { issued_to, .. }) => {
            security(
                ctx,
                tenant,
                "security.token-address",
                &serial,
                format!("a call-back for {serial} from {source} carried a token issued to {issued_to}; refused"),
            )
            .await;
            return Err(DeviceError::Forbidden(e.to_string()));
        }
        Err(e) => return Err(DeviceError::Forbidden(e.to_string())),
    };
    if let Some(expected) = expected_address(ctx, tenant, &serial).await?
        && expected != source
    {
        security(
            ctx,
            tenant,
            "security.claim-refused",
            &serial,
            format!("a call-back claiming {serial} came from {source}; the device is known at {expected}; refused"),
        )
        .await;
        return Err(DeviceError::Forbidden(format!(
            "serial {serial} is not expected at {source}"
        )));
    }
    let stores = ctx.service.stores();
    let claimed = stores
        .claims
        .claim(NewClaim {
            tenant: tenant.name.clone(),
            serial: serial.clone(),
            source_ip: source.to_string(),
            nonce: claims.nonce.clone(),
            request: serde_json::to_string(&crate::store::jobs::bounded(&request))
                .unwrap_or_default(),
            reclaim_same_address: tenant.config.callback.reclaim == Reclaim::SameAddress,
        })
        .await
        .map_err(|e| DeviceError::internal(format!("cannot record the call-back's claim: {e}")))?;
    match claimed {
        Claimed::Again { job } => Ok(ack(&serial, job, true)),
        Claimed::NonceUsed => {
            security(
                ctx,
                tenant,
                "security.token-reused",
                &serial,
                format!("a call-back for {serial} from {source} reused a token that claimed another device; refused"),
            )
            .await;
            Err(DeviceError::Forbidden(
                "this call-back token was already used for another device; fetch the script again"
                    .into(),
            ))
        }
        Claimed::Conflict { bound_to } => {
            conflict(ctx, tenant, &serial, source, &bound_to).await;
            Ok(DeviceReply::json(
                StatusCode::CONFLICT,
                &json!({
                    "status": "CONFLICT",
                    "serial": serial,
                    "detail": "another call-back already claimed this serial; an operator must approve one",
                }),
            ))
        }
        Claimed::New { claim } => {
            let new = NewJob {
                request,
                plan: None,
                nonce: Some(claims.nonce),
                pending_approval: tenant.config.callback.approval == Approval::Manual,
            };
            let submitted = ctx.runner.submit(ctx.service.clone(), new).await;
            let (job, already) = match submitted {
                Ok(Submitted::Started(id)) => (id, false),
                Ok(Submitted::AlreadyRunning(id)) => (id, true),
                Ok(Submitted::TenantFull { running }) => {
                    let _ = stores.claims.drop_claim(claim).await;
                    tracing::warn!(tenant = %tenant.name, running, "call-back refused: the tenant runs as many jobs as limits.jobs allows");
                    return Err(DeviceError::TooManyRequests {
                        reason: format!(
                            "tenant {} is provisioning {running} devices, its limit; call back later",
                            tenant.name
                        ),
                        retry_after_s: 30,
                    });
                }
                Err(e) => {
                    let _ = stores.claims.drop_claim(claim).await;
                    return Err(DeviceError::internal(format!(
                        "cannot record the call-back: {e}"
                    )));
                }
            };
            stores.claims.set_job(claim, job).await.map_err(|e| {
                DeviceError::internal(format!("cannot record the claim's job: {e}"))
            })?;
            Ok(ack(&serial, Some(job), already))
        }
    }
}

/// Where the device with `serial` should call back from, if ztpd knows: the inventory's
/// `callback.address_field`, else the address the built-in DHCP server leased to its MAC.
async fn expected_address(
    ctx: &Ctx,
    tenant: &Tenant,
    serial: &str,
) -> Result<Option<IpAddr>, DeviceError> {
    let record = match tenant
        .capabilities()
        .inventory
        .lookup("serial", serial)
        .await
    {
        Ok(record) => record,
        // The source of truth cannot say now: accept the call-back. Nothing is lost to an
        // impostor: the push checks the declared address again before it connects, and a
        // second claim of the serial is a conflict.
        Err(e) => {
            tracing::warn!(tenant = %tenant.name, serial, "cannot check where {serial} should call back from (the push checks again): {e}");
            return Ok(None);
        }
    };
    let Some(record) = record else {
        return Ok(None);
    };
    let record: serde_json::Value = serde_json::from_str(&record).unwrap_or_default();
    if let Some(field) = &tenant.config.callback.address_field
        && let Some(text) = record.get(field).and_then(|v| v.as_str())
    {
        let ip: IpAddr = text
            .split('/')
            .next()
            .unwrap_or(text)
            .parse()
            .map_err(|_| {
                DeviceError::internal(format!(
                    "tenant {}: inventory record of {serial}: {field} = {text:?} is not an address",
                    tenant.name
                ))
            })?;
        return Ok(Some(ip));
    }
    let mac = MAC_FIELDS
        .iter()
        .find_map(|f| record.get(*f)?.as_str()?.parse::<Mac>().ok());
    let Some(mac) = mac else {
        return Ok(None);
    };
    super::common::leased_address(ctx, tenant, mac).await
}

/// A second claim: audit, log, tell webhooks, mark the running job, wake held jobs.
async fn conflict(ctx: &Ctx, tenant: &Tenant, serial: &str, source: IpAddr, bound_to: &str) {
    let detail = format!(
        "serial {serial} claimed from {source}, but it is bound to {bound_to}; held until an operator approves one (ztpd device approve) or resets it"
    );
    security(ctx, tenant, "security.conflict", serial, detail.clone()).await;
    let stores = ctx.service.stores();
    if let Some(id) = ctx.runner.running_job(&tenant.name, serial)
        && let Err(e) = stores
            .jobs
            .transition(
                id,
                crate::jobs::JobState::Conflict,
                detail,
                Default::default(),
            )
            .await
    {
        tracing::error!(job = id, "cannot record the conflict: {e}");
    }
    ctx.runner.wake_held();
    for (name, hook) in &tenant.config.webhooks {
        if !hook.events.contains(&HostEvent::Conflict) {
            continue;
        }
        let body = json!({
            "event": HostEvent::Conflict.as_str(),
            "tenant": tenant.name,
            "device": {"serial": serial},
            "claims": {"bound": bound_to, "contender": source.to_string()},
            "occurred_at": crate::monitoring::rfc3339(crate::clock::now_ms()),
        });
        if let Err(e) = ctx
            .runner
            .outbox()
            .enqueue(&tenant.name, name, HostEvent::Conflict.as_str(), &body)
            .await
        {
            tracing::error!(tenant = %tenant.name, webhook = %name, "cannot queue device.conflict: {e}");
        }
    }
}

/// A refused or contested call-back: a warning in the log and an audit entry.
async fn security(ctx: &Ctx, tenant: &Tenant, action: &str, serial: &str, detail: String) {
    tracing::warn!(tenant = %tenant.name, serial, action, "{detail}");
    ctx.service
        .audit(tenant, "device", action, serial, None, detail)
        .await;
}

/// The call-back acknowledgement (the seed's `{"status": "ACK", "serial": ...}`, plus the job).
fn ack(serial: &str, job: Option<i64>, already_running: bool) -> DeviceReply {
    DeviceReply::json(
        StatusCode::OK,
        &json!({
            "status": "ACK",
            "serial": serial,
            "job": job,
            "already_running": already_running,
        }),
    )
}

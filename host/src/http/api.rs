//! The status API: devices and their provisioning jobs as JSON.
//!
//! `GET /api/v1/devices` lists the newest job of every device; `GET /api/v1/devices/{device}`
//! (serial, or the device key) shows its state, events, rendered config, the policy version
//! that decided it and the SSH transcript (secrets masked), and the DHCP lease the device
//! got from the built-in server (found by MAC, or by the address it called back from) —
//! a device that has a lease but no job yet (a switch that only fetched its config) is
//! shown by MAC with its lease alone. `GET /api/v1/dhcp` lists every lease and how often
//! each subnet's pool was found full. A tenant token sees only its tenant.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::StatusCaller;
use super::{AppError, AppState};
use crate::jobs::Job;
use crate::model::Mac;

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

fn summary(j: &Job) -> serde_json::Value {
    json!({
        "tenant": j.tenant,
        "device": j.device,
        "serial": j.serial,
        "mac": j.mac,
        "source_ip": j.source_ip,
        "model": j.model,
        "job": j.id,
        "state": j.state,
        "policy_version": j.policy_version,
        "error": j.error,
        "created_ms": j.created_ms,
        "updated_ms": j.updated_ms,
    })
}

/// Every device's newest job (a tenant token sees its tenant's).
#[utoipa::path(get, path = "/api/v1/devices", tag = "status",
    responses((status = 200, description = "`{devices: [...]}`"), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(super) async fn devices(
    State(app): State<AppState>,
    StatusCaller(caller): StatusCaller,
) -> Result<Response, AppError> {
    let jobs = app
        .ctx
        .runner
        .store()
        .latest_per_device(caller.tenant.clone())
        .await
        .map_err(internal)?;
    let list: Vec<_> = jobs.iter().map(summary).collect();
    Ok(axum::Json(json!({ "devices": list })).into_response())
}

/// One device (serial, key or MAC): state, events, config, plan, transcript, lease.
#[utoipa::path(get, path = "/api/v1/devices/{device}", tag = "status",
    params(("device" = String, Path)),
    responses((status = 200, description = "the device's newest job and its lease"), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn device(
    State(app): State<AppState>,
    Path(device): Path<String>,
    StatusCaller(caller): StatusCaller,
) -> Result<Response, AppError> {
    let store = app.ctx.runner.store();
    let job = store
        .latest_for(device.clone(), caller.tenant.clone())
        .await
        .map_err(internal)?;
    let as_mac = device.parse::<Mac>().ok();
    let mac = job
        .as_ref()
        .and_then(|j| j.mac.as_deref())
        .and_then(|m| m.parse::<Mac>().ok())
        .or(as_mac)
        .map(|m| m.to_string());
    let lease = app
        .ctx
        .service
        .stores()
        .leases
        .find(mac, job.as_ref().map(|j| j.source_ip.clone()))
        .await
        .map_err(internal)?
        .filter(|l| caller.sees(&l.tenant));
    let not_found = || {
        AppError::NotFound(format!(
            "no device {device:?} has called back or taken a DHCP lease"
        ))
    };
    let Some(job) = job else {
        return match lease {
            Some(lease) => Ok(axum::Json(json!({
                "device": device,
                "mac": lease.mac,
                "tenant": lease.tenant,
                "lease": lease,
            }))
            .into_response()),
            None => Err(not_found()),
        };
    };
    let events = store.events(job.id).await.map_err(internal)?;
    let claims = match &job.serial {
        Some(serial) => app
            .ctx
            .service
            .stores()
            .claims
            .of_serial(&job.tenant, serial)
            .await
            .map_err(internal)?,
        None => Vec::new(),
    };
    let conflict = claims.iter().any(|c| c.state == "contender");
    let mut body = summary(&job);
    if let Some(map) = body.as_object_mut() {
        map.insert("events".into(), json!(events));
        map.insert("config".into(), json!(job.config));
        map.insert("plan".into(), json!(job.plan));
        map.insert("pushes".into(), json!(job.pushes));
        map.insert("transcript".into(), json!(job.transcript));
        map.insert("lease".into(), json!(lease));
        map.insert("claims".into(), json!(claims));
        map.insert("conflict".into(), json!(conflict));
    }
    Ok(axum::Json(body).into_response())
}

/// The built-in DHCP server's leases and pool-full counts.
#[utoipa::path(get, path = "/api/v1/dhcp", tag = "status",
    responses((status = 200, description = "`{leases: [...], pool_full: {subnet: n}}`"), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(super) async fn dhcp(
    State(app): State<AppState>,
    StatusCaller(caller): StatusCaller,
) -> Result<Response, AppError> {
    let leases = &app.ctx.service.stores().leases;
    let all: Vec<_> = leases
        .all()
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|l| caller.sees(&l.tenant))
        .collect();
    // Pool-full counts are kept per subnet: show those of the caller's tenants' subnets.
    let service = &app.ctx.service;
    let pool_full: std::collections::BTreeMap<String, u64> = leases
        .pool_full_counts()
        .into_iter()
        .filter(|(subnet, _)| {
            caller.tenant.as_deref().is_none_or(|name| {
                service.tenant(name).is_some_and(|t| {
                    t.config
                        .dhcp
                        .iter()
                        .any(|d| d.subnet.to_string() == *subnet)
                })
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "leases": all,
        "pool_full": pool_full,
    }))
    .into_response())
}

//! The status API: devices and their provisioning jobs as JSON.
//!
//! `GET /api/v1/devices` lists the newest job of every device; `GET /api/v1/devices/{device}`
//! (serial, or the device key) shows its state, events, rendered config, the policy version
//! that decided it and the SSH transcript (secrets masked), and the DHCP lease the device
//! got from the built-in server (found by MAC, or by the address it called back from) —
//! a device that has a lease but no job yet (a switch that only fetched its config) is
//! shown by MAC with its lease alone. `GET /api/v1/dhcp` lists every lease and how often
//! each subnet's pool was found full. If the configuration names an API token, all of
//! them require `Authorization: Bearer <token>`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppError, AppState, constant_time_eq};
use crate::jobs::Job;

fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(expected) = &app.api_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    match given {
        None => Err(AppError::Unauthorized(
            "the status API needs Authorization: Bearer <token>".into(),
        )),
        Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(AppError::Forbidden("wrong API token".into())),
    }
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

pub(super) async fn devices(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&app, &headers)?;
    let jobs = app
        .runner
        .store()
        .latest_per_device(None)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let list: Vec<_> = jobs.iter().map(summary).collect();
    Ok(axum::Json(json!({ "devices": list })).into_response())
}

pub(super) async fn device(
    State(app): State<AppState>,
    Path(device): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&app, &headers)?;
    let store = app.runner.store();
    let job = store
        .latest_for(device.clone(), None)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let as_mac = device.parse::<crate::identity::Mac>().ok();
    let mac = job
        .as_ref()
        .and_then(|j| j.mac.as_deref())
        .and_then(|m| m.parse::<crate::identity::Mac>().ok())
        .or(as_mac)
        .map(|m| m.to_string());
    let lease = app
        .leases
        .find(mac, job.as_ref().map(|j| j.source_ip.clone()))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let Some(job) = job else {
        return match lease {
            Some(lease) => Ok(axum::Json(json!({
                "device": device,
                "mac": lease.mac,
                "tenant": lease.tenant,
                "lease": lease,
            }))
            .into_response()),
            None => Err(AppError::NotFound(format!(
                "no device {device:?} has called back or taken a DHCP lease"
            ))),
        };
    };
    let events = store
        .events(job.id)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut body = summary(&job);
    if let Some(map) = body.as_object_mut() {
        map.insert("events".into(), json!(events));
        map.insert("config".into(), json!(job.config));
        map.insert("plan".into(), json!(job.plan));
        map.insert("pushes".into(), json!(job.pushes));
        map.insert("transcript".into(), json!(job.transcript));
        map.insert("lease".into(), json!(lease));
    }
    Ok(axum::Json(body).into_response())
}

pub(super) async fn dhcp(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    authorize(&app, &headers)?;
    let leases = app
        .leases
        .all()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(axum::Json(json!({
        "leases": leases,
        "pool_full": app.leases.pool_full_counts(),
    }))
    .into_response())
}

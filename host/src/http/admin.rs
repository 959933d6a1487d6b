//! The admin API (JSON over HTTP, `/admin/v1`): tenants, policy versions (upload,
//! validate, activate, roll back, list), templates, a tenant's devices, and the audit log.
//!
//! Every call carries `Authorization: Bearer <token>`. Tokens are named in the
//! configuration: an operator token reaches every tenant; a tenant token only its own
//! (anything else is a 403). Every change is written to the audit log with the token's
//! name, the tenant, the content hash and the time. The OpenAPI document is served at
//! `/admin/v1/openapi.json`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::auth::{AdminCaller, Caller};
use super::openapi::{
    Audit, Decided, Live, LivePolicy, Policies, Slot, TemplateStored, TenantInfo, Tenants, Uploaded,
};
use super::{AppError, AppState};
use crate::service::{ANY_SLOT, ActivationError, Tenant, slot_name};

/// Largest policy or template upload.
pub const MAX_UPLOAD: usize = 16 << 20;

fn tenant(app: &AppState, caller: &Caller, name: &str) -> Result<Arc<Tenant>, AppError> {
    caller.may(name)?;
    app.ctx
        .service
        .tenant(name)
        .cloned()
        .ok_or_else(|| AppError::NotFound(format!("no tenant named {name:?}")))
}

/// `any` (the tenant's general policy) or a dialect's name, as the tenant has it.
fn slot(tenant: &Tenant, name: &str) -> Result<Option<String>, AppError> {
    let wanted = (name != ANY_SLOT).then(|| name.to_owned());
    if tenant.has_slot(wanted.as_deref()) {
        Ok(wanted)
    } else {
        let have: Vec<String> = tenant
            .policies()
            .iter()
            .map(|(d, _)| slot_name(d.as_deref()).to_owned())
            .collect();
        Err(AppError::BadRequest(format!(
            "tenant {} has no policy slot {name}; it has: {}",
            tenant.name,
            have.join(", ")
        )))
    }
}

/// A refused version is the uploader's problem (400); anything else is ztpd's (500).
fn refused(e: ActivationError) -> AppError {
    match e {
        ActivationError::Policy(_)
        | ActivationError::Smoke { .. }
        | ActivationError::SmokeRequest(_)
        | ActivationError::Templates(_) => AppError::BadRequest(format!("refused: {e}")),
        other => AppError::Internal(other.to_string()),
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

async fn audit(
    app: &AppState,
    caller: &Caller,
    tenant: &Tenant,
    action: &str,
    target: &str,
    hash: Option<&str>,
    detail: String,
) {
    app.ctx
        .service
        .audit(tenant, &caller.name, action, target, hash, detail)
        .await;
}

/// The admin routes, merged into the API router. Uploads may be up to [`MAX_UPLOAD`].
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route("/admin/v1/tenants", get(tenants))
        .route("/admin/v1/tenants/{tenant}/policies", get(policies))
        .route("/admin/v1/tenants/{tenant}/policies/{slot}", post(upload))
        .route(
            "/admin/v1/tenants/{tenant}/policies/{slot}/rollback",
            post(rollback),
        )
        .route(
            "/admin/v1/tenants/{tenant}/policies/{slot}/{hash}/activate",
            post(activate),
        )
        .route(
            "/admin/v1/tenants/{tenant}/templates/{*name}",
            put(put_template),
        )
        .route("/admin/v1/tenants/{tenant}/devices", get(devices))
        .route(
            "/admin/v1/tenants/{tenant}/devices/{serial}/{action}",
            post(decide_device),
        )
        .route("/admin/v1/audit", get(audit_log))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::document(),
    )
        .into_response()
}

fn tenant_info(t: &Tenant) -> TenantInfo {
    TenantInfo {
        name: t.name.clone(),
        default: t.is_default,
        sources: t.config.sources.iter().map(|n| n.to_string()).collect(),
        policies: t
            .policies()
            .iter()
            .map(|(d, p)| LivePolicy {
                slot: slot_name(d.as_deref()).to_owned(),
                name: p.name().to_owned(),
                version: p.hash().to_owned(),
                contract: p.contract().to_owned(),
            })
            .collect(),
        templates: t.capabilities().renderer.templates().names().to_vec(),
    }
}

/// The tenants the token may see.
#[utoipa::path(get, path = "/admin/v1/tenants", tag = "admin",
    responses((status = 200, body = Tenants), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(super) async fn tenants(
    State(app): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Tenants>, AppError> {
    let service = &app.ctx.service;
    let tenants = service
        .tenant_names()
        .into_iter()
        .filter(|n| caller.sees(n))
        .filter_map(|n| service.tenant(n))
        .map(|t| tenant_info(t))
        .collect();
    Ok(Json(Tenants { tenants }))
}

/// Per policy slot: the live version, uploaded versions and activations.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/policies", tag = "admin",
    params(("tenant" = String, Path)),
    responses((status = 200, body = Policies), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn policies(
    State(app): State<AppState>,
    Path(name): Path<String>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Policies>, AppError> {
    let t = tenant(&app, &caller, &name)?;
    let versions = &app.ctx.service.stores().versions;
    let mut slots = Vec::new();
    for (d, live) in t.policies() {
        let s = slot_name(d.as_deref());
        slots.push(Slot {
            slot: s.to_owned(),
            live: live.hash().to_owned(),
            contract: live.contract().to_owned(),
            versions: versions.versions(&t.name, s).await.map_err(internal)?,
            activations: versions.activations(&t.name, s).await.map_err(internal)?,
        });
    }
    Ok(Json(Policies {
        tenant: t.name.clone(),
        slots,
    }))
}

#[derive(Deserialize)]
pub(super) struct UploadQuery {
    #[serde(default)]
    activate: bool,
}

/// Upload a version (the body is the .wasm): compiled, checked against the contract and
/// the tenant's smoke request, stored; activated too with `?activate=true`.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/policies/{slot}", tag = "admin",
    params(("tenant" = String, Path), ("slot" = String, Path, description = "`any` or a dialect"),
        ("activate" = Option<bool>, Query, description = "make it live at once")),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = Uploaded), (status = 400, description = "refused, with the reason"),
        (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(super) async fn upload(
    State(app): State<AppState>,
    Path((name, slot_text)): Path<(String, String)>,
    Query(q): Query<UploadQuery>,
    AdminCaller(caller): AdminCaller,
    body: Bytes,
) -> Result<Response, AppError> {
    let t = tenant(&app, &caller, &name)?;
    let dialect = slot(&t, &slot_text)?;
    let s = slot_name(dialect.as_deref());
    if body.is_empty() {
        return Err(AppError::BadRequest(format!(
            "the body must be the policy's .wasm, 1 byte to {MAX_UPLOAD} bytes; got none"
        )));
    }
    let hash = hex::encode(Sha256::digest(&body));
    let service = &app.ctx.service;
    let label = format!("{}.wasm", hash.get(..12).unwrap_or(&hash));
    let policy = match service.prepare_policy(&t, &label, body.to_vec()).await {
        Ok(p) => p,
        Err(e) => {
            audit(
                &app,
                &caller,
                &t,
                "policy.rejected",
                s,
                Some(&hash),
                e.to_string(),
            )
            .await;
            return Err(refused(e));
        }
    };
    let versions = &service.stores().versions;
    versions.save_bytes(&hash, &body).map_err(internal)?;
    versions
        .record_upload(&t.name, s, &hash, body.len(), &caller.name)
        .await
        .map_err(internal)?;
    audit(
        &app,
        &caller,
        &t,
        "policy.upload",
        s,
        Some(&hash),
        format!(
            "{} bytes, validated, contract {}",
            body.len(),
            policy.contract()
        ),
    )
    .await;
    if q.activate {
        t.set_policy(dialect.as_deref(), policy);
        versions
            .record_activation(&t.name, s, &hash, &caller.name)
            .await
            .map_err(internal)?;
        audit(
            &app,
            &caller,
            &t,
            "policy.activate",
            s,
            Some(&hash),
            "on upload".into(),
        )
        .await;
    }
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            version: hash,
            validated: true,
            active: q.activate,
        }),
    )
        .into_response())
}

async fn activate_version(
    app: &AppState,
    caller: &Caller,
    t: &Tenant,
    dialect: Option<&str>,
    hash: &str,
    action: &str,
) -> Result<Json<Live>, AppError> {
    let service = &app.ctx.service;
    let versions = &service.stores().versions;
    let s = slot_name(dialect);
    if !versions
        .has_version(&t.name, s, hash)
        .await
        .map_err(internal)?
    {
        return Err(AppError::NotFound(format!(
            "tenant {} has no uploaded version {hash} in slot {s}",
            t.name
        )));
    }
    let bytes = std::fs::read(versions.path(hash)).map_err(internal)?;
    let label = format!("{}.wasm", hash.get(..12).unwrap_or(hash));
    let policy = service
        .prepare_policy(t, &label, bytes)
        .await
        .map_err(refused)?;
    t.set_policy(dialect, policy);
    versions
        .record_activation(&t.name, s, hash, &caller.name)
        .await
        .map_err(internal)?;
    audit(app, caller, t, action, s, Some(hash), String::new()).await;
    Ok(Json(Live {
        slot: s.to_owned(),
        live: hash.to_owned(),
    }))
}

/// Make an uploaded version live.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/policies/{slot}/{hash}/activate", tag = "admin",
    params(("tenant" = String, Path), ("slot" = String, Path), ("hash" = String, Path)),
    responses((status = 200, body = Live), (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn activate(
    State(app): State<AppState>,
    Path((name, slot_text, hash)): Path<(String, String, String)>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Live>, AppError> {
    let t = tenant(&app, &caller, &name)?;
    let dialect = slot(&t, &slot_text)?;
    activate_version(
        &app,
        &caller,
        &t,
        dialect.as_deref(),
        &hash,
        "policy.activate",
    )
    .await
}

/// Activate the version that was live before the current one.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/policies/{slot}/rollback", tag = "admin",
    params(("tenant" = String, Path), ("slot" = String, Path)),
    responses((status = 200, body = Live), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(super) async fn rollback(
    State(app): State<AppState>,
    Path((name, slot_text)): Path<(String, String)>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Live>, AppError> {
    let t = tenant(&app, &caller, &name)?;
    let dialect = slot(&t, &slot_text)?;
    let s = slot_name(dialect.as_deref());
    let live = t.policy_for_slot(dialect.as_deref()).unwrap_or_default();
    let history = app
        .ctx
        .service
        .stores()
        .versions
        .activations(&t.name, s)
        .await
        .map_err(internal)?;
    let previous = history
        .iter()
        .map(|a| a.hash.as_str())
        .find(|h| *h != live)
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "slot {s} of tenant {} has no earlier version to roll back to",
                t.name
            ))
        })?
        .to_owned();
    activate_version(
        &app,
        &caller,
        &t,
        dialect.as_deref(),
        &previous,
        "policy.rollback",
    )
    .await
}

/// Upload a template: its syntax checked, written into the tenant's template folder
/// (under a unique temporary name, then renamed), and made live.
#[utoipa::path(put, path = "/admin/v1/tenants/{tenant}/templates/{name}", tag = "admin",
    params(("tenant" = String, Path), ("name" = String, Path, description = "a relative path such as arista/config.j2")),
    request_body(content = String, content_type = "text/plain"),
    responses((status = 200, body = TemplateStored), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(super) async fn put_template(
    State(app): State<AppState>,
    Path((name, template)): Path<(String, String)>,
    AdminCaller(caller): AdminCaller,
    body: Bytes,
) -> Result<Json<TemplateStored>, AppError> {
    let t = tenant(&app, &caller, &name)?;
    if template.len() > 256
        || template
            .split('/')
            .any(|p| p.is_empty() || p == ".." || p == "." || p.starts_with('.'))
    {
        return Err(AppError::BadRequest(format!(
            "template name {template:?} must be a relative path like iosxe/config.j2"
        )));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| AppError::BadRequest("a template must be UTF-8 text".into()))?;
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    // Check its syntax before anything is written.
    crate::render::Templates::from_sources([(template.clone(), text.clone())])
        .map_err(|e| AppError::BadRequest(format!("template refused: {e}")))?;
    let root = t.config.templates.clone();
    let written = tokio::task::spawn_blocking({
        let (template, text) = (template.clone(), text.clone());
        move || crate::render::templates::write_template(&root, &template, &text)
    })
    .await
    .map_err(internal)?;
    written.map_err(|e| AppError::BadRequest(format!("template refused: {e}")))?;
    let n = app
        .ctx
        .service
        .reload_templates(&t.name)
        .await
        .map_err(refused)?;
    audit(
        &app,
        &caller,
        &t,
        "template.upload",
        &template,
        Some(&hash),
        format!("{} bytes", text.len()),
    )
    .await;
    Ok(Json(TemplateStored {
        template,
        version: hash,
        templates: n,
    }))
}

/// The tenant's devices: the newest job of each.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/devices", tag = "admin",
    params(("tenant" = String, Path)),
    responses((status = 200, description = "`{tenant, devices: [job]}`"), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(super) async fn devices(
    State(app): State<AppState>,
    Path(name): Path<String>,
    AdminCaller(caller): AdminCaller,
) -> Result<Response, AppError> {
    let t = tenant(&app, &caller, &name)?;
    let jobs = app
        .ctx
        .runner
        .store()
        .latest_per_device(Some(t.name.clone()))
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "tenant": t.name, "devices": jobs })).into_response())
}

/// The audit log, newest first (a tenant token sees its tenant's entries).
#[utoipa::path(get, path = "/admin/v1/audit", tag = "admin",
    responses((status = 200, body = Audit), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(super) async fn audit_log(
    State(app): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Audit>, AppError> {
    let entries = app
        .ctx
        .service
        .stores()
        .audit
        .entries(caller.tenant.clone())
        .await
        .map_err(internal)?;
    Ok(Json(Audit { entries }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(super) struct DeviceDecision {
    /// In a conflict: the address whose call-back to approve.
    #[serde(default)]
    address: Option<String>,
}

/// An operator's decision about a device: `approve` (a job waiting for approval, or the
/// call-back from `address` in a conflict), `deny`, `reset` (forget its claims; it must
/// call back again), `forget-host-key`. Audited.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/devices/{serial}/{action}", tag = "admin",
    params(("tenant" = String, Path), ("serial" = String, Path),
        ("action" = String, Path, description = "approve, deny, reset or forget-host-key")),
    request_body(content = DeviceDecision, content_type = "application/json"),
    responses((status = 200, body = Decided), (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn decide_device(
    State(app): State<AppState>,
    Path((name, serial, action)): Path<(String, String, String)>,
    AdminCaller(caller): AdminCaller,
    body: Option<Json<DeviceDecision>>,
) -> Result<Json<Decided>, AppError> {
    use crate::jobs::resolve::{Approved, ResolveError};
    let t = tenant(&app, &caller, &name)?;
    let address = match body.and_then(|Json(b)| b.address) {
        Some(a) => Some(
            a.parse::<std::net::IpAddr>()
                .map_err(|_| AppError::BadRequest(format!("address {a:?} is not an IP address")))?,
        ),
        None => None,
    };
    let runner = &app.ctx.runner;
    let refused = |e: ResolveError| match e {
        ResolveError::Nothing(_) => AppError::NotFound(e.to_string()),
        ResolveError::Store(_) => AppError::Internal(e.to_string()),
        other => AppError::BadRequest(other.to_string()),
    };
    let result = match action.as_str() {
        "approve" => {
            let approved = runner
                .approve(&app.ctx.service, &t, &serial, address, &caller.name)
                .await
                .map_err(refused)?;
            match approved {
                Approved::Pending { job } => format!("approved: job {job} goes on"),
                Approved::Claim { address, job } => format!(
                    "approved the call-back from {address}: job {} goes on; the other claims were refused",
                    job.map_or("-".into(), |j| j.to_string())
                ),
            }
        }
        "deny" => {
            let n = runner
                .deny(&t, &serial, &caller.name)
                .await
                .map_err(refused)?;
            format!("denied: {n} job or claim(s) ended")
        }
        "reset" => {
            let n = runner.reset(&t, &serial).await.map_err(refused)?;
            format!("reset: {n} claim(s) forgotten; the device must call back again")
        }
        "forget-host-key" => {
            let had = app
                .ctx
                .service
                .stores()
                .host_keys
                .forget(&t.name, &serial)
                .await
                .map_err(internal)?;
            if had {
                "host key forgotten: the next push trusts the key it is shown".to_owned()
            } else {
                return Err(AppError::NotFound(format!(
                    "no host key is recorded for {serial}"
                )));
            }
        }
        other => {
            return Err(AppError::NotFound(format!(
                "no device action {other:?}: use approve, deny, reset or forget-host-key"
            )));
        }
    };
    audit(
        &app,
        &caller,
        &t,
        &format!("device.{action}"),
        &serial,
        None,
        result.clone(),
    )
    .await;
    Ok(Json(Decided { result }))
}

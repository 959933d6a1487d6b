//! The admin API (JSON over HTTP, `/admin/v1`): tenants, policy versions (upload,
//! validate, activate, roll back, list), templates, a tenant's devices, and the audit log.
//!
//! Every call carries `Authorization: Bearer <token>`. Tokens are named in the
//! configuration: an operator token reaches every tenant; a tenant token only its own
//! (anything else is a 403). Every change is written to the audit log with the token's
//! name, the tenant, the content hash and the time. The OpenAPI document is served at
//! `/admin/v1/openapi.json`.

pub mod client;
pub mod versions;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::http::{AppError, AppState, constant_time_eq};
use crate::jobs::now_ms;
use crate::request::Dialect;
use crate::tenant::Tenant;
use versions::AuditEntry;

/// Largest policy or template upload.
const MAX_UPLOAD: usize = 16 << 20;

/// A configured admin token.
#[derive(Clone)]
pub struct AdminToken {
    pub name: String,
    /// None: operator (every tenant).
    pub tenant: Option<String>,
    pub secret: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// Who is calling.
struct Caller {
    name: String,
    tenant: Option<String>,
}

impl Caller {
    fn may(&self, tenant: &str) -> Result<(), AppError> {
        match &self.tenant {
            Some(own) if own != tenant => Err(AppError::Forbidden(format!(
                "token {} is for tenant {own}, not {tenant}",
                self.name
            ))),
            _ => Ok(()),
        }
    }
}

fn caller(app: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| {
            AppError::Unauthorized("the admin API needs Authorization: Bearer <token>".into())
        })?;
    app.admin_tokens
        .iter()
        .find(|t| constant_time_eq(t.secret.as_bytes(), given.as_bytes()))
        .map(|t| Caller {
            name: t.name.clone(),
            tenant: t.tenant.clone(),
        })
        .ok_or_else(|| AppError::Forbidden("unknown admin token".into()))
}

fn tenant(app: &AppState, caller: &Caller, name: &str) -> Result<Arc<Tenant>, AppError> {
    caller.may(name)?;
    app.service
        .tenant(name)
        .cloned()
        .ok_or_else(|| AppError::NotFound(format!("no tenant named {name:?}")))
}

/// `any` (the tenant's general policy) or a dialect (`arista-eos`, `cisco-iosxe`, `generic`).
fn slot(tenant: &Tenant, name: &str) -> Result<Option<Dialect>, AppError> {
    let wanted = match name {
        "any" => None,
        other => Some(
            serde_json::from_value::<Dialect>(json!(other)).map_err(|_| {
                AppError::BadRequest(format!(
                    "unknown policy slot {other:?}: use any, arista-eos, cisco-iosxe or generic"
                ))
            })?,
        ),
    };
    if tenant.policies().iter().any(|(d, _)| *d == wanted) {
        Ok(wanted)
    } else {
        let have: Vec<&str> = tenant
            .policies()
            .iter()
            .map(|(d, _)| slot_name(*d))
            .collect();
        Err(AppError::BadRequest(format!(
            "tenant {} has no policy slot {name}; it has: {}",
            tenant.name,
            have.join(", ")
        )))
    }
}

pub fn slot_name(d: Option<Dialect>) -> &'static str {
    d.map_or("any", Dialect::as_str)
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

async fn audit(
    app: &AppState,
    caller: &Caller,
    tenant: &str,
    action: &str,
    target: &str,
    hash: Option<&str>,
    detail: String,
) -> Result<(), AppError> {
    app.service
        .versions()
        .audit(AuditEntry {
            at_ms: now_ms(),
            actor: caller.name.clone(),
            tenant: tenant.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            hash: hash.map(str::to_owned),
            detail,
        })
        .await
        .map_err(internal)
}

/// The admin router, to be merged into the device router or served on its own listener.
pub fn router(state: AppState) -> Router {
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
        .route("/admin/v1/audit", get(audit_log))
        .with_state(state)
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

fn tenant_json(t: &Tenant) -> serde_json::Value {
    let policies: Vec<_> = t
        .policies()
        .iter()
        .map(|(d, p)| json!({"slot": slot_name(*d), "name": p.name(), "version": p.hash()}))
        .collect();
    json!({
        "name": t.name,
        "default": t.is_default,
        "sources": t.config.sources.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "policies": policies,
        "templates": t.capabilities().templates.names(),
    })
}

async fn tenants(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let caller = caller(&app, &headers)?;
    let list: Vec<_> = app
        .service
        .tenant_names()
        .into_iter()
        .filter(|n| caller.may(n).is_ok())
        .filter_map(|n| app.service.tenant(n))
        .map(|t| tenant_json(t))
        .collect();
    Ok(axum::Json(json!({ "tenants": list })).into_response())
}

async fn policies(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let caller = caller(&app, &headers)?;
    let t = tenant(&app, &caller, &name)?;
    let store = app.service.versions();
    let mut slots = Vec::new();
    for (d, live) in t.policies() {
        let s = slot_name(d);
        slots.push(json!({
            "slot": s,
            "live": live.hash(),
            "versions": store.versions(&t.name, s).await.map_err(internal)?,
            "activations": store.activations(&t.name, s).await.map_err(internal)?,
        }));
    }
    Ok(axum::Json(json!({ "tenant": t.name, "slots": slots })).into_response())
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default)]
    activate: bool,
}

/// Upload a version (the body is the .wasm): compiled, checked against the contract and
/// the tenant's smoke request, stored; activated too with `?activate=true`.
async fn upload(
    State(app): State<AppState>,
    Path((name, slot_text)): Path<(String, String)>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let caller = caller(&app, &headers)?;
    let t = tenant(&app, &caller, &name)?;
    let dialect = slot(&t, &slot_text)?;
    if body.is_empty() || body.len() > MAX_UPLOAD {
        return Err(AppError::BadRequest(format!(
            "the body must be the policy's .wasm, 1 byte to {MAX_UPLOAD} bytes; got {}",
            body.len()
        )));
    }
    let hash = hex::encode(Sha256::digest(&body));
    let policy = match app
        .service
        .prepare_policy(&t, &format!("{}.wasm", &hash[..12]), body.to_vec())
        .await
    {
        Ok(p) => p,
        Err(reason) => {
            audit(
                &app,
                &caller,
                &t.name,
                "policy.rejected",
                slot_name(dialect),
                Some(&hash),
                reason.clone(),
            )
            .await?;
            return Err(AppError::BadRequest(format!("policy refused: {reason}")));
        }
    };
    let store = app.service.versions();
    store.save_bytes(&hash, &body).map_err(internal)?;
    store
        .record_upload(&t.name, slot_name(dialect), &hash, body.len(), &caller.name)
        .await
        .map_err(internal)?;
    audit(
        &app,
        &caller,
        &t.name,
        "policy.upload",
        slot_name(dialect),
        Some(&hash),
        format!("{} bytes, validated", body.len()),
    )
    .await?;
    if q.activate {
        t.set_policy(dialect, policy);
        store
            .record_activation(&t.name, slot_name(dialect), &hash, &caller.name)
            .await
            .map_err(internal)?;
        audit(
            &app,
            &caller,
            &t.name,
            "policy.activate",
            slot_name(dialect),
            Some(&hash),
            "on upload".into(),
        )
        .await?;
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"version": hash, "validated": true, "active": q.activate})),
    )
        .into_response())
}

async fn activate_version(
    app: &AppState,
    caller: &Caller,
    t: &Tenant,
    dialect: Option<Dialect>,
    hash: &str,
    action: &str,
) -> Result<Response, AppError> {
    let store = app.service.versions();
    let s = slot_name(dialect);
    if !store
        .has_version(&t.name, s, hash)
        .await
        .map_err(internal)?
    {
        return Err(AppError::NotFound(format!(
            "tenant {} has no uploaded version {hash} in slot {s}",
            t.name
        )));
    }
    let bytes = std::fs::read(store.path(hash)).map_err(internal)?;
    let policy = app
        .service
        .prepare_policy(t, &format!("{}.wasm", &hash[..12.min(hash.len())]), bytes)
        .await
        .map_err(|r| AppError::BadRequest(format!("policy refused: {r}")))?;
    t.set_policy(dialect, policy);
    store
        .record_activation(&t.name, s, hash, &caller.name)
        .await
        .map_err(internal)?;
    audit(app, caller, &t.name, action, s, Some(hash), String::new()).await?;
    Ok(axum::Json(json!({"slot": s, "live": hash})).into_response())
}

async fn activate(
    State(app): State<AppState>,
    Path((name, slot_text, hash)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let caller = caller(&app, &headers)?;
    let t = tenant(&app, &caller, &name)?;
    let dialect = slot(&t, &slot_text)?;
    activate_version(&app, &caller, &t, dialect, &hash, "policy.activate").await
}

/// Activate the version that was live before the current one.
async fn rollback(
    State(app): State<AppState>,
    Path((name, slot_text)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let caller = caller(&app, &headers)?;
    let t = tenant(&app, &caller, &name)?;
    let dialect = slot(&t, &slot_text)?;
    let live = t
        .policies()
        .into_iter()
        .find(|(d, _)| *d == dialect)
        .map(|(_, p)| p.hash().to_owned())
        .unwrap_or_default();
    let history = app
        .service
        .versions()
        .activations(&t.name, slot_name(dialect))
        .await
        .map_err(internal)?;
    let previous = history
        .iter()
        .map(|a| a.hash.as_str())
        .find(|h| *h != live)
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "slot {} of tenant {} has no earlier version to roll back to",
                slot_name(dialect),
                t.name
            ))
        })?
        .to_owned();
    activate_version(&app, &caller, &t, dialect, &previous, "policy.rollback").await
}

/// Upload a template: its syntax checked, written into
/// the tenant's template folder, and made live.
async fn put_template(
    State(app): State<AppState>,
    Path((name, template)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let caller = caller(&app, &headers)?;
    let t = tenant(&app, &caller, &name)?;
    if template
        .split('/')
        .any(|p| p.is_empty() || p == ".." || p == "." || p.starts_with('.'))
    {
        return Err(AppError::BadRequest(format!(
            "template name {template:?} must be a relative path like iosxe/config.j2"
        )));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| AppError::BadRequest("a template must be UTF-8 text".into()))?;
    if text.len() > MAX_UPLOAD {
        return Err(AppError::BadRequest("template too large".into()));
    }
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    // Check its syntax before anything is written.
    crate::templates::Templates::from_sources([(template.clone(), text.clone())])
        .map_err(|e| AppError::BadRequest(format!("template refused: {e}")))?;
    let path = t.config.templates.join(&template);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(internal)?;
    }
    let tmp = path.with_extension("upload-tmp");
    std::fs::write(&tmp, &text).map_err(internal)?;
    std::fs::rename(&tmp, &path).map_err(internal)?;
    let n = app
        .service
        .reload_templates(&t.name)
        .await
        .map_err(AppError::BadRequest)?;
    audit(
        &app,
        &caller,
        &t.name,
        "template.upload",
        &template,
        Some(&hash),
        format!("{} bytes", text.len()),
    )
    .await?;
    Ok(axum::Json(json!({"template": template, "version": hash, "templates": n})).into_response())
}

async fn devices(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let caller = caller(&app, &headers)?;
    let t = tenant(&app, &caller, &name)?;
    let jobs = app
        .runner
        .store()
        .latest_per_device(Some(t.name.clone()))
        .await
        .map_err(internal)?;
    Ok(axum::Json(json!({ "tenant": t.name, "devices": jobs })).into_response())
}

async fn audit_log(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let caller = caller(&app, &headers)?;
    let entries = app
        .service
        .versions()
        .audit_log(caller.tenant.clone())
        .await
        .map_err(internal)?;
    Ok(axum::Json(json!({ "entries": entries })).into_response())
}

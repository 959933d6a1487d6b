//! Device-facing HTTP: one route per ZTP dialect, each a thin adapter that turns a request
//! into a [`DeviceRequest`] and the service's [`Outcome`] back into a reply.
//!
//! Every tenant is reachable under `/t/{tenant}/...`; the default tenant also answers the
//! plain paths, so a switch already pointed at the seed's `/dynconfig` needs no DHCP change.

mod api;
mod arista;
mod error;
mod iosxe;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use error::AppError;

use crate::jobs::store::NewJob;
use crate::jobs::{JobRunner, Submitted};
use crate::request::{DeviceRequest, Dialect, Stage};
use crate::service::{Answer, Body, Outcome, Service};
use crate::tenant::Tenant;

/// Response header carrying the policy version (content hash) that decided the reply.
pub const POLICY_VERSION_HEADER: &str = "x-ztpd-policy-version";

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub runner: JobRunner,
    /// Bearer token the status API requires, if configured.
    pub api_token: Option<Arc<str>>,
    /// `ztpd render`: a plan is shown, not run.
    pub dry_run: bool,
    /// Tokens of the admin API (`/admin/v1`).
    pub admin_tokens: Arc<[crate::admin::AdminToken]>,
    /// DHCP leases of the built-in server (shown in device status).
    pub leases: crate::dhcp::leases::LeaseStore,
}

/// Largest call-back body accepted.
const MAX_CALLBACK_BODY: usize = 64 << 10;

/// The device-facing router and the status API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/dynconfig", get(dynconfig_default))
        .route("/t/{tenant}/dynconfig", get(dynconfig_tenant))
        .route("/script.py", get(script_default))
        .route("/t/{tenant}/script.py", get(script_tenant))
        .route("/callback", get(callback_default).post(callback_default))
        .route(
            "/t/{tenant}/callback",
            get(callback_tenant).post(callback_tenant),
        )
        .route("/api/v1/devices", get(api::devices))
        .route("/api/v1/devices/{device}", get(api::device))
        .route("/api/v1/dhcp", get(api::dhcp))
        .fallback(unknown_route)
        .with_state(state.clone())
        .merge(crate::admin::router(state))
}

/// A static route in the same binary: the framework's ceiling, for benchmarks and probes.
async fn ping() -> &'static str {
    "pong\n"
}

async fn unknown_route(method: Method, uri: Uri) -> AppError {
    AppError::NotFound(format!(
        "no route for {method} {}; ztpd serves /dynconfig (Arista EOS), /script.py and /callback (Cisco IOS XE), each also under /t/{{tenant}}/; /api/v1/devices (status); /admin/v1 (admin API)",
        uri.path()
    ))
}

/// The tenant a request on a plain path belongs to: by source network, else the default.
fn default_tenant(app: &AppState, req: &Request, path: &str) -> Result<Arc<Tenant>, AppError> {
    let ip = source_ip(req);
    let tenant = app.service.tenant_for_source(ip).cloned().ok_or_else(|| {
        AppError::NotFound(format!(
            "no tenant serves devices at {ip}: use /t/{{tenant}}{path}, add the network to a tenant's sources, or set default = true on a tenant"
        ))
    })?;
    admit(&tenant, ip)?;
    Ok(tenant)
}

/// Refuse a device outside the tenant's source networks, or over its request rate.
fn admit(tenant: &Tenant, ip: IpAddr) -> Result<(), AppError> {
    if !tenant.admits(ip) {
        return Err(AppError::Forbidden(format!(
            "tenant {} does not serve devices at {ip}",
            tenant.name
        )));
    }
    if let Some(rate) = &tenant.rate
        && let Err(wait) = rate.take()
    {
        return Err(AppError::TooManyRequests {
            reason: format!(
                "tenant {} is over its request rate of {}/s; retry later",
                tenant.name,
                rate.per_second()
            ),
            retry_after_s: wait.as_secs().max(1),
        });
    }
    Ok(())
}

async fn dynconfig_default(
    State(app): State<AppState>,
    req: Request,
) -> Result<Response, AppError> {
    let tenant = default_tenant(&app, &req, "/dynconfig")?;
    dynconfig(&app, &tenant, req).await
}

async fn dynconfig_tenant(
    State(app): State<AppState>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Response, AppError> {
    let tenant = find_tenant(&app, &name, &req)?;
    dynconfig(&app, &tenant, req).await
}

fn find_tenant(app: &AppState, name: &str, req: &Request) -> Result<Arc<Tenant>, AppError> {
    let tenant = app
        .service
        .tenant(name)
        .cloned()
        .ok_or_else(|| AppError::NotFound(format!("no tenant named {name:?}")))?;
    admit(&tenant, source_ip(req))?;
    Ok(tenant)
}

async fn dynconfig(app: &AppState, tenant: &Tenant, req: Request) -> Result<Response, AppError> {
    let source_ip = source_ip(&req);
    let identity = arista::identity(req.headers(), source_ip)?;
    let request = device_request(
        tenant,
        Stage::Bootstrap,
        Dialect::AristaEos,
        identity,
        &req,
        "/dynconfig",
    );
    let answer = app.service.decide(tenant, &request).await?;
    reply(app, tenant, request, answer).await
}

async fn script_default(State(app): State<AppState>, req: Request) -> Result<Response, AppError> {
    let tenant = default_tenant(&app, &req, "/script.py")?;
    script(&app, &tenant, "", req).await
}

async fn script_tenant(
    State(app): State<AppState>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Response, AppError> {
    let tenant = find_tenant(&app, &name, &req)?;
    script(&app, &tenant, &format!("/t/{name}"), req).await
}

/// The IOS XE script: the policy chooses template and variables, the host adds `ztpd.*`.
async fn script(
    app: &AppState,
    tenant: &Tenant,
    prefix: &str,
    req: Request,
) -> Result<Response, AppError> {
    let identity = crate::identity::Identity::new(source_ip(&req));
    let base = match &tenant.callback_url {
        Some(url) => url.clone(),
        None => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty())
                .ok_or_else(|| {
                    AppError::BadRequest(
                        "missing Host header: cannot tell the script where to call back (or set callback.url for the tenant)".into(),
                    )
                })?;
            format!("http://{host}")
        }
    };
    let (username, password) = match tenant
        .script_credential
        .as_deref()
        .and_then(|c| tenant.credentials.get(c))
    {
        Some(c) => (Some(c.username.clone()), c.password().map(str::to_owned)),
        None => (None, None),
    };
    let host_vars = serde_json::json!({
        "callback_url": format!("{base}{prefix}/callback"),
        "token": tenant.callback_key.issue(),
        "token_header": "X-Ztpd-Token",
        "username": username,
        "password": password,
    });
    let request = device_request(
        tenant,
        Stage::Bootstrap,
        Dialect::CiscoIosxe,
        identity,
        &req,
        "/script.py",
    );
    let answer = app
        .service
        .decide_with(tenant, &request, Some(host_vars))
        .await?;
    reply(app, tenant, request, answer).await
}

async fn callback_default(State(app): State<AppState>, req: Request) -> Result<Response, AppError> {
    let tenant = default_tenant(&app, &req, "/callback")?;
    callback(&app, &tenant, req).await
}

async fn callback_tenant(
    State(app): State<AppState>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Response, AppError> {
    let tenant = find_tenant(&app, &name, &req)?;
    callback(&app, &tenant, req).await
}

/// An IOS XE call-back: check the token, ACK at once, provision in the background.
async fn callback(app: &AppState, tenant: &Tenant, req: Request) -> Result<Response, AppError> {
    use crate::callback_token::TokenError;
    let token = req
        .headers()
        .get(iosxe::TOKEN_HEADER)
        .and_then(|t| t.to_str().ok());
    tenant.callback_key.verify(token).map_err(|e| match e {
        TokenError::Missing => AppError::Unauthorized(e.to_string()),
        _ => AppError::Forbidden(e.to_string()),
    })?;
    let source = source_ip(&req);
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_CALLBACK_BODY)
        .await
        .map_err(|_| {
            AppError::PayloadTooLarge(format!("call-back body over {MAX_CALLBACK_BODY} bytes"))
        })?;
    let identity = iosxe::callback_identity(&parts.headers, &body, source)?;
    let serial = identity.serial.clone().unwrap_or_default();
    // A device calling back again while its job runs: the same job, nothing new to record.
    if let Some(job) = app.runner.running_job(&tenant.name, &serial) {
        return Ok(ack(&serial, job, true));
    }
    let req = Request::from_parts(parts, axum::body::Body::empty());
    let mut request = device_request(
        tenant,
        Stage::Callback,
        Dialect::CiscoIosxe,
        identity,
        &req,
        "/callback",
    );
    request.body = body;
    let submitted = app
        .runner
        .submit(
            app.service.clone(),
            NewJob {
                request,
                plan: None,
            },
        )
        .await
        .map_err(|e| AppError::Internal(format!("cannot record the call-back: {e}")))?;
    let (job, already) = match submitted {
        Submitted::Started(id) => (id, false),
        Submitted::AlreadyRunning(id) => (id, true),
    };
    Ok(ack(&serial, job, already))
}

/// The call-back acknowledgement (the seed's `{"status": "ACK", "serial": ...}`, plus the job).
fn ack(serial: &str, job: i64, already_running: bool) -> Response {
    axum::Json(serde_json::json!({
        "status": "ACK",
        "serial": serial,
        "job": job,
        "already_running": already_running,
    }))
    .into_response()
}

/// Turn the service's answer into a reply; a plan becomes a job and an acknowledgement.
async fn reply(
    app: &AppState,
    tenant: &Tenant,
    request: DeviceRequest,
    answer: Answer,
) -> Result<Response, AppError> {
    let version = HeaderValue::from_str(&answer.policy_hash).ok();
    let mut resp = match answer.outcome {
        Outcome::Reply { content_type, body } => {
            let ct = HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            let body = match body {
                Body::Owned(b) => axum::body::Body::from(b),
                Body::Shared(s) => axum::body::Body::from(bytes::Bytes::from_owner(ArcStr(s))),
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response()
        }
        Outcome::UnknownDevice(reason) => AppError::NotFound(one_line(&reason)).into_response(),
        Outcome::Rejected(reason) => AppError::Forbidden(one_line(&reason)).into_response(),
        Outcome::Plan(plan) if app.dry_run => {
            let shown = serde_json::to_string_pretty(&plan).unwrap_or_default();
            (
                StatusCode::ACCEPTED,
                format!("dry run: the policy planned (not run):\n{shown}\n"),
            )
                .into_response()
        }
        Outcome::Plan(plan) => {
            let ack = plan.ack.clone();
            let new = NewJob {
                request,
                plan: Some((plan, answer.policy_hash.clone())),
            };
            app.runner
                .submit(app.service.clone(), new)
                .await
                .map_err(|e| {
                    AppError::Internal(format!(
                        "tenant {}: cannot record the plan: {e}",
                        tenant.name
                    ))
                })?;
            match ack {
                Some(c) => {
                    let ct = HeaderValue::from_str(&c.content_type)
                        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
                    (StatusCode::OK, [(header::CONTENT_TYPE, ct)], c.body).into_response()
                }
                None => (StatusCode::ACCEPTED, "ACK\n").into_response(),
            }
        }
    };
    if let Some(v) = version {
        resp.headers_mut().insert(POLICY_VERSION_HEADER, v);
    }
    Ok(resp)
}

/// Token comparison that takes the same time wherever the first difference is.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lets a memoised render be sent without copying it.
struct ArcStr(Arc<str>);

impl AsRef<[u8]> for ArcStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Reasons go on one line: a policy cannot smuggle extra lines into a reply.
fn one_line(reason: &str) -> String {
    reason
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect()
}

/// The peer address; in-process calls without a socket (dry runs) get 0.0.0.0.
fn source_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn device_request(
    tenant: &Tenant,
    stage: Stage,
    dialect: Dialect,
    identity: crate::identity::Identity,
    req: &Request,
    path: &str,
) -> DeviceRequest {
    DeviceRequest {
        tenant: tenant.name.clone(),
        stage,
        dialect,
        identity,
        path: path.to_owned(),
        headers: lossy_headers(req.headers()),
        query: req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        body: Default::default(),
    }
}

fn lossy_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

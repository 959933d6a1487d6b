//! Device-facing HTTP: one route per ZTP dialect, each a thin adapter that turns a request
//! into a [`DeviceRequest`] and the service's [`Outcome`] back into a reply.
//!
//! Every tenant is reachable under `/t/{tenant}/...`; the default tenant also answers the
//! plain paths, so a switch already pointed at the seed's `/dynconfig` needs no DHCP change.

mod arista;
mod error;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use error::AppError;

use crate::request::{DeviceRequest, Dialect, Stage};
use crate::service::{Body, Outcome, Service};
use crate::tenant::Tenant;

/// Response header carrying the policy version (content hash) that decided the reply.
pub const POLICY_VERSION_HEADER: &str = "x-ztpd-policy-version";

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
}

/// The device-facing router.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/dynconfig", get(dynconfig_default))
        .route("/t/{tenant}/dynconfig", get(dynconfig_tenant))
        .fallback(unknown_route)
        .with_state(AppState { service })
}

/// A static route in the same binary: the framework's ceiling, for benchmarks and probes.
async fn ping() -> &'static str {
    "pong\n"
}

async fn unknown_route(method: Method, uri: Uri) -> AppError {
    AppError::NotFound(format!(
        "no route for {method} {}; ztpd serves GET /dynconfig (Arista EOS) and /t/{{tenant}}/dynconfig",
        uri.path()
    ))
}

async fn dynconfig_default(
    State(app): State<AppState>,
    req: Request,
) -> Result<Response, AppError> {
    let tenant = app.service.default_tenant().cloned().ok_or_else(|| {
        AppError::NotFound(
            "no default tenant: use /t/{tenant}/dynconfig or set default = true on a tenant".into(),
        )
    })?;
    dynconfig(&app, &tenant, req).await
}

async fn dynconfig_tenant(
    State(app): State<AppState>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Response, AppError> {
    let tenant = find_tenant(&app, &name)?;
    dynconfig(&app, &tenant, req).await
}

fn find_tenant(app: &AppState, name: &str) -> Result<Arc<Tenant>, AppError> {
    app.service
        .tenant(name)
        .cloned()
        .ok_or_else(|| AppError::NotFound(format!("no tenant named {name:?}")))
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
    answer(app, tenant, &request).await
}

/// Run the policy and turn its outcome into a reply.
async fn answer(
    app: &AppState,
    tenant: &Tenant,
    request: &DeviceRequest,
) -> Result<Response, AppError> {
    let answer = app.service.decide(tenant, request).await?;
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
        Outcome::Plan(_) => AppError::Internal(format!(
            "tenant {}: the policy answered a {} request with a provisioning plan; plans are run for device call-backs",
            tenant.name, request.path
        ))
        .into_response(),
    };
    if let Some(v) = version {
        resp.headers_mut().insert(POLICY_VERSION_HEADER, v);
    }
    Ok(resp)
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

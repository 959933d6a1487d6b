//! HTTP: the router, its shared state and its one error type.
//!
//! - [`device`]: device-facing routes, mounted from the dialect registry (every tenant
//!   also under `/t/{tenant}/...`; the default tenant answers the plain paths, so a switch
//!   already pointed at the seed's `/dynconfig` needs no DHCP change).
//! - [`api`]: the status API (`/api/v1`); [`admin`]: the admin API (`/admin/v1`);
//!   [`auth`]: who is calling them.
//! - [`error`]: [`AppError`], every route's error reply.

mod admin;
mod api;
pub mod auth;
mod device;
mod error;
mod openapi;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::get;

pub use admin::MAX_UPLOAD;
pub use error::AppError;

use crate::config::{AdminToken, HttpConfig, SecretString};
use crate::dialect::{Ctx, Registry};

/// Device requests per source address (governor's keyed GCRA limiter).
pub type SourceLimiter = governor::DefaultKeyedRateLimiter<std::net::IpAddr>;

/// What every route shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The service, the job runner, and whether this is a dry run.
    pub ctx: Ctx,
    /// The dialects whose routes are mounted.
    pub registry: Registry,
    /// The status API's own bearer token, if configured.
    pub api_token: Option<Arc<SecretString>>,
    /// The status API answers without a token (`api.open`, loopback only).
    pub api_open: bool,
    /// Device requests per source address; none when `http.device_rate_per_source` is 0.
    pub source_limit: Option<Arc<SourceLimiter>>,
    /// Limit loopback sources too.
    pub limit_loopback: bool,
    /// Tokens of the admin API (`/admin/v1`), also accepted by the status API.
    pub admin_tokens: Arc<[AdminToken]>,
}

/// The device routes limiter for `http`: none when the rate is 0.
pub fn source_limiter(http: &HttpConfig) -> Option<Arc<SourceLimiter>> {
    let rate = std::num::NonZeroU32::new(http.device_rate_per_source)?;
    let burst = rate.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1));
    Some(Arc::new(governor::RateLimiter::keyed(
        governor::Quota::per_second(rate).allow_burst(burst),
    )))
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// Device routes, status API and admin API on one listener.
    All,
    /// Device routes only (the APIs have a listener of their own).
    Devices,
    /// The status and admin APIs only.
    Apis,
}

/// The router of a listener serving `routes`; every request has `request_timeout`.
pub fn router(state: AppState, routes: Routes, request_timeout: std::time::Duration) -> Router {
    let mut r = Router::new().route("/ping", get(ping));
    if routes != Routes::Apis {
        r = r.merge(device::routes(&state));
    }
    if routes != Routes::Devices {
        r = r
            .route("/api/v1/devices", get(api::devices))
            .route("/api/v1/devices/{device}", get(api::device))
            .route("/api/v1/dhcp", get(api::dhcp))
            .merge(admin::routes());
    }
    r.fallback(unknown_route)
        .with_state(state)
        .layer(axum::middleware::from_fn(bounded_head))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
}

/// Most bytes of header names and values one request may carry. hyper's read buffer is
/// capped near this too (`server::MAX_HEAD_BYTES`), but a head that arrives in one burst
/// can pass that cap before it is parsed; this makes the bound exact.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// `431` for a request whose headers add up to more than [`MAX_HEADER_BYTES`].
async fn bounded_head(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        tracing::debug!(
            size,
            "request refused: headers over {MAX_HEADER_BYTES} bytes"
        );
        return axum::response::IntoResponse::into_response(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        );
    }
    next.run(req).await
}

/// A static route in the same binary: the framework's ceiling, for benchmarks and probes.
async fn ping() -> &'static str {
    "pong\n"
}

async fn unknown_route(
    axum::extract::State(app): axum::extract::State<AppState>,
    method: Method,
    uri: Uri,
) -> AppError {
    AppError::NotFound(format!(
        "no route for {method} {}; ztpd serves {}, each also under /t/{{tenant}}/; /api/v1/devices (status); /admin/v1 (admin API)",
        uri.path(),
        app.registry.describe_routes()
    ))
}

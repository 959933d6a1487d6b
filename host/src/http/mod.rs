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

use crate::config::{AdminToken, SecretString};
use crate::dialect::{Ctx, Registry};

/// What every route shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The service, the job runner, and whether this is a dry run.
    pub ctx: Ctx,
    /// The dialects whose routes are mounted.
    pub registry: Registry,
    /// Bearer token the status API requires, if configured.
    pub api_token: Option<Arc<SecretString>>,
    /// Tokens of the admin API (`/admin/v1`), also accepted by the status API.
    pub admin_tokens: Arc<[AdminToken]>,
}

/// The device-facing routes, the status API and the admin API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .merge(device::routes(&state))
        .route("/api/v1/devices", get(api::devices))
        .route("/api/v1/devices/{device}", get(api::device))
        .route("/api/v1/dhcp", get(api::dhcp))
        .merge(admin::routes())
        .fallback(unknown_route)
        .with_state(state)
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

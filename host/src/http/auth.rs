//! Who is calling the status and admin APIs: `Authorization: Bearer <token>`, matched in
//! constant time against the configured tokens. An operator token reaches every tenant; a
//! tenant token only its own. A failed attempt is audited (at most [`AUDITED_PER_MINUTE`]
//! a minute, so a flood of guesses cannot fill the audit log; every one is logged).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::{AppError, AppState};
use crate::clock::now_ms;
use crate::config::ExposeSecret;
use crate::store::audit::AuditEntry;

/// Failed authentications written to the audit log per minute, at most.
pub const AUDITED_PER_MINUTE: u32 = 60;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name, recorded in the audit log.
    pub name: String,
    /// Only this tenant; none: every tenant.
    pub tenant: Option<String>,
}

impl Caller {
    /// Refuse a tenant token acting on another tenant.
    pub fn may(&self, tenant: &str) -> Result<(), AppError> {
        match &self.tenant {
            Some(own) if own != tenant => Err(AppError::Forbidden(format!(
                "token {} is for tenant {own}, not {tenant}",
                self.name
            ))),
            _ => Ok(()),
        }
    }

    /// Whether this caller may see `tenant`.
    pub fn sees(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|own| own == tenant)
    }
}

/// Constant-time comparison of a presented token with a configured one.
pub fn token_matches(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The configured admin token matching `given`.
fn admin_token(app: &AppState, given: &str) -> Option<Caller> {
    app.admin_tokens
        .iter()
        .find(|t| token_matches(given, t.secret.expose_secret()))
        .map(|t| Caller {
            name: t.name.clone(),
            tenant: t.tenant.clone(),
        })
}

static BUDGET: Mutex<Option<(Instant, u32)>> = Mutex::new(None);

/// Log (and, within the budget, audit) a refused authentication.
async fn failed(app: &AppState, parts: &Parts, why: &str) {
    let from = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |ConnectInfo(a)| a.ip().to_string());
    let path = parts.uri.path().to_owned();
    tracing::warn!(%from, %path, "API authentication refused: {why}");
    let within = BUDGET.lock().is_ok_and(|mut b| {
        let now = Instant::now();
        let (since, n) = b.get_or_insert((now, 0));
        if now.duration_since(*since) > Duration::from_secs(60) {
            *since = now;
            *n = 0;
        }
        *n += 1;
        *n <= AUDITED_PER_MINUTE
    });
    if !within {
        return;
    }
    let entry = AuditEntry {
        at_ms: now_ms(),
        actor: format!("unauthenticated {from}"),
        tenant: "-".into(),
        action: "auth.failed".into(),
        target: path,
        hash: None,
        detail: why.to_owned(),
    };
    if let Err(e) = app.ctx.service.stores().audit.record(entry).await {
        tracing::error!("cannot write the audit log: {e}");
    }
}

/// An admin API caller (`[[admin.tokens]]`).
pub struct AdminCaller(pub Caller);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let Some(given) = bearer(parts) else {
            failed(app, parts, "no token").await;
            return Err(AppError::Unauthorized(
                "the admin API needs Authorization: Bearer <token>".into(),
            ));
        };
        match admin_token(app, given) {
            Some(c) => Ok(AdminCaller(c)),
            None => {
                failed(app, parts, "unknown admin token").await;
                Err(AppError::Forbidden("unknown admin token".into()))
            }
        }
    }
}

/// A status API caller: an admin token, or the status API's own token (`api.token_env`,
/// every tenant). With `api.open`, no token is needed.
pub struct StatusCaller(pub Caller);

impl FromRequestParts<AppState> for StatusCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let Some(given) = bearer(parts) else {
            if app.api_open {
                return Ok(StatusCaller(Caller {
                    name: "anyone".into(),
                    tenant: None,
                }));
            }
            failed(app, parts, "no token").await;
            return Err(AppError::Unauthorized(
                "the status API needs Authorization: Bearer <token>".into(),
            ));
        };
        if let Some(t) = &app.api_token
            && token_matches(given, t.expose_secret())
        {
            return Ok(StatusCaller(Caller {
                name: "api".into(),
                tenant: None,
            }));
        }
        match admin_token(app, given) {
            Some(c) => Ok(StatusCaller(c)),
            None => {
                failed(app, parts, "wrong token").await;
                Err(AppError::Forbidden("wrong API token".into()))
            }
        }
    }
}

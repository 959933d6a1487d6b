//! Who is calling the status and admin APIs: `Authorization: Bearer <token>`, matched in
//! constant time against the configured tokens. An operator token reaches every tenant; a
//! tenant token only its own.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::{AppError, AppState};
use crate::config::ExposeSecret;

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

/// An admin API caller (`[[admin.tokens]]`).
pub struct AdminCaller(pub Caller);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let given = bearer(parts).ok_or_else(|| {
            AppError::Unauthorized("the admin API needs Authorization: Bearer <token>".into())
        })?;
        app.admin_tokens
            .iter()
            .find(|t| token_matches(given, t.secret.expose_secret()))
            .map(|t| {
                AdminCaller(Caller {
                    name: t.name.clone(),
                    tenant: t.tenant.clone(),
                })
            })
            .ok_or_else(|| AppError::Forbidden("unknown admin token".into()))
    }
}

/// A status API caller: an admin token, or the status API's own token (`api.token_env`,
/// every tenant). With neither configured, the status API is open.
pub struct StatusCaller(pub Caller);

impl FromRequestParts<AppState> for StatusCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let open = Caller {
            name: "anyone".into(),
            tenant: None,
        };
        if app.api_token.is_none() {
            return Ok(StatusCaller(open));
        }
        let given = bearer(parts).ok_or_else(|| {
            AppError::Unauthorized("the status API needs Authorization: Bearer <token>".into())
        })?;
        if let Some(t) = &app.api_token
            && token_matches(given, t.expose_secret())
        {
            return Ok(StatusCaller(Caller {
                name: "api".into(),
                tenant: None,
            }));
        }
        app.admin_tokens
            .iter()
            .find(|t| token_matches(given, t.secret.expose_secret()))
            .map(|t| {
                StatusCaller(Caller {
                    name: t.name.clone(),
                    tenant: t.tenant.clone(),
                })
            })
            .ok_or_else(|| AppError::Forbidden("wrong API token".into()))
    }
}

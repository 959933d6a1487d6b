//! `[[admin.tokens]]` and `[api]`: who may use the admin API (`/admin/v1`) and the status
//! API (`/api/v1`).

use serde::Deserialize;

use super::secret::{ExposeSecret, SecretSource, SecretString, resolve};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    #[serde(default)]
    tokens: Vec<RawAdminToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdminToken {
    /// Recorded in the audit log as who made a change.
    name: String,
    /// Only this tenant; none means an operator token (every tenant).
    tenant: Option<String>,
    token: Option<String>,
    token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    /// Environment variable holding the bearer token the status API requires.
    token_env: Option<String>,
    /// A listener of its own for the status and admin APIs.
    listen: Option<String>,
    /// Serve the status API without a token (only where the API listens on loopback).
    #[serde(default)]
    open: bool,
}

/// `[api]`: where the status and admin APIs listen and whether the status API needs a
/// token.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The status API's own bearer token (operator scope, read-only), if any.
    pub token: Option<SecretString>,
    /// A listener of their own (e.g. loopback) for `/api/v1` and `/admin/v1`; none: they
    /// share the device-facing listener.
    pub listen: Option<std::net::SocketAddr>,
    /// The status API answers without a token.
    pub open: bool,
}

/// A configured API token. `Debug` prints its name and scope, never the secret.
#[derive(Debug, Clone)]
pub struct AdminToken {
    pub name: String,
    /// None: operator (every tenant).
    pub tenant: Option<String>,
    pub secret: SecretString,
}

/// Shortest token accepted: a guessable token is no token.
pub const MIN_TOKEN_LEN: usize = 16;

impl RawAdmin {
    pub(super) fn validate(self, tenants: &[&str]) -> Result<Vec<AdminToken>, String> {
        let mut out: Vec<AdminToken> = Vec::new();
        for t in self.tokens {
            if let Some(tenant) = &t.tenant
                && !tenants.contains(&tenant.as_str())
            {
                return Err(format!(
                    "admin token {:?} names tenant {tenant:?}, which is not configured",
                    t.name
                ));
            }
            if out.iter().any(|o| o.name == t.name) {
                return Err(format!("admin token {:?} is defined twice", t.name));
            }
            let what = format!("admin token {:?}", t.name);
            let secret = resolve(
                &what,
                "token",
                SecretSource {
                    inline: t.token.as_deref(),
                    env: t.token_env.as_deref(),
                    file: None,
                },
            )?;
            if secret.expose_secret().len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "{what} is shorter than {MIN_TOKEN_LEN} characters; use a long random value"
                ));
            }
            out.push(AdminToken {
                name: t.name,
                tenant: t.tenant,
                secret,
            });
        }
        Ok(out)
    }
}

impl RawApi {
    /// `device_listen` is where the device routes listen (the APIs too, without
    /// `api.listen`); `admin_tokens` says whether any token is configured.
    pub(super) fn validate(
        self,
        device_listen: std::net::SocketAddr,
        admin_tokens: bool,
    ) -> Result<ApiConfig, String> {
        let token = match self.token_env {
            Some(var) => Some(resolve(
                "api",
                "token",
                SecretSource {
                    env: Some(&var),
                    ..Default::default()
                },
            )?),
            None => None,
        };
        if token
            .as_ref()
            .is_some_and(|t| t.expose_secret().len() < MIN_TOKEN_LEN)
        {
            return Err(format!(
                "api.token_env: the token is shorter than {MIN_TOKEN_LEN} characters; use a long random value"
            ));
        }
        let listen = match self.listen {
            Some(text) => Some(text.parse().map_err(|_| {
                format!("api.listen = {text:?} is not an IP:port such as 127.0.0.1:8081")
            })?),
            None => None,
        };
        let api_at: std::net::SocketAddr = listen.unwrap_or(device_listen);
        if self.open && !api_at.ip().is_loopback() {
            return Err(format!(
                "api.open = true, but the status API listens on {api_at}, which is not loopback: anyone there could read every device's config; set api.listen = \"127.0.0.1:8081\" or configure tokens"
            ));
        }
        if !self.open && token.is_none() && !admin_tokens {
            return Err(
                "the status API (/api/v1) has no token: add [[admin.tokens]] or api.token_env, or set api.open = true with the API on a loopback listener (api.listen)"
                    .into(),
            );
        }
        Ok(ApiConfig {
            token,
            listen,
            open: self.open,
        })
    }
}

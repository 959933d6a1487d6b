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
    /// The status API's own bearer token, if configured.
    pub(super) fn validate(self) -> Result<Option<SecretString>, String> {
        match self.token_env {
            Some(var) => resolve(
                "api",
                "token",
                SecretSource {
                    env: Some(&var),
                    ..Default::default()
                },
            )
            .map(Some),
            None => Ok(None),
        }
    }
}

//! Credentials a tenant's plans may name. Values come from the configuration file, from
//! an environment variable or from a file it names; a policy only ever sees the name.

use std::collections::HashMap;
use std::path::PathBuf;

use russh::keys::PrivateKey;

/// A resolved credential. `Debug` never prints the secret.
#[derive(Clone)]
pub struct Credential {
    pub username: String,
    pub secret: Secret,
}

#[derive(Clone)]
pub enum Secret {
    Password(String),
    Key(std::sync::Arc<PrivateKey>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.secret {
            Secret::Password(_) => "password",
            Secret::Key(_) => "key",
        };
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("secret", &kind)
            .finish()
    }
}

impl Credential {
    /// The text to mask in transcripts and logs.
    pub fn secret_text(&self) -> Option<String> {
        match &self.secret {
            Secret::Password(p) => Some(p.clone()),
            Secret::Key(_) => None,
        }
    }

    pub fn password(&self) -> Option<&str> {
        match &self.secret {
            Secret::Password(p) => Some(p),
            Secret::Key(_) => None,
        }
    }
}

/// Where a credential's secret comes from, as written in the configuration.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    pub username: String,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "credential {name}: give exactly one of password, password_env, password_file or key_file"
    )]
    Ambiguous { name: String },
    #[error("credential {name}: environment variable {var} is not set")]
    Env { name: String, var: String },
    #[error("credential {name}: cannot read {path}: {detail}")]
    File {
        name: String,
        path: PathBuf,
        detail: String,
    },
}

/// A tenant's credentials by name.
#[derive(Debug, Clone, Default)]
pub struct Credentials(HashMap<String, Credential>);

impl Credentials {
    /// Resolve every credential; paths are already absolute.
    pub fn resolve(raw: &HashMap<String, RawCredential>) -> Result<Self, CredentialError> {
        let mut out = HashMap::new();
        for (name, c) in raw {
            let given = [
                c.password.is_some(),
                c.password_env.is_some(),
                c.password_file.is_some(),
                c.key_file.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                return Err(CredentialError::Ambiguous { name: name.clone() });
            }
            let secret = if let Some(p) = &c.password {
                Secret::Password(p.clone())
            } else if let Some(var) = &c.password_env {
                Secret::Password(std::env::var(var).map_err(|_| CredentialError::Env {
                    name: name.clone(),
                    var: var.clone(),
                })?)
            } else if let Some(path) = &c.password_file {
                let text = std::fs::read_to_string(path).map_err(|e| CredentialError::File {
                    name: name.clone(),
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
                Secret::Password(text.trim_end_matches(['\n', '\r']).to_owned())
            } else if let Some(path) = &c.key_file {
                let key = russh::keys::load_secret_key(path, None).map_err(|e| {
                    CredentialError::File {
                        name: name.clone(),
                        path: path.clone(),
                        detail: e.to_string(),
                    }
                })?;
                Secret::Key(std::sync::Arc::new(key))
            } else {
                return Err(CredentialError::Ambiguous { name: name.clone() });
            };
            out.insert(
                name.clone(),
                Credential {
                    username: c.username.clone(),
                    secret,
                },
            );
        }
        Ok(Credentials(out))
    }

    pub fn get(&self, name: &str) -> Option<&Credential> {
        self.0.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.0.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }

    /// Every secret value, for scrubbing text that leaves the host.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.0.values().filter_map(|c| c.password())
    }
}

/// A secret held by the host (an API token, a webhook key): `Debug` and `Display` never
/// print it, so it cannot reach a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    /// The value, for the one place that sends it (a header, a query parameter, an HMAC).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(***)")
    }
}

/// Read a secret written in the configuration as `{key}`, `{key}_env` or `{key}_file`
/// (exactly one of them). `what` names the setting in messages, e.g. `tenant "lab":
/// inventory netbox`. A file's trailing newline is dropped.
pub fn resolve_secret(
    what: &str,
    key: &str,
    inline: Option<&str>,
    env: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<SecretText, String> {
    let value = match (inline, env, file) {
        (Some(v), None, None) => v.to_owned(),
        (None, Some(var), None) => std::env::var(var)
            .map_err(|_| format!("{what}: {key}_env names {var}, which is not set"))?,
        (None, None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("{what}: cannot read {key}_file {}: {e}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        _ => {
            return Err(format!(
                "{what}: give exactly one of {key}, {key}_env or {key}_file"
            ));
        }
    };
    if value.is_empty() {
        return Err(format!("{what}: {key} is empty"));
    }
    Ok(SecretText(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(username: &str) -> RawCredential {
        RawCredential {
            username: username.into(),
            password: None,
            password_env: None,
            password_file: None,
            key_file: None,
        }
    }

    #[test]
    fn secrets_come_from_the_file_or_the_config_and_never_print() {
        let path = std::env::temp_dir().join(format!("ztpd-cred-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        let mut creds = HashMap::new();
        creds.insert(
            "a".to_owned(),
            RawCredential {
                password_file: Some(path.clone()),
                ..raw("ztp")
            },
        );
        creds.insert(
            "b".to_owned(),
            RawCredential {
                password: Some("inline".into()),
                ..raw("admin")
            },
        );
        let resolved = Credentials::resolve(&creds).unwrap();
        assert_eq!(
            resolved.get("a").and_then(Credential::password),
            Some("s3cret")
        );
        assert_eq!(
            resolved.get("b").and_then(Credential::password),
            Some("inline")
        );
        assert!(!format!("{resolved:?}").contains("s3cret"));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn missing_or_ambiguous_sources_are_named() {
        let mut creds = HashMap::new();
        creds.insert(
            "e".to_owned(),
            RawCredential {
                password_env: Some("ZTPD_TEST_SURELY_UNSET_VAR".into()),
                ..raw("u")
            },
        );
        let err = Credentials::resolve(&creds).unwrap_err().to_string();
        assert!(
            err.contains("ZTPD_TEST_SURELY_UNSET_VAR") && err.contains("credential e"),
            "{err}"
        );
        let mut creds = HashMap::new();
        creds.insert(
            "x".to_owned(),
            RawCredential {
                password: Some("a".into()),
                password_env: Some("B".into()),
                ..raw("u")
            },
        );
        let err = Credentials::resolve(&creds).unwrap_err().to_string();
        assert!(err.contains("exactly one"), "{err}");
    }
}

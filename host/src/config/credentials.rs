//! `[tenants.credentials.NAME]`: logins a plan's `ssh-push` names. The secret (a
//! password, or a private key file's text) is read here; policies only ever see the name.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::secret::{SecretSource, SecretString, resolve};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCredential {
    username: String,
    password: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

/// A credential with its secret read.
#[derive(Debug, Clone)]
pub struct CredentialConfig {
    pub username: String,
    pub secret: CredentialSecret,
}

/// What proves the login. `Debug` never prints the secret.
#[derive(Debug, Clone)]
pub enum CredentialSecret {
    Password(SecretString),
    /// An OpenSSH private key (the text of `key_file`), parsed by the SSH client.
    PrivateKey {
        path: PathBuf,
        text: SecretString,
    },
}

impl RawCredential {
    pub(super) fn validate(
        self,
        what: &str,
        resolve_path: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<CredentialConfig, String> {
        let key_file = self.key_file.map(|p| resolve_path(&p));
        let password_file = self.password_file.map(|p| resolve_path(&p));
        let password = SecretSource {
            inline: self.password.as_deref(),
            env: self.password_env.as_deref(),
            file: password_file.as_deref(),
        };
        if self.username.is_empty() || self.username.len() > 64 {
            return Err(format!("{what}: username must be 1 to 64 characters"));
        }
        let secret = match (password.is_given(), key_file) {
            (true, None) => CredentialSecret::Password(resolve(what, "password", password)?),
            (false, Some(path)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{what}: cannot read key_file {}: {e}", path.display()))?;
                CredentialSecret::PrivateKey {
                    path,
                    text: SecretString::from(text),
                }
            }
            _ => {
                return Err(format!(
                    "{what}: give exactly one of password, password_env, password_file or key_file"
                ));
            }
        };
        Ok(CredentialConfig {
            username: self.username,
            secret,
        })
    }
}

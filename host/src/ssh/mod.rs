//! Pushing configuration to a device over SSH (russh as the client), the way netmiko or
//! scrapli do it: an interactive shell with a PTY, prompt detection, paging off, config
//! mode, one line at a time with the device's answer checked, then save.
//!
//! - Connects with retries and backoff until a deadline: a device that has just run its
//!   ZTP script may still be bringing SSH up.
//! - Host keys: a pinned key from the plan, else trust on first use — the key seen first
//!   is recorded per device (tenant and serial, whatever its address) and any other key
//!   later is refused until an operator forgets it.
//! - Every command has a timeout; a line the device rejects fails the push with the line
//!   and the device's words.
//! - The transcript is kept with the credential's secret masked.
//!
//! Knows nothing of policies or jobs: it is given an address, a credential and lines.

mod driver;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use russh::client;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};

pub use driver::{Platform, config_lines};

pub use crate::config::SshSettings;
use crate::config::{CredentialConfig, CredentialSecret, ExposeSecret, SecretString};
use crate::retry::{Attempt, Backoff, Failed};

/// A login, ready for the SSH client. `Debug` never prints the secret.
#[derive(Clone)]
pub struct Credential {
    pub username: String,
    pub secret: Secret,
}

#[derive(Clone)]
pub enum Secret {
    Password(SecretString),
    Key(Arc<PrivateKey>),
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

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("credential {name}: key_file {path} is not an OpenSSH private key: {detail}")]
    Key {
        name: String,
        path: std::path::PathBuf,
        detail: String,
    },
}

impl Credential {
    /// Parse a configured credential (a key file's text becomes a key here).
    pub fn from_config(name: &str, c: &CredentialConfig) -> Result<Self, CredentialError> {
        let secret = match &c.secret {
            CredentialSecret::Password(p) => Secret::Password(p.clone()),
            CredentialSecret::PrivateKey { path, text } => {
                let key =
                    russh::keys::decode_secret_key(text.expose_secret(), None).map_err(|e| {
                        CredentialError::Key {
                            name: name.to_owned(),
                            path: path.clone(),
                            detail: e.to_string(),
                        }
                    })?;
                Secret::Key(Arc::new(key))
            }
        };
        Ok(Credential {
            username: c.username.clone(),
            secret,
        })
    }

    /// A password login.
    pub fn password(username: &str, password: SecretString) -> Self {
        Credential {
            username: username.to_owned(),
            secret: Secret::Password(password),
        }
    }

    /// The text to mask in transcripts and logs.
    pub fn secret_text(&self) -> Option<String> {
        match &self.secret {
            Secret::Password(p) => Some(p.expose_secret().to_owned()),
            Secret::Key(_) => None,
        }
    }
}

/// Where and how to push.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub platform: Platform,
    pub credential: Credential,
    /// A pinned host key (`ssh-ed25519 AAAA...`), or none for trust on first use.
    pub pinned_key: Option<String>,
    /// The key recorded at first use, if any.
    pub known_key: Option<String>,
}

/// What a successful push leaves behind.
#[derive(Debug)]
pub struct Pushed {
    pub transcript: String,
    /// The server's host key (OpenSSH format), to record on first use.
    pub host_key: String,
    pub lines: usize,
    pub attempts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("could not connect to {addr} within {waited_s} s ({attempts} attempts): {last}")]
    Connect {
        addr: String,
        waited_s: u64,
        attempts: u32,
        last: String,
    },
    #[error("authentication failed for user {user} at {addr} ({method}); check the credential")]
    Auth {
        user: String,
        addr: String,
        method: &'static str,
    },
    #[error(
        "host key of {addr} changed since first use: recorded {recorded}, now {presented}; refusing to push (if the device was replaced, forget its key and retry)"
    )]
    HostKeyChanged {
        addr: String,
        recorded: String,
        presented: String,
    },
    #[error("host key of {addr} is {presented}, not the pinned key {pinned}; refusing to push")]
    HostKeyPinned {
        addr: String,
        pinned: String,
        presented: String,
    },
    #[error("the pinned host key {key:?} is not an OpenSSH public key: {detail}")]
    BadPinnedKey { key: String, detail: String },
    #[error("device {addr} rejected config line {number} `{line}`: {answer}")]
    Rejected {
        addr: String,
        number: usize,
        line: String,
        answer: String,
        transcript: String,
    },
    #[error("device {addr}: no prompt within {timeout_s} s after `{command}`")]
    Timeout {
        addr: String,
        command: String,
        timeout_s: u64,
        transcript: String,
    },
    #[error(
        "device {addr} sent more than {limit_kib} KiB after `{command}` (jobs.ssh_output_kib); gave up"
    )]
    TooMuchOutput {
        addr: String,
        command: String,
        limit_kib: usize,
        transcript: String,
    },
    #[error(
        "device {addr} still has the temporary user {user} after the push (`{check}` shows it); not saved"
    )]
    UserNotRemoved {
        addr: String,
        user: String,
        check: String,
        transcript: String,
    },
    #[error("device {addr}: {detail}")]
    Session {
        addr: String,
        detail: String,
        transcript: String,
    },
}

impl PushError {
    /// The transcript up to the failure, if the session got that far.
    pub fn transcript(&self) -> Option<&str> {
        match self {
            PushError::Rejected { transcript, .. }
            | PushError::Timeout { transcript, .. }
            | PushError::TooMuchOutput { transcript, .. }
            | PushError::UserNotRemoved { transcript, .. }
            | PushError::Session { transcript, .. } => Some(transcript),
            _ => None,
        }
    }
}

/// SHA-256 fingerprint of an OpenSSH public key line, for messages.
pub fn fingerprint(openssh: &str) -> String {
    PublicKey::from_openssh(openssh)
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
        .unwrap_or_else(|_| openssh.chars().take(40).collect())
}

/// Accepts the server key if it matches the pinned or recorded key (or there is none
/// yet), and remembers what was presented either way.
struct KeyCheck {
    expected: Option<PublicKey>,
    presented: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for KeyCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        if let Ok(mut seen) = self.presented.lock() {
            *seen = Some(key.clone());
        }
        Ok(match &self.expected {
            Some(expected) => expected.key_data() == key.key_data(),
            None => true,
        })
    }
}

/// The error for a host key the check refused: which key was expected, which came.
fn key_refused(target: &Target, addr: String, shown: &str) -> PushError {
    let presented = fingerprint(shown);
    match (&target.pinned_key, &target.known_key) {
        (Some(pinned), _) => PushError::HostKeyPinned {
            addr,
            pinned: fingerprint(pinned),
            presented,
        },
        (None, Some(known)) => PushError::HostKeyChanged {
            addr,
            recorded: fingerprint(known),
            presented,
        },
        (None, None) => PushError::Session {
            addr,
            detail: "host key refused".into(),
            transcript: String::new(),
        },
    }
}

/// What to send once logged in.
#[derive(Debug, Clone)]
pub struct Push<'a> {
    pub lines: &'a [&'a str],
    /// `write memory` at the end.
    pub save: bool,
    /// The temporary user the ZTP script created: removed as the last configuration
    /// line, and its absence checked before saving.
    pub remove_user: Option<String>,
    /// Secrets to mask in the transcript (every password of the tenant, the one-time
    /// password), besides the login's own.
    pub masks: Vec<String>,
}

/// A logged-in SSH session, ready for [`Session::configure`].
pub struct Session {
    handle: client::Handle<KeyCheck>,
    addr: String,
    host_key: String,
    attempts: u32,
    login_secret: Option<String>,
}

/// Connect, check the host key and log in, retrying the connection until `deadline`
/// (a device that has just run its ZTP script may still be bringing SSH up). Holds no
/// push slot: a dead address costs this job its time, not other devices their turn.
pub async fn connect(
    settings: &SshSettings,
    target: &Target,
    deadline: Instant,
) -> Result<Session, PushError> {
    let addr = format!("{}:{}", target.host, target.port);
    let expected_text = target.pinned_key.as_ref().or(target.known_key.as_ref());
    let expected = match expected_text {
        Some(k) => {
            Some(
                PublicKey::from_openssh(k.trim()).map_err(|e| PushError::BadPinnedKey {
                    key: k.clone(),
                    detail: e.to_string(),
                })?,
            )
        }
        None => None,
    };
    let started = Instant::now();
    let presented = Arc::new(Mutex::new(None::<PublicKey>));
    let mut attempts = 0u32;
    let attempt = || {
        attempts += 1;
        let (presented, expected) = (presented.clone(), expected.clone());
        let addr = addr.clone();
        async move {
            let config = Arc::new(client::Config {
                inactivity_timeout: Some(settings.command_timeout * 2),
                ..Default::default()
            });
            let handler = KeyCheck {
                expected,
                presented: presented.clone(),
            };
            let attempt = tokio::time::timeout(
                settings.connect_timeout,
                client::connect(config, (target.host.as_str(), target.port), handler),
            )
            .await;
            let reason = match attempt {
                Ok(Ok(handle)) => match presented.lock().ok().and_then(|k| k.clone()) {
                    Some(key) => return Ok((handle, key)),
                    None => "the server presented no host key".to_owned(),
                },
                Ok(Err(russh::Error::UnknownKey)) => {
                    let shown = presented
                        .lock()
                        .ok()
                        .and_then(|k| k.as_ref().and_then(|k| k.to_openssh().ok()))
                        .unwrap_or_default();
                    return Err(Attempt::Fatal(key_refused(target, addr, &shown)));
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no SSH handshake within {:?}", settings.connect_timeout),
            };
            tracing::debug!(%addr, "SSH not ready yet ({reason}); retrying");
            Err(Attempt::Retry(reason))
        }
    };
    let backoff = Backoff {
        first: settings.initial_backoff,
        max: settings.max_backoff,
    };
    let (handle, key) = backoff
        .until(tokio::time::Instant::from_std(deadline), attempt)
        .await
        .map_err(|e| match e {
            Failed::Fatal(e) => e,
            Failed::Exhausted { attempts, last } => PushError::Connect {
                addr: addr.clone(),
                waited_s: started.elapsed().as_secs(),
                attempts,
                last,
            },
        })?;
    let host_key = key.to_openssh().unwrap_or_default();
    let mut handle = handle;
    let user = target.credential.username.clone();
    let (auth, method) = match &target.credential.secret {
        Secret::Password(password) => (
            handle
                .authenticate_password(user.clone(), password.expose_secret())
                .await,
            "password",
        ),
        Secret::Key(key) => {
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten();
            (
                handle
                    .authenticate_publickey(
                        user.clone(),
                        PrivateKeyWithHashAlg::new(key.clone(), hash),
                    )
                    .await,
                "public key",
            )
        }
    };
    match auth {
        Ok(r) if r.success() => {}
        Ok(_) => return Err(PushError::Auth { user, addr, method }),
        Err(e) => {
            return Err(PushError::Session {
                addr,
                detail: format!("authentication: {e}"),
                transcript: String::new(),
            });
        }
    }
    Ok(Session {
        handle,
        addr,
        host_key,
        attempts,
        login_secret: target.credential.secret_text(),
    })
}

impl Session {
    /// Push in configuration mode, remove the temporary user, check it is gone, save.
    /// Everything here happens once.
    pub async fn configure(
        self,
        settings: &SshSettings,
        platform: Platform,
        push: Push<'_>,
    ) -> Result<Pushed, PushError> {
        let mut masks = push.masks.clone();
        masks.extend(self.login_secret.clone());
        let mut shell = driver::Shell::open(&self.handle, &self.addr, settings, masks).await?;
        let result = shell.configure(platform, &push).await;
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "done", "en")
            .await;
        let transcript = result?;
        Ok(Pushed {
            transcript,
            host_key: self.host_key,
            lines: push.lines.len(),
            attempts: self.attempts,
        })
    }
}

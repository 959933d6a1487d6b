//! Where provisioned devices are announced: `[tenants.monitoring.NAME]` sinks (PRTG) and
//! `[tenants.webhooks.NAME]` receivers of signed JSON events.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::secret::{ExposeSecret, SecretSource, SecretString, resolve};

/// Events ztpd sends by itself, to webhooks that list them in `events`. Plans may send any
/// other event name through a `webhook` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostEvent {
    /// A job finished: the device is provisioned.
    Provisioned,
    /// A job failed; the body carries the reason.
    Failed,
    /// Two call-backs claimed one serial from different addresses or tokens.
    Conflict,
}

impl HostEvent {
    pub const ALL: [HostEvent; 3] = [
        HostEvent::Provisioned,
        HostEvent::Failed,
        HostEvent::Conflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HostEvent::Provisioned => "device.provisioned",
            HostEvent::Failed => "device.failed",
            HostEvent::Conflict => "device.conflict",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SinkKind {
    Prtg,
}

/// A PRTG object id, written as a number or a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ObjectId {
    Number(u64),
    Text(String),
}

impl ObjectId {
    fn into_text(self) -> String {
        match self {
            ObjectId::Number(n) => n.to_string(),
            ObjectId::Text(t) => t,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSink {
    kind: SinkKind,
    url: String,
    apitoken: Option<String>,
    apitoken_env: Option<String>,
    apitoken_file: Option<PathBuf>,
    username: Option<String>,
    passhash: Option<String>,
    passhash_env: Option<String>,
    passhash_file: Option<PathBuf>,
    /// Group new devices go into.
    group: Option<ObjectId>,
    /// Device that new devices are copied from.
    template: Option<ObjectId>,
    timeout_s: Option<u64>,
    retries: Option<u32>,
}

/// A monitoring sink as configured.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    Prtg(PrtgConfig),
}

/// How ztpd signs in to PRTG.
#[derive(Debug, Clone)]
pub enum PrtgAuth {
    ApiToken(SecretString),
    Passhash {
        username: String,
        passhash: SecretString,
    },
}

#[derive(Debug, Clone)]
pub struct PrtgConfig {
    /// Base URL without a trailing slash (`https://prtg.example.net`).
    pub url: String,
    pub auth: PrtgAuth,
    /// Group new devices go into, unless the plan names one.
    pub group: Option<String>,
    /// Device to duplicate, unless the plan names one.
    pub template: Option<String>,
    pub timeout: Duration,
    /// Further attempts after a 5xx answer or a connection error.
    pub retries: u32,
}

impl RawSink {
    pub(super) fn validate(
        self,
        what: &str,
        resolve_path: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<SinkConfig, String> {
        match self.kind {
            SinkKind::Prtg => {
                let apitoken_file = self.apitoken_file.map(|p| resolve_path(&p));
                let token = SecretSource {
                    inline: self.apitoken.as_deref(),
                    env: self.apitoken_env.as_deref(),
                    file: apitoken_file.as_deref(),
                };
                let passhash_file = self.passhash_file.map(|p| resolve_path(&p));
                let passhash = SecretSource {
                    inline: self.passhash.as_deref(),
                    env: self.passhash_env.as_deref(),
                    file: passhash_file.as_deref(),
                };
                let auth = match (token.is_given(), self.username) {
                    (true, None) => PrtgAuth::ApiToken(resolve(what, "apitoken", token)?),
                    (false, Some(username)) => PrtgAuth::Passhash {
                        username,
                        passhash: resolve(what, "passhash", passhash)?,
                    },
                    _ => {
                        return Err(format!(
                            "{what}: give either an API token (apitoken, apitoken_env or apitoken_file) or username with passhash (passhash, passhash_env or passhash_file)"
                        ));
                    }
                };
                Ok(SinkConfig::Prtg(PrtgConfig {
                    url: super::http_url(what, "url", &self.url)?,
                    auth,
                    group: self.group.map(ObjectId::into_text),
                    template: self.template.map(ObjectId::into_text),
                    timeout: Duration::from_secs(self.timeout_s.unwrap_or(10).max(1)),
                    retries: self.retries.unwrap_or(3),
                }))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    url: String,
    secret: Option<String>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    #[serde(default)]
    events: Vec<String>,
    max_attempts: Option<u32>,
    backoff_ms: Option<u64>,
    timeout_s: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: SecretString,
    /// Events ztpd sends by itself to this receiver.
    pub events: Vec<HostEvent>,
    /// Attempts before an event is given up (logged as a warning).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time, at most 5 minutes.
    pub backoff: Duration,
    /// Per attempt.
    pub timeout: Duration,
}

impl RawWebhook {
    pub(super) fn validate(
        self,
        what: &str,
        resolve_path: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<WebhookConfig, String> {
        let events = self
            .events
            .iter()
            .map(|e| {
                HostEvent::parse(e).ok_or_else(|| {
                    format!(
                        "{what}: unknown event {e:?}; ztpd sends {} by itself (plans may send any event through a webhook step)",
                        HostEvent::ALL.map(HostEvent::as_str).join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let secret_file = self.secret_file.map(|p| resolve_path(&p));
        let secret = resolve(
            what,
            "secret",
            SecretSource {
                inline: self.secret.as_deref(),
                env: self.secret_env.as_deref(),
                file: secret_file.as_deref(),
            },
        )?;
        if secret.expose_secret().len() < 16 {
            return Err(format!(
                "{what}: the secret is shorter than 16 characters; use a long random value"
            ));
        }
        Ok(WebhookConfig {
            url: super::http_url(what, "url", &self.url)?,
            secret,
            events,
            max_attempts: self.max_attempts.unwrap_or(8).max(1),
            backoff: Duration::from_millis(self.backoff_ms.unwrap_or(1000).max(10)),
            timeout: Duration::from_secs(self.timeout_s.unwrap_or(10).max(1)),
        })
    }
}

//! PRTG Network Monitor through its HTTP API (v1, the `/api/*.htm` calls):
//!
//! 1. `GET /api/table.json?content=devices&columns=objid,device,host&filter_host=HOST`:
//!    a device with this host already exists → done, nothing is added twice.
//! 2. `GET /api/duplicateobject.htm?id=TEMPLATE&name=NAME&host=HOST&targetid=GROUP`:
//!    PRTG answers `302 Found` with the new object's id in the `Location` header
//!    (`/device.htm?id=1234`), not in a body; the copy starts paused.
//! 3. `GET /api/setobjectproperty.htm?id=ID&name=host&value=HOST` (the duplicate keeps the
//!    template's host on some PRTG versions).
//! 4. `GET /api/pause.htm?id=ID&action=1`: resume monitoring.
//!
//! Every call authenticates with `apitoken=` or `username=` + `passhash=` query
//! parameters, so URLs are never logged with their query.

use std::time::Duration;

use reqwest::{StatusCode, header};
use serde_json::Value;

use crate::config::ExposeSecret;
pub use crate::config::{PrtgAuth, PrtgConfig};
use crate::retry::{Attempt, Backoff, Failed};

#[derive(Debug, thiserror::Error)]
pub enum PrtgError {
    #[error(
        "PRTG refused the credentials: {call} answered {status}; check the sink's apitoken or username and passhash"
    )]
    Auth { call: String, status: StatusCode },
    #[error("PRTG {call} answered {status}: {detail}")]
    Status {
        call: String,
        status: StatusCode,
        detail: String,
    },
    #[error("cannot reach PRTG at {call} after {attempts} attempts: {detail}")]
    Unreachable {
        call: String,
        attempts: u32,
        detail: String,
    },
    #[error("PRTG {call}: {detail}")]
    Answer { call: String, detail: String },
    #[error("{0}")]
    Setting(String),
}

/// What registering a device did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// PRTG object id of the device.
    pub id: u64,
    /// The device (by host) was already monitored; nothing was added.
    pub existed: bool,
}

pub struct Prtg {
    base: String,
    auth: PrtgAuth,
    group: Option<String>,
    template: Option<String>,
    retries: u32,
    http: reqwest::Client,
}

impl std::fmt::Debug for Prtg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prtg").field("url", &self.base).finish()
    }
}

impl Prtg {
    pub fn new(config: &PrtgConfig) -> Result<Self, PrtgError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // duplicateobject.htm answers with a redirect that carries the new id: read it,
            // do not follow it.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ztpd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PrtgError::Setting(format!("PRTG client for {}: {e}", config.url)))?;
        Ok(Prtg {
            base: config.url.trim_end_matches('/').to_owned(),
            auth: config.auth.clone(),
            group: config.group.clone(),
            template: config.template.clone(),
            retries: config.retries,
            http,
        })
    }

    /// Add the device `name` with address `host` to monitoring, unless PRTG already has a
    /// device with that host. `group` and `template` override the sink's defaults.
    pub async fn register(
        &self,
        name: &str,
        host: &str,
        group: Option<&str>,
        template: Option<&str>,
    ) -> Result<Registered, PrtgError> {
        let group = group.or(self.group.as_deref()).ok_or_else(|| {
            PrtgError::Setting(
                "no PRTG group: set `group` on the monitoring sink or in the plan step".into(),
            )
        })?;
        let template = template.or(self.template.as_deref()).ok_or_else(|| {
            PrtgError::Setting(
                "no PRTG template device: set `template` on the monitoring sink or in the plan step"
                    .into(),
            )
        })?;
        if let Some(id) = self.device_with_host(host).await? {
            return Ok(Registered { id, existed: true });
        }
        // A duplicate is not idempotent: when its answer is lost (a 5xx, a dropped
        // connection, a 2xx without Location) the copy may exist all the same, so each
        // retry first looks the host up again instead of copying a second time.
        let call = format!("{}/api/duplicateobject.htm", self.base);
        let mut first = true;
        let attempt = || {
            let retry = !std::mem::replace(&mut first, false);
            async move {
                if retry
                    && let Some(id) = self.device_with_host(host).await.map_err(Attempt::Fatal)?
                {
                    return Ok(id);
                }
                let params = [
                    ("id", template),
                    ("name", name),
                    ("host", host),
                    ("targetid", group),
                ];
                let (status, location, body) =
                    self.call_once("duplicateobject.htm", &params).await?;
                location.as_deref().and_then(id_from_location).ok_or_else(|| {
                    Attempt::Retry(format!(
                        "expected a redirect to the new device, got {status} with Location {location:?}: {}",
                        error_text(&body)
                    ))
                })
            }
        };
        let id = BACKOFF
            .run(self.retries, attempt)
            .await
            .map_err(|e| match e {
                Failed::Fatal(e) => e,
                Failed::Exhausted { attempts, last } => PrtgError::Answer {
                    call,
                    detail: format!(
                        "no device was created for {host} after {attempts} attempts (is template {template} a device, group {group} a group?): {last}"
                    ),
                },
            })?;
        self.call(
            "setobjectproperty.htm",
            &[("id", &id.to_string()), ("name", "host"), ("value", host)],
        )
        .await?;
        self.call("pause.htm", &[("id", &id.to_string()), ("action", "1")])
            .await?;
        Ok(Registered { id, existed: false })
    }

    async fn device_with_host(&self, host: &str) -> Result<Option<u64>, PrtgError> {
        let (_, _, body) = self
            .call(
                "table.json",
                &[
                    ("content", "devices"),
                    ("columns", "objid,device,host"),
                    ("count", "*"),
                    ("filter_host", host),
                ],
            )
            .await?;
        let table: Value = serde_json::from_str(&body).map_err(|e| PrtgError::Answer {
            call: "table.json".into(),
            detail: format!("not JSON: {e}"),
        })?;
        let devices = table
            .get("devices")
            .and_then(Value::as_array)
            .ok_or_else(|| PrtgError::Answer {
                call: "table.json".into(),
                detail: "no `devices` list in the answer".into(),
            })?;
        // filter_host is PRTG's own filter; check the host again in case a PRTG version
        // matches loosely.
        // Some PRTG versions send objid as a string; objid_raw is always the number.
        let id_of = |d: &Value| {
            ["objid_raw", "objid"].iter().find_map(|k| {
                let v = d.get(*k)?;
                v.as_u64().or_else(|| v.as_str()?.parse().ok())
            })
        };
        Ok(devices
            .iter()
            .find(|d| d.get("host").and_then(Value::as_str) == Some(host))
            .and_then(id_of))
    }

    /// One API call, authenticated, with retries on 5xx and connection errors. Returns
    /// the status, the `Location` header and the body of a 2xx or 3xx answer.
    async fn call(
        &self,
        page: &str,
        params: &[(&str, &str)],
    ) -> Result<(StatusCode, Option<String>, String), PrtgError> {
        BACKOFF
            .run(self.retries, || self.call_once(page, params))
            .await
            .map_err(|e| match e {
                Failed::Fatal(e) => e,
                Failed::Exhausted { attempts, last } => PrtgError::Unreachable {
                    call: format!("{}/api/{page}", self.base),
                    attempts,
                    detail: last,
                },
            })
    }

    async fn call_once(
        &self,
        page: &str,
        params: &[(&str, &str)],
    ) -> Result<(StatusCode, Option<String>, String), Attempt<PrtgError>> {
        let url = format!("{}/api/{page}", self.base);
        let mut query: Vec<(&str, &str)> = params.to_vec();
        match &self.auth {
            PrtgAuth::ApiToken(t) => query.push(("apitoken", t.expose_secret())),
            PrtgAuth::Passhash { username, passhash } => {
                query.push(("username", username));
                query.push(("passhash", passhash.expose_secret()));
            }
        }
        let response = self
            .http
            .get(&url)
            .query(&query)
            .send()
            .await
            // reqwest's error text may carry the URL with its query (and the token).
            .map_err(|e| Attempt::Retry(crate::errors::chain(&e.without_url())))?;
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        if status.is_success() || status.is_redirection() {
            Ok((status, location, body))
        } else if status.is_server_error() {
            Err(Attempt::Retry(format!("{status}: {}", error_text(&body))))
        } else if status == StatusCode::UNAUTHORIZED {
            Err(Attempt::Fatal(PrtgError::Auth { call: url, status }))
        } else {
            Err(Attempt::Fatal(PrtgError::Status {
                call: url,
                status,
                detail: error_text(&body),
            }))
        }
    }
}

/// Pauses between attempts: 250 ms, doubling, at most 3 s.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(250),
    max: Duration::from_secs(3),
};

/// The new object's id from a redirect such as `/device.htm?id=1234&tabid=1`, also when
/// PRTG sends a full URL or percent-encodes it into a login redirect.
fn id_from_location(location: &str) -> Option<u64> {
    let decoded: String = form_urlencoded::parse(location.as_bytes())
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    for text in [location, decoded.as_str()] {
        for part in text.split(['?', '&']) {
            if let Some(id) = part.strip_prefix("id=")
                && let Ok(id) = id.parse()
            {
                return Some(id);
            }
        }
    }
    None
}

/// PRTG reports errors as `<prtg><error>...</error></prtg>`; keep just the message.
fn error_text(body: &str) -> String {
    if let Some(start) = body.find("<error>")
        && let Some(end) = body[start..].find("</error>")
    {
        return body[start + 7..start + end].trim().to_owned();
    }
    let t: String = body.chars().take(200).collect();
    if t.is_empty() { "empty body".into() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_id_comes_from_the_redirect() {
        assert_eq!(id_from_location("/device.htm?id=1234"), Some(1234));
        assert_eq!(
            id_from_location("https://prtg.example.net/device.htm?tabid=1&id=77"),
            Some(77)
        );
        assert_eq!(
            id_from_location("/public/login.htm?loginurl=%2Fdevice.htm%3Fid%3D42"),
            Some(42)
        );
        assert_eq!(id_from_location("/welcome.htm"), None);
    }

    #[test]
    fn xml_errors_keep_prtg_words() {
        let body = "<?xml version=\"1.0\"?><prtg><version>24.1</version><error>The selected object cannot be used here.</error></prtg>";
        assert_eq!(error_text(body), "The selected object cannot be used here.");
    }
}

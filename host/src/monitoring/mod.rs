//! Where provisioned devices are announced: monitoring sinks (PRTG) that a plan's
//! `register-monitoring` step names, and signed webhooks for job events.
//!
//! - [`prtg`]: the PRTG HTTP API client (duplicate a template device, set host, resume).
//! - [`webhook`]: HMAC-signed JSON events from a persisted outbox with retries.
//!
//! Sinks and webhooks are configured per tenant; a policy names them, never their URLs
//! or secrets.

pub mod prtg;
pub mod webhook;

use serde_json::{Value, json};

pub use crate::config::{HostEvent, SinkConfig};
pub use prtg::{Prtg, PrtgError, Registered};
pub use webhook::{Outbox, OutboxError, WebhookConfig};

/// A live monitoring sink.
#[derive(Debug)]
pub enum Sink {
    Prtg(Prtg),
}

impl Sink {
    pub fn new(config: &SinkConfig) -> Result<Self, PrtgError> {
        match config {
            SinkConfig::Prtg(c) => Prtg::new(c).map(Sink::Prtg),
        }
    }

    /// Register a device; returns a line for the job's event log.
    pub async fn register(
        &self,
        name: &str,
        host: &str,
        group: Option<&str>,
        template: Option<&str>,
    ) -> Result<String, PrtgError> {
        match self {
            Sink::Prtg(p) => match p.register(name, host, group, template).await {
                Ok(Registered { id, existed: true }) => Ok(format!(
                    "PRTG already monitors {host} (device {id}); nothing added"
                )),
                Ok(Registered { id, existed: false }) => Ok(format!(
                    "PRTG device {id} added for {name} ({host}) and resumed"
                )),
                Err(e) => Err(e),
            },
        }
    }
}

/// What a job event says about its device, for webhook bodies.
#[derive(Debug, Clone)]
pub struct JobEvent<'a> {
    pub event: &'a str,
    pub tenant: &'a str,
    pub job: &'a crate::store::jobs::Job,
    pub error: Option<&'a str>,
    /// Extra fields a plan's webhook step adds (a JSON object), merged under `data`.
    pub data: Value,
}

impl JobEvent<'_> {
    /// The JSON body of a webhook event.
    pub fn body(&self) -> Value {
        let job = self.job;
        json!({
            "event": self.event,
            "tenant": self.tenant,
            "device": {
                "key": job.device,
                "serial": job.serial,
                "mac": job.mac,
                "model": job.model,
                "address": job.source_ip,
            },
            "job": {
                "id": job.id,
                "state": job.state,
                "created_at": rfc3339(job.created_ms),
            },
            "policy_version": job.policy_version,
            "error": self.error,
            "occurred_at": rfc3339(crate::clock::now_ms()),
            "data": self.data,
        })
    }
}

/// `2026-11-21T09:30:00.123Z`.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

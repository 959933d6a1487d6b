//! Webhooks: JSON events (`device.provisioned`, `device.failed`, or any event a plan
//! names) POSTed to a tenant's receivers, signed with HMAC-SHA256, from a persisted outbox.
//!
//! An event is written to the `webhook_outbox` table first and delivered by a background
//! task, so a job never waits on a receiver, and an event survives the receiver being
//! down — and ztpd restarting — until its retry budget (`max_attempts`, exponential
//! backoff from `backoff_ms`) is spent.
//!
//! ## Signature
//!
//! Each attempt carries:
//!
//! - `X-Ztpd-Event`: the event name;
//! - `X-Ztpd-Delivery`: the event's id, the same on every retry (deduplicate on it);
//! - `X-Ztpd-Timestamp`: Unix seconds of this attempt;
//! - `X-Ztpd-Signature`: `sha256=` + lower-case hex of
//!   HMAC-SHA256(secret, `{timestamp}.{body}`), where body is the exact request body.
//!
//! A receiver recomputes the HMAC over the timestamp header, a `.`, and the raw body,
//! compares in constant time, and rejects timestamps too far from its clock (replays).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{Notify, Semaphore};

use crate::clock::now_ms;
use crate::config::ExposeSecret;
pub use crate::config::WebhookConfig;
use crate::retry::Backoff;
use crate::store::StoreError;
use crate::store::outbox::{Delivery, DeliveryState, OutboxStore};

pub const EVENT_HEADER: &str = "x-ztpd-event";
pub const DELIVERY_HEADER: &str = "x-ztpd-delivery";
pub const TIMESTAMP_HEADER: &str = "x-ztpd-timestamp";
pub const SIGNATURE_HEADER: &str = "x-ztpd-signature";

/// `sha256=<hex>` over `{timestamp}.{body}`: the `X-Ztpd-Signature` header.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why the outbox could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("webhook HTTP client: {0}")]
    Client(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Events claimed per scan.
const CLAIM_BATCH: usize = 64;
/// Events in flight at once, across all tenants.
const MAX_IN_FLIGHT: usize = 16;
/// How long a claimed event stays hidden from the next scan while its attempt runs.
const CLAIM: Duration = Duration::from_secs(120);
/// The scan runs at least this often, so a missed wake-up delays at most this much.
const IDLE_SCAN: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Finds a tenant's webhook by name at delivery time (the outbox knows nothing of
/// tenants).
pub trait WebhookDirectory: Send + Sync + 'static {
    fn webhook(&self, tenant: &str, name: &str) -> Option<WebhookConfig>;
}

/// The outbox: enqueue from anywhere, deliver from one background task.
#[derive(Clone)]
pub struct Outbox {
    store: OutboxStore,
    wake: Arc<Notify>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    pub fn new(store: OutboxStore) -> Result<Self, OutboxError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("ztpd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OutboxError::Client(e.to_string()))?;
        Ok(Outbox {
            store,
            wake: Arc::new(Notify::new()),
            http,
        })
    }

    /// Persist an event for `webhook` of `tenant`; it is delivered in the background.
    pub async fn enqueue(
        &self,
        tenant: &str,
        webhook: &str,
        event: &str,
        body: &Value,
    ) -> Result<i64, OutboxError> {
        let id = self
            .store
            .enqueue(tenant, webhook, event, body.to_string())
            .await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Every event of `tenant`, newest first (status and tests).
    pub async fn deliveries(&self, tenant: &str) -> Result<Vec<Delivery>, StoreError> {
        self.store.deliveries(tenant).await
    }

    /// Deliver due events until the process ends. Pending events are due at once after a
    /// restart; within one process a claimed event is hidden for [`CLAIM`].
    pub fn start(&self, directory: Arc<dyn WebhookDirectory>) -> tokio::task::JoinHandle<()> {
        let outbox = self.clone();
        tokio::spawn(async move {
            // After a restart every pending event is due at once: a receiver may have come
            // back meanwhile, and an event claimed by the process that died is not left
            // waiting out its claim.
            let retry_now = outbox.store.all_due_now().await;
            match retry_now {
                Ok(n) if n > 0 => {
                    tracing::info!("{n} webhook events pending from before the restart")
                }
                Ok(_) => {}
                Err(e) => tracing::error!("webhook outbox: {e}"),
            }
            let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
            loop {
                let wait = match outbox
                    .store
                    .claim_due(CLAIM_BATCH, CLAIM.as_millis() as i64)
                    .await
                {
                    Ok((due, next)) => {
                        for delivery in due {
                            let Ok(permit) = permits.clone().acquire_owned().await else {
                                return;
                            };
                            let (outbox, directory) = (outbox.clone(), directory.clone());
                            tokio::spawn(async move {
                                outbox.attempt(directory.as_ref(), delivery).await;
                                drop(permit);
                            });
                        }
                        next.map_or(IDLE_SCAN, |ms| {
                            Duration::from_millis(ms.saturating_sub(now_ms()).max(0) as u64)
                                .min(IDLE_SCAN)
                        })
                    }
                    Err(e) => {
                        tracing::error!("webhook outbox: {e}");
                        IDLE_SCAN
                    }
                };
                tokio::select! {
                    _ = outbox.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        })
    }

    async fn attempt(&self, directory: &dyn WebhookDirectory, d: Delivery) {
        let attempts = d.attempts + 1;
        let Some(hook) = directory.webhook(&d.tenant, &d.webhook) else {
            let reason = format!(
                "tenant {} has no webhook named {:?} any more",
                d.tenant, d.webhook
            );
            self.finish(d.id, DeliveryState::GaveUp, attempts, Some(reason), None)
                .await;
            return;
        };
        let result = self.post(&hook, &d).await;
        match result {
            Ok(()) => {
                tracing::debug!(tenant = %d.tenant, webhook = %d.webhook, event = %d.event, delivery = d.id, attempts, "webhook delivered");
                self.finish(d.id, DeliveryState::Delivered, attempts, None, None)
                    .await;
            }
            Err(reason) if attempts >= hook.max_attempts => {
                tracing::warn!(tenant = %d.tenant, webhook = %d.webhook, event = %d.event, delivery = d.id, "webhook given up after {attempts} attempts: {reason}");
                self.finish(d.id, DeliveryState::GaveUp, attempts, Some(reason), None)
                    .await;
            }
            Err(reason) => {
                let wait = Backoff {
                    first: hook.backoff,
                    max: MAX_BACKOFF,
                }
                .delay(attempts);
                tracing::debug!(tenant = %d.tenant, webhook = %d.webhook, delivery = d.id, attempts, "webhook attempt failed, retrying in {wait:?}: {reason}");
                let next = now_ms() + wait.as_millis() as i64;
                self.finish(
                    d.id,
                    DeliveryState::Pending,
                    attempts,
                    Some(reason),
                    Some(next),
                )
                .await;
            }
        }
    }

    async fn post(&self, hook: &WebhookConfig, d: &Delivery) -> Result<(), String> {
        let timestamp = now_ms() / 1000;
        let signature = sign(
            hook.secret.expose_secret().as_bytes(),
            timestamp,
            d.body.as_bytes(),
        );
        let response = self
            .http
            .post(&hook.url)
            .timeout(hook.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, &d.event)
            .header(DELIVERY_HEADER, d.id.to_string())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(d.body.clone())
            .send()
            .await
            .map_err(|e| crate::errors::chain(&e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{} answered {status}", hook.url))
        }
    }

    async fn finish(
        &self,
        id: i64,
        state: DeliveryState,
        attempts: u32,
        error: Option<String>,
        next_ms: Option<i64>,
    ) {
        if let Err(e) = self.store.finish(id, state, attempts, error, next_ms).await {
            tracing::error!(delivery = id, "cannot record a webhook attempt: {e}");
        }
        if state == DeliveryState::Pending {
            self.wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            sign(b"key", 1_700_000_000, br#"{"a":1}"#),
            "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }
}

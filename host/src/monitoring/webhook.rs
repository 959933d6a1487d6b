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
use rusqlite::params;
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{Notify, Semaphore};

use crate::credentials::SecretText;
use crate::jobs::now_ms;
use crate::store::{Store, StoreError};

pub const EVENT_HEADER: &str = "x-ztpd-event";
pub const DELIVERY_HEADER: &str = "x-ztpd-delivery";
pub const TIMESTAMP_HEADER: &str = "x-ztpd-timestamp";
pub const SIGNATURE_HEADER: &str = "x-ztpd-signature";

/// Events the host sends by itself when a job ends, to webhooks that list them.
pub const PROVISIONED: &str = "device.provisioned";
pub const FAILED: &str = "device.failed";

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: SecretText,
    /// Job outcomes sent without a plan step: `device.provisioned`, `device.failed`.
    pub events: Vec<String>,
    /// Attempts before an event is given up (logged as a warning).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time, at most 5 minutes.
    pub backoff: Duration,
    /// Per attempt.
    pub timeout: Duration,
}

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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       TEXT NOT NULL,
    webhook      TEXT NOT NULL,
    event        TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_ms      INTEGER NOT NULL,
    last_error   TEXT,
    created_ms   INTEGER NOT NULL,
    delivered_ms INTEGER
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (state, next_ms);
";

/// Events in flight at once, across all tenants.
const MAX_IN_FLIGHT: usize = 16;
/// How long a claimed event stays hidden from the next scan while its attempt runs.
const CLAIM: Duration = Duration::from_secs(120);
/// The scan runs at least this often, so a missed wake-up delays at most this much.
const IDLE_SCAN: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One event as stored.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub tenant: String,
    pub webhook: String,
    pub event: String,
    pub body: String,
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, tenant, webhook, event, body, state, attempts, last_error";

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        tenant: r.get(1)?,
        webhook: r.get(2)?,
        event: r.get(3)?,
        body: r.get(4)?,
        state: r.get(5)?,
        attempts: r.get(6)?,
        last_error: r.get(7)?,
    })
}

/// Finds a tenant's webhook by name at delivery time (the outbox knows nothing of
/// tenants).
pub trait WebhookDirectory: Send + Sync + 'static {
    fn webhook(&self, tenant: &str, name: &str) -> Option<WebhookConfig>;
}

/// The outbox: enqueue from anywhere, deliver from one background task.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    wake: Arc<Notify>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    pub fn new(store: Store) -> Result<Self, StoreError> {
        store.with_sync(|c| Ok(c.execute_batch(SCHEMA)?))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("ztpd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StoreError::Task(format!("webhook HTTP client: {e}")))?;
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
    ) -> Result<i64, StoreError> {
        let (tenant, webhook, event) = (tenant.to_owned(), webhook.to_owned(), event.to_owned());
        let body = body.to_string();
        let id = self
            .store
            .with(move |c| {
                let now = now_ms();
                c.execute(
                    "INSERT INTO webhook_outbox (tenant, webhook, event, body, next_ms, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    params![tenant, webhook, event, body, now],
                )?;
                Ok(c.last_insert_rowid())
            })
            .await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Every event of `tenant`, newest first (status and tests).
    pub async fn deliveries(&self, tenant: &str) -> Result<Vec<Delivery>, StoreError> {
        let tenant = tenant.to_owned();
        self.store
            .with(move |c| {
                let mut stmt = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM webhook_outbox WHERE tenant = ?1 ORDER BY id DESC LIMIT 1000"
                ))?;
                let rows = stmt.query_map(params![tenant], delivery_row)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Deliver due events until the process ends. Pending events are due at once after a
    /// restart; within one process a claimed event is hidden for [`CLAIM`].
    pub fn start(&self, directory: Arc<dyn WebhookDirectory>) -> tokio::task::JoinHandle<()> {
        let outbox = self.clone();
        tokio::spawn(async move {
            // After a restart every pending event is due at once: a receiver may have come
            // back meanwhile, and an event claimed by the process that died is not left
            // waiting out its claim.
            let retry_now = outbox
                .store
                .with(|c| {
                    let now = now_ms();
                    Ok(c.execute(
                        "UPDATE webhook_outbox SET next_ms = ?1 WHERE state = 'pending' AND next_ms > ?1",
                        params![now],
                    )?)
                })
                .await;
            match retry_now {
                Ok(n) if n > 0 => {
                    tracing::info!("{n} webhook events pending from before the restart")
                }
                Ok(_) => {}
                Err(e) => tracing::error!("webhook outbox: {e}"),
            }
            let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
            loop {
                let wait = match outbox.claim_due().await {
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

    /// Claim the events that are due; also return when the next pending one is.
    async fn claim_due(&self) -> Result<(Vec<Delivery>, Option<i64>), StoreError> {
        self.store
            .with(|c| {
                let now = now_ms();
                let tx = c.transaction()?;
                let due = {
                    let mut stmt = tx.prepare(&format!(
                        "SELECT {COLUMNS} FROM webhook_outbox
                         WHERE state = 'pending' AND next_ms <= ?1 ORDER BY next_ms LIMIT 64"
                    ))?;
                    let rows = stmt.query_map(params![now], delivery_row)?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                for d in &due {
                    tx.execute(
                        "UPDATE webhook_outbox SET next_ms = ?2 WHERE id = ?1",
                        params![d.id, now + CLAIM.as_millis() as i64],
                    )?;
                }
                let next: Option<i64> = tx.query_row(
                    "SELECT MIN(next_ms) FROM webhook_outbox WHERE state = 'pending'",
                    [],
                    |r| r.get(0),
                )?;
                tx.commit()?;
                Ok((due, next))
            })
            .await
    }

    async fn attempt(&self, directory: &dyn WebhookDirectory, d: Delivery) {
        let attempts = d.attempts + 1;
        let Some(hook) = directory.webhook(&d.tenant, &d.webhook) else {
            let reason = format!(
                "tenant {} has no webhook named {:?} any more",
                d.tenant, d.webhook
            );
            self.finish(d.id, "gave-up", attempts, Some(reason), None)
                .await;
            return;
        };
        let result = self.post(&hook, &d).await;
        match result {
            Ok(()) => {
                tracing::debug!(tenant = %d.tenant, webhook = %d.webhook, event = %d.event, delivery = d.id, attempts, "webhook delivered");
                self.finish(d.id, "delivered", attempts, None, None).await;
            }
            Err(reason) if attempts >= hook.max_attempts => {
                tracing::warn!(tenant = %d.tenant, webhook = %d.webhook, event = %d.event, delivery = d.id, "webhook given up after {attempts} attempts: {reason}");
                self.finish(d.id, "gave-up", attempts, Some(reason), None)
                    .await;
            }
            Err(reason) => {
                let wait = hook
                    .backoff
                    .saturating_mul(1 << (attempts - 1).min(16))
                    .min(MAX_BACKOFF);
                tracing::debug!(tenant = %d.tenant, webhook = %d.webhook, delivery = d.id, attempts, "webhook attempt failed, retrying in {wait:?}: {reason}");
                let next = now_ms() + wait.as_millis() as i64;
                self.finish(d.id, "pending", attempts, Some(reason), Some(next))
                    .await;
            }
        }
    }

    async fn post(&self, hook: &WebhookConfig, d: &Delivery) -> Result<(), String> {
        let timestamp = now_ms() / 1000;
        let signature = sign(
            hook.secret.expose().as_bytes(),
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
            .map_err(|e| crate::netbox::error_chain(&e.without_url()))?;
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
        state: &'static str,
        attempts: u32,
        error: Option<String>,
        next_ms: Option<i64>,
    ) {
        let result = self
            .store
            .with(move |c| {
                let now = now_ms();
                c.execute(
                    "UPDATE webhook_outbox SET state = ?2, attempts = ?3, last_error = ?4,
                         next_ms = COALESCE(?5, next_ms),
                         delivered_ms = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_ms END
                     WHERE id = ?1",
                    params![id, state, attempts, error, next_ms, now],
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::error!(delivery = id, "cannot record a webhook attempt: {e}");
        }
        if state == "pending" {
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

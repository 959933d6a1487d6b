//! Webhook events waiting for delivery (`webhook_outbox`). An event is written here first
//! and sent by a background task, so it survives a receiver being down and ztpd
//! restarting; rows are claimed for a while so one attempt runs at a time.

use rusqlite::params;

use super::{Db, StoreError};
use crate::clock::now_ms;

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

/// Where an attempt left an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    GaveUp,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::GaveUp => "gave-up",
        }
    }
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

#[derive(Debug, Clone)]
pub struct OutboxStore {
    db: Db,
}

impl OutboxStore {
    pub fn new(db: Db) -> Self {
        OutboxStore { db }
    }

    /// Store an event, due now; returns its id (the delivery id receivers deduplicate on).
    pub async fn enqueue(
        &self,
        tenant: &str,
        webhook: &str,
        event: &str,
        body: String,
    ) -> Result<i64, StoreError> {
        let (tenant, webhook, event) = (tenant.to_owned(), webhook.to_owned(), event.to_owned());
        self.db
            .with(move |c| {
                let now = now_ms();
                c.execute(
                    "INSERT INTO webhook_outbox (tenant, webhook, event, body, next_ms, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    params![tenant, webhook, event, body, now],
                )?;
                Ok(c.last_insert_rowid())
            })
            .await
    }

    /// Every event of `tenant`, newest first (status and tests).
    pub async fn deliveries(&self, tenant: &str) -> Result<Vec<Delivery>, StoreError> {
        let tenant = tenant.to_owned();
        self.db
            .with(move |c| {
                let mut stmt = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM webhook_outbox WHERE tenant = ?1 ORDER BY id DESC LIMIT 1000"
                ))?;
                let rows = stmt.query_map(params![tenant], delivery_row)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Make every pending event due now (after a restart: a receiver may be back, and an
    /// event claimed by the process that died must not wait out its claim). Returns how
    /// many.
    pub async fn all_due_now(&self) -> Result<usize, StoreError> {
        self.db
            .with(|c| {
                let now = now_ms();
                Ok(c.execute(
                    "UPDATE webhook_outbox SET next_ms = ?1 WHERE state = 'pending' AND next_ms > ?1",
                    params![now],
                )?)
            })
            .await
    }

    /// Claim up to `limit` due events for `claim_ms`; also return when the next pending one
    /// is due.
    pub async fn claim_due(
        &self,
        limit: usize,
        claim_ms: i64,
    ) -> Result<(Vec<Delivery>, Option<i64>), StoreError> {
        self.db
            .with(move |c| {
                let now = now_ms();
                let tx = c.transaction()?;
                let due = {
                    let mut stmt = tx.prepare(&format!(
                        "SELECT {COLUMNS} FROM webhook_outbox
                         WHERE state = 'pending' AND next_ms <= ?1 ORDER BY next_ms LIMIT ?2"
                    ))?;
                    let rows = stmt.query_map(params![now, limit as i64], delivery_row)?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                for d in &due {
                    tx.execute(
                        "UPDATE webhook_outbox SET next_ms = ?2 WHERE id = ?1",
                        params![d.id, now + claim_ms],
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

    /// Record an attempt's outcome; `next_ms` is when a pending event is due again.
    pub async fn finish(
        &self,
        id: i64,
        state: DeliveryState,
        attempts: u32,
        error: Option<String>,
        next_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        self.db
            .with(move |c| {
                let now = now_ms();
                c.execute(
                    "UPDATE webhook_outbox SET state = ?2, attempts = ?3, last_error = ?4,
                         next_ms = COALESCE(?5, next_ms),
                         delivered_ms = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_ms END
                     WHERE id = ?1",
                    params![id, state.as_str(), attempts, error, next_ms, now],
                )?;
                Ok(())
            })
            .await
    }
}

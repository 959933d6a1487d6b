//! Retention: what ztpd forgets, and when.
//!
//! Finished jobs (done, failed) with their events and claims, audit entries, and webhook
//! events that were delivered or given up on are deleted once older than
//! `[jobs] retention_days`. Running jobs, held jobs, pending webhook events, leases,
//! secrets, host keys and policy versions are never pruned here. SQLite reuses the freed
//! pages, so the file stops growing instead of shrinking.

use rusqlite::params;
use serde::Serialize;

use super::{Db, StoreError};

/// Rows one prune deleted, by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub jobs: usize,
    pub events: usize,
    pub claims: usize,
    pub audit: usize,
    pub outbox: usize,
}

impl Pruned {
    pub fn total(&self) -> usize {
        self.jobs + self.events + self.claims + self.audit + self.outbox
    }
}

/// Deletes what is older than a cutoff.
#[derive(Debug, Clone)]
pub struct Retention {
    db: Db,
}

/// Finished jobs last touched before `?1`.
const OLD_JOBS: &str = "SELECT id FROM jobs WHERE state IN ('done', 'failed') AND updated_ms < ?1";

impl Retention {
    pub fn new(db: Db) -> Self {
        Retention { db }
    }

    /// Delete everything finished before `cutoff_ms` (milliseconds since the epoch), in
    /// one transaction.
    pub async fn prune(&self, cutoff_ms: i64) -> Result<Pruned, StoreError> {
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                let events = tx.execute(
                    &format!("DELETE FROM job_events WHERE job_id IN ({OLD_JOBS})"),
                    params![cutoff_ms],
                )?;
                // A claim goes with its job; a claim that never got one (a refused
                // contender, a resolved side) goes once it is as old.
                let claims = tx.execute(
                    &format!(
                        "DELETE FROM claims WHERE job_id IN ({OLD_JOBS})
                         OR (state = 'resolved' AND created_ms < ?1)
                         OR (job_id IS NULL AND state <> 'bound' AND created_ms < ?1)"
                    ),
                    params![cutoff_ms],
                )?;
                let jobs = tx.execute(
                    "DELETE FROM jobs WHERE state IN ('done', 'failed') AND updated_ms < ?1",
                    params![cutoff_ms],
                )?;
                let audit = tx.execute("DELETE FROM audit_log WHERE at_ms < ?1", params![cutoff_ms])?;
                let outbox = tx.execute(
                    "DELETE FROM webhook_outbox
                     WHERE state IN ('delivered', 'gave-up') AND COALESCE(delivered_ms, next_ms) < ?1",
                    params![cutoff_ms],
                )?;
                tx.commit()?;
                Ok(Pruned {
                    jobs,
                    events,
                    claims,
                    audit,
                    outbox,
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert_job(db: &Db, state: &str, updated_ms: i64) -> i64 {
        db.with_sync(|c| {
            c.execute(
                "INSERT INTO jobs (tenant, device, source_ip, state, created_ms, updated_ms)
                 VALUES ('t', ?1, '127.0.0.1', ?2, ?3, ?3)",
                params![format!("d{updated_ms}{state}"), state, updated_ms],
            )?;
            let id = c.last_insert_rowid();
            c.execute(
                "INSERT INTO job_events (job_id, at_ms, state, message) VALUES (?1, ?2, ?3, 'x')",
                params![id, updated_ms, state],
            )?;
            c.execute(
                "INSERT INTO claims (tenant, serial, source_ip, nonce, state, job_id, created_ms)
                 VALUES ('t', ?1, '127.0.0.1', ?1, 'bound', ?2, ?3)",
                params![format!("n{id}"), id, updated_ms],
            )?;
            Ok(id)
        })
        .unwrap()
    }

    fn count(db: &Db, table: &str) -> i64 {
        db.with_sync(|c| {
            Ok(c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
        })
        .unwrap()
    }

    #[tokio::test]
    async fn old_finished_jobs_go_running_and_recent_ones_stay() {
        let db = Db::in_memory().unwrap();
        insert_job(&db, "done", 1_000);
        insert_job(&db, "failed", 2_000);
        insert_job(&db, "waiting", 1_000); // still running: kept however old
        insert_job(&db, "done", 50_000); // recent: kept
        db.with_sync(|c| {
            for (at, state) in [(1_000, "delivered"), (1_000, "pending"), (60_000, "delivered")] {
                c.execute(
                    "INSERT INTO webhook_outbox (tenant, webhook, event, body, state, next_ms, created_ms, delivered_ms)
                     VALUES ('t', 'w', 'e', '{}', ?2, ?1, ?1, ?1)",
                    params![at, state],
                )?;
            }
            c.execute(
                "INSERT INTO audit_log (at_ms, actor, tenant, action, target, detail) VALUES (1000, 'a', 't', 'x', 'y', '')",
                [],
            )?;
            Ok(())
        })
        .unwrap();

        let pruned = Retention::new(db.clone()).prune(10_000).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                jobs: 2,
                events: 2,
                claims: 2,
                audit: 1,
                outbox: 1
            }
        );
        assert_eq!(count(&db, "jobs"), 2);
        assert_eq!(count(&db, "job_events"), 2);
        assert_eq!(count(&db, "claims"), 2);
        assert_eq!(count(&db, "webhook_outbox"), 2);
        assert_eq!(count(&db, "audit_log"), 0);
    }
}

//! Call-back claims: which address and token may speak for a serial.
//!
//! The first accepted call-back for a serial *binds* it: a `bound` row with the address
//! it came from and its token's nonce (each nonce claims once). A later call-back for the
//! same serial from another address or with another token is a *contender*: it is stored,
//! refused (409), and the serial is in conflict until an operator approves one side or
//! resets the device. Jobs of a serial in conflict hold before they reach the device.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::{Db, StoreError};
use crate::clock::now_ms;

/// A claim as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claim {
    pub id: i64,
    pub serial: String,
    pub source_ip: String,
    pub nonce: String,
    /// `bound`, `contender`, or `resolved`.
    pub state: String,
    pub job_id: Option<i64>,
    pub created_ms: i64,
    /// A contender's request (JSON), to start its job if an operator approves it.
    #[serde(skip)]
    pub request: Option<String>,
}

/// What a call-back's claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The serial is now bound to this call-back: start its job and record it with
    /// [`ClaimStore::set_job`].
    New { claim: i64 },
    /// The same call-back again (same token, same address): its job.
    Again { job: Option<i64> },
    /// The token's nonce already claimed another serial.
    NonceUsed,
    /// The serial is bound to another address or token: this one is stored as a
    /// contender and the serial is in conflict.
    Conflict { bound_to: String },
}

/// Whether a job may go on reaching its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Its claim is bound and uncontested (or it has no claim: a pull).
    Clear,
    /// Its serial is in conflict: hold.
    Contested,
    /// Its claim lost: an operator approved another one or reset the device.
    Lost,
}

const COLUMNS: &str = "id, serial, source_ip, nonce, state, job_id, created_ms, request";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Claim> {
    Ok(Claim {
        id: r.get(0)?,
        serial: r.get(1)?,
        source_ip: r.get(2)?,
        nonce: r.get(3)?,
        state: r.get(4)?,
        job_id: r.get(5)?,
        created_ms: r.get(6)?,
        request: r.get(7)?,
    })
}

fn bound(tx: &Transaction<'_>, tenant: &str, serial: &str) -> rusqlite::Result<Option<Claim>> {
    tx.query_row(
        &format!(
            "SELECT {COLUMNS} FROM claims WHERE tenant = ?1 AND serial = ?2 AND state = 'bound'"
        ),
        params![tenant, serial],
        row,
    )
    .optional()
}

#[derive(Debug, Clone)]
pub struct ClaimStore {
    db: Db,
}

/// A new claim.
#[derive(Debug, Clone)]
pub struct NewClaim {
    pub tenant: String,
    pub serial: String,
    pub source_ip: String,
    pub nonce: String,
    /// The call-back request (JSON), kept for a contender.
    pub request: String,
    /// A new token from the bound address may claim again once the bound job finished.
    pub reclaim_same_address: bool,
}

impl ClaimStore {
    pub fn new(db: Db) -> Self {
        ClaimStore { db }
    }

    pub async fn claim(&self, c: NewClaim) -> Result<Claimed, StoreError> {
        self.db
            .with(move |conn| {
                let tx = conn.transaction()?;
                let by_nonce: Option<Claim> = tx
                    .query_row(
                        &format!("SELECT {COLUMNS} FROM claims WHERE tenant = ?1 AND nonce = ?2"),
                        params![c.tenant, c.nonce],
                        row,
                    )
                    .optional()?;
                if let Some(prev) = by_nonce {
                    let same = prev.serial == c.serial && prev.source_ip == c.source_ip;
                    return Ok(if same && prev.state == "bound" {
                        Claimed::Again { job: prev.job_id }
                    } else if same {
                        Claimed::Conflict {
                            bound_to: bound(&tx, &c.tenant, &c.serial)?
                                .map(|b| b.source_ip)
                                .unwrap_or_default(),
                        }
                    } else {
                        Claimed::NonceUsed
                    });
                }
                let now = now_ms();
                if let Some(b) = bound(&tx, &c.tenant, &c.serial)? {
                    let finished: bool = match b.job_id {
                        Some(job) => tx
                            .query_row(
                                "SELECT state IN ('done', 'failed') FROM jobs WHERE id = ?1",
                                params![job],
                                |r| r.get(0),
                            )
                            .optional()?
                            .unwrap_or(true),
                        None => false,
                    };
                    if !(c.reclaim_same_address && finished && b.source_ip == c.source_ip) {
                        tx.execute(
                            "INSERT INTO claims (tenant, serial, source_ip, nonce, state, request, created_ms)
                             VALUES (?1, ?2, ?3, ?4, 'contender', ?5, ?6)",
                            params![c.tenant, c.serial, c.source_ip, c.nonce, c.request, now],
                        )?;
                        tx.commit()?;
                        return Ok(Claimed::Conflict {
                            bound_to: b.source_ip,
                        });
                    }
                    tx.execute(
                        "UPDATE claims SET state = 'resolved' WHERE id = ?1",
                        params![b.id],
                    )?;
                }
                tx.execute(
                    "INSERT INTO claims (tenant, serial, source_ip, nonce, state, created_ms)
                     VALUES (?1, ?2, ?3, ?4, 'bound', ?5)",
                    params![c.tenant, c.serial, c.source_ip, c.nonce, now],
                )?;
                let claim = tx.last_insert_rowid();
                tx.commit()?;
                Ok(Claimed::New { claim })
            })
            .await
    }

    /// Record the job a bound claim started.
    pub async fn set_job(&self, claim: i64, job: i64) -> Result<(), StoreError> {
        self.db
            .with(move |c| {
                c.execute(
                    "UPDATE claims SET job_id = ?2 WHERE id = ?1",
                    params![claim, job],
                )?;
                Ok(())
            })
            .await
    }

    /// Forget a claim whose job could not be started.
    pub async fn drop_claim(&self, claim: i64) -> Result<(), StoreError> {
        self.db
            .with(move |c| {
                c.execute("DELETE FROM claims WHERE id = ?1", params![claim])?;
                Ok(())
            })
            .await
    }

    /// Where a job with token nonce `nonce` stands.
    pub async fn standing(
        &self,
        tenant: &str,
        serial: &str,
        nonce: &str,
    ) -> Result<Standing, StoreError> {
        let (tenant, serial, nonce) = (tenant.to_owned(), serial.to_owned(), nonce.to_owned());
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                let state: Option<String> = tx
                    .query_row(
                        "SELECT state FROM claims WHERE tenant = ?1 AND nonce = ?2",
                        params![tenant, nonce],
                        |r| r.get(0),
                    )
                    .optional()?;
                if state.as_deref() != Some("bound") {
                    return Ok(Standing::Lost);
                }
                let contenders: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM claims WHERE tenant = ?1 AND serial = ?2 AND state = 'contender'",
                    params![tenant, serial],
                    |r| r.get(0),
                )?;
                Ok(if contenders > 0 {
                    Standing::Contested
                } else {
                    Standing::Clear
                })
            })
            .await
    }

    /// Every unresolved claim of a serial (bound first).
    pub async fn of_serial(&self, tenant: &str, serial: &str) -> Result<Vec<Claim>, StoreError> {
        let (tenant, serial) = (tenant.to_owned(), serial.to_owned());
        self.db
            .with(move |c| {
                let mut stmt = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM claims WHERE tenant = ?1 AND serial = ?2
                     AND state IN ('bound', 'contender') ORDER BY state = 'contender', id"
                ))?;
                let rows = stmt.query_map(params![tenant, serial], row)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// An operator picks claim `winner` of `serial`: it becomes the bound claim, every other
    /// unresolved claim is resolved. Returns the claims that lost.
    pub async fn approve(
        &self,
        tenant: &str,
        serial: &str,
        winner: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let (tenant, serial) = (tenant.to_owned(), serial.to_owned());
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                let losers = {
                    let mut stmt = tx.prepare(&format!(
                        "SELECT {COLUMNS} FROM claims WHERE tenant = ?1 AND serial = ?2
                         AND state IN ('bound', 'contender') AND id != ?3"
                    ))?;
                    let rows = stmt.query_map(params![tenant, serial, winner], row)?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                tx.execute(
                    "UPDATE claims SET state = 'resolved' WHERE tenant = ?1 AND serial = ?2
                     AND state IN ('bound', 'contender') AND id != ?3",
                    params![tenant, serial, winner],
                )?;
                tx.execute(
                    "UPDATE claims SET state = 'bound' WHERE id = ?1",
                    params![winner],
                )?;
                tx.commit()?;
                Ok(losers)
            })
            .await
    }

    /// Forget every unresolved claim of `serial`: the device must call back again.
    /// Returns them.
    pub async fn reset(&self, tenant: &str, serial: &str) -> Result<Vec<Claim>, StoreError> {
        let (tenant, serial) = (tenant.to_owned(), serial.to_owned());
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                let all = {
                    let mut stmt = tx.prepare(&format!(
                        "SELECT {COLUMNS} FROM claims WHERE tenant = ?1 AND serial = ?2
                         AND state IN ('bound', 'contender')"
                    ))?;
                    let rows = stmt.query_map(params![tenant, serial], row)?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                tx.execute(
                    "UPDATE claims SET state = 'resolved' WHERE tenant = ?1 AND serial = ?2
                     AND state IN ('bound', 'contender')",
                    params![tenant, serial],
                )?;
                tx.commit()?;
                Ok(all)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(serial: &str, ip: &str, nonce: &str) -> NewClaim {
        NewClaim {
            tenant: "t".into(),
            serial: serial.into(),
            source_ip: ip.into(),
            nonce: nonce.into(),
            request: "{}".into(),
            reclaim_same_address: false,
        }
    }

    #[tokio::test]
    async fn first_claim_binds_later_ones_contend_and_an_operator_decides() {
        let s = ClaimStore::new(Db::in_memory().unwrap());
        let Claimed::New { claim: first } = s.claim(claim("S1", "A", "n1")).await.unwrap() else {
            panic!("first claim binds")
        };
        s.set_job(first, 7).await.unwrap();
        assert_eq!(
            s.claim(claim("S1", "A", "n1")).await.unwrap(),
            Claimed::Again { job: Some(7) }
        );
        assert_eq!(
            s.claim(claim("S2", "A", "n1")).await.unwrap(),
            Claimed::NonceUsed
        );
        assert_eq!(s.standing("t", "S1", "n1").await.unwrap(), Standing::Clear);
        assert_eq!(
            s.claim(claim("S1", "B", "n2")).await.unwrap(),
            Claimed::Conflict {
                bound_to: "A".into()
            }
        );
        assert_eq!(
            s.standing("t", "S1", "n1").await.unwrap(),
            Standing::Contested
        );
        let claims = s.of_serial("t", "S1").await.unwrap();
        assert_eq!(claims.len(), 2);
        let contender = claims.iter().find(|c| c.source_ip == "B").unwrap().id;
        let losers = s.approve("t", "S1", contender).await.unwrap();
        assert_eq!(losers.iter().map(|c| c.id).collect::<Vec<_>>(), vec![first]);
        assert_eq!(s.standing("t", "S1", "n1").await.unwrap(), Standing::Lost);
        assert_eq!(s.standing("t", "S1", "n2").await.unwrap(), Standing::Clear);
        assert_eq!(s.reset("t", "S1").await.unwrap().len(), 1);
        assert!(matches!(
            s.claim(claim("S1", "C", "n3")).await.unwrap(),
            Claimed::New { .. }
        ));
    }
}

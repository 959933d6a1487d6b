//! The built-in server's leases, in the `dhcp_leases` table of the database jobs use, so
//! they survive a restart and the status API can show which address a device got.
//!
//! A row is an offer (held briefly so two clients are not offered one address), a bound
//! lease, or an address a client declined (someone else answers ARP for it), parked
//! until it expires. A unique index on the address makes double allocation impossible
//! even if two requests race.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Db, StoreError};
use crate::clock::now_ms;

/// How long an offer holds its address for the client's REQUEST. Clients request within
/// a second; a short hold means DISCOVERs from spoofed MACs tie up the pool only briefly.
pub const OFFER_HOLD_MS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseState {
    Offered,
    Bound,
    Declined,
}

impl LeaseState {
    fn as_str(self) -> &'static str {
        match self {
            LeaseState::Offered => "offered",
            LeaseState::Bound => "bound",
            LeaseState::Declined => "declined",
        }
    }
}

/// One lease as the status API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    pub tenant: String,
    pub subnet: String,
    /// Client MAC, lower-case colon form (`declined:<ip>` for a parked address).
    pub mac: String,
    pub ip: Ipv4Addr,
    pub state: LeaseState,
    pub hostname: Option<String>,
    pub vendor_class: Option<String>,
    /// Option 67 the client was given, if any.
    pub bootfile: Option<String>,
    /// When the client was last offered or acknowledged this address.
    pub leased_ms: i64,
    pub expires_ms: i64,
}

fn row_to_lease(r: &Row<'_>) -> rusqlite::Result<Lease> {
    let ip: String = r.get(3)?;
    let state: String = r.get(4)?;
    Ok(Lease {
        tenant: r.get(0)?,
        subnet: r.get(1)?,
        mac: r.get(2)?,
        ip: ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
        state: match state.as_str() {
            "bound" => LeaseState::Bound,
            "declined" => LeaseState::Declined,
            _ => LeaseState::Offered,
        },
        hostname: r.get(5)?,
        vendor_class: r.get(6)?,
        bootfile: r.get(7)?,
        leased_ms: r.get(8)?,
        expires_ms: r.get(9)?,
    })
}

const COLUMNS: &str =
    "tenant, subnet, mac, ip, state, hostname, vendor_class, bootfile, leased_ms, expires_ms";

/// Where and for whom an address is wanted.
#[derive(Debug, Clone)]
pub struct Pool {
    pub tenant: String,
    /// The subnet, as text (`192.0.2.0/24`): the key leases are kept under.
    pub subnet: String,
    pub range: (Ipv4Addr, Ipv4Addr),
    /// Fixed addresses of other devices: never handed out dynamically.
    pub reserved: HashSet<Ipv4Addr>,
}

/// What the client said about itself, kept with the lease.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub hostname: Option<String>,
    pub vendor_class: Option<String>,
    pub bootfile: Option<String>,
}

/// The lease table on the shared database; cheap to clone.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    db: Db,
    /// Per subnet: how many times a client found the pool full since start.
    pool_full: Arc<Mutex<BTreeMap<String, u64>>>,
    /// How long an offer holds its address ([`OFFER_HOLD_MS`]).
    offer_hold_ms: i64,
}

impl LeaseStore {
    pub fn new(db: Db) -> Self {
        LeaseStore {
            db,
            pool_full: Arc::default(),
            offer_hold_ms: OFFER_HOLD_MS,
        }
    }

    /// The same store with offers held for `ms` (tests).
    pub fn with_offer_hold_ms(mut self, ms: i64) -> Self {
        self.offer_hold_ms = ms;
        self
    }

    /// Count a client turned away because `subnet`'s pool is full.
    pub fn note_pool_full(&self, subnet: &str) {
        if let Ok(mut m) = self.pool_full.lock() {
            *m.entry(subnet.to_owned()).or_default() += 1;
        }
    }

    /// Pool-full counts per subnet since start.
    pub fn pool_full_counts(&self) -> BTreeMap<String, u64> {
        self.pool_full.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Pick an address for `mac` and hold it as an offer: its fixed address; else the
    /// address it already has; else the one it asks for, if free; else the lowest free
    /// address of the range. `None`: the pool is full.
    pub async fn offer(
        &self,
        pool: Pool,
        mac: String,
        fixed: Option<Ipv4Addr>,
        requested: Option<Ipv4Addr>,
        client: ClientInfo,
    ) -> Result<Option<Ipv4Addr>, StoreError> {
        let hold = self.offer_hold_ms;
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                let now = now_ms();
                let current: Option<(String, String, i64)> = tx
                    .query_row(
                        "SELECT ip, state, expires_ms FROM dhcp_leases WHERE subnet = ?1 AND mac = ?2",
                        params![pool.subnet, mac],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let current_ip = current
                    .as_ref()
                    .and_then(|(ip, _, _)| ip.parse::<Ipv4Addr>().ok());
                let usable = |ip: Ipv4Addr| in_range(&pool, ip) && !pool.reserved.contains(&ip);
                let mut candidates: Vec<Ipv4Addr> = Vec::new();
                candidates.extend(fixed);
                if fixed.is_none() {
                    candidates.extend(current_ip.filter(|ip| usable(*ip)));
                    candidates.extend(requested.filter(|ip| usable(*ip)));
                }
                let mut chosen = None;
                for ip in candidates {
                    if is_free(&tx, ip, &mac, now)? {
                        chosen = Some(ip);
                        break;
                    }
                }
                if chosen.is_none() && fixed.is_none() {
                    let taken = taken(&tx, &pool.subnet, &mac, now)?;
                    chosen = (u32::from(pool.range.0)..=u32::from(pool.range.1))
                        .map(Ipv4Addr::from)
                        .find(|ip| !taken.contains(ip) && !pool.reserved.contains(ip));
                }
                let Some(ip) = chosen else {
                    return Ok(None);
                };
                // A bound lease stays bound (and keeps its expiry) when the client
                // merely asks again; anything else becomes a short-lived offer.
                let keep_bound = current.as_ref().is_some_and(|(cur, state, exp)| {
                    *cur == ip.to_string() && state == "bound" && *exp > now
                });
                if !keep_bound {
                    put(
                        &tx,
                        &pool,
                        &mac,
                        ip,
                        LeaseState::Offered,
                        &client,
                        now,
                        now + hold,
                    )?;
                }
                tx.commit()?;
                Ok(Some(ip))
            })
            .await
    }

    /// Acknowledge `ip` for `mac` for `lease_s` seconds, if it may have it: it is the
    /// client's fixed address, or in the range and not reserved, and no other client
    /// holds it. `false`: the client must be refused (NAK).
    pub async fn bind(
        &self,
        pool: Pool,
        mac: String,
        ip: Ipv4Addr,
        fixed: Option<Ipv4Addr>,
        lease_s: u32,
        client: ClientInfo,
    ) -> Result<bool, StoreError> {
        self.db
            .with(move |c| {
                let allowed = match fixed {
                    Some(f) => f == ip,
                    None => in_range(&pool, ip) && !pool.reserved.contains(&ip),
                };
                if !allowed {
                    return Ok(false);
                }
                let tx = c.transaction()?;
                let now = now_ms();
                if !is_free(&tx, ip, &mac, now)? {
                    return Ok(false);
                }
                put(
                    &tx,
                    &pool,
                    &mac,
                    ip,
                    LeaseState::Bound,
                    &client,
                    now,
                    now + i64::from(lease_s) * 1000,
                )?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    /// The client gives its address back.
    pub async fn release(
        &self,
        subnet: String,
        mac: String,
        ip: Ipv4Addr,
    ) -> Result<bool, StoreError> {
        self.db
            .with(move |c| {
                let n = c.execute(
                    "DELETE FROM dhcp_leases WHERE subnet = ?1 AND mac = ?2 AND ip = ?3",
                    params![subnet, mac, ip.to_string()],
                )?;
                Ok(n > 0)
            })
            .await
    }

    /// The client found `ip` in use: drop its lease and park the address for `hold_s`.
    pub async fn decline(
        &self,
        pool: Pool,
        mac: String,
        ip: Ipv4Addr,
        hold_s: u32,
    ) -> Result<(), StoreError> {
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                let n = tx.execute(
                    "DELETE FROM dhcp_leases WHERE subnet = ?1 AND mac = ?2 AND ip = ?3",
                    params![pool.subnet, mac, ip.to_string()],
                )?;
                if n > 0 {
                    let now = now_ms();
                    put(
                        &tx,
                        &pool,
                        &format!("declined:{ip}"),
                        ip,
                        LeaseState::Declined,
                        &ClientInfo::default(),
                        now,
                        now + i64::from(hold_s) * 1000,
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// The newest lease of a device, by MAC (any form) or by address.
    pub async fn find(
        &self,
        mac: Option<String>,
        ip: Option<String>,
    ) -> Result<Option<Lease>, StoreError> {
        self.db
            .with(move |c| {
                let sql = format!(
                    "SELECT {COLUMNS} FROM dhcp_leases WHERE state != 'declined' AND (mac = ?1 OR ip = ?2)
                     ORDER BY leased_ms DESC LIMIT 1"
                );
                Ok(c.query_row(&sql, params![mac, ip], row_to_lease).optional()?)
            })
            .await
    }

    /// Every lease, newest first.
    pub async fn all(&self) -> Result<Vec<Lease>, StoreError> {
        self.db
            .with(move |c| {
                let sql = format!("SELECT {COLUMNS} FROM dhcp_leases ORDER BY leased_ms DESC");
                let mut stmt = c.prepare(&sql)?;
                let rows = stmt.query_map([], row_to_lease)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }
}

fn in_range(pool: &Pool, ip: Ipv4Addr) -> bool {
    (pool.range.0..=pool.range.1).contains(&ip)
}

/// Nobody but `mac` holds `ip` (expired rows do not count).
fn is_free(c: &Connection, ip: Ipv4Addr, mac: &str, now: i64) -> Result<bool, StoreError> {
    let holder: Option<(String, i64)> = c
        .query_row(
            "SELECT mac, expires_ms FROM dhcp_leases WHERE ip = ?1",
            params![ip.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match holder {
        None => true,
        Some((m, exp)) => m == mac || exp <= now,
    })
}

/// Addresses of `subnet` others hold now.
fn taken(
    c: &Connection,
    subnet: &str,
    mac: &str,
    now: i64,
) -> Result<HashSet<Ipv4Addr>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT ip FROM dhcp_leases WHERE subnet = ?1 AND mac != ?2 AND expires_ms > ?3",
    )?;
    let rows = stmt.query_map(params![subnet, mac, now], |r| r.get::<_, String>(0))?;
    let mut out = HashSet::new();
    for ip in rows {
        if let Ok(ip) = ip?.parse() {
            out.insert(ip);
        }
    }
    Ok(out)
}

/// Write `mac`'s row, taking `ip` over from any expired holder.
#[allow(clippy::too_many_arguments)]
fn put(
    c: &Connection,
    pool: &Pool,
    mac: &str,
    ip: Ipv4Addr,
    state: LeaseState,
    client: &ClientInfo,
    now: i64,
    expires_ms: i64,
) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM dhcp_leases WHERE ip = ?1 AND mac != ?2",
        params![ip.to_string(), mac],
    )?;
    c.execute(
        "INSERT INTO dhcp_leases (tenant, subnet, mac, ip, state, hostname, vendor_class, bootfile, leased_ms, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (subnet, mac) DO UPDATE SET
             ip = excluded.ip, state = excluded.state, hostname = excluded.hostname,
             vendor_class = excluded.vendor_class, bootfile = excluded.bootfile,
             leased_ms = excluded.leased_ms, expires_ms = excluded.expires_ms",
        params![
            pool.tenant,
            pool.subnet,
            mac,
            ip.to_string(),
            state.as_str(),
            client.hostname,
            client.vendor_class,
            client.bootfile,
            now,
            expires_ms
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(last: u8) -> Pool {
        Pool {
            tenant: "lab".into(),
            subnet: "192.0.2.0/24".into(),
            range: (Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, last)),
            reserved: [Ipv4Addr::new(192, 0, 2, 11)].into_iter().collect(),
        }
    }

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, last)
    }

    #[tokio::test]
    async fn offers_bind_and_pool_exhaustion() {
        let s = LeaseStore::new(Db::in_memory().unwrap());
        let info = ClientInfo::default;
        let a = "aa:00:00:00:00:01".to_owned();
        let b = "aa:00:00:00:00:02".to_owned();
        let c = "aa:00:00:00:00:03".to_owned();
        // .11 is someone's fixed address: skipped.
        assert_eq!(
            s.offer(pool(12), a.clone(), None, None, info())
                .await
                .unwrap(),
            Some(ip(10))
        );
        assert_eq!(
            s.offer(pool(12), b.clone(), None, None, info())
                .await
                .unwrap(),
            Some(ip(12))
        );
        // Asking again gets the same address, not a new one.
        assert_eq!(
            s.offer(pool(12), a.clone(), None, None, info())
                .await
                .unwrap(),
            Some(ip(10))
        );
        assert_eq!(
            s.offer(pool(12), c.clone(), None, None, info())
                .await
                .unwrap(),
            None,
            "full"
        );
        // A fixed address is offered even outside the range.
        assert_eq!(
            s.offer(pool(12), c.clone(), Some(ip(50)), None, info())
                .await
                .unwrap(),
            Some(ip(50))
        );
        assert!(
            s.bind(pool(12), a.clone(), ip(10), None, 3600, info())
                .await
                .unwrap()
        );
        assert!(
            !s.bind(pool(12), a.clone(), ip(12), None, 3600, info())
                .await
                .unwrap(),
            "b holds .12"
        );
        assert!(
            !s.bind(pool(12), a.clone(), ip(11), None, 3600, info())
                .await
                .unwrap(),
            "reserved"
        );
        assert!(
            !s.bind(pool(12), a.clone(), ip(99), None, 3600, info())
                .await
                .unwrap(),
            "outside"
        );
        let lease = s.find(Some(a.clone()), None).await.unwrap().unwrap();
        assert_eq!((lease.ip, lease.state), (ip(10), LeaseState::Bound));
        assert!(
            s.release("192.0.2.0/24".into(), a.clone(), ip(10))
                .await
                .unwrap()
        );
        assert_eq!(s.find(Some(a), None).await.unwrap(), None);
        s.note_pool_full("192.0.2.0/24");
        assert_eq!(s.pool_full_counts().get("192.0.2.0/24"), Some(&1));
    }

    #[tokio::test]
    async fn a_declined_address_is_parked() {
        let s = LeaseStore::new(Db::in_memory().unwrap());
        let a = "aa:00:00:00:00:01".to_owned();
        assert_eq!(
            s.offer(
                pool(13),
                a.clone(),
                None,
                Some(ip(13)),
                ClientInfo::default()
            )
            .await
            .unwrap(),
            Some(ip(13)),
            "the requested address when free"
        );
        assert!(
            s.bind(pool(13), a.clone(), ip(13), None, 60, ClientInfo::default())
                .await
                .unwrap()
        );
        s.decline(pool(13), a.clone(), ip(13), 600).await.unwrap();
        assert_eq!(
            s.offer(pool(13), a, None, Some(ip(13)), ClientInfo::default())
                .await
                .unwrap(),
            Some(ip(10)),
            "not the declined one"
        );
    }
}

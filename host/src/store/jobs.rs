//! Provisioning jobs and their events. One row per job; a unique index on the running
//! jobs of a device makes "at most one running job per device" hold even if two
//! call-backs race.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{Db, StoreError};
use crate::clock::now_ms;
use crate::model::DeviceRequest;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Call-back accepted; an operator must approve the device first
    /// (`callback.approval = "manual"`).
    PendingApproval,
    /// Call-back accepted; the policy has not decided yet.
    Received,
    /// The policy returned a plan; steps not started or between steps.
    Planned,
    /// Waiting for the device to finish booting.
    Waiting,
    /// Pushing configuration over SSH.
    Pushing,
    /// Telling other systems: monitoring, the source of truth, webhooks.
    Registering,
    /// Another call-back claimed the device's serial: held before it reaches the device
    /// until an operator approves one side or resets the device.
    Conflict,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::PendingApproval => "pending-approval",
            JobState::Received => "received",
            JobState::Planned => "planned",
            JobState::Waiting => "waiting",
            JobState::Pushing => "pushing",
            JobState::Registering => "registering",
            JobState::Conflict => "conflict",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending-approval" => JobState::PendingApproval,
            "received" => JobState::Received,
            "planned" => JobState::Planned,
            "waiting" => JobState::Waiting,
            "pushing" => JobState::Pushing,
            "registering" => JobState::Registering,
            "conflict" => JobState::Conflict,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed)
    }
}

/// One line of a job's event log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobEvent {
    /// Unix time in milliseconds.
    pub at_ms: i64,
    pub state: JobState,
    pub message: String,
}

/// A provisioning job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub tenant: String,
    /// The device's key: serial, else MAC, else source address.
    pub device: String,
    pub serial: Option<String>,
    pub mac: Option<String>,
    pub source_ip: String,
    pub model: Option<String>,
    pub state: JobState,
    /// Index of the next plan step to run.
    pub step: usize,
    pub plan: Option<crate::model::Plan>,
    /// The configuration rendered by the plan's render step.
    pub config: Option<String>,
    /// Content hash of the policy that decided the plan.
    pub policy_version: Option<String>,
    pub error: Option<String>,
    /// When a wait step ends (Unix ms), so a restart waits only what is left.
    pub wait_until_ms: Option<i64>,
    /// Completed SSH pushes (a restarted job never counts one twice).
    pub pushes: i64,
    /// SSH session transcript of the last push, secrets masked.
    pub transcript: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The call-back token's nonce: what the job's claim and one-time password are
    /// bound to (none for a plan a pull request returned).
    #[serde(skip)]
    pub nonce: Option<String>,
    #[serde(skip)]
    pub request: Option<crate::model::DeviceRequest>,
}

/// What to create a job from.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub request: DeviceRequest,
    /// A plan the policy already returned (a pull request), or none (a call-back: the
    /// runner asks the policy).
    pub plan: Option<(crate::model::Plan, String)>,
    /// The call-back token's nonce.
    pub nonce: Option<String>,
    /// Wait for an operator's approval before asking the policy.
    pub pending_approval: bool,
}

/// Header bytes kept with a stored request (the identity headers come first in size);
/// a job needs the request to ask the policy again, not every byte a device sent.
pub const MAX_STORED_HEADERS: usize = 1 << 10;
/// Body bytes kept with a stored request; a longer body is dropped (call-back bodies are a
/// few hundred bytes of JSON).
pub const MAX_STORED_BODY: usize = 1 << 10;
/// Events kept per job; after that one event says the rest were not recorded.
pub const MAX_EVENTS: i64 = 200;

/// `r` cut to what a job keeps: headers and query parameters up to
/// [`MAX_STORED_HEADERS`] bytes each, the body if it is at most [`MAX_STORED_BODY`].
pub fn bounded(r: &DeviceRequest) -> DeviceRequest {
    let within = |pairs: &[(String, String)]| {
        let mut kept = 0;
        pairs
            .iter()
            .filter(|(k, v)| {
                kept += k.len() + v.len();
                kept <= MAX_STORED_HEADERS
            })
            .cloned()
            .collect()
    };
    DeviceRequest {
        headers: within(&r.headers),
        query: within(&r.query),
        body: if r.body.len() <= MAX_STORED_BODY {
            r.body.clone()
        } else {
            Default::default()
        },
        ..r.clone()
    }
}

/// The job tables, on the shared database.
#[derive(Clone, Debug)]
pub struct JobStore {
    db: Db,
}

const COLUMNS: &str =
    "id, tenant, device, serial, mac, source_ip, model, state, step, plan, config,
    policy_version, error, wait_until_ms, pushes, transcript, request, created_ms, updated_ms,
    nonce";

fn row_to_job(r: &Row<'_>) -> rusqlite::Result<Job> {
    let state: String = r.get(7)?;
    let plan: Option<String> = r.get(9)?;
    let request: Option<String> = r.get(16)?;
    Ok(Job {
        id: r.get(0)?,
        tenant: r.get(1)?,
        device: r.get(2)?,
        serial: r.get(3)?,
        mac: r.get(4)?,
        source_ip: r.get(5)?,
        model: r.get(6)?,
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        step: r.get::<_, i64>(8)? as usize,
        plan: plan.and_then(|p| serde_json::from_str(&p).ok()),
        config: r.get(10)?,
        policy_version: r.get(11)?,
        error: r.get(12)?,
        wait_until_ms: r.get(13)?,
        pushes: r.get(14)?,
        transcript: r.get(15)?,
        request: request.and_then(|q| serde_json::from_str(&q).ok()),
        created_ms: r.get(17)?,
        updated_ms: r.get(18)?,
        nonce: r.get(19)?,
    })
}

/// The outcome of trying to create a job.
#[derive(Debug)]
pub enum Created {
    New(Box<Job>),
    /// The device already has a running job.
    Running(i64),
}

impl JobStore {
    pub fn new(db: Db) -> Self {
        JobStore { db }
    }

    /// Insert a job unless the device already has a running one.
    pub async fn create(&self, new: NewJob) -> Result<Created, StoreError> {
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                let r = &new.request;
                let device = device_key(r);
                let running: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM jobs WHERE tenant = ?1 AND device = ?2
                         AND state NOT IN ('done', 'failed')",
                        params![r.tenant, device],
                        |row| row.get(0),
                    )
                    .optional()?;
                if let Some(id) = running {
                    return Ok(Created::Running(id));
                }
                let now = now_ms();
                let (state, plan, version) = match &new.plan {
                    Some((plan, version)) => (
                        JobState::Planned,
                        serde_json::to_string(plan).ok(),
                        Some(version.clone()),
                    ),
                    None if new.pending_approval => (JobState::PendingApproval, None, None),
                    None => (JobState::Received, None, None),
                };
                tx.execute(
                    "INSERT INTO jobs (tenant, device, serial, mac, source_ip, model, state, plan,
                        policy_version, request, created_ms, updated_ms, nonce)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
                    params![
                        r.tenant,
                        device,
                        r.identity.serial,
                        r.identity.mac.map(|m| m.to_string()),
                        r.identity.source_ip.to_string(),
                        r.identity.model,
                        state.as_str(),
                        plan,
                        version,
                        serde_json::to_string(&bounded(r)).ok(),
                        now,
                        new.nonce
                    ],
                )?;
                let id = tx.last_insert_rowid();
                let message = match state {
                    JobState::Received => {
                        format!("call-back from {} accepted", r.identity.source_ip)
                    }
                    JobState::PendingApproval => format!(
                        "call-back from {} accepted; waiting for an operator's approval",
                        r.identity.source_ip
                    ),
                    _ => format!("plan from {} accepted", r.identity.source_ip),
                };
                add_event(&tx, id, state, &message)?;
                let job = tx.query_row(
                    &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                    params![id],
                    row_to_job,
                )?;
                tx.commit()?;
                Ok(Created::New(Box::new(job)))
            })
            .await
    }

    /// Record a state change with an event; `update` sets other columns in the same
    /// transaction.
    pub async fn transition(
        &self,
        id: i64,
        state: JobState,
        message: impl Into<String>,
        update: Update,
    ) -> Result<(), StoreError> {
        let message = message.into();
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                tx.execute(
                    "UPDATE jobs SET state = ?2, updated_ms = ?3 WHERE id = ?1",
                    params![id, state.as_str(), now_ms()],
                )?;
                update.apply(&tx, id)?;
                add_event(&tx, id, state, &message)?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// An operator approved a job waiting in `pending-approval`: it goes on. False if the
    /// job was not waiting.
    pub async fn approve(&self, id: i64, actor: &str) -> Result<bool, StoreError> {
        let message = format!("approved by {actor}");
        self.db
            .with(move |c| {
                let tx = c.transaction()?;
                let n = tx.execute(
                    "UPDATE jobs SET state = 'received', updated_ms = ?2 WHERE id = ?1 AND state = 'pending-approval'",
                    params![id, now_ms()],
                )?;
                if n > 0 {
                    add_event(&tx, id, JobState::Received, &message)?;
                }
                tx.commit()?;
                Ok(n > 0)
            })
            .await
    }

    pub async fn get(&self, id: i64) -> Result<Option<Job>, StoreError> {
        self.db
            .with(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                    params![id],
                    row_to_job,
                )
                .optional()?)
            })
            .await
    }

    /// Jobs that were running when ztpd stopped.
    pub async fn unfinished(&self) -> Result<Vec<Job>, StoreError> {
        self.db
            .with(|c| {
                let mut stmt = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM jobs WHERE state NOT IN ('done', 'failed') ORDER BY id"
                ))?;
                let jobs = stmt.query_map([], row_to_job)?.collect::<Result<_, _>>()?;
                Ok(jobs)
            })
            .await
    }

    /// The newest job of every device, optionally of one tenant.
    pub async fn latest_per_device(&self, tenant: Option<String>) -> Result<Vec<Job>, StoreError> {
        self.db
            .with(move |c| {
                let mut stmt = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM jobs WHERE id IN
                        (SELECT MAX(id) FROM jobs WHERE ?1 IS NULL OR tenant = ?1 GROUP BY tenant, device)
                     ORDER BY tenant, device"
                ))?;
                let jobs = stmt.query_map(params![tenant], row_to_job)?.collect::<Result<_, _>>()?;
                Ok(jobs)
            })
            .await
    }

    /// The newest job of a device (matched by its key or serial), optionally of one tenant.
    pub async fn latest_for(
        &self,
        device: String,
        tenant: Option<String>,
    ) -> Result<Option<Job>, StoreError> {
        self.db
            .with(move |c| {
                Ok(c.query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM jobs WHERE (device = ?1 OR serial = ?1)
                         AND (?2 IS NULL OR tenant = ?2) ORDER BY id DESC LIMIT 1"
                    ),
                    params![device, tenant],
                    row_to_job,
                )
                .optional()?)
            })
            .await
    }

    pub async fn events(&self, id: i64) -> Result<Vec<JobEvent>, StoreError> {
        self.db
            .with(move |c| {
                let mut stmt = c.prepare(
                    "SELECT at_ms, state, message FROM job_events WHERE job_id = ?1 ORDER BY rowid",
                )?;
                let events = stmt
                    .query_map(params![id], |r| {
                        let state: String = r.get(1)?;
                        Ok(JobEvent {
                            at_ms: r.get(0)?,
                            state: JobState::parse(&state).unwrap_or(JobState::Failed),
                            message: r.get(2)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(events)
            })
            .await
    }
}

/// Columns to set along with a transition.
#[derive(Debug, Default)]
pub struct Update {
    pub step: Option<usize>,
    pub plan: Option<(crate::model::Plan, String)>,
    /// The version of the policy that decided, when it decided no plan.
    pub policy_version: Option<String>,
    pub config: Option<String>,
    pub error: Option<String>,
    pub wait_until_ms: Option<Option<i64>>,
    pub push_done: bool,
    pub transcript: Option<String>,
}

impl Update {
    fn apply(self, c: &Connection, id: i64) -> rusqlite::Result<()> {
        if let Some(step) = self.step {
            c.execute(
                "UPDATE jobs SET step = ?2 WHERE id = ?1",
                params![id, step as i64],
            )?;
        }
        if let Some(version) = self.policy_version {
            c.execute(
                "UPDATE jobs SET policy_version = ?2 WHERE id = ?1",
                params![id, version],
            )?;
        }
        if let Some((plan, version)) = self.plan {
            c.execute(
                "UPDATE jobs SET plan = ?2, policy_version = ?3 WHERE id = ?1",
                params![id, serde_json::to_string(&plan).ok(), version],
            )?;
        }
        if let Some(config) = self.config {
            c.execute(
                "UPDATE jobs SET config = ?2 WHERE id = ?1",
                params![id, config],
            )?;
        }
        if let Some(error) = self.error {
            c.execute(
                "UPDATE jobs SET error = ?2 WHERE id = ?1",
                params![id, error],
            )?;
        }
        if let Some(until) = self.wait_until_ms {
            c.execute(
                "UPDATE jobs SET wait_until_ms = ?2 WHERE id = ?1",
                params![id, until],
            )?;
        }
        if self.push_done {
            c.execute(
                "UPDATE jobs SET pushes = pushes + 1 WHERE id = ?1",
                params![id],
            )?;
        }
        if let Some(t) = self.transcript {
            c.execute(
                "UPDATE jobs SET transcript = ?2 WHERE id = ?1",
                params![id, t],
            )?;
        }
        Ok(())
    }
}

fn add_event(c: &Connection, id: i64, state: JobState, message: &str) -> rusqlite::Result<()> {
    let count: i64 = c.query_row(
        "SELECT COUNT(*) FROM job_events WHERE job_id = ?1",
        params![id],
        |r| r.get(0),
    )?;
    // The last event is always kept: it says how the job ended.
    let message = if count >= MAX_EVENTS && !state.is_finished() {
        return Ok(());
    } else if count == MAX_EVENTS - 1 && !state.is_finished() {
        format!("{message} (further events of this job are not recorded)")
    } else {
        message.chars().take(2048).collect()
    };
    c.execute(
        "INSERT INTO job_events (job_id, at_ms, state, message) VALUES (?1, ?2, ?3, ?4)",
        params![id, now_ms(), state.as_str(), message],
    )?;
    Ok(())
}

/// A device's key for "one running job per device": serial, else MAC, else address.
pub fn device_key(r: &DeviceRequest) -> String {
    r.identity
        .serial
        .clone()
        .or_else(|| r.identity.mac.map(|m| m.to_string()))
        .unwrap_or_else(|| r.identity.source_ip.to_string())
}

//! Provisioning jobs: what happens to a device after ztpd has answered it.
//!
//! A call-back (or a plan a policy returns for any request) becomes a [`Job`], persisted
//! in SQLite with a timestamped event log and moved through a small state machine:
//!
//! ```text
//! received ──policy──> planned ──> waiting ──> pushing ──> registering ──> done
//!     │                   │           │           │             │
//!     └───────────────────┴───────────┴───────────┴─────────────┴──────> failed
//! ```
//!
//! - [`store`]: the jobs and events tables.
//! - [`runner`]: runs jobs in the background with bounded push concurrency, resumes
//!   unfinished jobs at start-up, and refuses a second job for a device whose job runs.

pub mod runner;
pub mod store;

use serde::{Deserialize, Serialize};

pub use runner::{JobRunner, RunnerConfig, Submitted};
pub use store::JobStore;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
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
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Received => "received",
            JobState::Planned => "planned",
            JobState::Waiting => "waiting",
            JobState::Pushing => "pushing",
            JobState::Registering => "registering",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => JobState::Received,
            "planned" => JobState::Planned,
            "waiting" => JobState::Waiting,
            "pushing" => JobState::Pushing,
            "registering" => JobState::Registering,
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
    pub plan: Option<crate::decision::Plan>,
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
    #[serde(skip)]
    pub request: Option<crate::request::DeviceRequest>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

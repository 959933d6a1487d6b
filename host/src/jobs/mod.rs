//! Provisioning jobs: what happens to a device after ztpd has answered it.
//!
//! A call-back (or a plan a policy returns for any request) becomes a [`Job`], persisted
//! with a timestamped event log and moved through a small state machine:
//!
//! ```text
//! received ──policy──> planned ──> waiting ──> pushing ──> registering ──> done
//!     │                   │           │           │             │
//!     └───────────────────┴───────────┴───────────┴─────────────┴──────> failed
//! ```
//!
//! - [`runner`]: runs jobs in the background with bounded push concurrency, resumes
//!   unfinished jobs at start-up, and refuses a second job for a device whose job runs.
//! - [`steps`]: one function per plan step (render, wait, ssh-push, register-monitoring,
//!   update-inventory, webhook).
//!
//! The rows themselves live in [`crate::store::jobs`].

pub mod resolve;
pub mod runner;
pub mod steps;

pub use crate::config::JobsConfig;
pub use crate::store::jobs::{Created, Job, JobEvent, JobState, JobStore, NewJob, device_key};
pub use runner::{JobRunner, Submitted};

/// Why a job failed: the message goes to the job's error and its event log.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Failed(String),
    /// An operator ended the job (denied it); its state is recorded already.
    #[error("{0}")]
    Stopped(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl JobError {
    pub fn failed(message: impl Into<String>) -> Self {
        JobError::Failed(message.into())
    }
}

//! Runs provisioning jobs in the background.
//!
//! - One tokio task per job, tracked ([`TaskTracker`]) rather than detached; SSH pushes
//!   are bounded by a semaphore.
//! - At start-up, unfinished jobs resume where their last persisted step left them (a wait
//!   waits only what is left of it).
//! - A device with a running job gets no second one: an in-memory set answers the common
//!   case (a device calling back again) without touching the database, and a unique index
//!   in the database settles races. A drop guard takes a job out of the set however its
//!   task ends, a panic included (the job is then recorded as failed).
//! - Each job has an overall deadline; when it passes, the job fails saying where it was.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::steps::{self, StepCtx};
use super::{Created, Job, JobError, JobState, JobStore, JobsConfig, NewJob, device_key};
use crate::monitoring::{HostEvent, JobEvent, Outbox};
use crate::service::{Outcome, Service};
use crate::store::claims::Standing;
use crate::store::jobs::Update;
use crate::store::{StoreError, Stores};

/// The answer to a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    Started(i64),
    /// The device already has a job running: nothing new was started.
    AlreadyRunning(i64),
    /// The tenant runs as many jobs as it may (`limits.jobs`): nothing was started.
    TenantFull {
        running: usize,
    },
}

pub(super) struct Inner {
    pub(super) jobs: JobStore,
    pub(super) stores: Stores,
    /// Webhook events, delivered in the background.
    pub(super) outbox: Outbox,
    pub(super) config: JobsConfig,
    pub(super) push_permits: Semaphore,
    /// (tenant, device) → id of its running job.
    active: Mutex<HashMap<(String, String), i64>>,
    pub(super) pushes_in_flight: AtomicUsize,
    pub(super) peak_pushes: AtomicUsize,
    tasks: TaskTracker,
    /// Woken whenever a conflict or an approval is decided: held jobs look again.
    held: tokio::sync::Notify,
}

/// How often a held job looks again without being woken.
const HOLD_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Cheap to clone; all clones share the same jobs.
#[derive(Clone)]
pub struct JobRunner {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// Takes a job out of the running set when its task ends, however it ends.
struct ActiveGuard {
    runner: JobRunner,
    key: (String, String),
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if let Ok(mut active) = self.runner.inner.active.lock() {
            active.remove(&self.key);
        }
    }
}

impl JobRunner {
    pub fn new(stores: &Stores, outbox: Outbox, config: JobsConfig) -> Self {
        JobRunner {
            inner: Arc::new(Inner {
                jobs: stores.jobs.clone(),
                stores: stores.clone(),
                outbox,
                push_permits: Semaphore::new(config.max_concurrent_pushes.max(1)),
                config,
                active: Mutex::new(HashMap::new()),
                pushes_in_flight: AtomicUsize::new(0),
                peak_pushes: AtomicUsize::new(0),
                tasks: TaskTracker::new(),
                held: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The webhook outbox jobs write their events to.
    pub fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    pub fn store(&self) -> &JobStore {
        &self.inner.jobs
    }

    /// The most SSH pushes that ran at the same time since start.
    pub fn peak_pushes(&self) -> usize {
        self.inner.peak_pushes.load(Ordering::Relaxed)
    }

    /// Jobs whose tasks are running now.
    pub fn running(&self) -> usize {
        self.inner.tasks.len()
    }

    /// Wake every held job (a conflict or an approval was decided, or a new conflict
    /// arrived): each looks at its standing again.
    pub fn wake_held(&self) {
        self.inner.held.notify_waiters();
    }

    /// Create a job for this request and start it, unless the device has one running.
    pub async fn submit(
        &self,
        service: Arc<Service>,
        new: NewJob,
    ) -> Result<Submitted, StoreError> {
        let key = (new.request.tenant.clone(), device_key(&new.request));
        if let Some(id) = self.active_job(&key) {
            return Ok(Submitted::AlreadyRunning(id));
        }
        if let Some(tenant) = service.tenant(&key.0) {
            let running = self.running_of(&key.0);
            if running >= tenant.limits.jobs {
                return Ok(Submitted::TenantFull { running });
            }
        }
        match self.inner.jobs.create(new).await? {
            Created::Running(id) => Ok(Submitted::AlreadyRunning(id)),
            Created::New(job) => {
                let id = job.id;
                self.spawn(service, *job);
                Ok(Submitted::Started(id))
            }
        }
    }

    /// The running job of a device, if any (answered from memory).
    pub fn running_job(&self, tenant: &str, device: &str) -> Option<i64> {
        self.active_job(&(tenant.to_owned(), device.to_owned()))
    }

    /// Jobs of `tenant` running now.
    pub fn running_of(&self, tenant: &str) -> usize {
        self.inner
            .active
            .lock()
            .map(|a| a.keys().filter(|(t, _)| t == tenant).count())
            .unwrap_or(0)
    }

    /// Whether job `id`'s task is running.
    pub(super) fn is_active(&self, id: i64) -> bool {
        self.inner
            .active
            .lock()
            .map(|a| a.values().any(|j| *j == id))
            .unwrap_or(false)
    }

    fn active_job(&self, key: &(String, String)) -> Option<i64> {
        self.inner
            .active
            .lock()
            .ok()
            .and_then(|a| a.get(key).copied())
    }

    /// Start every job that was unfinished when ztpd stopped. Returns how many.
    pub async fn resume(&self, service: Arc<Service>) -> Result<usize, StoreError> {
        let jobs = self.inner.jobs.unfinished().await?;
        let n = jobs.len();
        for job in jobs {
            tracing::info!(job = job.id, tenant = %job.tenant, device = %job.device, state = job.state.as_str(), "resuming job");
            self.spawn(service.clone(), job);
        }
        Ok(n)
    }

    fn spawn(&self, service: Arc<Service>, job: Job) {
        let key = (job.tenant.clone(), job.device.clone());
        if let Ok(mut active) = self.inner.active.lock() {
            active.insert(key.clone(), job.id);
        }
        let guard = ActiveGuard {
            runner: self.clone(),
            key,
        };
        let runner = self.clone();
        let id = job.id;
        let work = {
            let (runner, service) = (runner.clone(), service.clone());
            async move {
                let started = Instant::now();
                let budget = Budget::new(runner.inner.config.job_timeout);
                match budget.run(runner.drive(&service, job, &budget)).await {
                    Ok(Ok(())) => None,
                    Ok(Err(JobError::Stopped(why))) => Some((why, true)),
                    Ok(Err(e)) => Some((e.to_string(), false)),
                    Err(_) => {
                        let state = runner
                            .inner
                            .jobs
                            .get(id)
                            .await
                            .ok()
                            .flatten()
                            .map_or("unknown", |j| j.state.as_str());
                        Some((
                            format!(
                                "job timed out after {} s in state {state} (jobs.job_timeout_s)",
                                started.elapsed().as_secs()
                            ),
                            false,
                        ))
                    }
                }
            }
        };
        self.inner.tasks.spawn(async move {
            let _guard = guard;
            // The job runs in its own task so that a panic in it is seen here as an error
            // (and the job recorded as failed) instead of leaving it running forever.
            let (failure, recorded) = match tokio::spawn(work).await {
                Ok(Some((failure, recorded))) => (Some(failure), recorded),
                Ok(None) => (None, false),
                Err(e) => {
                    tracing::error!(job = id, "job task ended abnormally: {e}");
                    (
                        Some("internal error in ztpd (see its log)".to_owned()),
                        false,
                    )
                }
            };
            if let Some(reason) = failure.as_ref().filter(|_| !recorded) {
                tracing::warn!(job = id, "job failed: {reason}");
                let update = Update {
                    error: Some(reason.clone()),
                    ..Default::default()
                };
                if let Err(e) = runner
                    .inner
                    .jobs
                    .transition(id, JobState::Failed, reason.clone(), update)
                    .await
                {
                    tracing::error!(job = id, "cannot record the job's failure: {e}");
                }
            }
            runner.announce(&service, id, failure.as_deref()).await;
        });
    }

    /// Queue `device.provisioned` or `device.failed` for the tenant's webhooks that list it.
    async fn announce(&self, service: &Service, id: i64, failure: Option<&str>) {
        let event = if failure.is_some() {
            HostEvent::Failed
        } else {
            HostEvent::Provisioned
        };
        let Ok(Some(job)) = self.inner.jobs.get(id).await else {
            return;
        };
        let Some(tenant) = service.tenant(&job.tenant) else {
            return;
        };
        for (name, hook) in &tenant.config.webhooks {
            if !hook.events.contains(&event) {
                continue;
            }
            let body = JobEvent {
                event: event.as_str(),
                tenant: &job.tenant,
                job: &job,
                error: failure,
                data: serde_json::json!({}),
            }
            .body();
            if let Err(e) = self
                .inner
                .outbox
                .enqueue(&job.tenant, name, event.as_str(), &body)
                .await
            {
                tracing::error!(job = id, webhook = %name, "cannot queue webhook event {}: {e}", event.as_str());
            }
        }
    }

    /// Ask the policy for a plan (a call-back's job starts without one), then run the
    /// plan's steps from the first one not done.
    async fn drive(
        &self,
        service: &Service,
        mut job: Job,
        budget: &Budget,
    ) -> Result<(), JobError> {
        let tenant = service.tenant(&job.tenant).cloned().ok_or_else(|| {
            JobError::failed(format!("tenant {} is no longer configured", job.tenant))
        })?;
        if job.state == JobState::PendingApproval {
            let _paused = budget.pause();
            self.await_approval(&tenant, &mut job, &_paused).await?;
        }
        if job.state == JobState::Received {
            self.plan(service, &tenant, &mut job).await?;
        }
        let plan = job
            .plan
            .clone()
            .ok_or_else(|| JobError::failed("the job has no plan"))?;
        for (index, step) in plan.steps.iter().enumerate().skip(job.step) {
            if steps::reaches_out(step) {
                let paused = budget.pause();
                self.hold(&mut job, &paused).await?;
            }
            let mut ctx = StepCtx {
                runner: &self.inner,
                tenant: &tenant,
                job: &mut job,
                plan: &plan,
                index,
            };
            steps::run(&mut ctx, step).await?;
        }
        self.inner
            .jobs
            .transition(job.id, JobState::Done, "provisioned", Update::default())
            .await?;
        tracing::info!(job = job.id, tenant = %job.tenant, device = %job.device, "job done");
        Ok(())
    }

    /// Wait until an operator approves the job (it goes on), denies it (it ends), or
    /// `callback.approval_timeout_s` passes (it fails).
    async fn await_approval(
        &self,
        tenant: &crate::service::Tenant,
        job: &mut Job,
        _paused: &Paused<'_>,
    ) -> Result<(), JobError> {
        let limit = tenant.config.callback.approval_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let woken = self.inner.held.notified();
            let now = self.inner.jobs.get(job.id).await?.map(|j| j.state);
            match now {
                Some(JobState::PendingApproval) => {}
                Some(JobState::Failed) => {
                    return Err(JobError::Stopped("denied by an operator".into()));
                }
                Some(state) => {
                    job.state = state;
                    return Ok(());
                }
                None => return Err(JobError::failed("the job's record is gone")),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(JobError::failed(format!(
                    "not approved within {} s (callback.approval_timeout_s)",
                    limit.as_secs()
                )));
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(HOLD_POLL) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Before a step reaches the device or the outside world: go on if the job's claim of
    /// its serial is bound and uncontested; wait (state `conflict`) while another claim
    /// contests it; fail if an operator approved another claim or reset the device.
    async fn hold(&self, job: &mut Job, _paused: &Paused<'_>) -> Result<(), JobError> {
        let (Some(serial), Some(nonce)) = (job.serial.clone(), job.nonce.clone()) else {
            return Ok(());
        };
        let claims = &self.inner.stores.claims;
        let mut held = false;
        loop {
            let woken = self.inner.held.notified();
            match claims.standing(&job.tenant, &serial, &nonce).await? {
                Standing::Clear => {
                    if held {
                        self.inner
                            .jobs
                            .transition(
                                job.id,
                                JobState::Planned,
                                "conflict resolved in this call-back's favour; going on",
                                Update::default(),
                            )
                            .await?;
                    }
                    return Ok(());
                }
                Standing::Lost => {
                    return Err(JobError::failed(
                        "an operator approved another call-back for this serial or reset the device; nothing was sent to this job's address",
                    ));
                }
                Standing::Contested => {
                    if !held {
                        self.inner
                            .jobs
                            .transition(
                                job.id,
                                JobState::Conflict,
                                "held: another call-back claims this serial; nothing is sent until an operator approves one (ztpd device approve) or resets the device",
                                Update::default(),
                            )
                            .await?;
                        held = true;
                    }
                    tokio::select! {
                        _ = woken => {}
                        _ = tokio::time::sleep(HOLD_POLL) => {}
                    }
                }
            }
        }
    }

    async fn plan(
        &self,
        service: &Service,
        tenant: &crate::service::Tenant,
        job: &mut Job,
    ) -> Result<(), JobError> {
        let store = &self.inner.jobs;
        let request = job.request.clone().ok_or_else(|| {
            JobError::failed(
                "the stored call-back request is unreadable; the device must call back again",
            )
        })?;
        let answer = service
            .decide(tenant, &request, None)
            .await
            .map_err(|e| JobError::failed(e.to_string()))?;
        let version = answer.policy_hash;
        let short = version.get(..12).unwrap_or(&version).to_owned();
        let no_plan = |reason: String| async {
            // Keep who decided: the failure event names the policy version.
            let update = Update {
                policy_version: Some(version.clone()),
                ..Default::default()
            };
            store
                .transition(
                    job.id,
                    JobState::Received,
                    format!("policy {short} answered without a plan"),
                    update,
                )
                .await?;
            Err::<(), JobError>(JobError::Failed(reason))
        };
        let plan = match answer.outcome {
            Outcome::Plan(plan) => plan,
            Outcome::UnknownDevice(reason) => {
                return no_plan(format!("unknown device: {reason}")).await;
            }
            Outcome::Rejected(reason) => {
                return no_plan(format!("rejected by the policy: {reason}")).await;
            }
            Outcome::Reply { .. } | Outcome::File { .. } => {
                return Err(JobError::failed(
                    "the policy answered the call-back with a reply, not a plan; return a Plan for a call-back",
                ));
            }
        };
        store
            .transition(
                job.id,
                JobState::Planned,
                format!("policy {short} planned: {}", steps::summary(&plan.steps)),
                Update {
                    plan: Some((plan.clone(), version.clone())),
                    ..Default::default()
                },
            )
            .await?;
        job.plan = Some(plan);
        job.policy_version = Some(version);
        Ok(())
    }
}

/// A job's time budget (`jobs.job_timeout_s`), paused while the job waits for an
/// operator (approval, a conflict): an operator's lunch break does not fail a device.
struct Budget {
    /// The deadline, and while paused the time that was left when the pause began.
    state: std::sync::Mutex<(tokio::time::Instant, Option<std::time::Duration>)>,
}

impl Budget {
    fn new(limit: std::time::Duration) -> Self {
        Budget {
            state: std::sync::Mutex::new((tokio::time::Instant::now() + limit, None)),
        }
    }

    /// When the budget runs out if nothing changes (while paused: always later than now).
    fn deadline(&self) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        match self.state.lock() {
            Ok(s) => match s.1 {
                Some(left) => now + left.max(std::time::Duration::from_millis(100)),
                None => s.0,
            },
            Err(_) => now,
        }
    }

    /// Run `work` until it ends or the budget runs out.
    async fn run<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T, Elapsed> {
        tokio::pin!(work);
        loop {
            let deadline = self.deadline();
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = tokio::time::sleep_until(deadline) => {
                    if self.deadline() <= tokio::time::Instant::now() {
                        return Err(Elapsed);
                    }
                }
            }
        }
    }

    /// Stop the clock until the returned guard is dropped.
    fn pause(&self) -> Paused<'_> {
        if let Ok(mut s) = self.state.lock() {
            let left = s.0.saturating_duration_since(tokio::time::Instant::now());
            s.1 = Some(left);
        }
        Paused { budget: self }
    }
}

/// The job's timeout ran out.
struct Elapsed;

/// While this lives, the job's clock stands still.
struct Paused<'a> {
    budget: &'a Budget,
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.budget.state.lock()
            && let Some(left) = s.1.take()
        {
            s.0 = tokio::time::Instant::now() + left;
        }
    }
}

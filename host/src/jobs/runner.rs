//! Runs provisioning jobs in the background.
//!
//! - One tokio task per job; SSH pushes are bounded by a semaphore.
//! - At start-up, unfinished jobs resume where their last persisted step left them (a wait
//!   waits only what is left of it).
//! - A device with a running job gets no second one: an in-memory set answers the common
//!   case (a device calling back again) without touching the database, and a unique index
//!   in the database settles races.
//! - Each job has an overall deadline; when it passes, the job fails saying where it was.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::store::{Created, NewJob, Update, device_key};
use super::{Job, JobState, JobStore, now_ms};
use crate::decision::{InventoryChange, Step};
use crate::monitoring::webhook::{FAILED, PROVISIONED};
use crate::monitoring::{JobEvent, Outbox};
use crate::service::{Outcome, Service};
use crate::ssh::{self, Platform, SshSettings, Target};
use crate::store::StoreError;

/// How jobs run.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// SSH pushes in flight at once, across all tenants.
    pub max_concurrent_pushes: usize,
    /// A job that has not finished after this long fails.
    pub job_timeout: Duration,
    pub ssh: SshSettings,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            max_concurrent_pushes: 64,
            job_timeout: Duration::from_secs(15 * 60),
            ssh: SshSettings::default(),
        }
    }
}

/// The answer to a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    Started(i64),
    /// The device already has a job running: nothing new was started.
    AlreadyRunning(i64),
}

struct Inner {
    store: JobStore,
    /// Webhook events, delivered in the background.
    outbox: Outbox,
    config: RunnerConfig,
    push_permits: Semaphore,
    /// (tenant, device) → id of its running job.
    active: Mutex<HashMap<(String, String), i64>>,
    pushes_in_flight: AtomicUsize,
    peak_pushes: AtomicUsize,
}

/// Cheap to clone; all clones share the same jobs.
#[derive(Clone)]
pub struct JobRunner {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// Why a job failed: the message goes to the job's error and event log.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

impl JobRunner {
    pub fn new(store: JobStore, config: RunnerConfig) -> Result<Self, StoreError> {
        let outbox = Outbox::new(store.db().clone())?;
        Ok(JobRunner {
            inner: Arc::new(Inner {
                store,
                outbox,
                push_permits: Semaphore::new(config.max_concurrent_pushes.max(1)),
                config,
                active: Mutex::new(HashMap::new()),
                pushes_in_flight: AtomicUsize::new(0),
                peak_pushes: AtomicUsize::new(0),
            }),
        })
    }

    /// The webhook outbox jobs write their events to.
    pub fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    pub fn store(&self) -> &JobStore {
        &self.inner.store
    }

    /// The most SSH pushes that ran at the same time since start.
    pub fn peak_pushes(&self) -> usize {
        self.inner.peak_pushes.load(Ordering::Relaxed)
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
        match self.inner.store.create(new).await? {
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

    fn active_job(&self, key: &(String, String)) -> Option<i64> {
        self.inner
            .active
            .lock()
            .ok()
            .and_then(|a| a.get(key).copied())
    }

    /// Start every job that was unfinished when ztpd stopped. Returns how many.
    pub async fn resume(&self, service: Arc<Service>) -> Result<usize, StoreError> {
        let jobs = self.inner.store.unfinished().await?;
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
        let runner = self.clone();
        tokio::spawn(async move {
            let id = job.id;
            let started = Instant::now();
            let timeout = runner.inner.config.job_timeout;
            let outcome = tokio::time::timeout(timeout, runner.drive(&service, job)).await;
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(Failure(reason))) => Some(reason),
                Err(_) => {
                    let state = runner
                        .inner
                        .store
                        .get(id)
                        .await
                        .ok()
                        .flatten()
                        .map_or("unknown", |j| j.state.as_str());
                    Some(format!(
                        "job timed out after {} s in state {state}",
                        started.elapsed().as_secs()
                    ))
                }
            };
            if let Some(reason) = &failure {
                let reason = reason.clone();
                tracing::warn!(job = id, "job failed: {reason}");
                let update = Update {
                    error: Some(reason.clone()),
                    ..Default::default()
                };
                if let Err(e) = runner
                    .inner
                    .store
                    .transition(id, JobState::Failed, reason, update)
                    .await
                {
                    tracing::error!(job = id, "cannot record the job's failure: {e}");
                }
            }
            runner.announce(&service, id, failure.as_deref()).await;
            if let Ok(mut active) = runner.inner.active.lock() {
                active.remove(&key);
            }
        });
    }

    /// Queue `device.provisioned` or `device.failed` for the tenant's webhooks that list it.
    async fn announce(&self, service: &Service, id: i64, failure: Option<&str>) {
        let event = if failure.is_some() {
            FAILED
        } else {
            PROVISIONED
        };
        let Ok(Some(job)) = self.inner.store.get(id).await else {
            return;
        };
        let Some(tenant) = service.tenant(&job.tenant) else {
            return;
        };
        for (name, hook) in &tenant.config.webhooks {
            if !hook.events.iter().any(|e| e == event) {
                continue;
            }
            let body = JobEvent {
                event,
                tenant: &job.tenant,
                job: &job,
                error: failure,
                data: serde_json::json!({}),
            }
            .body();
            if let Err(e) = self
                .inner
                .outbox
                .enqueue(&job.tenant, name, event, &body)
                .await
            {
                tracing::error!(job = id, webhook = %name, "cannot queue webhook event {event}: {e}");
            }
        }
    }

    async fn drive(&self, service: &Service, mut job: Job) -> Result<(), Failure> {
        let store = &self.inner.store;
        let tenant = service
            .tenant(&job.tenant)
            .cloned()
            .ok_or_else(|| Failure(format!("tenant {} is no longer configured", job.tenant)))?;
        if job.state == JobState::Received {
            let request = job.request.clone().ok_or_else(|| {
                Failure(
                    "the stored call-back request is unreadable; the device must call back again"
                        .into(),
                )
            })?;
            let answer = service.decide(&tenant, &request).await?;
            let version = answer.policy_hash;
            let no_plan = |reason: String| async {
                // Keep who decided: the failure event names the policy version.
                let update = Update {
                    policy_version: Some(version.clone()),
                    ..Default::default()
                };
                let event = format!(
                    "policy {} answered without a plan",
                    &version[..12.min(version.len())]
                );
                store
                    .transition(job.id, JobState::Received, event, update)
                    .await?;
                Err::<crate::decision::Plan, Failure>(Failure(reason))
            };
            let plan = match answer.outcome {
                Outcome::Plan(plan) => plan,
                Outcome::UnknownDevice(reason) => {
                    return no_plan(format!("unknown device: {reason}"))
                        .await
                        .map(|_| ());
                }
                Outcome::Rejected(reason) => {
                    return no_plan(format!("rejected by the policy: {reason}"))
                        .await
                        .map(|_| ());
                }
                Outcome::Reply { .. } => {
                    return Err(Failure(
                        "the policy answered the call-back with a reply, not a plan; return a Plan for Stage::Callback".into(),
                    ));
                }
            };
            let summary = plan_summary(&plan.steps);
            store
                .transition(
                    job.id,
                    JobState::Planned,
                    format!(
                        "policy {} planned: {summary}",
                        &version[..12.min(version.len())]
                    ),
                    Update {
                        plan: Some((plan.clone(), version.clone())),
                        ..Default::default()
                    },
                )
                .await?;
            job.plan = Some(plan);
            job.policy_version = Some(version);
        }
        let plan = job
            .plan
            .clone()
            .ok_or_else(|| Failure("the job has no plan".into()))?;
        for (index, step) in plan.steps.iter().enumerate().skip(job.step) {
            let next = Update {
                step: Some(index + 1),
                ..Default::default()
            };
            match step {
                Step::Render(r) => {
                    let text: String = if r.template == crate::netbox::RENDER_IN_NETBOX {
                        netbox_of(&tenant, "render netbox:render-config")?
                            .render_record(&r.vars)
                            .await
                            .map_err(|e| Failure(format!("render {}: {e}", r.template)))?
                    } else {
                        tenant
                            .capabilities()
                            .templates
                            .render_json(&r.template, &r.vars)
                            .map_err(|e| Failure(format!("render {}: {e}", r.template)))?
                            .to_string()
                    };
                    let lines = text.lines().count();
                    store
                        .transition(
                            job.id,
                            JobState::Planned,
                            format!("rendered {} ({lines} lines)", r.template),
                            Update {
                                config: Some(text.to_string()),
                                ..next
                            },
                        )
                        .await?;
                    job.config = Some(text.to_string());
                }
                Step::Wait { seconds } => {
                    let until = match job.wait_until_ms {
                        Some(until) => until,
                        None => {
                            let until = now_ms() + i64::from(*seconds) * 1000;
                            store
                                .transition(
                                    job.id,
                                    JobState::Waiting,
                                    format!("waiting {seconds} s for the device to finish booting"),
                                    Update {
                                        wait_until_ms: Some(Some(until)),
                                        ..Default::default()
                                    },
                                )
                                .await?;
                            until
                        }
                    };
                    let left = until - now_ms();
                    if left > 0 {
                        tokio::time::sleep(Duration::from_millis(left as u64)).await;
                    }
                    store
                        .transition(
                            job.id,
                            JobState::Waiting,
                            "wait over",
                            Update {
                                wait_until_ms: Some(None),
                                ..next
                            },
                        )
                        .await?;
                    job.wait_until_ms = None;
                }
                Step::SshPush(p) => {
                    let config = job.config.as_deref().ok_or_else(|| {
                        Failure("ssh-push needs a rendered config: put a render step before it in the plan".into())
                    })?;
                    let platform = Platform::parse(&p.platform).ok_or_else(|| {
                        Failure(format!(
                            "ssh-push: unknown platform {:?}; ztpd drives cisco_iosxe and arista_eos",
                            p.platform
                        ))
                    })?;
                    let credential = tenant.credentials.get(&p.credential).cloned().ok_or_else(|| {
                        Failure(format!(
                            "ssh-push: tenant {} has no credential named {:?} (it has: {}); add [tenants.credentials.{}]",
                            tenant.name,
                            p.credential,
                            tenant.credentials.names().join(", "),
                            p.credential
                        ))
                    })?;
                    let host = p.address.clone().unwrap_or_else(|| job.source_ip.clone());
                    let port = p.port.unwrap_or(22);
                    let addr = format!("{host}:{port}");
                    let known_key = store.host_key(&job.tenant, &addr).await?;
                    let target = Target {
                        host,
                        port,
                        platform,
                        credential,
                        pinned_key: p.host_key.clone(),
                        known_key: known_key.clone(),
                    };
                    let lines = crate::ssh::config_lines(config);
                    let _permit = self
                        .inner
                        .push_permits
                        .acquire()
                        .await
                        .map_err(|_| Failure("ztpd is shutting down".into()))?;
                    store
                        .transition(
                            job.id,
                            JobState::Pushing,
                            format!(
                                "pushing {} lines to {addr} as {} ({})",
                                lines.len(),
                                target.credential.username,
                                p.platform
                            ),
                            Update::default(),
                        )
                        .await?;
                    let deadline = Instant::now() + self.inner.config.job_timeout;
                    let in_flight = self.inner.pushes_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                    self.inner
                        .peak_pushes
                        .fetch_max(in_flight, Ordering::Relaxed);
                    let result =
                        ssh::push(&self.inner.config.ssh, &target, &lines, p.save, deadline).await;
                    self.inner.pushes_in_flight.fetch_sub(1, Ordering::Relaxed);
                    match result {
                        Ok(pushed) => {
                            if known_key.is_none() && p.host_key.is_none() {
                                store
                                    .record_host_key(&job.tenant, &addr, &pushed.host_key)
                                    .await?;
                            }
                            store
                                .transition(
                                    job.id,
                                    JobState::Pushing,
                                    format!(
                                        "pushed {} lines to {addr}{} ({} connection attempts)",
                                        pushed.lines,
                                        if p.save { " and saved" } else { "" },
                                        pushed.attempts
                                    ),
                                    Update {
                                        push_done: true,
                                        transcript: Some(pushed.transcript),
                                        ..next
                                    },
                                )
                                .await?;
                        }
                        Err(e) => {
                            if let Some(t) = e.transcript() {
                                let _ = store
                                    .transition(
                                        job.id,
                                        JobState::Pushing,
                                        "push failed; transcript kept",
                                        Update {
                                            transcript: Some(t.to_owned()),
                                            ..Default::default()
                                        },
                                    )
                                    .await;
                            }
                            return Err(Failure(format!("ssh-push: {e}")));
                        }
                    }
                }
                Step::RegisterMonitoring(m) => {
                    let sink = tenant.sinks.get(&m.sink).ok_or_else(|| {
                        Failure(format!(
                            "register-monitoring: tenant {} has no monitoring sink named {:?} (it has: {}); add [tenants.monitoring.{}]",
                            tenant.name,
                            m.sink,
                            tenant.sinks.keys().cloned().collect::<Vec<_>>().join(", "),
                            m.sink
                        ))
                    })?;
                    // The address the device was pushed to, else the one it called from.
                    let host = m
                        .host
                        .clone()
                        .or_else(|| {
                            plan.steps.iter().rev().find_map(|s| match s {
                                Step::SshPush(p) => p.address.clone(),
                                _ => None,
                            })
                        })
                        .unwrap_or_else(|| job.source_ip.clone());
                    let line = sink
                        .register(&m.name, &host, m.group.as_deref(), m.template.as_deref())
                        .await
                        .map_err(|e| Failure(format!("register-monitoring {}: {e}", m.sink)))?;
                    store
                        .transition(job.id, JobState::Registering, line, next)
                        .await?;
                }
                Step::UpdateInventory(change) => {
                    let netbox = netbox_of(&tenant, "update-inventory")?;
                    let (field, value) = match (&job.serial, &job.mac) {
                        (Some(serial), _) => ("serial", serial.as_str()),
                        (None, Some(mac)) => ("mac", mac.as_str()),
                        (None, None) => {
                            return Err(Failure(
                                "update-inventory: the device sent neither a serial nor a MAC, so ztpd cannot find it in NetBox".into(),
                            ));
                        }
                    };
                    let device = netbox
                        .find_device(field, value)
                        .await
                        .map_err(|e| Failure(format!("update-inventory: {e}")))?
                        .ok_or_else(|| {
                            Failure(format!(
                                "update-inventory: NetBox {} has no device with {field} {value}",
                                netbox.url()
                            ))
                        })?;
                    let id = device
                        .get("id")
                        .and_then(serde_json::Value::as_i64)
                        .ok_or_else(|| {
                            Failure(
                                "update-inventory: NetBox answered a device without an id".into(),
                            )
                        })?;
                    let note = match (&job.policy_version, change) {
                        (Some(v), InventoryChange::Journal(_)) => format!(
                            "ztpd job {}, tenant {}, policy version {}",
                            job.id,
                            job.tenant,
                            &v[..12.min(v.len())]
                        ),
                        _ => String::new(),
                    };
                    let line = netbox
                        .apply(id, change, &note)
                        .await
                        .map_err(|e| Failure(format!("update-inventory: {e}")))?;
                    store
                        .transition(job.id, JobState::Registering, line, next)
                        .await?;
                }
                Step::Webhook(w) => {
                    if !tenant.config.webhooks.contains_key(&w.name) {
                        return Err(Failure(format!(
                            "webhook: tenant {} has no webhook named {:?} (it has: {}); add [tenants.webhooks.{}]",
                            tenant.name,
                            w.name,
                            tenant
                                .config
                                .webhooks
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", "),
                            w.name
                        )));
                    }
                    let data: serde_json::Value = serde_json::from_str(&w.data).map_err(|e| {
                        Failure(format!(
                            "webhook {}: the policy's data is not JSON: {e}",
                            w.name
                        ))
                    })?;
                    let body = JobEvent {
                        event: &w.event,
                        tenant: &job.tenant,
                        job: &job,
                        error: None,
                        data,
                    }
                    .body();
                    let delivery = self
                        .inner
                        .outbox
                        .enqueue(&job.tenant, &w.name, &w.event, &body)
                        .await?;
                    store
                        .transition(
                            job.id,
                            JobState::Registering,
                            format!(
                                "webhook {}: event {} queued (delivery {delivery})",
                                w.name, w.event
                            ),
                            next,
                        )
                        .await?;
                }
            }
        }
        store
            .transition(job.id, JobState::Done, "provisioned", Update::default())
            .await?;
        tracing::info!(job = job.id, tenant = %job.tenant, device = %job.device, "job done");
        Ok(())
    }
}

fn netbox_of(
    tenant: &crate::tenant::Tenant,
    step: &str,
) -> Result<std::sync::Arc<crate::netbox::NetBox>, Failure> {
    tenant
        .capabilities()
        .inventory
        .netbox()
        .cloned()
        .ok_or_else(|| {
            Failure(format!(
                "{step}: tenant {} has no NetBox inventory; add inventory = {{ netbox = \"https://...\", token_env = \"...\" }}",
                tenant.name
            ))
        })
}

fn plan_summary(steps: &[Step]) -> String {
    if steps.is_empty() {
        return "no steps".into();
    }
    steps
        .iter()
        .map(|s| match s {
            Step::Render(r) => format!("render {}", r.template),
            Step::Wait { seconds } => format!("wait {seconds} s"),
            Step::SshPush(p) => format!("ssh-push ({})", p.platform),
            Step::RegisterMonitoring(m) => format!("register in {}", m.sink),
            Step::UpdateInventory(_) => "update inventory".into(),
            Step::Webhook(w) => format!("webhook {}", w.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

//! `[jobs]`: how provisioning jobs run, and the SSH client's timeouts.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJobs {
    max_concurrent_pushes: Option<usize>,
    job_timeout_s: Option<u64>,
    ssh_connect_timeout_s: Option<u64>,
    ssh_command_timeout_s: Option<u64>,
    ssh_output_kib: Option<usize>,
    retention_days: Option<f64>,
}

/// How jobs run.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// SSH pushes in flight at once, across all tenants.
    pub max_concurrent_pushes: usize,
    /// A job that has not finished after this long fails.
    pub job_timeout: Duration,
    /// Finished jobs, audit entries and delivered webhook events older than this are
    /// pruned (hourly, and at start).
    pub retention: Duration,
    pub ssh: SshSettings,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            max_concurrent_pushes: 64,
            job_timeout: Duration::from_secs(15 * 60),
            retention: Duration::from_secs(30 * 86_400),
            ssh: SshSettings::default(),
        }
    }
}

/// Timeouts and retry pacing of the SSH client.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// One TCP connect + handshake attempt.
    pub connect_timeout: Duration,
    /// Waiting for the prompt after one command.
    pub command_timeout: Duration,
    /// First pause between connection attempts; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Most output a device may send after one command before the push fails.
    pub output_bytes: usize,
    /// Most transcript kept per push; the rest is cut.
    pub transcript_bytes: usize,
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings {
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            output_bytes: 4 << 20,
            transcript_bytes: 1 << 20,
        }
    }
}

impl RawJobs {
    pub(super) fn validate(self) -> Result<JobsConfig, String> {
        let d = JobsConfig::default();
        let ssh = SshSettings::default();
        let jobs = JobsConfig {
            max_concurrent_pushes: self
                .max_concurrent_pushes
                .unwrap_or(d.max_concurrent_pushes),
            job_timeout: self
                .job_timeout_s
                .map_or(d.job_timeout, Duration::from_secs),
            retention: match self.retention_days {
                None => d.retention,
                Some(days) if days.is_finite() && (0.0..=36_500.0).contains(&days) => {
                    Duration::from_secs_f64(days * 86_400.0)
                }
                Some(days) => {
                    return Err(format!(
                        "jobs.retention_days = {days}: give a number of days from 0 to 36500"
                    ));
                }
            },
            ssh: SshSettings {
                connect_timeout: self
                    .ssh_connect_timeout_s
                    .map_or(ssh.connect_timeout, Duration::from_secs),
                command_timeout: self
                    .ssh_command_timeout_s
                    .map_or(ssh.command_timeout, Duration::from_secs),
                output_bytes: self
                    .ssh_output_kib
                    .map_or(ssh.output_bytes, |k| k.max(1) << 10),
                ..ssh
            },
        };
        if jobs.max_concurrent_pushes == 0 {
            return Err("jobs.max_concurrent_pushes must be at least 1".into());
        }
        if jobs.job_timeout.is_zero()
            || jobs.ssh.connect_timeout.is_zero()
            || jobs.ssh.command_timeout.is_zero()
        {
            return Err(
                "jobs.job_timeout_s, ssh_connect_timeout_s and ssh_command_timeout_s must be above 0"
                    .into(),
            );
        }
        Ok(jobs)
    }
}

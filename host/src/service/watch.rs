//! Hot swap: watch every tenant's policy files and template folder, and put changes live
//! without a restart.
//!
//! A changed policy file is compiled off the request path (using the compiled cache),
//! checked against the contract, given the tenant's smoke request if one is configured,
//! and only then swapped in atomically; requests already running finish on the old
//! version. A file that fails any of these is refused with a log line that says why, and
//! the old version stays live. Template folders are reloaded the same way.
//!
//! Events are debounced: a burst of writes to one file (an editor saving, `cp` writing in
//! chunks) becomes one reload once the file has been quiet for [`QUIET`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Service;

/// How long a file must be quiet before it is reloaded.
pub const QUIET: Duration = Duration::from_millis(25);

/// What a changed path means.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    Policy {
        tenant: String,
        dialect: Option<String>,
        path: PathBuf,
    },
    Templates {
        tenant: String,
    },
}

/// Keeps the watch alive; dropping it stops watching.
pub struct Reloader {
    _watcher: notify::RecommendedWatcher,
    _task: tokio::task::JoinHandle<()>,
}

impl Reloader {
    /// Watch every tenant of `service`.
    pub fn start(service: Arc<Service>) -> notify::Result<Reloader> {
        let mut policies: Vec<(PathBuf, Target)> = Vec::new();
        let mut template_dirs: Vec<(PathBuf, Target)> = Vec::new();
        for name in service.tenant_names() {
            let Some(tenant) = service.tenant(name) else {
                continue;
            };
            for slot in &tenant.config.policies {
                let path = absolute(&slot.path);
                policies.push((
                    path.clone(),
                    Target::Policy {
                        tenant: name.to_owned(),
                        dialect: slot.dialect.clone(),
                        path,
                    },
                ));
            }
            template_dirs.push((
                absolute(&tenant.config.templates),
                Target::Templates {
                    tenant: name.to_owned(),
                },
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event
                    && !event.kind.is_access()
                {
                    for path in event.paths {
                        let _ = tx.send(path);
                    }
                }
            })?;
        // Watch the folders that hold policy files: a file replaced by rename is a new
        // inode, which a watch on the file itself would miss.
        let folders: HashSet<PathBuf> = policies
            .iter()
            .filter_map(|(p, _)| p.parent().map(Path::to_owned))
            .collect();
        for folder in &folders {
            watcher.watch(folder, RecursiveMode::NonRecursive)?;
        }
        for (dir, _) in &template_dirs {
            watcher.watch(dir, RecursiveMode::Recursive)?;
        }
        let task = tokio::spawn(run(service, rx, policies, template_dirs));
        Ok(Reloader {
            _watcher: watcher,
            _task: task,
        })
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

async fn run(
    service: Arc<Service>,
    mut rx: mpsc::UnboundedReceiver<PathBuf>,
    policies: Vec<(PathBuf, Target)>,
    template_dirs: Vec<(PathBuf, Target)>,
) {
    let classify = |path: &Path| -> Vec<Target> {
        let mut hits: Vec<Target> = policies
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| t.clone())
            .collect();
        hits.extend(
            template_dirs
                .iter()
                .filter(|(d, _)| path.starts_with(d))
                .map(|(_, t)| t.clone()),
        );
        hits
    };
    // Target → when it last changed.
    let mut pending: HashMap<Target, Instant> = HashMap::new();
    loop {
        let next_due = pending.values().min().map(|t| *t + QUIET);
        let event = match next_due {
            Some(due) => tokio::select! {
                e = rx.recv() => e.map(Some),
                _ = tokio::time::sleep_until(due.into()) => Some(None),
            },
            None => rx.recv().await.map(Some),
        };
        match event {
            None => return,
            Some(Some(path)) => {
                for target in classify(&path) {
                    pending.insert(target, Instant::now());
                }
            }
            Some(None) => {
                let now = Instant::now();
                let due: Vec<Target> = pending
                    .iter()
                    .filter(|(_, at)| now.duration_since(**at) >= QUIET)
                    .map(|(t, _)| t.clone())
                    .collect();
                for target in due {
                    pending.remove(&target);
                    apply(&service, target).await;
                }
            }
        }
    }
}

async fn apply(service: &Arc<Service>, target: Target) {
    match target {
        Target::Policy {
            tenant,
            dialect,
            path,
        } => {
            if !path.is_file() {
                // Removed (or mid-rename): keep serving the live version.
                return;
            }
            let started = Instant::now();
            match service
                .activate_policy_file(&tenant, dialect.as_deref(), &path)
                .await
            {
                Ok(Some(version)) => tracing::info!(
                    %tenant,
                    policy = %path.display(),
                    version = %&version[..12],
                    ms = started.elapsed().as_millis() as u64,
                    "new policy version live"
                ),
                Ok(None) => {}
                Err(e) => tracing::error!(
                    %tenant,
                    policy = %path.display(),
                    "refused the changed policy; the previous version stays live: {e}"
                ),
            }
        }
        Target::Templates { tenant } => match service.reload_templates(&tenant).await {
            Ok(n) => tracing::info!(%tenant, templates = n, "templates reloaded"),
            Err(e) => tracing::error!(
                %tenant,
                "refused the changed templates; the previous set stays live: {e}"
            ),
        },
    }
}

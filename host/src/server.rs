//! Running ztpd: build the service from a configuration, bind its listeners, serve until
//! ctrl-c or SIGTERM, then drain in-flight requests for a bounded time. Background tasks
//! (the webhook outbox, the file watcher, the DHCP server, pruning) are owned by the
//! [`Server`] and stop with it.
//!
//! Every listener holds each client to `[http]`: a connection must send its headers within
//! `header_timeout_s` (a slowloris connection is closed), at most `max_connections` are
//! open (more wait in the kernel's queue) and at most `max_connections_per_source` per
//! address (more are closed at once).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::config::{Config, HttpConfig};
use crate::dialect::{Ctx, Registry};
use crate::http::{AppState, Routes};
use crate::jobs::JobRunner;
use crate::monitoring::Outbox;
use crate::policy::PolicyEngine;
use crate::service::Service;
use crate::store::Stores;
use crate::store::retention::Retention;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Most bytes of a request line and headers (hyper's read buffer; its default is 400 KiB):
/// more is answered 431. No device sends a fraction of this.
const MAX_HEAD_BYTES: usize = crate::http::MAX_HEADER_BYTES;

/// Most header lines in one request (hyper's default is 100): more is answered 431.
const MAX_HEADERS: usize = 64;

/// How often finished rows older than `[jobs] retention_days` are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Prune at start, then every [`PRUNE_EVERY`].
fn prune_every_hour(retention: Retention, keep: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        loop {
            tick.tick().await;
            let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            let cutoff = crate::clock::now_ms().saturating_sub(keep_ms);
            match retention.prune(cutoff).await {
                Ok(p) if p.total() > 0 => tracing::info!(
                    jobs = p.jobs,
                    events = p.events,
                    claims = p.claims,
                    audit = p.audit,
                    webhook_events = p.outbox,
                    "pruned rows older than jobs.retention_days"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("pruning old rows failed (retried in an hour): {e}"),
            }
        }
    })
}

/// Build the engine, every tenant of `config`, and the job runner, on `stores`, speaking
/// the dialects of `registry`.
pub async fn build(
    config: &Config,
    stores: Stores,
    registry: Registry,
) -> anyhow::Result<AppState> {
    let engine = Arc::new(PolicyEngine::new(&config.engine)?);
    let outbox = Outbox::new(stores.outbox.clone()).context("preparing the webhook outbox")?;
    let runner = JobRunner::new(&stores, outbox, config.jobs.clone());
    let service = Arc::new(Service::build(config, engine, stores, &registry.names()).await?);
    for t in &config.tenants {
        if let Some(c) = &t.callback.script_credential {
            tracing::warn!(
                tenant = %t.name,
                "callback.script_credential = {c:?}: every served script carries that credential's static password, so any host that fetches /script.py learns it; prefer callback.user (a one-time password per device)"
            );
        }
    }
    Ok(AppState {
        ctx: Ctx {
            service,
            runner,
            dry_run: false,
        },
        registry,
        api_token: config.api.token.clone().map(Arc::new),
        api_open: config.api.open,
        source_limit: crate::http::source_limiter(&config.http),
        limit_loopback: config.http.rate_limit_loopback,
        admin_tokens: config.admin_tokens.clone().into(),
    })
}

/// Aborts a background task when dropped.
struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A bound, ready server: tests start one on port 0 and read [`Server::local_addr`].
pub struct Server {
    /// The device listener (and the APIs', without `api.listen`).
    listener: TcpListener,
    /// The APIs' own listener (`api.listen`).
    api_listener: Option<TcpListener>,
    state: AppState,
    http: HttpConfig,
    reloader: Option<crate::service::watch::Reloader>,
    /// The built-in DHCP server, if a subnet names an interface.
    dhcp: Option<crate::dhcp::server::DhcpServer>,
    tasks: Vec<TaskGuard>,
}

impl Server {
    /// Open the data directory, build everything, resume unfinished jobs and bind.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        Self::bind_with(config, Registry::builtin()).await
    }

    /// Like [`Server::bind`], speaking the dialects of `registry`.
    pub async fn bind_with(config: &Config, registry: Registry) -> anyhow::Result<Self> {
        let stores = Stores::open(&config.data_dir)
            .with_context(|| format!("opening the data directory of {}", config.origin))?;
        let state = build(config, stores, registry.clone()).await?;
        if config.api.open {
            tracing::warn!("api.open = true: the status API answers without a token on loopback");
        }
        let leases = state.ctx.service.stores().leases.clone();
        let mut server = Self::bind_state(config, state).await?;
        server.dhcp = crate::dhcp::server::DhcpServer::start(config, leases, &registry).await?;
        if config.watch {
            server.watch()?;
        }
        Ok(server)
    }

    /// Watch policy and template files and swap in changes while serving.
    pub fn watch(&mut self) -> anyhow::Result<()> {
        let reloader = crate::service::watch::Reloader::start(self.state.ctx.service.clone())
            .context("watching policy and template files")?;
        self.reloader = Some(reloader);
        Ok(())
    }

    /// Resume unfinished jobs, start delivering webhook events, and bind the listeners.
    pub async fn bind_state(config: &Config, state: AppState) -> anyhow::Result<Self> {
        let service = state.ctx.service.clone();
        let resumed = state
            .ctx
            .runner
            .resume(service.clone())
            .await
            .context("resuming unfinished jobs")?;
        if resumed > 0 {
            tracing::info!("resumed {resumed} unfinished jobs");
        }
        let db = service.stores().db.clone();
        let mut tasks = vec![TaskGuard(state.ctx.runner.outbox().start(service))];
        if let Some(limiter) = state.source_limit.clone() {
            // The per-source limiter keeps a cell per address; forget idle ones.
            tasks.push(TaskGuard(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    limiter.retain_recent();
                }
            })));
        }
        tasks.push(TaskGuard(prune_every_hour(
            Retention::new(db),
            config.jobs.retention,
        )));
        let listen = config.listen;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}; set `listen` or ZTPD_LISTEN"))?;
        let api_listener = match config.api.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}; set api.listen"))?,
            ),
            None => None,
        };
        Ok(Server {
            listener,
            api_listener,
            state,
            http: config.http.clone(),
            reloader: None,
            dhcp: None,
            tasks,
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The device listener's address (the APIs' too, without `api.listen`).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The APIs' own listener's address, if it has one.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serve until `shutdown` resolves, then drain for at most [`DRAIN`].
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Background tasks live as long as the server serves.
        let _reloader = self.reloader;
        let _dhcp = self.dhcp;
        let _tasks = self.tasks;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let timeout = self.http.request_timeout;
        let (devices, apis) = match self.api_listener {
            Some(api) => (
                crate::http::router(self.state.clone(), Routes::Devices, timeout),
                Some((api, crate::http::router(self.state, Routes::Apis, timeout))),
            ),
            None => (crate::http::router(self.state, Routes::All, timeout), None),
        };
        let first = serve(self.listener, devices, self.http.clone(), stopped.clone());
        match apis {
            Some((listener, router)) => {
                let second = serve(listener, router, self.http, stopped);
                let (a, b) = tokio::join!(first, second);
                a.and(b)
            }
            None => first.await,
        }
    }
}

/// Counts one source address's open connections; the count drops with the guard.
struct SourceSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl SourceSlot {
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let mut map = counts.lock().ok()?;
        let n = map.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.counts.lock()
            && let Some(n) = map.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Accept and serve connections on `listener` until `stopped` turns true, then let the
/// open ones finish for at most [`DRAIN`]. Hand-written over hyper-util rather than
/// `axum::serve`, which has no header-read timeout and no connection limits.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    http: HttpConfig,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // HTTP/1.1 only: devices speak nothing else, and protocol detection would wait for
    // bytes with no deadline of its own.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(http.max_connections));
    let per_source: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped.changed() => break,
        };
        let (stream, addr) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let Some(slot) = SourceSlot::take(&per_source, addr.ip(), http.max_connections_per_source)
        else {
            tracing::debug!(%addr, "connection refused: over http.max_connections_per_source");
            continue;
        };
        let service =
            router
                .clone()
                .map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(ConnectInfo(addr));
                    req
                });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
            drop(slot);
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN) => {
            tracing::warn!("connections still open {DRAIN:?} after shutdown; exiting anyway");
        }
    }
    Ok(())
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

//! Running ztpd: build the service from a configuration, bind, serve until ctrl-c or
//! SIGTERM, then drain in-flight requests for a bounded time. Background tasks (the
//! webhook outbox, the file watcher, the DHCP server) are owned by the [`Server`] and stop
//! with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::dialect::{Ctx, Registry};
use crate::http::AppState;
use crate::jobs::JobRunner;
use crate::monitoring::Outbox;
use crate::policy::PolicyEngine;
use crate::service::Service;
use crate::store::Stores;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

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
    Ok(AppState {
        ctx: Ctx {
            service,
            runner,
            dry_run: false,
        },
        registry,
        api_token: config.api_token.clone().map(Arc::new),
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
    listener: TcpListener,
    state: AppState,
    reloader: Option<crate::service::watch::Reloader>,
    /// The built-in DHCP server, if a subnet names an interface.
    dhcp: Option<crate::dhcp::server::DhcpServer>,
    outbox: Option<TaskGuard>,
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
        if config.api_token.is_none() && config.admin_tokens.is_empty() {
            tracing::warn!(
                "the status API (/api/v1) has no token: set api.token_env or [[admin.tokens]] to require one"
            );
        }
        let leases = state.ctx.service.stores().leases.clone();
        let mut server = Self::bind_state(config.listen, state).await?;
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

    /// Resume unfinished jobs, start delivering webhook events, and bind `listen`.
    pub async fn bind_state(listen: SocketAddr, state: AppState) -> anyhow::Result<Self> {
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
        let outbox = TaskGuard(state.ctx.runner.outbox().start(service));
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}; set `listen` or ZTPD_LISTEN"))?;
        Ok(Server {
            listener,
            state,
            reloader: None,
            dhcp: None,
            outbox: Some(outbox),
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` resolves, then drain for at most [`DRAIN`].
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Background tasks live as long as the server serves.
        let _reloader = self.reloader;
        let _dhcp = self.dhcp;
        let _outbox = self.outbox;
        let app =
            crate::http::router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve = axum::serve(self.listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = tx.send(());
        });
        tokio::select! {
            r = serve => r.context("HTTP server failed"),
            _ = async { let _ = rx.await; tokio::time::sleep(DRAIN).await } => {
                tracing::warn!("requests still running {DRAIN:?} after shutdown; exiting anyway");
                Ok(())
            }
        }
    }
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

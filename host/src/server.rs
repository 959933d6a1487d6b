//! Running ztpd: build the service from a configuration, bind, serve until ctrl-c or
//! SIGTERM, then drain in-flight requests for a bounded time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::AppState;
use crate::jobs::{JobRunner, JobStore};
use crate::policy::PolicyEngine;
use crate::service::Service;
use crate::store::Store;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Build the engine, every tenant of `config`, and the job runner, on `store`.
pub async fn build(config: &Config, store: Store) -> anyhow::Result<AppState> {
    let engine = Arc::new(PolicyEngine::new(&config.engine)?);
    let jobs = JobStore::new(store.clone()).context("preparing the job tables")?;
    let leases = crate::dhcp::leases::LeaseStore::new(store.clone())
        .context("preparing the DHCP lease table")?;
    let service = Arc::new(Service::build(config, engine, store).await?);
    Ok(AppState {
        service,
        runner: JobRunner::new(jobs, config.jobs.clone())
            .context("preparing the webhook outbox")?,
        api_token: config.api_token.as_deref().map(Arc::from),
        dry_run: false,
        admin_tokens: config.admin_tokens.clone().into(),
        leases,
    })
}

/// A bound, ready server: tests start one on port 0 and read [`Server::local_addr`].
pub struct Server {
    listener: TcpListener,
    state: AppState,
    reloader: Option<crate::reload::Reloader>,
    /// The built-in DHCP server, if a subnet names an interface.
    dhcp: Option<crate::dhcp::server::DhcpServer>,
}

impl Server {
    /// Open the data directory, build everything, resume unfinished jobs and bind.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let store = Store::open(&config.data_dir)
            .with_context(|| format!("opening the data directory of {}", config.origin))?;
        let state = build(config, store).await?;
        if config.api_token.is_none() {
            tracing::warn!(
                "the status API (/api/v1) has no token: set api.token_env to require one"
            );
        }
        let leases = state.leases.clone();
        let mut server = Self::bind_state(config.listen, state).await?;
        server.dhcp = crate::dhcp::server::DhcpServer::start(config, leases).await?;
        if config.watch {
            server.watch()?;
        }
        Ok(server)
    }

    /// Watch policy and template files and swap in changes while serving.
    pub fn watch(&mut self) -> anyhow::Result<()> {
        let reloader = crate::reload::Reloader::start(self.state.service.clone())
            .context("watching policy and template files")?;
        self.reloader = Some(reloader);
        Ok(())
    }

    /// Resume unfinished jobs and bind `listen`.
    pub async fn bind_state(listen: SocketAddr, state: AppState) -> anyhow::Result<Self> {
        let resumed = state
            .runner
            .resume(state.service.clone())
            .await
            .context("resuming unfinished jobs")?;
        if resumed > 0 {
            tracing::info!("resumed {resumed} unfinished jobs");
        }
        state.runner.outbox().start(state.service.clone());
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}; set `listen` or ZTPD_LISTEN"))?;
        Ok(Server {
            listener,
            state,
            reloader: None,
            dhcp: None,
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
        // The file watcher lives as long as the server serves.
        let _reloader = self.reloader;
        let _dhcp = self.dhcp;
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
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

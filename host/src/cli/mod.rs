//! Command line: `ztpd serve`, `ztpd render` (dry run), `ztpd check`, `ztpd policy`
//! (the admin API's client, [`policy`]), `ztpd status` ([`status`]) and
//! `ztpd dhcp export`.

pub mod policy;
pub mod scaffold;
pub mod status;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Request};
use clap::{Parser, Subcommand};
use tower::ServiceExt;

use crate::config::Config;
use crate::dialect::Registry;
use crate::store::Stores;

#[derive(Debug, Parser)]
#[command(
    name = "ztpd",
    version,
    about = "Zero-touch provisioning host for network devices"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve devices. With no --config, runs the built-in demo site.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print exactly what a device would receive, without a server.
    ///
    /// Example: ztpd render --header 'X-Arista-SystemMAC: 00:1c:73:00:00:01'
    Render {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Request path, as the device would send it.
        #[arg(long, default_value = "/dynconfig")]
        path: String,
        /// A request header, `Name: value`; repeat for more.
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// Address the request seems to come from.
        #[arg(long, default_value = "127.0.0.1")]
        source_ip: IpAddr,
    },
    /// Validate the configuration: parse it and load every tenant's policy, templates
    /// and inventory.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Only parse and validate the configuration file (keys, values, secrets it
        /// names); load no policy, template or inventory.
        #[arg(long)]
        config_only: bool,
    },
    /// Manage policy versions through the admin API of a running ztpd.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
        /// Base URL of the running ztpd's APIs (api.listen; the demo's is 127.0.0.1:8081).
        #[arg(
            long,
            global = true,
            default_value = "http://127.0.0.1:8081",
            env = "ZTPD_URL"
        )]
        url: String,
        /// Admin API token.
        #[arg(long, global = true, env = "ZTPD_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Decide about a device through the admin API of a running ztpd: approve a call-back
    /// waiting for approval or one side of a conflict, deny, reset, forget its host key.
    Device {
        #[command(subcommand)]
        action: DeviceAction,
        /// Base URL of the running ztpd's APIs (api.listen; the demo's is 127.0.0.1:8081).
        #[arg(
            long,
            global = true,
            default_value = "http://127.0.0.1:8081",
            env = "ZTPD_URL"
        )]
        url: String,
        /// Admin API token.
        #[arg(long, global = true, env = "ZTPD_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// DHCP: write the DHCP server configuration for every tenant's subnets.
    Dhcp {
        #[command(subcommand)]
        action: DhcpAction,
    },
    /// Show the provisioning state of every device (or one) from a running ztpd.
    Status {
        /// Base URL of the running ztpd's APIs (api.listen; the demo's is 127.0.0.1:8081).
        #[arg(long, default_value = "http://127.0.0.1:8081", env = "ZTPD_URL")]
        url: String,
        /// Bearer token of the status API, if it requires one.
        #[arg(long, env = "ZTPD_API_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// One device (serial): its events and the end of its transcript.
        device: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DhcpAction {
    /// Print an ISC dhcpd, Kea or dnsmasq configuration: each tenant's subnets, a
    /// bootfile per vendor class, fixed addresses from the inventory.
    ///
    /// Example: ztpd dhcp export --format isc --config site.toml > /etc/dhcp/dhcpd.conf
    Export {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long, value_enum)]
        format: crate::dhcp::export::Format,
        /// Only this tenant's subnets.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceAction {
    /// Let a device go on: its job waiting for approval, or — when two call-backs claim
    /// one serial — the one from --address (the other job fails; nothing was pushed to it).
    Approve {
        #[arg(long)]
        tenant: String,
        serial: String,
        /// In a conflict: the address whose call-back to trust.
        #[arg(long)]
        address: Option<String>,
    },
    /// Refuse a device waiting for approval (its job fails); in a conflict, reset it.
    Deny {
        #[arg(long)]
        tenant: String,
        serial: String,
    },
    /// Forget every claim of the serial: held jobs fail, the device must fetch the script
    /// and call back again.
    Reset {
        #[arg(long)]
        tenant: String,
        serial: String,
    },
    /// Forget the SSH host key recorded for the device (it was replaced).
    ForgetKey {
        #[arg(long)]
        tenant: String,
        serial: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Create a policy project (Rust) that builds outside this repository: the SDK, an
    /// example policy with tests, a template, an inventory and a ztpd.toml.
    New {
        /// Crate name, also the folder's.
        name: String,
        /// Where to create the folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Upload a .wasm: validated (contract, smoke request) and stored; live with --activate.
    Push {
        #[arg(long)]
        tenant: String,
        /// `any`, or a dialect: arista-eos, cisco-iosxe.
        #[arg(long, default_value = "any")]
        slot: String,
        #[arg(long)]
        activate: bool,
        file: PathBuf,
    },
    /// Make an uploaded version live.
    Activate {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "any")]
        slot: String,
        version: String,
    },
    /// Make the previously live version live again.
    Rollback {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "any")]
        slot: String,
    },
    /// List versions (hash, size, who uploaded, who activated; `*` is live).
    List {
        #[arg(long)]
        tenant: String,
    },
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::demo()?,
    })
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let config = load_config(config.as_ref())?;
            let server = crate::server::Server::bind(&config).await?;
            tracing::info!(
                "ztpd serving {} on http://{}",
                config.origin,
                server.local_addr()?
            );
            server.run(crate::server::shutdown_signal()).await
        }
        Command::Render {
            config,
            path,
            headers,
            source_ip,
        } => {
            let config = load_config(config.as_ref())?;
            // A private in-memory store: a dry run never changes the site's state.
            let scratch = tempfile::tempdir()?;
            let stores = Stores::in_memory(scratch.path())?;
            let mut state = crate::server::build(&config, stores, Registry::builtin()).await?;
            state.ctx.dry_run = true;
            let mut req = Request::get(&path);
            for h in &headers {
                let (name, value) = h
                    .split_once(':')
                    .with_context(|| format!("--header {h:?} is not `Name: value`"))?;
                let name = HeaderName::try_from(name.trim())
                    .with_context(|| format!("--header {h:?}: bad header name"))?;
                let value = HeaderValue::try_from(value.trim())
                    .with_context(|| format!("--header {h:?}: bad header value"))?;
                req = req.header(name, value);
            }
            let mut req = req.body(Body::empty()).context("building the request")?;
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(source_ip, 0)));
            let resp = crate::http::router(
                state,
                crate::http::Routes::All,
                std::time::Duration::from_secs(600),
            )
            .oneshot(req)
            .await
            .context("routing the request")?;
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .context("reading the reply")?;
            if !status.is_success() {
                bail!("{status}: {}", String::from_utf8_lossy(&body).trim_end());
            }
            use std::io::Write;
            std::io::stdout().write_all(&body)?;
            Ok(())
        }
        Command::Policy {
            action: PolicyAction::New { name, dir },
            ..
        } => {
            let root = scaffold::create(&dir, &name)?;
            println!(
                "created {}: `cargo test` there runs its tests; `cargo build --release --target wasm32-wasip2` builds it; `ztpd check --config ztpd.toml` loads it",
                root.display()
            );
            Ok(())
        }
        Command::Policy { action, url, token } => {
            let client = policy::AdminClient::new(&url, token.as_deref())?;
            match action {
                PolicyAction::New { .. } => Ok(()),
                PolicyAction::Push {
                    tenant,
                    slot,
                    activate,
                    file,
                } => client.push(&tenant, &slot, &file, activate).await,
                PolicyAction::Activate {
                    tenant,
                    slot,
                    version,
                } => client.activate(&tenant, &slot, &version).await,
                PolicyAction::Rollback { tenant, slot } => client.rollback(&tenant, &slot).await,
                PolicyAction::List { tenant } => client.list(&tenant).await,
            }
        }
        Command::Device { action, url, token } => {
            let client = policy::AdminClient::new(&url, token.as_deref())?;
            match action {
                DeviceAction::Approve {
                    tenant,
                    serial,
                    address,
                } => {
                    client
                        .device(&tenant, &serial, "approve", address.as_deref())
                        .await
                }
                DeviceAction::Deny { tenant, serial } => {
                    client.device(&tenant, &serial, "deny", None).await
                }
                DeviceAction::Reset { tenant, serial } => {
                    client.device(&tenant, &serial, "reset", None).await
                }
                DeviceAction::ForgetKey { tenant, serial } => {
                    client
                        .device(&tenant, &serial, "forget-host-key", None)
                        .await
                }
            }
        }
        Command::Dhcp {
            action:
                DhcpAction::Export {
                    config,
                    format,
                    tenant,
                },
        } => {
            let config = load_config(config.as_ref())?;
            let text = crate::dhcp::export::export(
                &config,
                &Registry::builtin(),
                tenant.as_deref(),
                format,
            )?;
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
        Command::Status { url, token, device } => {
            status::print(&url, token.as_deref(), device.as_deref()).await
        }
        Command::Check {
            config,
            config_only,
        } => {
            let config = load_config(config.as_ref())?;
            if config_only {
                println!(
                    "{}: configuration OK ({} tenants)",
                    config.origin,
                    config.tenants.len()
                );
                return Ok(());
            }
            let scratch = tempfile::tempdir()?;
            let stores = Stores::in_memory(scratch.path())?;
            let service = crate::server::build(&config, stores, Registry::builtin())
                .await?
                .ctx
                .service;
            for name in service.tenant_names() {
                if let Some(t) = service.tenant(name) {
                    for (dialect, p) in t.policies() {
                        println!(
                            "tenant {name} ({}): policy {} version {} (contract {})",
                            dialect.as_deref().unwrap_or("any dialect"),
                            p.name(),
                            p.hash(),
                            p.contract()
                        );
                    }
                }
            }
            for t in &config.tenants {
                for d in &t.dhcp {
                    let fixed = crate::dhcp::fixed_addresses(t, d)?;
                    println!(
                        "tenant {} (dhcp): subnet {}, {} fixed addresses, {}",
                        t.name,
                        d.subnet,
                        fixed.len(),
                        d.interface.as_deref().map_or_else(
                            || "export only".to_owned(),
                            |i| format!("built-in server on {i}")
                        )
                    );
                }
            }
            println!("{}: OK", config.origin);
            Ok(())
        }
    }
}

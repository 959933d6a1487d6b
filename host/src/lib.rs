//! # ztpd: zero-touch provisioning for network devices
//!
//! A switch or router boots with no configuration; DHCP points it at ztpd. ztpd works out
//! who the device is, asks the tenant's *policy* — a sandboxed WebAssembly component —
//! what to do, and answers with a rendered configuration or script, or provisions the
//! device in the background.
//!
//! ## Layout
//!
//! Data flows one way: request → identity → policy → decision → reply or job. Modules are
//! listed bottom-up; each imports only those above it in this list (a test,
//! `tests/layering.rs`, fails on an import circle).
//!
//! - [`config`]: the TOML file, raw serde structs validated into plain data, secrets read
//!   once; imports nothing else of ztpd. [`clock`], [`errors`], [`retry`]: small
//!   shared helpers.
//! - [`model`]: the shared vocabulary — device identity, the request a policy sees, the
//!   decision it returns.
//! - [`store`]: the database behind one interface — migrations, kv, jobs, versions,
//!   audit, webhook outbox, DHCP leases, host keys.
//! - [`sources`]: inventory back ends (files, NetBox). [`render`]: the one renderer
//!   (Jinja2 files or NetBox). [`ssh`]: the SSH pusher. [`monitoring`]: PRTG and signed
//!   webhooks. [`trust`]: call-back tokens.
//! - [`policy`]: the wasmtime engine; `policy/capabilities` one file per host import,
//!   `policy/contract` the bindings of each supported contract version. Nothing outside
//!   `policy/` knows wasmtime.
//! - [`service`]: tenants, and the one path every request takes
//!   ([`service::Service::decide`]); activation and hot swap.
//! - [`jobs`]: provisioning jobs, a persisted state machine; `jobs/steps` one function per
//!   plan step.
//! - [`dialect`]: one module per vendor protocol (identity, routes, DHCP vendor class,
//!   contract name), listed in [`dialect::registry`].
//! - [`dhcp`]: `ztpd dhcp export` and the built-in DHCPv4 server.
//! - [`http`]: the router, the status and admin APIs, one error type. Nothing below it
//!   knows axum.
//! - [`server`], [`cli`]: process lifecycle and the command line.
//!
//! ## Errors
//!
//! Each layer has its own `thiserror` enum whose messages name the thing a user can fix
//! (header, template and line, policy and tenant, config key and its setting). The
//! binary prints the chain with anyhow; HTTP routes turn errors into one-line plain-text
//! replies, detailed for a device's own mistakes (4xx) and terse for ztpd's (5xx, whose
//! detail goes to the log).

pub mod cli;
pub mod clock;
pub mod config;
pub mod dhcp;
pub mod dialect;
pub mod errors;
pub mod http;
pub mod jobs;
pub mod model;
pub mod monitoring;
pub mod policy;
pub mod render;
pub mod retry;
pub mod server;
pub mod service;
pub mod sources;
pub mod ssh;
pub mod store;
pub mod trust;

//! # ztpd: zero-touch provisioning for network devices
//!
//! A switch or router boots with no configuration; DHCP points it at ztpd. ztpd works out
//! who the device is, asks the tenant's *policy* — a sandboxed WebAssembly component —
//! what to do, and answers with a rendered configuration or script.
//!
//! ## Layout
//!
//! Data flows one way: request → identity → policy → decision → reply.
//!
//! - [`admin`]: the admin API — policy versions, templates, audit log, tokens.
//! - [`config`]: the TOML file, raw serde structs validated into [`config::Config`].
//! - [`http`]: device-facing routes, one adapter per ZTP dialect (Arista EOS headers, IOS XE
//!   script and call-back), and the status API;
//!   an adapter turns a request into a [`request::DeviceRequest`] and an outcome into a
//!   reply. Knows nothing of wasmtime.
//! - [`identity`]: MAC addresses and device identity, normalised at the edge.
//! - [`service`]: tenants + engine; the one path every request takes
//!   ([`service::Service::decide`]).
//! - [`tenant`]: a tenant's policy, templates, inventory and limits, swappable at run time.
//! - [`reload`]: hot swap — watches policy and template files, validates, swaps atomically.
//! - [`policy`]: the wasmtime engine — pooling allocator, a fresh instance per call, CPU,
//!   wall-time, memory and stack limits, and the host imports. Knows nothing of axum.
//! - [`decision`]: what a policy decided, in host types (plans are serialisable for jobs).
//! - [`templates`]: Jinja2 via minijinja with the seeds' whitespace settings.
//! - [`inventory`]: inventory back ends (JSON/YAML file, NetBox).
//! - [`netbox`]: the NetBox REST client: look-ups, config rendering, write-back.
//! - [`monitoring`]: PRTG and signed webhooks (a persisted outbox with retries).
//! - [`store`]: the SQLite database (policy key-value state, tenant secrets).
//! - [`jobs`]: provisioning jobs — persisted state machine, event log, background runner.
//! - [`dhcp`]: DHCP for ZTP — vendor-class rules (which bootfile a device is offered),
//!   `ztpd dhcp export` (ISC, Kea, dnsmasq) and the built-in DHCPv4 server with its leases.
//! - [`ssh`]: the SSH pusher (russh) with IOS XE and EOS drivers, host-key checks.
//! - [`credentials`]: secrets a plan names; never enter the sandbox.
//! - [`callback_token`]: HMAC tokens that authenticate IOS XE call-backs.
//! - [`server`], [`cli`], [`status`]: process lifecycle, the command line, `ztpd status`.
//!
//! ## Errors
//!
//! Each layer has its own `thiserror` enum whose messages name the thing a user can fix
//! (header, template and line, policy and tenant, config key). The binary prints the
//! chain with anyhow; HTTP routes turn errors into one-line plain-text replies.

pub mod admin;
pub mod callback_token;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod decision;
pub mod dhcp;
pub mod http;
pub mod identity;
pub mod inventory;
pub mod jobs;
pub mod monitoring;
pub mod netbox;
pub mod policy;
pub mod reload;
pub mod request;
pub mod server;
pub mod service;
pub mod ssh;
pub mod status;
pub mod store;
pub mod templates;
pub mod tenant;

//! ZTP dialects: one module per vendor protocol. A dialect owns
//!
//! - its **name** in the policy contract (`arista-eos`, `cisco-iosxe`, ...);
//! - its **routes**: the paths a device requests, each answered by a handler that turns
//!   the request into a device identity and a [`DeviceRequest`], asks the service, and
//!   turns the answer back into a reply;
//! - its **DHCP vendor-class rules**: which bootfile a device of this vendor is offered
//!   (used by `ztpd dhcp export` and the built-in DHCP server alike).
//!
//! [`registry`] lists them. A new dialect is one module plus one line there (or, for a
//! dialect of your own, one [`Registry::with`]). Dialects know nothing of axum: they see
//! a [`DeviceHttp`] (method, path, headers, body, source address) and return a
//! [`DeviceReply`]; `http/` mounts their routes.

pub mod arista;
pub mod callback;
mod common;
pub mod iosxe;
pub mod registry;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Method, StatusCode};

pub use common::{POLICY_VERSION_HEADER, device_request, one_line, reply, text_header};
pub use registry::Registry;

use crate::jobs::JobRunner;
use crate::service::{DecideError, Service, Tenant};

/// What a dialect sees of one device request.
#[derive(Debug, Clone)]
pub struct DeviceHttp {
    pub method: Method,
    /// `""` on the plain paths, `/t/{tenant}` under a tenant prefix: URLs a reply points
    /// back to start with it.
    pub prefix: String,
    /// The path without the prefix (`/dynconfig`).
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// Read up to the route's `max_body`.
    pub body: Bytes,
    pub source_ip: IpAddr,
}

/// A reply body.
#[derive(Debug)]
pub enum ReplyBody {
    Bytes(Bytes),
    /// A (possibly memoised) rendered text, sent without a copy.
    Shared(Arc<str>),
    /// A file streamed from disk, whole.
    File(PathBuf),
}

/// What to send back to the device.
#[derive(Debug)]
pub struct DeviceReply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: ReplyBody,
}

impl DeviceReply {
    pub fn new(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Self {
        DeviceReply {
            status,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            body: ReplyBody::Bytes(body.into()),
        }
    }

    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }
}

/// Why a device request was refused. 4xx carry a reason for the device; 5xx say little to
/// the device (the log has the detail).
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{reason}")]
    TooManyRequests { reason: String, retry_after_s: u64 },
    /// Something failed inside ztpd or a policy; `detail` goes to the log only.
    #[error("{detail}")]
    Internal { detail: String },
}

impl DeviceError {
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        DeviceError::Internal {
            detail: detail.to_string(),
        }
    }
}

impl From<DecideError> for DeviceError {
    fn from(e: DecideError) -> Self {
        DeviceError::internal(e)
    }
}

/// What a dialect's handlers may use.
#[derive(Clone)]
pub struct Ctx {
    pub service: Arc<Service>,
    pub runner: JobRunner,
    /// `ztpd render`: a plan is shown, not run, and call-backs need no token.
    pub dry_run: bool,
}

/// A route handler: the tenant the request was routed to, and the request.
pub type Handler =
    fn(Ctx, Arc<Tenant>, DeviceHttp) -> BoxFuture<'static, Result<DeviceReply, DeviceError>>;

/// One device-facing path.
#[derive(Clone)]
pub struct Route {
    /// Path without a tenant prefix (`/dynconfig`); mounted as is for the tenant a device
    /// is routed to by source address, and under `/t/{tenant}`.
    pub path: &'static str,
    pub methods: &'static [Method],
    /// Largest body read; a longer one is a 413.
    pub max_body: usize,
    pub handler: Handler,
}

/// How a vendor class is matched against DHCP option 60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassMatch {
    /// Option 60 starts with these bytes (case-sensitive, as ISC's `substring` is).
    Prefix(&'static str),
}

impl ClassMatch {
    pub fn matches(self, vendor_class: &[u8]) -> bool {
        match self {
            ClassMatch::Prefix(p) => vendor_class.starts_with(p.as_bytes()),
        }
    }
}

/// What a vendor class is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Option 67 with the URL of this device-facing path; Cisco-style classes also get
    /// options 150 and 66 when the subnet names a TFTP server.
    Bootfile {
        path: &'static str,
        tftp_options: bool,
    },
}

/// One DHCP vendor-class rule of a dialect.
#[derive(Debug, Clone, Copy)]
pub struct VendorRule {
    /// Class name in exported configurations.
    pub name: &'static str,
    pub class: ClassMatch,
    pub offer: Offer,
}

/// A ZTP dialect.
pub trait Dialect: Send + Sync + 'static {
    /// The dialect's name in the policy contract and in `[tenants.policies]`.
    fn name(&self) -> &'static str;
    /// What it is, for messages (`Arista EOS`).
    fn title(&self) -> &'static str;
    fn routes(&self) -> Vec<Route>;
    /// DHCP vendor-class rules, first match wins across the registry.
    fn dhcp_rules(&self) -> Vec<VendorRule>;
}

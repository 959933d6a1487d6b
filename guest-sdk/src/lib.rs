//! # ztpd-guest: write ztpd provisioning policies in Rust
//!
//! A policy is an ordinary Rust `cdylib` crate compiled for `wasm32-wasip2`. It implements
//! [`Policy`] and exports it with [`export_policy!`]:
//!
//! ```ignore
//! use ztpd_guest::{export_policy, inventory, Decision, Error, Policy, Request};
//!
//! struct Site;
//!
//! impl Policy for Site {
//!     fn handle(req: Request) -> Result<Decision, Error> {
//!         let Some(mac) = req.mac() else {
//!             return Ok(Decision::reject("no system MAC in the request"));
//!         };
//!         match inventory::by_mac(mac)? {
//!             Some(switch) => Ok(Decision::render_config("config.j2", switch)),
//!             None => Ok(Decision::unknown_device(format!("no switch with MAC {mac}"))),
//!         }
//!     }
//! }
//!
//! export_policy!(Site);
//! ```
//!
//! ztpd calls `handle` once per device request in a fresh, sandboxed instance: no file
//! system, no network, no environment, no secrets. The host answers the imports below
//! (inventory, templates, settings, key-value state, log) for the request's tenant only.
//! In a native build (a policy's own `cargo test`) the same imports go to the in-memory
//! host of [`testing`].
//!
//! The contract itself is `wit/policy.wit` (`ztpd:policy@0.2.0`); this crate hides the
//! generated bindings behind a small API.

extern crate self as ztpd_guest;

mod decision;
mod host;
mod request;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use decision::{
    Content, Decision, InventoryChange, MonitoringAdd, Plan, SshPush, Step, Webhook,
};
pub use host::Level;
pub use request::{Request, RequestBuilder, dialect, stage};

/// The generated bindings of `wit/policy.wit`. Not part of the stable API: use the types at
/// the crate root.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "ztpd_guest::bindings",
        runtime_path: "ztpd_guest::__wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The one trait a policy implements.
pub trait Policy {
    /// Decide what to do with one device request.
    fn handle(request: Request) -> Result<Decision, Error>;
}

/// Export a [`Policy`] implementation as the component's `handle` function.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[doc(hidden)]
        struct __ZtpdPolicyExport;

        impl $crate::bindings::Guest for __ZtpdPolicyExport {
            fn handle(
                request: $crate::bindings::ztpd::policy::types::Request,
            ) -> ::core::result::Result<
                $crate::bindings::ztpd::policy::types::Decision,
                ::std::string::String,
            > {
                $crate::__dispatch::<$policy>(request)
            }
        }

        $crate::bindings::__export_policy_world!(__ZtpdPolicyExport);
    };
}

#[doc(hidden)]
pub fn __dispatch<P: Policy>(
    request: bindings::ztpd::policy::types::Request,
) -> Result<bindings::ztpd::policy::types::Decision, String> {
    P::handle(Request::from(request))
        .map(Decision::into_wit)
        .map_err(|e| e.to_string())
}

/// An error a policy returns; the host logs it and fails the device's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub fn msg(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error(format!("JSON: {e}"))
    }
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error(s.to_owned())
    }
}

/// Template variables or an inventory record: a JSON object as text.
///
/// Passing a record straight to [`Decision::render_config`] costs no parsing in the guest;
/// [`Vars::parse`] turns it into your own serde type when the policy needs to look inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars(String);

impl Vars {
    /// Serialize any serde value as template variables.
    pub fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        Ok(Vars(serde_json::to_string(value)?))
    }

    /// Wrap JSON text that is already an object.
    pub fn from_json(json: impl Into<String>) -> Self {
        Vars(json.into())
    }

    /// No variables (`{}`).
    pub fn empty() -> Self {
        Vars("{}".into())
    }

    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(serde_json::from_str(&self.0)?)
    }

    pub fn value(&self) -> Result<serde_json::Value, Error> {
        self.parse()
    }

    pub fn as_json(&self) -> &str {
        &self.0
    }

    pub fn into_json(self) -> String {
        self.0
    }
}

impl From<serde_json::Value> for Vars {
    fn from(v: serde_json::Value) -> Self {
        Vars(v.to_string())
    }
}

/// Log lines go to ztpd's log, tagged with the tenant, the device and the policy.
pub mod log {
    use super::host::{self, Level};

    pub fn trace(message: &str) {
        host::log(Level::Trace, message);
    }
    pub fn debug(message: &str) {
        host::log(Level::Debug, message);
    }
    pub fn info(message: &str) {
        host::log(Level::Info, message);
    }
    pub fn warn(message: &str) {
        host::log(Level::Warn, message);
    }
    pub fn error(message: &str) {
        host::log(Level::Error, message);
    }
}

/// The tenant's inventory (a file, NetBox, ... as configured on the host).
pub mod inventory {
    use super::{Error, Vars, host};

    /// Look a device up by MAC, in any common form (`001c.7300.0001`, `00-1C-73-...`).
    pub fn by_mac(mac: &str) -> Result<Option<Vars>, Error> {
        by_field("mac", mac)
    }

    pub fn by_serial(serial: &str) -> Result<Option<Vars>, Error> {
        by_field("serial", serial)
    }

    /// Look a record up by its key in the inventory file (a NetBox device's name).
    pub fn by_key(key: &str) -> Result<Option<Vars>, Error> {
        by_field("key", key)
    }

    /// Look a record up by the value of any of its fields.
    pub fn by_field(field: &str, value: &str) -> Result<Option<Vars>, Error> {
        host::lookup(field, value)
            .map(|found| found.map(Vars))
            .map_err(Error)
    }
}

/// The template name that asks the tenant's NetBox to render the device's config with its
/// own config template; the variables must be the record a NetBox look-up returned.
pub const RENDER_IN_NETBOX: &str = "netbox:render-config";

/// Render one of the tenant's templates inside the call (usually a policy returns
/// [`Decision::render_config`] instead, and the host renders after the call).
pub fn render(template: &str, vars: &Vars) -> Result<String, Error> {
    host::render(template, vars.as_json()).map_err(Error)
}

/// The tenant's settings (`[tenants.settings]` in ztpd's configuration): site values such
/// as a credential name, a monitoring sink or a wait time.
pub mod settings {
    use super::{Error, host};

    /// The setting `key`, if the tenant sets it.
    pub fn get(key: &str) -> Option<String> {
        host::setting(key)
    }

    /// The setting `key`, or `default`.
    pub fn get_or(key: &str, default: &str) -> String {
        host::setting(key).unwrap_or_else(|| default.to_owned())
    }

    /// The setting `key` parsed (`30` as a number, `true` as a boolean), or `default` when
    /// the tenant does not set it; an error names the key if it does not parse.
    pub fn parse_or<T: std::str::FromStr>(key: &str, default: T) -> Result<T, Error> {
        match host::setting(key) {
            None => Ok(default),
            Some(text) => text.trim().parse().map_err(|_| {
                Error::msg(format!(
                    "setting {key} = {text:?} is not a {}",
                    std::any::type_name::<T>()
                ))
            }),
        }
    }

    /// Every setting, sorted by key.
    pub fn all() -> Vec<(String, String)> {
        host::settings()
    }
}

/// Persistent key-value state, private to the tenant. A call is a transaction: its writes
/// land only if it returns a decision, and a call that raced another is run again.
pub mod kv {
    use super::{Error, host};

    pub fn get(key: &str) -> Result<Option<String>, Error> {
        host::kv_get(key).map_err(Error)
    }

    pub fn set(key: &str, value: &str) -> Result<(), Error> {
        host::kv_set(key, value).map_err(Error)
    }

    pub fn delete(key: &str) -> Result<(), Error> {
        host::kv_delete(key).map_err(Error)
    }

    /// Set `key` to `new` (none: delete) if it holds `expected` (none: absent).
    pub fn compare_and_swap(
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, Error> {
        host::kv_compare_and_swap(key, expected, new).map_err(Error)
    }

    /// Add `delta` to the integer at `key` (absent: 0) and return the new value: the
    /// atomic way to hand out distinct numbers from a pool.
    pub fn increment(key: &str, delta: i64) -> Result<i64, Error> {
        host::kv_increment(key, delta).map_err(Error)
    }
}

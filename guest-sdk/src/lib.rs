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
//! (inventory, templates, key-value state, log) for the request's tenant only.
//!
//! The contract itself is `wit/policy.wit`; this crate hides the generated bindings behind
//! a small API.

extern crate self as ztpd_guest;

mod decision;
mod request;

pub use decision::{Content, Decision, InventoryChange, MonitoringAdd, Plan, SshPush, Webhook};
pub use request::{Dialect, Request, Stage};

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

use bindings::ztpd::policy::host as imports;

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
#[derive(Debug)]
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

/// Log lines go to ztpd's log, tagged with the tenant and the device.
pub mod log {
    use super::imports::{self, Level};

    pub fn trace(message: &str) {
        imports::log(Level::Trace, message);
    }
    pub fn debug(message: &str) {
        imports::log(Level::Debug, message);
    }
    pub fn info(message: &str) {
        imports::log(Level::Info, message);
    }
    pub fn warn(message: &str) {
        imports::log(Level::Warn, message);
    }
    pub fn error(message: &str) {
        imports::log(Level::Error, message);
    }
}

/// The tenant's inventory (a file, NetBox, ... as configured on the host).
pub mod inventory {
    use super::{Error, Vars, imports};

    /// Look a device up by MAC, in any common form (`001c.7300.0001`, `00-1C-73-...`).
    pub fn by_mac(mac: &str) -> Result<Option<Vars>, Error> {
        by_field("mac", mac)
    }

    pub fn by_serial(serial: &str) -> Result<Option<Vars>, Error> {
        by_field("serial", serial)
    }

    /// Look a record up by its key in the inventory file.
    pub fn by_key(key: &str) -> Result<Option<Vars>, Error> {
        by_field("key", key)
    }

    /// Look a record up by the value of any of its fields.
    pub fn by_field(field: &str, value: &str) -> Result<Option<Vars>, Error> {
        imports::inventory_lookup(field, value)
            .map(|found| found.map(Vars))
            .map_err(Error)
    }
}

/// Render one of the tenant's templates inside the call (usually a policy returns
/// [`Decision::render_config`] instead, and the host renders after the call).
pub fn render(template: &str, vars: &Vars) -> Result<String, Error> {
    imports::render(template, vars.as_json()).map_err(Error)
}

/// Persistent key-value state, private to the tenant.
pub mod kv {
    use super::{Error, imports};

    pub fn get(key: &str) -> Result<Option<String>, Error> {
        imports::kv_get(key).map_err(Error)
    }

    pub fn set(key: &str, value: &str) -> Result<(), Error> {
        imports::kv_set(key, value).map_err(Error)
    }

    pub fn delete(key: &str) -> Result<(), Error> {
        imports::kv_delete(key).map_err(Error)
    }
}

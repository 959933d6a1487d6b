//! A device request as a dialect hands it to the policy: transport details gone,
//! identity normalised.
//!
//! Dialect and stage are open names (strings), as in the policy contract: a new dialect
//! brings its own names without a change here. The names ztpd's own flows use are in
//! [`stage`]; each dialect module owns its dialect name.

use std::borrow::Cow;

use bytes::Bytes;

use super::identity::Identity;

/// The stages of the provisioning flow every dialect shares. A dialect may use others.
pub mod stage {
    /// The device fetches its bootfile (config or script).
    pub const BOOTSTRAP: &str = "bootstrap";
    /// The device calls back after its first-boot script ran.
    pub const CALLBACK: &str = "callback";
    /// The device reports progress or an outcome.
    pub const REPORT: &str = "report";
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeviceRequest {
    pub tenant: String,
    /// See [`stage`].
    pub stage: Cow<'static, str>,
    /// The dialect's name in the policy contract (`arista-eos`, `cisco-iosxe`, ...).
    pub dialect: Cow<'static, str>,
    pub identity: Identity,
    /// Path without the tenant prefix.
    pub path: String,
    /// Names lower-cased, values decoded as UTF-8 with invalid bytes replaced.
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    #[serde(with = "body_bytes")]
    pub body: Bytes,
}

/// Bodies are stored as text: call-back bodies are JSON; anything else is rare enough to
/// keep lossy.
mod body_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(body: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(body))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        Ok(Bytes::from(String::deserialize(d)?))
    }
}

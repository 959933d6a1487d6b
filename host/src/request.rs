//! A device request as the vendor adapters hand it to the policy: transport details gone,
//! identity normalised.

use bytes::Bytes;

use crate::identity::Identity;

/// Where in the provisioning flow a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// The device fetches its bootfile (config or script).
    Bootstrap,
    /// The device calls back after its first-boot script ran.
    Callback,
    /// The device reports progress or an outcome.
    Report,
}

/// The ZTP dialect a vendor adapter recognised.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    AristaEos,
    CiscoIosxe,
    Generic,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::AristaEos => "arista-eos",
            Dialect::CiscoIosxe => "cisco-iosxe",
            Dialect::Generic => "generic",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeviceRequest {
    pub tenant: String,
    pub stage: Stage,
    pub dialect: Dialect,
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

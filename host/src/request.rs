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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    AristaEos,
    CiscoIosxe,
    Generic,
}

#[derive(Debug, Clone)]
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
    pub body: Bytes,
}

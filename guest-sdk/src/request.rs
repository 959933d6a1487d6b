//! The device request as a policy sees it.

use crate::bindings::ztpd::policy::types as wit;

/// Where in the provisioning flow a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The device fetches its bootfile (config or script).
    Bootstrap,
    /// The device calls back after its first-boot script ran.
    Callback,
    /// The device reports progress or an outcome.
    Report,
}

/// The ZTP dialect the host recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    AristaEos,
    CiscoIosxe,
    Generic,
}

/// One device request, with the identity the host normalised.
#[derive(Debug, Clone)]
pub struct Request {
    inner: wit::Request,
}

impl From<wit::Request> for Request {
    fn from(inner: wit::Request) -> Self {
        Request { inner }
    }
}

impl Request {
    pub fn tenant(&self) -> &str {
        &self.inner.tenant
    }

    pub fn stage(&self) -> Stage {
        match self.inner.stage {
            wit::Stage::Bootstrap => Stage::Bootstrap,
            wit::Stage::Callback => Stage::Callback,
            wit::Stage::Report => Stage::Report,
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner.dialect {
            wit::Dialect::AristaEos => Dialect::AristaEos,
            wit::Dialect::CiscoIosxe => Dialect::CiscoIosxe,
            wit::Dialect::Generic => Dialect::Generic,
        }
    }

    /// The device's MAC, lower-case and colon-separated (`00:1c:73:00:00:01`).
    pub fn mac(&self) -> Option<&str> {
        self.inner.identity.mac.as_deref()
    }

    pub fn serial(&self) -> Option<&str> {
        self.inner.identity.serial.as_deref()
    }

    pub fn model(&self) -> Option<&str> {
        self.inner.identity.model.as_deref()
    }

    pub fn software_version(&self) -> Option<&str> {
        self.inner.identity.software_version.as_deref()
    }

    /// The address the request came from.
    pub fn source_ip(&self) -> &str {
        &self.inner.identity.source_ip
    }

    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// A header's value; the name is matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers, names lower-cased.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The first query parameter with this name.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.inner
            .query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body(&self) -> &[u8] {
        &self.inner.body
    }

    /// The body parsed as JSON into your own type.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        Ok(serde_json::from_slice(&self.inner.body)?)
    }
}

//! The device request as a policy sees it.

use crate::bindings::ztpd::policy::types as wit;

/// The stages ztpd's flows share; a dialect may add others.
pub mod stage {
    /// The device fetches its bootfile (config or script).
    pub const BOOTSTRAP: &str = "bootstrap";
    /// The device calls back after its first-boot script ran.
    pub const CALLBACK: &str = "callback";
    /// The device reports progress or an outcome.
    pub const REPORT: &str = "report";
}

/// The dialects ztpd ships. Dialect names are open: a later ztpd may send others, so
/// match with a fallback arm.
pub mod dialect {
    /// Arista EOS ZTP (`X-Arista-*` headers on the bootfile request).
    pub const ARISTA_EOS: &str = "arista-eos";
    /// Cisco IOS XE guestshell script and call-back.
    pub const CISCO_IOSXE: &str = "cisco-iosxe";
    /// Any other HTTP client.
    pub const GENERIC: &str = "generic";
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
    /// A request built by hand, for a policy's own tests.
    pub fn builder(dialect: &str, stage: &str) -> RequestBuilder {
        RequestBuilder {
            inner: wit::Request {
                tenant: "test".into(),
                stage: stage.into(),
                dialect: dialect.into(),
                identity: wit::Identity {
                    mac: None,
                    serial: None,
                    model: None,
                    software_version: None,
                    source_ip: "192.0.2.10".into(),
                    extra: Vec::new(),
                },
                path: "/".into(),
                headers: Vec::new(),
                query: Vec::new(),
                body: Vec::new(),
            },
        }
    }

    pub fn tenant(&self) -> &str {
        &self.inner.tenant
    }

    /// See [`stage`].
    pub fn stage(&self) -> &str {
        &self.inner.stage
    }

    /// See [`dialect`].
    pub fn dialect(&self) -> &str {
        &self.inner.dialect
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

    /// A further identity fact the dialect read (`hardware-version`, `pid`, ...).
    pub fn identity(&self, name: &str) -> Option<&str> {
        self.inner
            .identity
            .extra
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
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

/// Builds a [`Request`] for tests: `Request::builder(dialect::ARISTA_EOS, stage::BOOTSTRAP)`.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    inner: wit::Request,
}

impl RequestBuilder {
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.inner.tenant = tenant.into();
        self
    }

    pub fn mac(mut self, mac: &str) -> Self {
        self.inner.identity.mac = Some(mac.into());
        self
    }

    pub fn serial(mut self, serial: &str) -> Self {
        self.inner.identity.serial = Some(serial.into());
        self
    }

    pub fn model(mut self, model: &str) -> Self {
        self.inner.identity.model = Some(model.into());
        self
    }

    pub fn source_ip(mut self, ip: &str) -> Self {
        self.inner.identity.source_ip = ip.into();
        self
    }

    pub fn identity(mut self, name: &str, value: &str) -> Self {
        self.inner.identity.extra.push((name.into(), value.into()));
        self
    }

    pub fn path(mut self, path: &str) -> Self {
        self.inner.path = path.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.inner
            .headers
            .push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.inner.query.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.inner.body = body.into();
        self
    }

    pub fn build(self) -> Request {
        Request { inner: self.inner }
    }
}

//! `[http]`: what every listener allows one client — how long it may take to send its
//! headers and finish a request, how many connections it may hold, and how many device
//! requests per second one source address may make.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    header_timeout_s: Option<u64>,
    request_timeout_s: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_source: Option<usize>,
    device_rate_per_source: Option<u32>,
    rate_limit_loopback: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// A connection must send a request's headers within this, or it is closed.
    pub header_timeout: Duration,
    /// A request must be answered within this (408 past it).
    pub request_timeout: Duration,
    /// Connections open at once, all clients; more wait in the listen queue.
    pub max_connections: usize,
    /// Connections one source address may hold; more are closed at once.
    pub max_connections_per_source: usize,
    /// Device requests per second one source address may make (a burst of twice that);
    /// past it, 429 with Retry-After. 0 turns it off.
    pub device_rate_per_source: u32,
    /// Apply the per-source rate to loopback sources too (by default a reverse proxy or
    /// a local client on the host itself is not limited).
    pub rate_limit_loopback: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_source: 64,
            device_rate_per_source: 20,
            rate_limit_loopback: false,
        }
    }
}

impl RawHttp {
    pub(super) fn validate(self) -> Result<HttpConfig, String> {
        let d = HttpConfig::default();
        let c = HttpConfig {
            header_timeout: self
                .header_timeout_s
                .map_or(d.header_timeout, Duration::from_secs),
            request_timeout: self
                .request_timeout_s
                .map_or(d.request_timeout, Duration::from_secs),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_connections_per_source: self
                .max_connections_per_source
                .unwrap_or(d.max_connections_per_source),
            device_rate_per_source: self
                .device_rate_per_source
                .unwrap_or(d.device_rate_per_source),
            rate_limit_loopback: self.rate_limit_loopback.unwrap_or(d.rate_limit_loopback),
        };
        if c.header_timeout.is_zero() || c.request_timeout.is_zero() {
            return Err("http.header_timeout_s and http.request_timeout_s must be above 0".into());
        }
        if c.max_connections == 0 || c.max_connections_per_source == 0 {
            return Err(
                "http.max_connections and http.max_connections_per_source must be at least 1"
                    .into(),
            );
        }
        Ok(c)
    }
}

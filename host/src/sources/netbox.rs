//! NetBox (the 4.x REST API) as a tenant's source of truth: device look-ups that feed
//! policies and templates, NetBox's own config rendering, and the write-back steps of a
//! plan (status, custom field, journal entry).
//!
//! The client holds the API token; policies only ever see the records it returns. Every
//! error names the URL and what NetBox answered (never the token), so an operator can
//! tell a wrong token from a missing device from NetBox being down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::config::ExposeSecret;
pub use crate::config::NetBoxConfig;
use crate::errors::chain as error_chain;
use crate::model::{InventoryChange, Mac};
use crate::retry::{Attempt, Backoff, Failed};

/// Most pages one list call follows (at 100 results a page), so a filter that matches the
/// whole of a large NetBox cannot keep a lookup busy.
const MAX_PAGES: usize = 20;
const PAGE_SIZE: &str = "100";

#[derive(Debug, thiserror::Error)]
pub enum NetBoxError {
    #[error(
        "NetBox refused the API token: {method} {url} answered {status} ({detail}); check the tenant's NetBox token (token, token_env or token_file) and its permissions"
    )]
    Auth {
        method: Method,
        url: String,
        status: StatusCode,
        detail: String,
    },
    #[error("NetBox {method} {url} answered {status}: {detail}")]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
        detail: String,
    },
    #[error("cannot reach NetBox at {url} after {attempts} attempts: {detail}")]
    Unreachable {
        url: String,
        attempts: u32,
        detail: String,
    },
    #[error("NetBox {url} answered something that is not the expected JSON: {detail}")]
    Shape { url: String, detail: String },
    #[error("{0}")]
    Lookup(String),
    #[error("cannot build the NetBox client for {url}: {detail}")]
    Client { url: String, detail: String },
}

/// A look-up's answer and when it was fetched.
type Cached = (Instant, Option<Arc<str>>);

/// A NetBox client for one tenant. Cheap to share behind an `Arc`.
pub struct NetBox {
    base: String,
    auth: header::HeaderValue,
    http: reqwest::Client,
    retries: u32,
    cache_ttl: Duration,
    /// (field, value) → (when fetched, the record or none).
    cache: quick_cache::sync::Cache<(String, String), Cached>,
}

impl std::fmt::Debug for NetBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetBox").field("url", &self.base).finish()
    }
}

impl NetBox {
    pub fn new(config: &NetBoxConfig) -> Result<Self, NetBoxError> {
        let token = config.token.expose_secret();
        // v2 tokens (NetBox 4.5+) carry their own prefix; anything else is a v1 token.
        let scheme = if token.starts_with("nbt_") {
            "Bearer"
        } else {
            "Token"
        };
        let client_error = |detail: String| NetBoxError::Client {
            url: config.url.clone(),
            detail,
        };
        let mut auth = header::HeaderValue::from_str(&format!("{scheme} {token}"))
            .map_err(|_| client_error("the API token holds characters a header cannot".into()))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("ztpd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| client_error(e.to_string()))?;
        Ok(NetBox {
            base: config.url.trim_end_matches('/').to_owned(),
            auth,
            http,
            retries: config.retries,
            cache_ttl: config.cache_ttl,
            cache: quick_cache::sync::Cache::new(4096),
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// Find a device and return the record templates see (see [`device_record`]).
    /// `field` is `serial`, `mac`, `name` (or `key`/`hostname`), or a custom field name.
    pub async fn lookup(&self, field: &str, value: &str) -> Result<Option<Arc<str>>, NetBoxError> {
        let cache_key = (field.to_owned(), value.to_owned());
        if !self.cache_ttl.is_zero()
            && let Some((at, found)) = self.cache.get(&cache_key)
            && at.elapsed() < self.cache_ttl
        {
            return Ok(found);
        }
        let found = match self.find_device(field, value).await? {
            Some(device) => {
                let device = self.with_config_context(device).await?;
                let mut record = device_record(&device, &self.base);
                if field == "mac"
                    && let Some(obj) = record.as_object_mut()
                    && let Ok(mac) = value.parse::<Mac>()
                {
                    obj.insert("mac".into(), Value::String(mac.to_string()));
                }
                Some(Arc::from(record.to_string()))
            }
            None => None,
        };
        if !self.cache_ttl.is_zero() {
            self.cache
                .insert(cache_key, (Instant::now(), found.clone()));
        }
        Ok(found)
    }

    /// The raw NetBox device a look-up finds, or none. Several matches are an error: a
    /// device must be found exactly.
    pub async fn find_device(
        &self,
        field: &str,
        value: &str,
    ) -> Result<Option<Value>, NetBoxError> {
        let (filter, value) = match field {
            "serial" => ("serial".to_owned(), value.to_owned()),
            "name" | "key" | "hostname" => ("name".to_owned(), value.to_owned()),
            "mac" => {
                let mac: Mac = value.parse().map_err(|e| {
                    NetBoxError::Lookup(format!(
                        "NetBox look-up by MAC: {value:?} is not a MAC: {e}"
                    ))
                })?;
                // NetBox 4.2+ keeps MACs as objects assigned to interfaces; the device
                // filter follows interfaces to them.
                ("mac_address".to_owned(), mac.to_string())
            }
            other => (format!("cf_{other}"), value.to_owned()),
        };
        let devices = self
            .list("/api/dcim/devices/", &[(filter.as_str(), value.as_str())])
            .await?;
        match devices.len() {
            0 => Ok(None),
            1 => Ok(devices.into_iter().next()),
            n => {
                let names: Vec<&str> = devices
                    .iter()
                    .filter_map(|d| d.get("name").and_then(Value::as_str))
                    .collect();
                Err(NetBoxError::Lookup(format!(
                    "NetBox has {n} devices with {field} {value:?} ({}); a device must match exactly one",
                    names.join(", ")
                )))
            }
        }
    }

    /// List responses may leave the config context out; fetch the device itself then.
    async fn with_config_context(&self, device: Value) -> Result<Value, NetBoxError> {
        if device.get("config_context").is_some_and(|c| !c.is_null()) {
            return Ok(device);
        }
        let id = device_id(&device)?;
        self.send(Method::GET, &format!("/api/dcim/devices/{id}/"), &[], None)
            .await
    }

    /// Render the device whose record `vars` holds (the JSON a look-up returned, with its
    /// `netbox.id`) with NetBox's own config template: a render of [`RENDER_IN_NETBOX`].
    pub async fn render_record(&self, vars: &str) -> Result<String, NetBoxError> {
        let id = serde_json::from_str::<Value>(vars)
            .ok()
            .and_then(|v| v.get("netbox")?.get("id")?.as_i64())
            .ok_or_else(|| {
                NetBoxError::Lookup(
                    "NetBox rendering: the variables carry no netbox.id; pass the record a NetBox look-up returned".into(),
                )
            })?;
        self.render_config(id).await
    }

    /// Render the device's configuration with NetBox's own config template.
    pub async fn render_config(&self, device_id: i64) -> Result<String, NetBoxError> {
        let path = format!("/api/dcim/devices/{device_id}/render-config/");
        let answer = self.send(Method::POST, &path, &[], Some(json!({}))).await?;
        answer
            .get("content")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| NetBoxError::Shape {
                url: format!("{}{path}", self.base),
                detail: "no `content` in the answer; does the device (or its role or platform) have a config template?".into(),
            })
    }

    /// Apply one write-back change to device `device_id`. `note` is appended to journal
    /// entries (the job and policy version that wrote them).
    pub async fn apply(
        &self,
        device_id: i64,
        change: &InventoryChange,
        note: &str,
    ) -> Result<String, NetBoxError> {
        let device_path = format!("/api/dcim/devices/{device_id}/");
        let summary = match change {
            InventoryChange::Status(status) => {
                self.send(
                    Method::PATCH,
                    &device_path,
                    &[],
                    Some(json!({ "status": status })),
                )
                .await?;
                format!("NetBox device {device_id}: status {status}")
            }
            InventoryChange::CustomField { name, json_value } => {
                let value: Value = serde_json::from_str(json_value).map_err(|e| {
                    NetBoxError::Lookup(format!(
                        "custom field {name}: the policy's value {json_value:?} is not JSON: {e}"
                    ))
                })?;
                self.send(
                    Method::PATCH,
                    &device_path,
                    &[],
                    Some(json!({ "custom_fields": { name.as_str(): value } })),
                )
                .await?;
                format!("NetBox device {device_id}: custom field {name} = {json_value}")
            }
            InventoryChange::Journal(text) => {
                let comments = if note.is_empty() {
                    text.clone()
                } else {
                    format!("{text}\n\n{note}")
                };
                let entry = self
                    .send(
                        Method::POST,
                        "/api/extras/journal-entries/",
                        &[],
                        Some(json!({
                            "assigned_object_type": "dcim.device",
                            "assigned_object_id": device_id,
                            "kind": "info",
                            "comments": comments,
                        })),
                    )
                    .await?;
                let id = entry.get("id").and_then(Value::as_i64).unwrap_or_default();
                format!("NetBox device {device_id}: journal entry {id}")
            }
        };
        // The device changed: later look-ups must see it.
        self.cache.clear();
        Ok(summary)
    }

    /// Every result of a list endpoint, following `next` links.
    async fn list(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<Value>, NetBoxError> {
        let mut query: Vec<(&str, &str)> = query.to_vec();
        query.push(("limit", PAGE_SIZE));
        let mut page = self.send(Method::GET, path, &query, None).await?;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let url = format!("{}{path}", self.base);
            let results = page
                .get_mut("results")
                .and_then(|r| r.as_array_mut())
                .ok_or_else(|| NetBoxError::Shape {
                    url: url.clone(),
                    detail: "a list answer without `results`".into(),
                })?;
            out.append(results);
            let Some(next) = page.get("next").and_then(Value::as_str).map(str::to_owned) else {
                return Ok(out);
            };
            page = self.send_url(Method::GET, &next, &[], None).await?;
        }
        Err(NetBoxError::Lookup(format!(
            "NetBox {path}: more than {MAX_PAGES} pages of results; narrow the look-up"
        )))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value, NetBoxError> {
        let url = format!("{}{path}", self.base);
        self.send_url(method, &url, query, body).await
    }

    /// One API call with retries: 5xx, 429 and connection errors are retried with
    /// exponential backoff; any other answer is final.
    async fn send_url(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value, NetBoxError> {
        let shown = url.split('?').next().unwrap_or(url).to_owned();
        let attempt = || async {
            let mut request = self
                .http
                .request(method.clone(), url)
                .header(header::AUTHORIZATION, self.auth.clone())
                .header(header::ACCEPT, "application/json");
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| {
                let reason = error_chain(&e.without_url());
                tracing::debug!(url = %shown, "NetBox unreachable: {reason}");
                Attempt::Retry(reason)
            })?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status.is_success() {
                return serde_json::from_str(&text).map_err(|e| {
                    Attempt::Fatal(NetBoxError::Shape {
                        url: shown.clone(),
                        detail: e.to_string(),
                    })
                });
            }
            let detail = answer_detail(&text);
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                tracing::debug!(url = %shown, "NetBox answered {status}: {detail}; retrying");
                return Err(Attempt::Retry(format!("{status}: {detail}")));
            }
            let (method, url) = (method.clone(), shown.clone());
            Err(Attempt::Fatal(
                if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                    NetBoxError::Auth {
                        method,
                        url,
                        status,
                        detail,
                    }
                } else {
                    NetBoxError::Status {
                        method,
                        url,
                        status,
                        detail,
                    }
                },
            ))
        };
        BACKOFF
            .run(self.retries, attempt)
            .await
            .map_err(|e| match e {
                Failed::Fatal(e) => e,
                Failed::Exhausted { attempts, last } => NetBoxError::Unreachable {
                    url: shown.clone(),
                    attempts,
                    detail: last,
                },
            })
    }
}

/// Pauses between attempts: 200 ms, doubling, at most 2 s.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(200),
    max: Duration::from_secs(2),
};

/// What an error answer says: NetBox's `detail` field, or the start of the body.
fn answer_detail(text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        if let Some(d) = v.get("detail").and_then(Value::as_str) {
            return d.to_owned();
        }
        let mut compact = v.to_string();
        compact.truncate(300);
        return compact;
    }
    let mut t: String = text.chars().take(200).collect();
    if t.is_empty() {
        t.push_str("empty body");
    }
    t
}

fn device_id(device: &Value) -> Result<i64, NetBoxError> {
    device
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| NetBoxError::Shape {
            url: "/api/dcim/devices/".into(),
            detail: "a device without an id".into(),
        })
}

/// The record a policy and its templates see for a NetBox device: plain names instead of
/// nested API objects where a template wants text, addresses split for IOS-style
/// `ip address A MASK` lines, custom fields and the rendered config context as they are.
///
/// ```json
/// { "name": "fra2-acc0001", "hostname": "fra2-acc0001", "serial": "FOC2101B001",
///   "status": "planned", "site": {"name": "FRA2", "slug": "fra2"}, "role": {...},
///   "platform": {...}, "tenant": {...} | null, "device_type": {...},
///   "primary_ip4": {"address": "192.0.2.11/24", "ip": "192.0.2.11", "prefix_len": 24,
///                   "netmask": "255.255.255.0"} | null, "primary_ip6": ... | null,
///   "custom_fields": {...}, "config_context": {...},
///   "netbox": {"id": 7, "url": "https://netbox.example.net/dcim/devices/7/"} }
/// ```
pub fn device_record(device: &Value, base: &str) -> Value {
    let named = |key: &str| match device.get(key) {
        Some(Value::Object(o)) => {
            let mut m = Map::new();
            for k in ["id", "name", "slug"] {
                if let Some(v) = o.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
            if let Some(v) = o.get("model") {
                m.insert("model".into(), v.clone());
            }
            Value::Object(m)
        }
        _ => Value::Null,
    };
    let id = device.get("id").cloned().unwrap_or(Value::Null);
    let name = device.get("name").cloned().unwrap_or(Value::Null);
    let status = match device.get("status") {
        Some(Value::Object(o)) => o.get("value").cloned().unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    json!({
        "name": name,
        "hostname": name,
        "serial": device.get("serial").cloned().unwrap_or(Value::Null),
        "status": status,
        "site": named("site"),
        "role": named("role"),
        "platform": named("platform"),
        "tenant": named("tenant"),
        "device_type": named("device_type"),
        "primary_ip4": address(device.get("primary_ip4")),
        "primary_ip6": address(device.get("primary_ip6")),
        "custom_fields": device.get("custom_fields").cloned().unwrap_or_else(|| json!({})),
        "config_context": device.get("config_context").cloned().unwrap_or_else(|| json!({})),
        "netbox": { "id": id, "url": format!("{base}/dcim/devices/{id}/") },
    })
}

fn address(ip: Option<&Value>) -> Value {
    let Some(text) = ip.and_then(|v| v.get("address")).and_then(Value::as_str) else {
        return Value::Null;
    };
    match text.parse::<ipnet::IpNet>() {
        Ok(net) => json!({
            "address": text,
            "ip": net.addr().to_string(),
            "prefix_len": net.prefix_len(),
            "netmask": net.netmask().to_string(),
        }),
        Err(_) => json!({ "address": text }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_flatten_what_templates_need() {
        let device = json!({
            "id": 7, "name": "fra2-acc0001", "serial": "FOC2101B001",
            "status": {"value": "planned", "label": "Planned"},
            "site": {"id": 1, "name": "FRA2", "slug": "fra2", "url": "x", "display": "FRA2"},
            "primary_ip4": {"id": 3, "address": "192.0.2.11/24", "family": {"value": 4}},
            "primary_ip6": null,
            "custom_fields": {"ztp_state": null},
            "config_context": {"ntp_servers": ["192.0.2.123"]},
        });
        let r = device_record(&device, "https://nb.example.net");
        assert_eq!(r["status"], "planned");
        assert_eq!(r["site"], json!({"id": 1, "name": "FRA2", "slug": "fra2"}));
        assert_eq!(r["primary_ip4"]["ip"], "192.0.2.11");
        assert_eq!(r["primary_ip4"]["netmask"], "255.255.255.0");
        assert_eq!(r["primary_ip6"], Value::Null);
        assert_eq!(r["role"], Value::Null);
        assert_eq!(r["config_context"]["ntp_servers"][0], "192.0.2.123");
        assert_eq!(r["netbox"]["url"], "https://nb.example.net/dcim/devices/7/");
    }

    #[test]
    fn error_answers_keep_netbox_words() {
        assert_eq!(
            answer_detail(r#"{"detail": "Invalid token"}"#),
            "Invalid token"
        );
        assert_eq!(answer_detail(""), "empty body");
        assert!(answer_detail(r#"{"status": ["bad choice"]}"#).contains("bad choice"));
    }
}

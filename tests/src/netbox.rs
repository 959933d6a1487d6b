//! A real NetBox for the tests, started once per run by `tests/peers/netbox/start_netbox.sh`
//! (PostgreSQL, Redis and NetBox from PyPI, all on loopback; the first start migrates the
//! database, about 4.5 minutes here). Every NetBox test of a run shares it; each test
//! creates its own devices (unique serials) through the REST API.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::repo_root;

/// Where the shared NetBox keeps its state (`target/` is ignored by git).
pub fn state_dir() -> PathBuf {
    std::env::var_os("ZTPD_NETBOX_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/netbox-state"))
}

/// The running NetBox: its URL and two API tokens with write access.
#[derive(Debug, Clone)]
pub struct NetBox {
    pub url: String,
    /// A v1 token (40 hex characters), sent as `Authorization: Token ...`.
    pub token_v1: String,
    /// A v2 token (`nbt_<key>.<token>`), sent as `Authorization: Bearer ...`.
    pub token_v2: String,
}

static SHARED: OnceCell<NetBox> = OnceCell::const_new();

/// The shared NetBox, started on first use; a NetBox that cannot start fails the test
/// (the tests that need it are `#[ignore]`d and run explicitly, never passed silently).
pub async fn shared() -> NetBox {
    SHARED
        .get_or_init(|| async {
            let state = state_dir();
            let script = repo_root().join("tests/peers/netbox/start_netbox.sh");
            let out = tokio::process::Command::new("bash")
                .arg(&script)
                .arg(&state)
                .output()
                .await
                .expect("run start_netbox.sh");
            assert!(
                out.status.success(),
                "start_netbox.sh failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let text = std::fs::read_to_string(state.join("netbox.env")).expect("netbox.env");
            let env: HashMap<&str, &str> = text
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"').trim_matches('\'')))
                .collect();
            let get = |k: &str| {
                env.get(k)
                    .unwrap_or_else(|| panic!("netbox.env has no {k}: {text}"))
                    .to_string()
            };
            NetBox {
                url: get("NETBOX_URL").trim_end_matches('/').to_owned(),
                token_v1: get("NETBOX_TOKEN_V1"),
                token_v2: get("NETBOX_TOKEN_V2"),
            }
        })
        .await
        .clone()
}

/// A device to create in NetBox.
#[derive(Debug, Clone)]
pub struct NewDevice<'a> {
    pub name: &'a str,
    pub serial: &'a str,
    pub mac: &'a str,
    /// Primary IPv4 with prefix length (a documentation address, never 10.x).
    pub ip: &'a str,
    /// The device's local config context (e.g. `{"ztp": {"wait_s": 0, "ssh_port": N}}`).
    pub local_context: Value,
}

/// Ids of a created device.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: i64,
}

/// The config template the shared site's devices render with in NetBox.
pub const NETBOX_TEMPLATE: &str = "hostname {{ device.name }}\n{% for server in ntp_servers %}ntp server {{ server }}\n{% endfor %}";

impl NetBox {
    /// One API call with the v1 token; panics with NetBox's answer on failure.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = crate::client()
            .request(method.clone(), format!("{}{path}", self.url))
            .header("Authorization", format!("Token {}", self.token_v1))
            .header("Accept", "application/json");
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.expect("NetBox request");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "NetBox {method} {path} {body:?} answered {status}: {text}"
        );
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("NetBox JSON")
        }
    }

    async fn first_id(&self, path: &str) -> Option<i64> {
        self.api(reqwest::Method::GET, path, None).await["results"]
            .as_array()
            .and_then(|r| r.first())
            .and_then(|o| o["id"].as_i64())
    }

    /// The object at `list_path` whose `slug` (or `name`) is `key`, created from `body`
    /// if missing. Tests run in parallel: a create that loses the race is looked up again.
    async fn ensure(&self, list_path: &str, field: &str, key: &str, body: Value) -> i64 {
        let path = format!("{list_path}?{field}={key}");
        if let Some(id) = self.first_id(&path).await {
            return id;
        }
        let response = crate::client()
            .post(format!("{}{list_path}", self.url))
            .header("Authorization", format!("Token {}", self.token_v1))
            .json(&body)
            .send()
            .await
            .expect("NetBox create");
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return answer["id"].as_i64().expect("created object id");
        }
        self.first_id(&path)
            .await
            .unwrap_or_else(|| panic!("cannot create {list_path} {key}: {status} {answer}"))
    }

    /// The shared site, its types and the `ztp_state` custom field; returns the ids
    /// devices need: (site, device type, role, platform, config template).
    async fn scaffold(&self) -> (i64, i64, i64, i64, i64) {
        let site = self
            .ensure(
                "/api/dcim/sites/",
                "slug",
                "ztpd-lab",
                json!({"name": "ztpd-lab", "slug": "ztpd-lab", "status": "active"}),
            )
            .await;
        let maker = self
            .ensure(
                "/api/dcim/manufacturers/",
                "slug",
                "cisco",
                json!({"name": "Cisco", "slug": "cisco"}),
            )
            .await;
        let device_type = self
            .ensure(
                "/api/dcim/device-types/",
                "slug",
                "c9300-48p",
                json!({"manufacturer": maker, "model": "C9300-48P", "slug": "c9300-48p"}),
            )
            .await;
        let role = self
            .ensure(
                "/api/dcim/device-roles/",
                "slug",
                "access",
                json!({"name": "access", "slug": "access", "color": "2196f3"}),
            )
            .await;
        let platform = self
            .ensure(
                "/api/dcim/platforms/",
                "slug",
                "cisco_iosxe",
                json!({"name": "cisco_iosxe", "slug": "cisco_iosxe", "manufacturer": maker}),
            )
            .await;
        self.ensure(
            "/api/extras/custom-fields/",
            "name",
            "ztp_state",
            json!({"name": "ztp_state", "type": "text", "object_types": ["dcim.device"]}),
        )
        .await;
        self.ensure(
            "/api/extras/config-contexts/",
            "name",
            "ztpd-lab",
            json!({
                "name": "ztpd-lab",
                "sites": [site],
                "data": {
                    "domain": "lab.example.net",
                    "mgmt_interface": "GigabitEthernet0/0",
                    "mgmt_gateway": "192.0.2.1",
                    "ntp_servers": ["192.0.2.123", "192.0.2.124"],
                    "vlans": [{"id": 100, "name": "USERS"}, {"id": 999, "name": "MGMT"}],
                },
            }),
        )
        .await;
        let template = self
            .ensure(
                "/api/extras/config-templates/",
                "name",
                "ztpd-lab",
                json!({"name": "ztpd-lab", "template_code": NETBOX_TEMPLATE}),
            )
            .await;
        (site, device_type, role, platform, template)
    }

    /// Create a device (status planned) with an interface, its MAC and a primary IPv4.
    pub async fn add_device(&self, d: &NewDevice<'_>) -> Created {
        use reqwest::Method;
        let (site, device_type, role, platform, template) = self.scaffold().await;
        let device = self
            .api(
                Method::POST,
                "/api/dcim/devices/",
                Some(json!({
                    "name": d.name,
                    "serial": d.serial,
                    "status": "planned",
                    "site": site,
                    "device_type": device_type,
                    "role": role,
                    "platform": platform,
                    "config_template": template,
                    "local_context_data": d.local_context,
                })),
            )
            .await;
        let id = device["id"].as_i64().expect("device id");
        let interface = self
            .api(
                Method::POST,
                "/api/dcim/interfaces/",
                Some(json!({"device": id, "name": "GigabitEthernet0/0", "type": "1000base-t"})),
            )
            .await["id"]
            .as_i64()
            .expect("interface id");
        self.api(
            Method::POST,
            "/api/dcim/mac-addresses/",
            Some(json!({
                "mac_address": d.mac,
                "assigned_object_type": "dcim.interface",
                "assigned_object_id": interface,
            })),
        )
        .await;
        let ip = self
            .api(
                Method::POST,
                "/api/ipam/ip-addresses/",
                Some(json!({
                    "address": d.ip,
                    "status": "active",
                    "assigned_object_type": "dcim.interface",
                    "assigned_object_id": interface,
                })),
            )
            .await["id"]
            .as_i64()
            .expect("ip id");
        self.api(
            Method::PATCH,
            &format!("/api/dcim/devices/{id}/"),
            Some(json!({"primary_ip4": ip})),
        )
        .await;
        Created { id }
    }

    /// The device as NetBox has it now.
    pub async fn device(&self, id: i64) -> Value {
        self.api(
            reqwest::Method::GET,
            &format!("/api/dcim/devices/{id}/"),
            None,
        )
        .await
    }

    /// The device's journal entries.
    pub async fn journal(&self, id: i64) -> Vec<Value> {
        let path = format!(
            "/api/extras/journal-entries/?assigned_object_type=dcim.device&assigned_object_id={id}"
        );
        self.api(reqwest::Method::GET, &path, None).await["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// A serial no other test (or earlier run against the same NetBox) has used.
pub fn unique_serial(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}{:08X}", (nanos as u64) & 0xFFFF_FFFF)
}

/// A locally administered MAC derived from a serial (unique like the serial).
pub fn mac_for(serial: &str) -> String {
    let h = serial.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let b = h.to_be_bytes();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

//! What a policy decided, in the host's own types. The policy engine converts the WIT
//! `decision` into these; everything after the call (replies, jobs, the job store) uses
//! only these, so nothing outside `policy/` depends on wasmtime.

use serde::{Deserialize, Serialize};

/// A reply body with its content type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub content_type: String,
    #[serde(with = "body_text")]
    pub body: Vec<u8>,
}

/// Render `template` with `vars` (JSON object text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Render {
    pub template: String,
    pub vars: String,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshPush {
    pub platform: String,
    pub credential: String,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub host_key: Option<String>,
    pub save: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitoringAdd {
    pub sink: String,
    pub name: String,
    pub host: Option<String>,
    pub group: Option<String>,
    pub template: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InventoryChange {
    Status(String),
    CustomField { name: String, json_value: String },
    Journal(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub name: String,
    pub event: String,
    pub data: String,
}

/// One step of a provisioning plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Render(Render),
    Wait { seconds: u32 },
    SshPush(SshPush),
    RegisterMonitoring(MonitoringAdd),
    UpdateInventory(InventoryChange),
    Webhook(Webhook),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub ack: Option<Content>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reply(Content),
    Render(Render),
    Plan(Plan),
    UnknownDevice(String),
    Reject(String),
}

/// Bodies are stored as text when they are UTF-8 (configs, scripts), which keeps job
/// records readable; anything else is rare enough to store lossy.
mod body_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(body))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

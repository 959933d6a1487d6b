//! What a policy decided, in the host's own types. The policy engine converts the WIT
//! `decision` into these; everything after the call (replies, jobs, the job store) uses
//! only these, so nothing outside `policy/` depends on wasmtime.
//! Every contract version converts into these types.

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

/// A file of the tenant's files folder, served as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Path inside the tenant's files folder.
    pub name: String,
    pub content_type: Option<String>,
}

/// A step kind a dialect adds, by name, with JSON data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionStep {
    pub kind: String,
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
    Extension(ExtensionStep),
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
    ServeFile(FileRef),
    Plan(Plan),
    UnknownDevice(String),
    Reject(String),
}

impl Decision {
    /// Bytes the decision asks the host to send or keep: reply bodies, variables, every
    /// step's data. Checked against the tenant's reply limit.
    pub fn bytes(&self) -> usize {
        fn render(r: &Render) -> usize {
            r.template.len() + r.vars.len() + r.content_type.len()
        }
        fn step(s: &Step) -> usize {
            match s {
                Step::Render(r) => render(r),
                Step::Wait { .. } => 4,
                Step::SshPush(p) => {
                    p.platform.len()
                        + p.credential.len()
                        + p.address.as_ref().map_or(0, String::len)
                        + p.host_key.as_ref().map_or(0, String::len)
                }
                Step::RegisterMonitoring(m) => {
                    m.sink.len()
                        + m.name.len()
                        + [&m.host, &m.group, &m.template]
                            .iter()
                            .map(|o| o.as_ref().map_or(0, String::len))
                            .sum::<usize>()
                }
                Step::UpdateInventory(InventoryChange::Status(s) | InventoryChange::Journal(s)) => {
                    s.len()
                }
                Step::UpdateInventory(InventoryChange::CustomField { name, json_value }) => {
                    name.len() + json_value.len()
                }
                Step::Webhook(w) => w.name.len() + w.event.len() + w.data.len(),
                Step::Extension(e) => e.kind.len() + e.data.len(),
            }
        }
        match self {
            Decision::Reply(c) => c.body.len() + c.content_type.len(),
            Decision::Render(r) => render(r),
            Decision::ServeFile(f) => f.name.len(),
            Decision::Plan(p) => {
                p.ack
                    .as_ref()
                    .map_or(0, |c| c.body.len() + c.content_type.len())
                    + p.steps.iter().map(step).sum::<usize>()
            }
            Decision::UnknownDevice(r) | Decision::Reject(r) => r.len(),
        }
    }
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

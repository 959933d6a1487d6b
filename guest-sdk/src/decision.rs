//! What a policy tells the host to do: a [`Decision`], and for provisioning later a
//! [`Plan`] of [`Step`]s. Plain data (compare them in tests); the SDK converts them to the
//! contract's types when the policy returns.

use crate::Vars;
use crate::bindings::ztpd::policy::types as wit;

/// A reply body with its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Content {
    pub fn new(content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Content {
            content_type: content_type.into(),
            body: body.into(),
        }
    }

    fn into_wit(self) -> wit::Content {
        wit::Content {
            content_type: self.content_type,
            body: self.body,
        }
    }
}

/// The policy's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Reply with this content as it is.
    Reply(Content),
    /// Render `template` with `vars`; the host replies with the result.
    Render {
        template: String,
        vars: Vars,
        content_type: String,
    },
    /// Reply with a file of the tenant's files folder (installer images), streamed by the
    /// host.
    ServeFile {
        name: String,
        content_type: Option<String>,
    },
    /// Acknowledge now, then run the plan's steps in the background.
    Plan(Plan),
    /// Not a device this policy knows (404 with the reason).
    UnknownDevice(String),
    /// Refuse the device (403 with the reason).
    Reject(String),
}

impl From<Plan> for Decision {
    fn from(plan: Plan) -> Self {
        Decision::Plan(plan)
    }
}

impl Decision {
    /// Reply with an EOS startup-config (or any plain-text config).
    pub fn config(text: impl Into<String>) -> Self {
        Decision::Reply(Content::new("text/plain", text.into()))
    }

    /// Reply with a script (EOS runs a bootfile that starts with `#!`).
    pub fn script(content_type: impl Into<String>, text: impl Into<String>) -> Self {
        Decision::Reply(Content::new(content_type, text.into()))
    }

    /// Render a config template with these variables (`text/plain`).
    pub fn render_config(template: impl Into<String>, vars: impl Into<Vars>) -> Self {
        Decision::Render {
            template: template.into(),
            vars: vars.into(),
            content_type: "text/plain".into(),
        }
    }

    /// Render a template with these variables, replying with `content_type`
    /// (`text/x-python` for an IOS XE script).
    pub fn render(
        template: impl Into<String>,
        vars: impl Into<Vars>,
        content_type: impl Into<String>,
    ) -> Self {
        Decision::Render {
            template: template.into(),
            vars: vars.into(),
            content_type: content_type.into(),
        }
    }

    /// Reply with the file `name` of the tenant's files folder.
    pub fn serve_file(name: impl Into<String>) -> Self {
        Decision::ServeFile {
            name: name.into(),
            content_type: None,
        }
    }

    pub fn unknown_device(reason: impl Into<String>) -> Self {
        Decision::UnknownDevice(reason.into())
    }

    pub fn reject(reason: impl Into<String>) -> Self {
        Decision::Reject(reason.into())
    }

    /// The plan, if this is one.
    pub fn as_plan(&self) -> Option<&Plan> {
        match self {
            Decision::Plan(p) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn into_wit(self) -> wit::Decision {
        match self {
            Decision::Reply(c) => wit::Decision::Reply(c.into_wit()),
            Decision::Render {
                template,
                vars,
                content_type,
            } => wit::Decision::Render(wit::Render {
                template,
                vars: vars.into_json(),
                content_type,
            }),
            Decision::ServeFile { name, content_type } => {
                wit::Decision::ServeFile(wit::File { name, content_type })
            }
            Decision::Plan(p) => wit::Decision::Plan(wit::Plan {
                ack: p.ack.map(Content::into_wit),
                steps: p.steps.into_iter().map(Step::into_wit).collect(),
            }),
            Decision::UnknownDevice(r) => wit::Decision::UnknownDevice(r),
            Decision::Reject(r) => wit::Decision::Reject(r),
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Render the device's configuration; later push steps send it.
    Render {
        template: String,
        vars: Vars,
        content_type: String,
    },
    /// Wait this many seconds for the device to finish booting.
    Wait(u32),
    SshPush(SshPush),
    RegisterMonitoring(MonitoringAdd),
    UpdateInventory(InventoryChange),
    Webhook(Webhook),
    /// A step kind a later dialect adds, by name, with JSON data.
    Extension {
        kind: String,
        data: String,
    },
}

impl Step {
    fn into_wit(self) -> wit::Step {
        match self {
            Step::Render {
                template,
                vars,
                content_type,
            } => wit::Step::Render(wit::Render {
                template,
                vars: vars.into_json(),
                content_type,
            }),
            Step::Wait(s) => wit::Step::Wait(s),
            Step::SshPush(p) => wit::Step::SshPush(wit::SshPush {
                platform: p.platform,
                credential: p.credential,
                address: p.address,
                port: p.port,
                host_key: p.host_key,
                save: p.save,
            }),
            Step::RegisterMonitoring(m) => wit::Step::RegisterMonitoring(wit::MonitoringAdd {
                sink: m.sink,
                name: m.name,
                host: m.host,
                group: m.group,
                template: m.template,
            }),
            Step::UpdateInventory(c) => wit::Step::UpdateInventory(match c {
                InventoryChange::Status(s) => wit::InventoryChange::Status(s),
                InventoryChange::CustomField { name, json_value } => {
                    wit::InventoryChange::CustomField((name, json_value))
                }
                InventoryChange::Journal(j) => wit::InventoryChange::Journal(j),
            }),
            Step::Webhook(w) => wit::Step::Webhook(wit::Webhook {
                name: w.name,
                event: w.event,
                data: w.data,
            }),
            Step::Extension { kind, data } => {
                wit::Step::Extension(wit::ExtensionStep { kind, data })
            }
        }
    }
}

/// A provisioning plan: an acknowledgement now, steps later, run by the host as a
/// persisted job. Build it step by step; it converts into a [`Decision`]:
///
/// ```ignore
/// let decision: Decision = Plan::new()
///     .render("config.j2", vars)
///     .wait(30)
///     .ssh_push(SshPush::new("cisco_iosxe", "ztp"))
///     .into();
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub ack: Option<Content>,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reply to the device with this instead of the host's default acknowledgement.
    pub fn ack(mut self, content: Content) -> Self {
        self.ack = Some(content);
        self
    }

    /// Render the device's configuration; later push steps send it.
    pub fn render(mut self, template: impl Into<String>, vars: impl Into<Vars>) -> Self {
        self.steps.push(Step::Render {
            template: template.into(),
            vars: vars.into(),
            content_type: "text/plain".into(),
        });
        self
    }

    /// Wait for the device to finish booting.
    pub fn wait(mut self, seconds: u32) -> Self {
        self.steps.push(Step::Wait(seconds));
        self
    }

    pub fn ssh_push(mut self, push: SshPush) -> Self {
        self.steps.push(Step::SshPush(push));
        self
    }

    pub fn register_monitoring(mut self, add: MonitoringAdd) -> Self {
        self.steps.push(Step::RegisterMonitoring(add));
        self
    }

    pub fn update_inventory(mut self, change: InventoryChange) -> Self {
        self.steps.push(Step::UpdateInventory(change));
        self
    }

    pub fn webhook(mut self, hook: Webhook) -> Self {
        self.steps.push(Step::Webhook(hook));
        self
    }

    /// A step a later dialect defines, by kind, with JSON data.
    pub fn extension(
        mut self,
        kind: impl Into<String>,
        data: &impl serde::Serialize,
    ) -> Result<Self, crate::Error> {
        self.steps.push(Step::Extension {
            kind: kind.into(),
            data: serde_json::to_string(data)?,
        });
        Ok(self)
    }

    /// The plan as a decision (the same as `.into()`).
    pub fn build(self) -> Decision {
        Decision::Plan(self)
    }
}

/// Push the rendered configuration over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPush {
    pub platform: String,
    pub credential: String,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub host_key: Option<String>,
    pub save: bool,
}

impl SshPush {
    /// `platform` is `cisco_iosxe` or `arista_eos`; `credential` names a credential in
    /// the tenant's configuration (its `callback.script_credential` is the one-time
    /// credential the served script created on the device).
    pub fn new(platform: impl Into<String>, credential: impl Into<String>) -> Self {
        SshPush {
            platform: platform.into(),
            credential: credential.into(),
            address: None,
            port: None,
            host_key: None,
            save: true,
        }
    }

    /// Connect here instead of the address the call-back came from (it must be the
    /// device's own address or inside the tenant's `push_networks`).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Pin the device's host key instead of trusting it on first use.
    pub fn host_key(mut self, key: impl Into<String>) -> Self {
        self.host_key = Some(key.into());
        self
    }

    pub fn save(mut self, save: bool) -> Self {
        self.save = save;
        self
    }
}

/// Register the device in a monitoring sink configured for the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringAdd {
    pub sink: String,
    pub name: String,
    pub host: Option<String>,
    pub group: Option<String>,
    pub template: Option<String>,
}

impl MonitoringAdd {
    pub fn new(sink: impl Into<String>, name: impl Into<String>) -> Self {
        MonitoringAdd {
            sink: sink.into(),
            name: name.into(),
            host: None,
            group: None,
            template: None,
        }
    }

    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    pub fn template(mut self, template: impl Into<String>) -> Self {
        self.template = Some(template.into());
        self
    }
}

/// A change written back to the tenant's source of truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryChange {
    Status(String),
    CustomField { name: String, json_value: String },
    Journal(String),
}

impl InventoryChange {
    /// Set custom field `name` to any serde value.
    pub fn custom_field(
        name: impl Into<String>,
        value: &impl serde::Serialize,
    ) -> Result<Self, crate::Error> {
        Ok(InventoryChange::CustomField {
            name: name.into(),
            json_value: serde_json::to_string(value)?,
        })
    }
}

/// A signed JSON event to a webhook configured for the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub name: String,
    pub event: String,
    /// A JSON object merged into the event body.
    pub data: String,
}

impl Webhook {
    pub fn new(name: impl Into<String>, event: impl Into<String>) -> Self {
        Webhook {
            name: name.into(),
            event: event.into(),
            data: "{}".into(),
        }
    }

    /// Extra fields for the event body, from any serde value that is an object.
    pub fn data(mut self, data: &impl serde::Serialize) -> Result<Self, crate::Error> {
        self.data = serde_json::to_string(data)?;
        Ok(self)
    }
}

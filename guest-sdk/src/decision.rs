//! What a policy tells the host to do.

use crate::Vars;
use crate::bindings::ztpd::policy::types as wit;

/// A reply body with its content type.
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
pub enum Decision {
    /// Reply with this content as it is.
    Reply(Content),
    /// Render `template` with `vars`; the host replies with the result.
    Render {
        template: String,
        vars: Vars,
        content_type: String,
    },
    /// Acknowledge now, then run the plan's steps in the background.
    Plan(Plan),
    /// Not a device this policy knows (404 with the reason).
    UnknownDevice(String),
    /// Refuse the device (403 with the reason).
    Reject(String),
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
    pub fn render_config(template: impl Into<String>, vars: Vars) -> Self {
        Decision::Render {
            template: template.into(),
            vars,
            content_type: "text/plain".into(),
        }
    }

    /// Render a template with these variables, replying with `content_type`
    /// (`text/x-python` for an IOS XE script).
    pub fn render(
        template: impl Into<String>,
        vars: Vars,
        content_type: impl Into<String>,
    ) -> Self {
        Decision::Render {
            template: template.into(),
            vars,
            content_type: content_type.into(),
        }
    }

    pub fn unknown_device(reason: impl Into<String>) -> Self {
        Decision::UnknownDevice(reason.into())
    }

    pub fn reject(reason: impl Into<String>) -> Self {
        Decision::Reject(reason.into())
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
            Decision::Plan(p) => wit::Decision::Plan(wit::Plan {
                ack: p.ack.map(Content::into_wit),
                steps: p.steps,
            }),
            Decision::UnknownDevice(r) => wit::Decision::UnknownDevice(r),
            Decision::Reject(r) => wit::Decision::Reject(r),
        }
    }
}

/// A provisioning plan: an acknowledgement now, steps later, run by the host as a
/// persisted job. Build it step by step:
///
/// ```ignore
/// Plan::new()
///     .render("config.j2", vars)
///     .wait(30)
///     .ssh_push(SshPush::new("cisco_iosxe", "ztp-temporary"))
/// ```
#[derive(Debug, Clone, Default)]
pub struct Plan {
    ack: Option<Content>,
    steps: Vec<wit::Step>,
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
    pub fn render(mut self, template: impl Into<String>, vars: Vars) -> Self {
        self.steps.push(wit::Step::Render(wit::Render {
            template: template.into(),
            vars: vars.into_json(),
            content_type: "text/plain".into(),
        }));
        self
    }

    /// Wait for the device to finish booting.
    pub fn wait(mut self, seconds: u32) -> Self {
        self.steps.push(wit::Step::Wait(seconds));
        self
    }

    pub fn ssh_push(mut self, push: SshPush) -> Self {
        self.steps.push(wit::Step::SshPush(push.0));
        self
    }

    pub fn register_monitoring(mut self, add: MonitoringAdd) -> Self {
        self.steps.push(wit::Step::RegisterMonitoring(add.0));
        self
    }

    pub fn update_inventory(mut self, change: InventoryChange) -> Self {
        self.steps
            .push(wit::Step::UpdateInventory(change.into_wit()));
        self
    }

    pub fn webhook(mut self, hook: Webhook) -> Self {
        self.steps.push(wit::Step::Webhook(hook.0));
        self
    }

    pub fn build(self) -> Decision {
        Decision::Plan(self)
    }
}

/// Push the rendered configuration over SSH.
#[derive(Debug, Clone)]
pub struct SshPush(wit::SshPush);

impl SshPush {
    /// `platform` is `cisco_iosxe` or `arista_eos`; `credential` names a credential in
    /// the tenant's configuration.
    pub fn new(platform: impl Into<String>, credential: impl Into<String>) -> Self {
        SshPush(wit::SshPush {
            platform: platform.into(),
            credential: credential.into(),
            address: None,
            port: None,
            host_key: None,
            save: true,
        })
    }

    /// Connect here instead of the address the call-back came from.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.0.address = Some(address.into());
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.0.port = Some(port);
        self
    }

    /// Pin the device's host key instead of trusting it on first use.
    pub fn host_key(mut self, key: impl Into<String>) -> Self {
        self.0.host_key = Some(key.into());
        self
    }

    pub fn save(mut self, save: bool) -> Self {
        self.0.save = save;
        self
    }
}

/// Register the device in a monitoring sink configured for the tenant.
#[derive(Debug, Clone)]
pub struct MonitoringAdd(wit::MonitoringAdd);

impl MonitoringAdd {
    pub fn new(sink: impl Into<String>, name: impl Into<String>) -> Self {
        MonitoringAdd(wit::MonitoringAdd {
            sink: sink.into(),
            name: name.into(),
            host: None,
            group: None,
            template: None,
        })
    }

    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.0.host = Some(host.into());
        self
    }

    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.0.group = Some(group.into());
        self
    }

    pub fn template(mut self, template: impl Into<String>) -> Self {
        self.0.template = Some(template.into());
        self
    }
}

/// A change written back to the tenant's source of truth.
#[derive(Debug, Clone)]
pub enum InventoryChange {
    Status(String),
    CustomField { name: String, json_value: String },
    Journal(String),
}

impl InventoryChange {
    fn into_wit(self) -> wit::InventoryChange {
        match self {
            InventoryChange::Status(s) => wit::InventoryChange::Status(s),
            InventoryChange::CustomField { name, json_value } => {
                wit::InventoryChange::CustomField((name, json_value))
            }
            InventoryChange::Journal(j) => wit::InventoryChange::Journal(j),
        }
    }
}

/// A signed JSON event to a webhook configured for the tenant.
#[derive(Debug, Clone)]
pub struct Webhook(wit::Webhook);

impl Webhook {
    pub fn new(name: impl Into<String>, event: impl Into<String>) -> Self {
        Webhook(wit::Webhook {
            name: name.into(),
            event: event.into(),
            data: "{}".into(),
        })
    }

    pub fn data(mut self, data: Vars) -> Self {
        self.0.data = data.into_json();
        self
    }
}

//! Contract `ztpd:policy@0.1.0` (`guest-sdk/contracts/0.1.0/`), the first released
//! version, kept so policies built against it load and answer as they always did.
//!
//! Its dialect and stage are closed enums: a dialect it does not know reaches it as
//! `generic`, a stage other than bootstrap and callback as `report`. Its one `host`
//! interface reaches the same capability logic as the current contract.

use wasmtime::component::{HasSelf, Linker, bindgen};

use crate::model::{self, DeviceRequest, stage};
use crate::policy::capabilities::log::Level;
use crate::policy::state::HostState;

bindgen!({
    path: "../guest-sdk/contracts/0.1.0",
    world: "policy",
    imports: { default: async },
    exports: { default: async },
});

use self::ztpd::policy::{host, types as wit};

/// The dialect names 0.1.0 knows; any other is `generic` to it.
const ARISTA_EOS: &str = "arista-eos";
const CISCO_IOSXE: &str = "cisco-iosxe";

impl wit::Host for HostState {}

impl host::Host for HostState {
    async fn log(&mut self, level: host::Level, message: String) {
        let level = match level {
            host::Level::Trace => Level::Trace,
            host::Level::Debug => Level::Debug,
            host::Level::Info => Level::Info,
            host::Level::Warn => Level::Warn,
            host::Level::Error => Level::Error,
        };
        self.log.write(&self.info, level, &message);
    }

    async fn inventory_lookup(
        &mut self,
        field: String,
        value: String,
    ) -> Result<Option<String>, String> {
        self.in_import = Some("inventory-lookup");
        let found = self.inventory.lookup(&field, &value).await;
        self.in_import = None;
        found.map(|r| r.map(|json| json.to_string()))
    }

    async fn render(&mut self, template: String, vars: String) -> Result<String, String> {
        self.in_import = Some("render");
        let out = self.templates.render(&template, &vars).await;
        self.in_import = None;
        out
    }

    async fn kv_get(&mut self, key: String) -> Result<Option<String>, String> {
        self.in_import = Some("kv-get");
        let out = self.kv.get(&key).await;
        self.in_import = None;
        out
    }

    async fn kv_set(&mut self, key: String, value: String) -> Result<(), String> {
        self.kv.set(&key, value)
    }

    async fn kv_delete(&mut self, key: String) -> Result<(), String> {
        self.kv.delete(&key)
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    Policy::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)
}

pub(super) fn request(r: &DeviceRequest) -> Request {
    Request {
        tenant: r.tenant.clone(),
        stage: match &*r.stage {
            stage::BOOTSTRAP => wit::Stage::Bootstrap,
            stage::CALLBACK => wit::Stage::Callback,
            _ => wit::Stage::Report,
        },
        dialect: match &*r.dialect {
            ARISTA_EOS => wit::Dialect::AristaEos,
            CISCO_IOSXE => wit::Dialect::CiscoIosxe,
            _ => wit::Dialect::Generic,
        },
        identity: wit::Identity {
            mac: r.identity.mac.map(|m| m.to_string()),
            serial: r.identity.serial.clone(),
            model: r.identity.model.clone(),
            software_version: r.identity.software_version.clone(),
            source_ip: r.identity.source_ip.to_string(),
        },
        path: r.path.clone(),
        headers: r.headers.clone(),
        query: r.query.clone(),
        body: r.body.to_vec(),
    }
}

fn content(c: wit::Content) -> model::Content {
    model::Content {
        content_type: c.content_type,
        body: c.body,
    }
}

fn render(r: wit::Render) -> model::Render {
    model::Render {
        template: r.template,
        vars: r.vars,
        content_type: r.content_type,
    }
}

fn step(s: wit::Step) -> model::Step {
    use model::Step;
    match s {
        wit::Step::Render(r) => Step::Render(render(r)),
        wit::Step::Wait(seconds) => Step::Wait { seconds },
        wit::Step::SshPush(p) => Step::SshPush(model::SshPush {
            platform: p.platform,
            credential: p.credential,
            address: p.address,
            port: p.port,
            host_key: p.host_key,
            save: p.save,
        }),
        wit::Step::RegisterMonitoring(m) => Step::RegisterMonitoring(model::MonitoringAdd {
            sink: m.sink,
            name: m.name,
            host: m.host,
            group: m.group,
            template: m.template,
        }),
        wit::Step::UpdateInventory(c) => Step::UpdateInventory(match c {
            wit::InventoryChange::Status(s) => model::InventoryChange::Status(s),
            wit::InventoryChange::CustomField((name, json_value)) => {
                model::InventoryChange::CustomField { name, json_value }
            }
            wit::InventoryChange::Journal(j) => model::InventoryChange::Journal(j),
        }),
        wit::Step::Webhook(w) => Step::Webhook(model::Webhook {
            name: w.name,
            event: w.event,
            data: w.data,
        }),
    }
}

pub(super) fn decision(d: Decision) -> model::Decision {
    match d {
        wit::Decision::Reply(c) => model::Decision::Reply(content(c)),
        wit::Decision::Render(r) => model::Decision::Render(render(r)),
        wit::Decision::Plan(p) => model::Decision::Plan(model::Plan {
            ack: p.ack.map(content),
            steps: p.steps.into_iter().map(step).collect(),
        }),
        wit::Decision::UnknownDevice(reason) => model::Decision::UnknownDevice(reason),
        wit::Decision::Reject(reason) => model::Decision::Reject(reason),
    }
}

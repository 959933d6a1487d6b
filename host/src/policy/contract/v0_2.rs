//! Contract `ztpd:policy@0.2.0` (`guest-sdk/wit/`, the current version): dialect and
//! stage as open names, capabilities as separate interfaces (log, inventory, templates,
//! settings, kv). The capabilities implement its import traits in
//! [`crate::policy::capabilities`]; this file converts requests and decisions.

use wasmtime::component::bindgen;

use crate::model::{self, DeviceRequest};

bindgen!({
    path: "../guest-sdk/wit",
    world: "policy",
    imports: { default: async },
    exports: { default: async },
});

use self::ztpd::policy::types as wit;

impl self::ztpd::policy::types::Host for crate::policy::state::HostState {}

pub(super) fn request(r: &DeviceRequest) -> Request {
    Request {
        tenant: r.tenant.clone(),
        stage: r.stage.to_string(),
        dialect: r.dialect.to_string(),
        identity: wit::Identity {
            mac: r.identity.mac.map(|m| m.to_string()),
            serial: r.identity.serial.clone(),
            model: r.identity.model.clone(),
            software_version: r.identity.software_version.clone(),
            source_ip: r.identity.source_ip.to_string(),
            extra: r.identity.extra.clone(),
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
        wit::Step::Extension(e) => Step::Extension(model::ExtensionStep {
            kind: e.kind,
            data: e.data,
        }),
    }
}

pub(super) fn decision(d: Decision) -> model::Decision {
    match d {
        wit::Decision::Reply(c) => model::Decision::Reply(content(c)),
        wit::Decision::Render(r) => model::Decision::Render(render(r)),
        wit::Decision::ServeFile(f) => model::Decision::ServeFile(model::FileRef {
            name: f.name,
            content_type: f.content_type,
        }),
        wit::Decision::Plan(p) => model::Decision::Plan(model::Plan {
            ack: p.ack.map(content),
            steps: p.steps.into_iter().map(step).collect(),
        }),
        wit::Decision::UnknownDevice(reason) => model::Decision::UnknownDevice(reason),
        wit::Decision::Reject(reason) => model::Decision::Reject(reason),
    }
}

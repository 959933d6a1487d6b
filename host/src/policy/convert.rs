//! Conversions between the host's types and the WIT bindings. Kept here so nothing
//! outside `policy/` sees a generated type.

use super::bindings::Request as WitRequest;
use super::bindings::ztpd::policy::types as wit;
use crate::decision::{
    Content, Decision, InventoryChange, MonitoringAdd, Plan, Render, SshPush, Step, Webhook,
};
use crate::request::{DeviceRequest, Dialect, Stage};

pub(super) fn request_to_wit(r: &DeviceRequest) -> WitRequest {
    WitRequest {
        tenant: r.tenant.clone(),
        stage: match r.stage {
            Stage::Bootstrap => wit::Stage::Bootstrap,
            Stage::Callback => wit::Stage::Callback,
            Stage::Report => wit::Stage::Report,
        },
        dialect: match r.dialect {
            Dialect::AristaEos => wit::Dialect::AristaEos,
            Dialect::CiscoIosxe => wit::Dialect::CiscoIosxe,
            Dialect::Generic => wit::Dialect::Generic,
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

fn content(c: wit::Content) -> Content {
    Content {
        content_type: c.content_type,
        body: c.body,
    }
}

fn render(r: wit::Render) -> Render {
    Render {
        template: r.template,
        vars: r.vars,
        content_type: r.content_type,
    }
}

fn step(s: wit::Step) -> Step {
    match s {
        wit::Step::Render(r) => Step::Render(render(r)),
        wit::Step::Wait(seconds) => Step::Wait { seconds },
        wit::Step::SshPush(p) => Step::SshPush(SshPush {
            platform: p.platform,
            credential: p.credential,
            address: p.address,
            port: p.port,
            host_key: p.host_key,
            save: p.save,
        }),
        wit::Step::RegisterMonitoring(m) => Step::RegisterMonitoring(MonitoringAdd {
            sink: m.sink,
            name: m.name,
            host: m.host,
            group: m.group,
            template: m.template,
        }),
        wit::Step::UpdateInventory(c) => Step::UpdateInventory(match c {
            wit::InventoryChange::Status(s) => InventoryChange::Status(s),
            wit::InventoryChange::CustomField((name, json_value)) => {
                InventoryChange::CustomField { name, json_value }
            }
            wit::InventoryChange::Journal(j) => InventoryChange::Journal(j),
        }),
        wit::Step::Webhook(w) => Step::Webhook(Webhook {
            name: w.name,
            event: w.event,
            data: w.data,
        }),
    }
}

pub(super) fn decision_from_wit(d: super::bindings::Decision) -> Decision {
    match d {
        wit::Decision::Reply(c) => Decision::Reply(content(c)),
        wit::Decision::Render(r) => Decision::Render(render(r)),
        wit::Decision::Plan(p) => Decision::Plan(Plan {
            ack: p.ack.map(content),
            steps: p.steps.into_iter().map(step).collect(),
        }),
        wit::Decision::UnknownDevice(reason) => Decision::UnknownDevice(reason),
        wit::Decision::Reject(reason) => Decision::Reject(reason),
    }
}

/// Bytes the decision asks the host to send or store as they are.
pub(super) fn reply_size(d: &Decision) -> usize {
    match d {
        Decision::Reply(c) => c.body.len(),
        Decision::Render(r) => r.vars.len(),
        Decision::Plan(p) => {
            p.ack.as_ref().map_or(0, |c| c.body.len())
                + p.steps
                    .iter()
                    .map(|s| match s {
                        Step::Render(r) => r.vars.len(),
                        _ => 0,
                    })
                    .sum::<usize>()
        }
        Decision::UnknownDevice(r) | Decision::Reject(r) => r.len(),
    }
}

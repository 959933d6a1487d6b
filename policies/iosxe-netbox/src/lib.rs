//! The seed `iosxe-fastapi-netbox-scrapli`, whole: NetBox is the source of truth and PRTG
//! the monitoring.
//!
//! - IOS XE fetches `/script.py`: serve the guestshell script (`iosxe/script.py.j2`).
//! - IOS XE calls back with its serial: look it up in NetBox; unknown → the job fails
//!   saying so. Known → plan: render its config (ztpd's `iosxe/netbox.j2` from the NetBox
//!   record, or NetBox's own config template when the record's config context says
//!   `ztp.render = "netbox"`), wait for the device to finish booting, push over SSH with
//!   the temporary credential the script created, add it to PRTG (sink `prtg`), then set
//!   its NetBox status to active, its `ztp_state` custom field to `provisioned`, and add
//!   a journal entry.
//! - An Arista switch fetching `/dynconfig` is looked up by its system MAC and gets the
//!   config NetBox renders for it.
//!
//! The config context's `ztp` object tunes the plan per site or device: `wait_s`
//! (seconds to wait), `ssh_port` (default 22), `ssh_host_key` (pin the key), `render`
//! (`"netbox"` to render in NetBox). Site settings (`[tenants.settings]`): `credential`
//! (default `ztp`), `monitoring` (default `prtg`), `wait_s` (default 30).

use serde::Deserialize;
use ztpd_guest::{
    Decision, Error, InventoryChange, MonitoringAdd, Plan, Policy, RENDER_IN_NETBOX, Request,
    SshPush, Vars, dialect, export_policy, inventory, settings, stage,
};

#[derive(Deserialize)]
struct Device {
    name: Option<String>,
    #[serde(default)]
    config_context: Context,
}

#[derive(Deserialize, Default)]
struct Context {
    #[serde(default)]
    ztp: ZtpOptions,
}

#[derive(Deserialize, Default)]
struct ZtpOptions {
    wait_s: Option<u32>,
    ssh_port: Option<u16>,
    ssh_host_key: Option<String>,
    render: Option<String>,
}

struct IosxeNetbox;

impl Policy for IosxeNetbox {
    fn handle(req: Request) -> Result<Decision, Error> {
        match (req.stage(), req.dialect()) {
            (stage::BOOTSTRAP, dialect::ARISTA_EOS) => arista(&req),
            (stage::BOOTSTRAP, _) => Ok(Decision::render(
                "iosxe/script.py.j2",
                Vars::empty(),
                "text/x-python",
            )),
            (stage::CALLBACK, _) => callback(&req),
            (other, _) => Ok(Decision::reject(format!(
                "this site takes no {other} requests"
            ))),
        }
    }
}

fn arista(req: &Request) -> Result<Decision, Error> {
    let Some(mac) = req.mac() else {
        return Ok(Decision::reject(
            "the request carries no X-Arista-SystemMAC",
        ));
    };
    match inventory::by_mac(mac)? {
        Some(device) => Ok(Decision::render_config(RENDER_IN_NETBOX, device)),
        None => Ok(Decision::unknown_device(format!(
            "no device with MAC {mac} in NetBox"
        ))),
    }
}

fn callback(req: &Request) -> Result<Decision, Error> {
    let Some(serial) = req.serial() else {
        return Ok(Decision::reject("the call-back carries no serial number"));
    };
    let Some(record) = inventory::by_serial(serial)? else {
        return Ok(Decision::unknown_device(format!(
            "no device with serial {serial} in NetBox"
        )));
    };
    let device: Device = record.parse()?;
    let ztp = device.config_context.ztp;
    let name = device.name.unwrap_or_else(|| serial.to_owned());
    let template = match ztp.render.as_deref() {
        Some("netbox") => RENDER_IN_NETBOX,
        _ => "iosxe/netbox.j2",
    };
    let wait = match ztp.wait_s {
        Some(w) => w,
        None => settings::parse_or("wait_s", 30)?,
    };
    let mut push = SshPush::new("cisco_iosxe", settings::get_or("credential", "ztp"));
    if let Some(port) = ztp.ssh_port {
        push = push.port(port);
    }
    if let Some(key) = ztp.ssh_host_key {
        push = push.host_key(key);
    }
    Ok(Plan::new()
        .render(template, record)
        .wait(wait)
        .ssh_push(push)
        .register_monitoring(MonitoringAdd::new(
            settings::get_or("monitoring", "prtg"),
            name,
        ))
        .update_inventory(InventoryChange::Status("active".into()))
        .update_inventory(InventoryChange::custom_field("ztp_state", &"provisioned")?)
        .update_inventory(InventoryChange::Journal(format!(
            "Zero-touch provisioning of {serial} finished: config pushed over SSH, device added to monitoring."
        )))
        .into())
}

export_policy!(IosxeNetbox);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ztpd_guest::Step;
    use ztpd_guest::testing::TestHost;

    fn netbox_record(render: Option<&str>) -> serde_json::Value {
        json!({
            "name": "lab-r1",
            "serial": "FOC1",
            "config_context": {"ztp": {"wait_s": 1, "render": render}},
            "netbox": {"id": 7, "url": "http://netbox.invalid"}
        })
    }

    #[test]
    fn the_seed_plan_with_netbox_write_back() {
        let host = TestHost::new().record("lab-r1", netbox_record(None));
        let req = Request::builder(dialect::CISCO_IOSXE, stage::CALLBACK)
            .serial("FOC1")
            .build();
        let d = host.call::<IosxeNetbox>(req).unwrap();
        let steps = &d.as_plan().unwrap().steps;
        assert!(
            matches!(&steps[0], Step::Render { template, .. } if template == "iosxe/netbox.j2")
        );
        assert_eq!(steps[1], Step::Wait(1));
        assert_eq!(
            steps[3],
            Step::RegisterMonitoring(MonitoringAdd::new("prtg", "lab-r1"))
        );
        assert_eq!(
            steps[5],
            Step::UpdateInventory(InventoryChange::CustomField {
                name: "ztp_state".into(),
                json_value: "\"provisioned\"".into()
            })
        );
        assert_eq!(steps.len(), 7);
    }

    #[test]
    fn the_context_can_ask_netbox_to_render() {
        let host = TestHost::new().record("lab-r1", netbox_record(Some("netbox")));
        let req = Request::builder(dialect::CISCO_IOSXE, stage::CALLBACK)
            .serial("FOC1")
            .build();
        let d = host.call::<IosxeNetbox>(req).unwrap();
        assert!(matches!(&d.as_plan().unwrap().steps[0],
            Step::Render { template, .. } if template == RENDER_IN_NETBOX));
    }

    #[test]
    fn an_arista_switch_is_rendered_by_netbox_or_unknown() {
        let host = TestHost::new().record(
            "leaf1",
            json!({"name": "leaf1", "mac_address": "00:1c:73:00:00:09"}),
        );
        let req = |mac: &str| {
            Request::builder(dialect::ARISTA_EOS, stage::BOOTSTRAP)
                .mac(mac)
                .build()
        };
        let d = host.call::<IosxeNetbox>(req("001c.7300.0009")).unwrap();
        assert!(matches!(d, Decision::Render { template, .. } if template == RENDER_IN_NETBOX));
        let d = host.call::<IosxeNetbox>(req("00:1c:73:00:00:0a")).unwrap();
        assert!(matches!(d, Decision::UnknownDevice(_)));
    }
}

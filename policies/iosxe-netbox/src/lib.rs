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
//! (seconds to wait, default 30), `ssh_port` (default 22), `ssh_host_key` (pin the key),
//! `render` (`"netbox"` to render in NetBox).

use serde::Deserialize;
use ztpd_guest::{
    Decision, Dialect, Error, InventoryChange, MonitoringAdd, Plan, Policy, Request, SshPush,
    Stage, Vars, export_policy, inventory,
};

/// The credential (in the tenant's configuration) the served script creates on the device.
const CREDENTIAL: &str = "ztp";
/// The monitoring sink (in the tenant's configuration) devices are registered in.
const MONITORING: &str = "prtg";
const DEFAULT_WAIT_S: u32 = 30;
/// The render template that asks NetBox to render the device's config itself.
const RENDER_IN_NETBOX: &str = "netbox:render-config";

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
            (Stage::Bootstrap, Dialect::AristaEos) => arista(&req),
            (Stage::Bootstrap, _) => Ok(Decision::render(
                "iosxe/script.py.j2",
                Vars::from_json("{}"),
                "text/x-python",
            )),
            (Stage::Callback, _) => callback(&req),
            (Stage::Report, _) => Ok(Decision::reject("this site takes no reports")),
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
    let mut push = SshPush::new("cisco_iosxe", CREDENTIAL);
    if let Some(port) = ztp.ssh_port {
        push = push.port(port);
    }
    if let Some(key) = ztp.ssh_host_key {
        push = push.host_key(key);
    }
    Ok(Plan::new()
        .render(template, record)
        .wait(ztp.wait_s.unwrap_or(DEFAULT_WAIT_S))
        .ssh_push(push)
        .register_monitoring(MonitoringAdd::new(MONITORING, name))
        .update_inventory(InventoryChange::Status("active".into()))
        .update_inventory(InventoryChange::CustomField {
            name: "ztp_state".into(),
            json_value: "\"provisioned\"".into(),
        })
        .update_inventory(InventoryChange::Journal(format!(
            "Zero-touch provisioning of {serial} finished: config pushed over SSH, device added to monitoring."
        )))
        .build())
}

export_policy!(IosxeNetbox);

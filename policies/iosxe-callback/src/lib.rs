//! Cisco IOS XE call-back provisioning (the seed `iosxe-fastapi-netbox-scrapli`, with the
//! file inventory): serve the guestshell script; on call-back, look the serial up, render
//! `iosxe/config.j2`, wait for the device to finish booting (30 s as in the seed), then
//! push the config over SSH with the temporary credential the script created, and save.
//!
//! Optional fields of an inventory record tune the plan: `ztp_wait_s` (seconds to wait),
//! `ssh_port` (if not 22), `ssh_host_key` (pin the device's host key), `monitoring` (the
//! name of a monitoring sink of the tenant, e.g. `prtg`, to register the device in after
//! the push).

use serde::Deserialize;
use ztpd_guest::{
    Decision, Error, MonitoringAdd, Plan, Policy, Request, SshPush, Stage, Vars, export_policy,
    inventory,
};

/// The credential (in the tenant's configuration) the served script creates on the device.
const CREDENTIAL: &str = "ztp";
const DEFAULT_WAIT_S: u32 = 30;

#[derive(Deserialize)]
struct PushOptions {
    ztp_wait_s: Option<u32>,
    ssh_port: Option<u16>,
    ssh_host_key: Option<String>,
    hostname: Option<String>,
    monitoring: Option<String>,
}

struct IosxeCallback;

impl Policy for IosxeCallback {
    fn handle(req: Request) -> Result<Decision, Error> {
        match req.stage() {
            Stage::Bootstrap => Ok(Decision::render(
                "iosxe/script.py.j2",
                Vars::from_json("{}"),
                "text/x-python",
            )),
            Stage::Callback => callback(&req),
            Stage::Report => Ok(Decision::reject("this site takes no reports")),
        }
    }
}

fn callback(req: &Request) -> Result<Decision, Error> {
    let Some(serial) = req.serial() else {
        return Ok(Decision::reject("the call-back carries no serial number"));
    };
    let Some(device) = inventory::by_serial(serial)? else {
        return Ok(Decision::unknown_device(format!(
            "no device with serial {serial} in the inventory"
        )));
    };
    let options: PushOptions = device.parse()?;
    let mut push = SshPush::new("cisco_iosxe", CREDENTIAL);
    if let Some(port) = options.ssh_port {
        push = push.port(port);
    }
    if let Some(key) = options.ssh_host_key {
        push = push.host_key(key);
    }
    let mut plan = Plan::new()
        .render("iosxe/config.j2", device)
        .wait(options.ztp_wait_s.unwrap_or(DEFAULT_WAIT_S))
        .ssh_push(push);
    if let Some(sink) = options.monitoring {
        let name = options.hostname.unwrap_or_else(|| serial.to_owned());
        plan = plan.register_monitoring(MonitoringAdd::new(sink, name));
    }
    Ok(plan.build())
}

export_policy!(IosxeCallback);

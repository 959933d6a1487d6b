//! Cisco IOS XE call-back provisioning (the seed `iosxe-fastapi-netbox-scrapli`, with the
//! file inventory): serve the guestshell script; on call-back, look the serial up, render
//! `iosxe/config.j2`, wait for the device to finish booting (30 s as in the seed), then
//! push the config over SSH with the temporary credential the script created, and save.
//!
//! Site settings (`[tenants.settings]`): `credential` (default `ztp`: the credential the
//! served script creates), `wait_s` (default 30), `monitoring` (a sink to register every
//! device in). Fields of an inventory record override them per device: `ztp_wait_s`,
//! `ssh_port` (if not 22), `ssh_host_key` (pin the device's host key), `monitoring`.

use serde::Deserialize;
use ztpd_guest::{
    Decision, Error, MonitoringAdd, Plan, Policy, Request, SshPush, Vars, export_policy, inventory,
    settings, stage,
};

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
            stage::BOOTSTRAP => Ok(Decision::render(
                "iosxe/script.py.j2",
                Vars::empty(),
                "text/x-python",
            )),
            stage::CALLBACK => callback(&req),
            other => Ok(Decision::reject(format!(
                "this site takes no {other} requests"
            ))),
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
    let wait = match options.ztp_wait_s {
        Some(w) => w,
        None => settings::parse_or("wait_s", 30)?,
    };
    let mut push = SshPush::new("cisco_iosxe", settings::get_or("credential", "ztp"));
    if let Some(port) = options.ssh_port {
        push = push.port(port);
    }
    if let Some(key) = options.ssh_host_key {
        push = push.host_key(key);
    }
    let mut plan = Plan::new()
        .render("iosxe/config.j2", device)
        .wait(wait)
        .ssh_push(push);
    if let Some(sink) = options.monitoring.or_else(|| settings::get("monitoring")) {
        let name = options.hostname.unwrap_or_else(|| serial.to_owned());
        plan = plan.register_monitoring(MonitoringAdd::new(sink, name));
    }
    Ok(plan.into())
}

export_policy!(IosxeCallback);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ztpd_guest::testing::TestHost;
    use ztpd_guest::{Step, dialect};

    fn host() -> TestHost {
        TestHost::new()
            .record(
                "FOC2101B001",
                json!({"serial": "FOC2101B001", "hostname": "r1", "ssh_port": 2222}),
            )
            .template("iosxe/config.j2", "hostname {{ hostname }}\n")
            .template("iosxe/script.py.j2", "print('{{ ztpd is defined }}')\n")
    }

    fn callback(serial: &str) -> Request {
        Request::builder(dialect::CISCO_IOSXE, stage::CALLBACK)
            .serial(serial)
            .build()
    }

    #[test]
    fn the_bootstrap_serves_the_script() {
        let req = Request::builder(dialect::CISCO_IOSXE, stage::BOOTSTRAP).build();
        let d = host().call::<IosxeCallback>(req).unwrap();
        assert!(matches!(&d, Decision::Render { template, content_type, .. }
            if template == "iosxe/script.py.j2" && content_type == "text/x-python"));
    }

    #[test]
    fn a_known_serial_gets_render_wait_and_push() {
        let host = host();
        let d = host.call::<IosxeCallback>(callback("FOC2101B001")).unwrap();
        let plan = d.as_plan().expect("a plan");
        assert_eq!(plan.steps.len(), 3);
        assert_eq!(plan.steps[1], Step::Wait(30));
        assert_eq!(
            plan.steps[2],
            Step::SshPush(SshPush::new("cisco_iosxe", "ztp").port(2222))
        );
        assert_eq!(host.render(&d).unwrap(), "hostname r1\n");
    }

    #[test]
    fn settings_tune_the_plan() {
        let host = host()
            .setting("wait_s", "5")
            .setting("credential", "onboard")
            .setting("monitoring", "prtg");
        let d = host.call::<IosxeCallback>(callback("FOC2101B001")).unwrap();
        let steps = &d.as_plan().unwrap().steps;
        assert_eq!(steps[1], Step::Wait(5));
        assert!(matches!(&steps[2], Step::SshPush(p) if p.credential == "onboard"));
        assert_eq!(
            steps[3],
            Step::RegisterMonitoring(MonitoringAdd::new("prtg", "r1"))
        );
        let bad = TestHost::new()
            .record("X1", json!({"serial": "X1"}))
            .setting("wait_s", "soon");
        let err = bad.call::<IosxeCallback>(callback("X1")).unwrap_err();
        assert!(err.to_string().contains("wait_s"), "{err}");
    }

    #[test]
    fn an_unknown_serial_is_an_unknown_device() {
        let d = host().call::<IosxeCallback>(callback("NOPE")).unwrap();
        assert!(matches!(d, Decision::UnknownDevice(r) if r.contains("NOPE")));
    }
}

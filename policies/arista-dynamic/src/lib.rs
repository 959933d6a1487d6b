//! Arista EOS dynamic config push (the seed `arista-dynamic-config-push`): every switch
//! fetches the same bootfile URL; its system MAC picks its variables from the inventory
//! (`swinfo.json`), and the host renders `arista/config.j2` with them.

use ztpd_guest::{Decision, Error, Policy, Request, export_policy, inventory};

struct AristaDynamic;

impl Policy for AristaDynamic {
    fn handle(req: Request) -> Result<Decision, Error> {
        // The host has already checked and normalised X-Arista-SystemMAC.
        let Some(mac) = req.mac() else {
            return Ok(Decision::reject(
                "no system MAC: send the X-Arista-SystemMAC header",
            ));
        };
        match inventory::by_mac(mac)? {
            Some(switch) => Ok(Decision::render_config("arista/config.j2", switch)),
            None => Ok(Decision::unknown_device(format!(
                "no switch with system MAC {mac} in the inventory"
            ))),
        }
    }
}

export_policy!(AristaDynamic);

#[cfg(test)]
mod tests {
    use super::*;
    use ztpd_guest::testing::TestHost;
    use ztpd_guest::{dialect, stage};

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

    fn site() -> TestHost {
        TestHost::new()
            .inventory_file(format!("{ROOT}/inventory/arista/swinfo.json"))
            .templates_dir(format!("{ROOT}/templates"))
    }

    fn request(mac: &str) -> Request {
        Request::builder(dialect::ARISTA_EOS, stage::BOOTSTRAP)
            .mac(mac)
            .build()
    }

    #[test]
    fn a_known_switch_gets_the_golden_config() {
        let host = site();
        let d = host
            .call::<AristaDynamic>(request("00:1c:73:00:00:01"))
            .unwrap();
        let golden =
            std::fs::read_to_string(format!("{ROOT}/tests/fixtures/arista_001c73000001.txt"))
                .unwrap();
        assert_eq!(host.render(&d).unwrap(), golden);
    }

    #[test]
    fn an_unknown_switch_is_an_unknown_device() {
        let d = site()
            .call::<AristaDynamic>(request("00:1c:73:ff:ff:ff"))
            .unwrap();
        assert!(matches!(d, Decision::UnknownDevice(r) if r.contains("00:1c:73:ff:ff:ff")));
    }

    #[test]
    fn no_mac_is_rejected() {
        let req = Request::builder(dialect::ARISTA_EOS, stage::BOOTSTRAP).build();
        let d = site().call::<AristaDynamic>(req).unwrap();
        assert!(matches!(d, Decision::Reject(_)));
    }
}

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

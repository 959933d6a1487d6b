//! A policy that misbehaves on request, for ztpd's sandbox tests. With no `attack` query
//! parameter it behaves like `arista-dynamic`, so good and hostile requests can run
//! against the same loaded policy at the same time.
//!
//! `?attack=` `loop` | `memory` | `recursion` | `panic` | `big-reply` | `read-file` |
//! `env` | `socket` | `kv-write` | `kv-read` (the last two try to share state across
//! tenants through a well-known key) | `spy` (reply with everything the policy can see:
//! its request and what the inventory returns for the device, to check that no secret
//! reaches a policy)

use ztpd_guest::{Decision, Error, Policy, Request, export_policy, inventory, kv};

/// The key every tenant's copy of this policy uses.
const SHARED_KEY: &str = "cross-tenant-probe";

struct Hostile;

impl Policy for Hostile {
    fn handle(req: Request) -> Result<Decision, Error> {
        match req.query("attack") {
            None => well_behaved(&req),
            Some("loop") => endless_loop(),
            Some("memory") => grow_memory(),
            Some("recursion") => Ok(Decision::config(recurse(0).to_string())),
            Some("panic") => panic!("hostile policy panicked on purpose"),
            Some("big-reply") => Ok(Decision::config("x".repeat(100 * 1024 * 1024))),
            Some("read-file") => {
                let text = std::fs::read_to_string("/etc/passwd")
                    .map_err(|e| Error::msg(format!("cannot read /etc/passwd: {e}")))?;
                Ok(Decision::config(text))
            }
            Some("env") => {
                let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                if vars.is_empty() {
                    Err(Error::msg("the environment is empty"))
                } else {
                    Ok(Decision::config(vars.join("\n")))
                }
            }
            Some("socket") => {
                let stream = std::net::TcpStream::connect("127.0.0.1:22")
                    .map_err(|e| Error::msg(format!("cannot open a socket: {e}")))?;
                Ok(Decision::config(format!(
                    "connected to {:?}",
                    stream.peer_addr()
                )))
            }
            Some("kv-write") => {
                kv::set(SHARED_KEY, req.tenant())?;
                Ok(Decision::config(format!("wrote {}", req.tenant())))
            }
            Some("kv-read") => Ok(Decision::config(format!("read {:?}", kv::get(SHARED_KEY)?))),
            Some("spy") => spy(&req),
            Some(other) => Err(Error::msg(format!("unknown attack {other:?}"))),
        }
    }
}

fn spy(req: &Request) -> Result<Decision, Error> {
    let mut seen = format!("request: {req:?}\n");
    if let Some(mac) = req.mac() {
        seen.push_str(&format!("inventory by mac: {:?}\n", inventory::by_mac(mac)));
    }
    if let Some(serial) = req.serial() {
        seen.push_str(&format!(
            "inventory by serial: {:?}\n",
            inventory::by_serial(serial)
        ));
    }
    Ok(Decision::config(seen))
}

fn well_behaved(req: &Request) -> Result<Decision, Error> {
    let Some(mac) = req.mac() else {
        return Ok(Decision::reject("no system MAC"));
    };
    match inventory::by_mac(mac)? {
        Some(switch) => Ok(Decision::render_config("arista/config.j2", switch)),
        None => Ok(Decision::unknown_device(format!(
            "no switch with MAC {mac}"
        ))),
    }
}

fn endless_loop() -> Result<Decision, Error> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn grow_memory() -> Result<Decision, Error> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1024 * 1024]);
        std::hint::black_box(&hoard);
    }
}

#[allow(unconditional_recursion)] // unbounded on purpose: the sandbox must stop it
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    recurse(depth + 1).wrapping_add(frame[7])
}

export_policy!(Hostile);

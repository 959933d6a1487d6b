//! A policy that misbehaves on request, for ztpd's sandbox tests. With no `attack` query
//! parameter it behaves like `arista-dynamic`, so good and hostile requests can run
//! against the same loaded policy at the same time.
//!
//! `?attack=` `loop` | `memory` | `recursion` | `panic` | `big-reply` | `read-file` |
//! `env` | `socket` | `kv-write` | `kv-read` (the last two try to share state across
//! tenants through a well-known key) | `spy` (reply with everything the policy can see:
//! its request and what the inventory returns for the device, to check that no secret
//! reaches a policy).
//!
//! Attacks on the host's accounting, with `n` and `kib` query parameters:
//! `reply` (a reply of `kib` KiB) | `log-flood` (`n` log lines with newlines and ANSI
//! escapes) | `big-error` (an error of `kib` KiB) | `kv-flood` (`n` keys of `kib` KiB) |
//! `kv-then-loop` (`n` kv writes, then spin into the CPU limit) | `allocate` (take the
//! next number of the pool `pool` with kv increment) | `plan` (a plan of `n` webhook
//! steps of `kib` KiB data each) | `render` (render template `template` inside the call
//! with variables `vars`) | `render-decision` (return a render decision of `template` and
//! `vars`) | `push-to` (a plan that pushes to `addr`:`port`) | `settings` (reply with
//! the tenant's settings).

use ztpd_guest::{
    Decision, Error, Plan, Policy, Request, SshPush, Vars, Webhook, export_policy, inventory, kv,
    log, settings,
};

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
            Some("reply") => Ok(Decision::config("x".repeat(number(&req, "kib")? * 1024))),
            Some("log-flood") => {
                for i in 0..number(&req, "n")? {
                    log::info(&format!(
                        "line {i}\nforged: ztpd says all is well \x1b[31mred"
                    ));
                }
                Ok(Decision::config("flooded\n"))
            }
            Some("big-error") => Err(Error::msg("e".repeat(number(&req, "kib")? * 1024))),
            Some("kv-flood") => {
                let value = "v".repeat(number(&req, "kib")? * 1024);
                for i in 0..number(&req, "n")? {
                    kv::set(&format!("flood-{i}"), &value)?;
                }
                Ok(Decision::config("stored\n"))
            }
            Some("kv-then-loop") => {
                for i in 0..number(&req, "n")? {
                    kv::set(&format!("partial-{i}"), "x")?;
                }
                endless_loop()
            }
            Some("allocate") => {
                let pool = req.query("pool").unwrap_or("pool");
                let n = kv::increment(pool, 1)?;
                Ok(Decision::config(format!("{n}\n")))
            }
            Some("plan") => {
                let data = serde_json::json!({"pad": "d".repeat(number(&req, "kib")? * 1024)});
                let mut plan = Plan::new();
                for _ in 0..number(&req, "n")? {
                    plan = plan.webhook(Webhook::new("ops", "probe").data(&data)?);
                }
                Ok(plan.into())
            }
            Some("render") => {
                let vars = Vars::from_json(req.query("vars").unwrap_or("{}"));
                let text = ztpd_guest::render(req.query("template").unwrap_or("t.j2"), &vars)?;
                Ok(Decision::config(text))
            }
            Some("render-decision") => Ok(Decision::render_config(
                req.query("template").unwrap_or("t.j2"),
                Vars::from_json(req.query("vars").unwrap_or("{}")),
            )),
            Some("push-to") => {
                let mut push =
                    SshPush::new("cisco_iosxe", req.query("credential").unwrap_or("ztp"));
                if let Some(addr) = req.query("addr") {
                    push = push.address(addr);
                }
                if let Some(port) = req.query("port") {
                    push = push.port(port.parse().map_err(|_| Error::msg("bad port"))?);
                }
                Ok(Plan::new()
                    .render("t.j2", Vars::empty())
                    .ssh_push(push)
                    .into())
            }
            Some("settings") => Ok(Decision::config(format!("{:?}\n", settings::all()))),
            Some(other) => Err(Error::msg(format!("unknown attack {other:?}"))),
        }
    }
}

/// A numeric query parameter.
fn number(req: &Request, name: &str) -> Result<usize, Error> {
    req.query(name)
        .unwrap_or("1")
        .parse()
        .map_err(|_| Error::msg(format!("query parameter {name} is not a number")))
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

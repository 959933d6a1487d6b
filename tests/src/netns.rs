//! Network namespaces for the DHCP tests: a server namespace and a client namespace
//! joined by a veth pair, both removed when dropped (also when the test fails). Nothing
//! here touches the machine's own interfaces; addresses come from documentation ranges.
//!
//! These tests need root (namespaces, port 67) and Debian's DHCP tools, so they are
//! `#[ignore]`d with that reason and run explicitly (`just test` runs them as root). Run
//! where they cannot work, they fail saying why: they never pass without running.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Fail the test, saying why, where it cannot run.
pub fn require(test: &str, need: &[&str]) {
    if let Some(reason) = why_not(need) {
        panic!("{test} cannot run here: {reason}");
    }
}

fn why_not(need: &[&str]) -> Option<String> {
    if need.contains(&"ip") {
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Some("needs root (network namespaces, UDP port 67)".into());
        }
    }
    for tool in need {
        if which(tool).is_none() {
            return Some(format!(
                "{tool} is missing (`just dhcp-tools` installs it from Debian)"
            ));
        }
    }
    if need.contains(&"ip") {
        let probe = format!(
            "ztpd-probe-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let added = run("ip", &["netns", "add", &probe]);
        let _ = run("ip", &["netns", "del", &probe]);
        if let Err(e) = added {
            return Some(format!("cannot create a network namespace: {e}"));
        }
    }
    None
}

/// The full path of `tool` on PATH or in the sbin folders.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// Run a command to completion; an error carries its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<Output, String> {
    let exe = which(program).unwrap_or_else(|| PathBuf::from(program));
    let out = Command::new(&exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A network namespace, deleted when dropped.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn create(role: &str) -> NetNs {
        let name = format!(
            "ztpd-{role}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]).expect("ip netns add");
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip netns exec <ns> program args...`, run to completion.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let exe = which(program).unwrap_or_else(|| PathBuf::from(program));
        let exe = exe.to_string_lossy();
        let mut all = vec!["netns", "exec", &self.name, &exe];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command that will run inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(which("ip").unwrap_or_else(|| PathBuf::from("ip")));
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// `ip <args>` inside the namespace; panics with the error (set-up must work).
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all).unwrap_or_else(|e| panic!("in {}: {e}", self.name));
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace also deletes the veth end inside it (and so its peer).
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// Join `a` and `b` with a veth pair; returns the interface names (in `a`, in `b`).
pub fn veth(a: &NetNs, b: &NetNs) -> (String, String) {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    // Interface names are at most 15 characters.
    let (ea, eb) = (
        format!("zs{}x{n}", std::process::id() % 100_000),
        format!("zc{}x{n}", std::process::id() % 100_000),
    );
    run(
        "ip",
        &[
            "link", "add", &ea, "netns", &a.name, "type", "veth", "peer", "name", &eb, "netns",
            &b.name,
        ],
    )
    .expect("ip link add veth");
    a.ip(&["link", "set", &ea, "up"]);
    b.ip(&["link", "set", &eb, "up"]);
    (ea, eb)
}

/// ztpd running inside a namespace, killed when dropped.
pub struct NsZtpd {
    child: std::process::Child,
    pub log: PathBuf,
}

impl NsZtpd {
    /// `ztpd serve --config <config>` in `ns`, HTTP on `listen`; waits (bounded) until it
    /// logs that it serves, and fails with its log if it exits first.
    pub fn start(ns: &NetNs, config: &Path, listen: &str, log: &Path) -> NsZtpd {
        let file = std::fs::File::create(log).expect("log file");
        let child = ns
            .command(&crate::ztpd_binary())
            .args(["serve", "--config"])
            .arg(config)
            .env("ZTPD_LISTEN", listen)
            .env("RUST_LOG", "info,ztpd::dhcp=debug")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start ztpd in the namespace");
        let mut z = NsZtpd {
            child,
            log: log.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("ztpd serving") {
                return z;
            }
            if let Ok(Some(status)) = z.child.try_wait() {
                panic!("ztpd exited ({status}) before serving:\n{text}");
            }
            if Instant::now() > deadline {
                panic!("ztpd did not start within 60 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NsZtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a DHCP client was given.
#[derive(Debug, Default)]
pub struct Lease {
    pub ip: String,
    pub bootfile: Option<String>,
    pub tftp_server: Option<String>,
    /// Every `new_*` variable dhclient passed to its script.
    pub vars: Vec<(String, String)>,
}

/// Run ISC `dhclient` on `interface` in `ns`, sending `vendor_class` in option 60, until
/// it has a lease (at most 30 s). Its script configures the address it got and records
/// the options; dhclient runs in the foreground as this process's child and is stopped
/// as soon as the lease is recorded, so nothing is left behind.
pub fn dhclient(
    ns: &NetNs,
    interface: &str,
    vendor_class: &str,
    dir: &Path,
) -> Result<Lease, String> {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let conf = dir.join(format!("dhclient-{n}.conf"));
    let script = dir.join(format!("dhclient-{n}.sh"));
    let out = dir.join(format!("dhclient-{n}.env"));
    let leases = dir.join(format!("dhclient-{n}.leases"));
    let pid = dir.join(format!("dhclient-{n}.pid"));
    let log = dir.join(format!("dhclient-{n}.log"));
    std::fs::write(
        &conf,
        format!(
            "send vendor-class-identifier \"{vendor_class}\";\n\
             request subnet-mask, routers, domain-name-servers, bootfile-name, tftp-server-name;\n\
             timeout 20;\ninitial-interval 1;\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    // Never touches /etc/resolv.conf: it only sets the address and writes what it got
    // (to a temporary file renamed into place, so it is never read half-written).
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$reason\" in\n  BOUND|RENEW|REBIND|REBOOT)\n    \
             ip addr add \"$new_ip_address/$new_subnet_mask\" dev \"$interface\"\n    \
             env | grep '^new_' > '{out}.tmp' && mv '{out}.tmp' '{out}'\n    ;;\nesac\nexit 0\n",
            out = out.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    run("chmod", &["+x", &script.to_string_lossy()])?;
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut child = ns
        .command(&which("dhclient").unwrap_or_else(|| PathBuf::from("dhclient")))
        .args(["-d", "-1", "-v", "-cf"])
        .arg(&conf)
        .arg("-sf")
        .arg(&script)
        .arg("-lf")
        .arg(&leases)
        .arg("-pf")
        .arg(&pid)
        .arg(interface)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("start dhclient: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let outcome = loop {
        if out.is_file() {
            break Ok(());
        }
        match child.try_wait() {
            Ok(Some(status)) => break Err(format!("dhclient exited ({status}) without a lease")),
            Ok(None) => {}
            Err(e) => break Err(format!("dhclient: {e}")),
        }
        if Instant::now() > deadline {
            break Err("dhclient got no lease within 30 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = outcome {
        return Err(format!(
            "{e}; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ));
    }
    let env = std::fs::read_to_string(&out).map_err(|e| format!("dhclient wrote no lease: {e}"))?;
    let vars: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Ok(Lease {
        ip: get("new_ip_address").ok_or("no new_ip_address")?,
        bootfile: get("new_bootfile_name"),
        tftp_server: get("new_tftp_server_name"),
        vars,
    })
}

//! Real SSH servers nobody on this project wrote, started on loopback for one test:
//! fakenos (PyPI) impersonating Cisco IOS XE, and OpenSSH's sshd with a recording
//! ForceCommand. The Python side lives in `tests/peers/` (see its README).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::repo_root;

/// The project venv's python (`just venv` installs fakenos into it).
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("ZTPD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import fakenos"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import fakenos: run `just venv` (it installs tests/peers/requirements.txt)",
        python.display()
    );
    python
}

fn peers() -> PathBuf {
    repo_root().join("tests/peers")
}

/// Read lines of `child`'s stdout until `{prefix}<port>` (e.g. `READY 4242`).
pub(crate) fn ready_port(child: &mut Child, what: &str, prefix: &str) -> u16 {
    let stdout = child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("{what}: no stdout"));
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap_or_else(|e| panic!("{what}: {e}"));
        if let Some(port) = line.strip_prefix(prefix) {
            return port
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{what}: bad {prefix:?} line {line:?}"));
        }
    }
    panic!("{what} exited before it was ready");
}

/// The lines a peer has recorded so far.
fn record_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// fakenos impersonating a Cisco IOS XE device, recording config-mode lines.
pub struct Fakenos {
    pub port: u16,
    pub record: PathBuf,
    child: Child,
}

impl Fakenos {
    /// Start on `port` (0: any free port).
    pub fn start(dir: &Path, port: u16, username: &str, password: &str) -> Fakenos {
        let record = dir.join(format!("fakenos-{port}.rec"));
        let mut child = Command::new(venv_python())
            .arg(peers().join("fakenos_iosxe.py"))
            .args([
                "--port",
                &port.to_string(),
                "--username",
                username,
                "--password",
                password,
            ])
            .arg("--record")
            .arg(&record)
            .args(["--hostname", "router"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fakenos");
        let port = ready_port(&mut child, "fakenos", "READY ");
        Fakenos {
            port,
            record,
            child,
        }
    }

    /// Config lines received so far.
    pub fn received(&self) -> Vec<String> {
        record_lines(&self.record)
    }
}

impl Drop for Fakenos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The local account sshd logs the push in as (created by start_sshd.sh).
pub const SSHD_USER: &str = "ztpdpeer";
/// One password for every sshd test: tests run in parallel and share the account.
pub const SSHD_PASSWORD: &str = "ztpd-peer-pw-7f3a";

/// OpenSSH's sshd on loopback with a ForceCommand that records config-mode lines.
pub struct Sshd {
    pub port: u16,
    pub record: PathBuf,
    workdir: PathBuf,
}

impl Sshd {
    /// Start sshd on `port` with host keys in `workdir` (reused if present). Needs root
    /// and Debian's openssh-server (`just test` installs it).
    pub fn start(workdir: &Path, port: u16) -> Sshd {
        assert!(
            Path::new("/usr/sbin/sshd").is_file(),
            "/usr/sbin/sshd is missing: apt-get install -y openssh-server (just test does)"
        );
        std::fs::create_dir_all(workdir).expect("sshd workdir");
        let record = workdir.join("sshd.rec");
        let mut child = Command::new("bash")
            .arg(peers().join("sshd_recorder/start_sshd.sh"))
            .arg(port.to_string())
            .arg(workdir)
            .args([SSHD_USER, SSHD_PASSWORD])
            .arg(&record)
            .env("PEER_RECORD_MODE", "config")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sshd");
        let port = ready_port(&mut child, "sshd", "READY ");
        let _ = child.wait();
        Sshd {
            port,
            record,
            workdir: workdir.to_owned(),
        }
    }

    pub fn received(&self) -> Vec<String> {
        record_lines(&self.record)
    }

    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(peers().join("sshd_recorder/stop_sshd.sh"))
            .arg(&self.workdir)
            .status();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Be the IOS XE device: fetch `{base}/script.py` and run it with python3 and the
/// stand-in `cli` module (tests/peers/cli_standin), as guestshell would. Returns the
/// script's stdout and the `cli` calls it made; panics if the script fails.
pub async fn run_served_script(base: &str, dir: &Path, serial: &str) -> (String, String) {
    let script = crate::client()
        .get(format!("{base}/script.py"))
        .send()
        .await
        .expect("fetch /script.py")
        .text()
        .await
        .expect("script text");
    let script_path = dir.join("script.py");
    std::fs::write(&script_path, &script).expect("write script.py");
    let cli_record = dir.join("cli.jsonl");
    let run = tokio::process::Command::new("python3")
        .arg(&script_path)
        .env("PYTHONPATH", peers().join("cli_standin"))
        .env("ZTP_SERIAL", serial)
        .env("ZTP_MODEL", "C9300-48P")
        .env("ZTP_CLI_RECORD", &cli_record)
        .output()
        .await
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "script failed: {stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let calls = std::fs::read_to_string(&cli_record).unwrap_or_default();
    (stdout, calls)
}

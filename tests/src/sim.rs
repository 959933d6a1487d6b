//! A light in-process SSH device simulator (a russh server), for load runs with thousands
//! of devices where starting a real SSH server per device is not practical. It accepts the
//! logins it is given (more can be allowed while it runs: a served script's one-time
//! user), gives each session a PTY-style shell with an IOS-like prompt, and records the
//! lines each session sends in configuration mode, keyed by the `hostname` line the
//! configuration sets. Like IOS XE it knows its users: the login user exists, `username`
//! and `no username` (which asks `[confirm]`) change them, `show running-config | include
//! ^username` lists them, and the users left after `end` are recorded. Functional tests
//! also use real servers (fakenos, OpenSSH); this is for counting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use russh::keys::PrivateKey;
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, CryptoVec};

/// Configurations received, by the hostname they set.
pub type Received = Arc<Mutex<HashMap<String, Vec<String>>>>;

pub struct SimDevices {
    pub addr: SocketAddr,
    pub received: Received,
    /// The users each device (by hostname) has after its configuration ended.
    pub users: Received,
    logins: Arc<Mutex<HashMap<String, String>>>,
    /// How many configurations each hostname received.
    pub pushes: Arc<Mutex<HashMap<String, usize>>>,
    /// Sessions open at once (the push concurrency seen from the devices' side).
    pub sessions: Arc<Concurrency>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct Sim {
    logins: Arc<Mutex<HashMap<String, String>>>,
    received: Received,
    users: Received,
    pushes: Arc<Mutex<HashMap<String, usize>>>,
    sessions: Arc<Concurrency>,
}

/// Counts sessions open at once, and the most seen.
#[derive(Default)]
pub struct Concurrency {
    pub now: std::sync::atomic::AtomicUsize,
    pub peak: std::sync::atomic::AtomicUsize,
    /// TCP connections accepted, ever (a client that never logged in counts too).
    pub connections: std::sync::atomic::AtomicUsize,
}

struct SimSession {
    sim: Sim,
    counted: bool,
    pending: Vec<u8>,
    in_config: bool,
    lines: Vec<String>,
    /// The device's users (starting with the login user).
    users: Vec<String>,
    /// `no username X` waits for its confirmation.
    confirming: Option<String>,
    hostname: String,
}

impl Drop for SimSession {
    fn drop(&mut self) {
        if self.counted {
            self.sim
                .sessions
                .now
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl russh::server::Server for Sim {
    type Handler = SimSession;

    fn new_client(&mut self, _peer: Option<SocketAddr>) -> SimSession {
        self.sessions
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SimSession {
            sim: self.clone(),
            counted: false,
            pending: Vec::new(),
            in_config: false,
            lines: Vec::new(),
            users: Vec::new(),
            confirming: None,
            hostname: "?".into(),
        }
    }
}

impl SimSession {
    fn prompt(&self) -> &'static str {
        if self.in_config {
            "sim(config)#"
        } else {
            "sim#"
        }
    }

    /// The answer to one line, and whether a prompt follows it.
    fn line(&mut self, line: &str) -> (String, bool) {
        let trimmed = line.trim();
        if let Some(user) = self.confirming.take() {
            self.users.retain(|u| *u != user);
            return (String::new(), true);
        }
        if self.in_config {
            if trimmed == "end" {
                self.in_config = false;
                let lines = std::mem::take(&mut self.lines);
                let host = lines
                    .iter()
                    .find_map(|l| l.strip_prefix("hostname "))
                    .unwrap_or("?")
                    .to_owned();
                self.hostname = host.clone();
                if let Ok(mut c) = self.sim.pushes.lock() {
                    *c.entry(host.clone()).or_default() += 1;
                }
                if let Ok(mut u) = self.sim.users.lock() {
                    u.insert(host.clone(), self.users.clone());
                }
                if let Ok(mut r) = self.sim.received.lock() {
                    r.insert(host, lines);
                }
            } else if let Some(user) = trimmed.strip_prefix("no username ") {
                self.lines.push(line.to_owned());
                self.confirming = Some(user.trim().to_owned());
                return (
                    "This operation will remove all username related configurations with same name.Do you want to continue? [confirm]".into(),
                    false,
                );
            } else {
                if let Some(user) = trimmed
                    .strip_prefix("username ")
                    .and_then(|r| r.split_whitespace().next())
                    && !self.users.iter().any(|u| u == user)
                {
                    self.users.push(user.to_owned());
                }
                self.lines.push(line.to_owned());
            }
            return (String::new(), true);
        }
        if let Some(rest) = trimmed.strip_prefix("show running-config | include ^username ") {
            let wanted = rest.trim();
            let out: String = self
                .users
                .iter()
                .filter(|u| u.as_str() == wanted)
                .map(|u| format!("username {u} privilege 15 secret 9 $9$simulated\r\n"))
                .collect();
            if let Ok(mut u) = self.sim.users.lock() {
                u.insert(self.hostname.clone(), self.users.clone());
            }
            return (out, true);
        }
        let answer = match trimmed {
            "configure terminal" => {
                self.in_config = true;
                "Enter configuration commands, one per line.  End with CNTL/Z.\r\n".into()
            }
            "write memory" => "Building configuration...\r\n[OK]\r\n".into(),
            _ => String::new(),
        };
        (answer, true)
    }
}

impl russh::server::Handler for SimSession {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = self
            .sim
            .logins
            .lock()
            .is_ok_and(|l| l.get(user).is_some_and(|p| p == password));
        Ok(if ok {
            self.users = vec![user.to_owned()];
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        _c: Channel<Msg>,
        _s: &mut Session,
    ) -> Result<bool, Self::Error> {
        use std::sync::atomic::Ordering;
        if !self.counted {
            self.counted = true;
            let now = self.sim.sessions.now.fetch_add(1, Ordering::Relaxed) + 1;
            self.sim.sessions.peak.fetch_max(now, Ordering::Relaxed);
        }
        Ok(true)
    }

    async fn pty_request(
        &mut self,
        _channel: ChannelId,
        _term: &str,
        _w: u32,
        _h: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(russh::Pty, u32)],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.data(
            channel,
            CryptoVec::from(format!("\r\n{}", self.prompt()).into_bytes()),
        )?;
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.pending.extend_from_slice(data);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let raw: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw[..raw.len() - 1]).into_owned();
            if line.is_empty() && raw[raw.len() - 1] == b'\n' && self.confirming.is_none() {
                continue;
            }
            if line.trim() == "exit" && !self.in_config {
                session.close(channel)?;
                return Ok(());
            }
            let (answer, prompt) = self.line(&line);
            // Echo the line as a device does, then its answer and the next prompt.
            let out = if prompt {
                format!("{line}\r\n{answer}{}", self.prompt())
            } else {
                format!("{line}\r\n{answer}")
            };
            session.data(channel, CryptoVec::from(out.into_bytes()))?;
        }
        Ok(())
    }
}

impl SimDevices {
    /// Accept this login too (the one-time user a served script created).
    pub fn allow(&self, username: &str, password: &str) {
        if let Ok(mut l) = self.logins.lock() {
            l.insert(username.to_owned(), password.to_owned());
        }
    }

    /// Start a simulator on 127.0.0.1 (a random port) with a host key made by ssh-keygen.
    pub async fn start(dir: &Path, username: &str, password: &str) -> anyhow::Result<SimDevices> {
        Self::start_at(dir, "127.0.0.1:0".parse()?, username, password).await
    }

    /// Start a simulator listening on `bind` (a loopback address), with its own host key.
    pub async fn start_at(
        dir: &Path,
        bind: SocketAddr,
        username: &str,
        password: &str,
    ) -> anyhow::Result<SimDevices> {
        let key_path = dir.join(format!("sim_host_key_{}_{}", bind.ip(), bind.port()));
        let _ = std::fs::remove_file(&key_path);
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key_path)
            .status()?;
        anyhow::ensure!(status.success(), "ssh-keygen failed");
        let key: PrivateKey = russh::keys::load_secret_key(&key_path, None)?;
        let config = Arc::new(russh::server::Config {
            keys: vec![key],
            auth_rejection_time: std::time::Duration::from_millis(10),
            auth_rejection_time_initial: Some(std::time::Duration::ZERO),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let received: Received = Arc::default();
        let users: Received = Arc::default();
        let pushes: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let sessions: Arc<Concurrency> = Arc::default();
        let logins: Arc<Mutex<HashMap<String, String>>> = Arc::new(Mutex::new(HashMap::from([(
            username.to_owned(),
            password.to_owned(),
        )])));
        let mut sim = Sim {
            logins: logins.clone(),
            received: received.clone(),
            users: users.clone(),
            pushes: pushes.clone(),
            sessions: sessions.clone(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let running = sim.run_on_socket(config, &listener);
            tokio::select! {
                _ = running => {}
                _ = stopped => {}
            }
        });
        Ok(SimDevices {
            addr,
            received,
            users,
            logins,
            pushes,
            sessions,
            _stop: stop,
        })
    }
}

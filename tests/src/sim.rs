//! A light in-process SSH device simulator (a russh server), for load runs with thousands
//! of devices where starting a real SSH server per device is not practical. It accepts one
//! username and password, gives each session a PTY-style shell with an IOS-like prompt,
//! and records the lines each session sends in configuration mode, keyed by the
//! `hostname` line the configuration sets. Functional tests use real servers (fakenos,
//! OpenSSH); this is for counting.

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
    /// How many configurations each hostname received.
    pub pushes: Arc<Mutex<HashMap<String, usize>>>,
    /// Sessions open at once (the push concurrency seen from the devices' side).
    pub sessions: Arc<Concurrency>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct Sim {
    username: String,
    password: String,
    received: Received,
    pushes: Arc<Mutex<HashMap<String, usize>>>,
    sessions: Arc<Concurrency>,
}

/// Counts sessions open at once, and the most seen.
#[derive(Default)]
pub struct Concurrency {
    pub now: std::sync::atomic::AtomicUsize,
    pub peak: std::sync::atomic::AtomicUsize,
}

struct SimSession {
    sim: Sim,
    counted: bool,
    pending: Vec<u8>,
    in_config: bool,
    lines: Vec<String>,
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
        SimSession {
            sim: self.clone(),
            counted: false,
            pending: Vec::new(),
            in_config: false,
            lines: Vec::new(),
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

    fn line(&mut self, line: &str) -> String {
        let trimmed = line.trim();
        if self.in_config {
            if trimmed == "end" {
                self.in_config = false;
                let lines = std::mem::take(&mut self.lines);
                let host = lines
                    .iter()
                    .find_map(|l| l.strip_prefix("hostname "))
                    .unwrap_or("?")
                    .to_owned();
                if let Ok(mut c) = self.sim.pushes.lock() {
                    *c.entry(host.clone()).or_default() += 1;
                }
                if let Ok(mut r) = self.sim.received.lock() {
                    r.insert(host, lines);
                }
            } else {
                self.lines.push(line.to_owned());
            }
            return String::new();
        }
        match trimmed {
            "configure terminal" => {
                self.in_config = true;
                "Enter configuration commands, one per line.  End with CNTL/Z.\r\n".into()
            }
            "write memory" => "Building configuration...\r\n[OK]\r\n".into(),
            _ => String::new(),
        }
    }
}

impl russh::server::Handler for SimSession {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(
            if user == self.sim.username && password == self.sim.password {
                Auth::Accept
            } else {
                Auth::reject()
            },
        )
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
            if line.is_empty() && raw[raw.len() - 1] == b'\n' {
                continue;
            }
            if line.trim() == "exit" && !self.in_config {
                session.close(channel)?;
                return Ok(());
            }
            let answer = self.line(&line);
            // Echo the line as a device does, then its answer and the next prompt.
            let out = format!("{line}\r\n{answer}{}", self.prompt());
            session.data(channel, CryptoVec::from(out.into_bytes()))?;
        }
        Ok(())
    }
}

impl SimDevices {
    /// Start a simulator on 127.0.0.1 (a random port) with a host key made by ssh-keygen.
    pub async fn start(dir: &Path, username: &str, password: &str) -> anyhow::Result<SimDevices> {
        let key_path = dir.join("sim_host_key");
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received: Received = Arc::default();
        let pushes: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let sessions: Arc<Concurrency> = Arc::default();
        let mut sim = Sim {
            username: username.to_owned(),
            password: password.to_owned(),
            received: received.clone(),
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
            pushes,
            sessions,
            _stop: stop,
        })
    }
}

//! HTTP peers for the monitoring tests, started on loopback for one test: the PRTG
//! stand-in (`tests/peers/prtg/`, PRTG itself is Windows software that cannot run here)
//! and a webhook receiver that checks signatures with Python's own HMAC.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::peers::ready_port;
use crate::repo_root;

/// The PRTG API stand-in: group 2001 holds template device 3001; new objects get ids
/// from 4001.
pub struct PrtgStandin {
    pub base: String,
    child: Child,
}

pub const PRTG_GROUP: u64 = 2001;
pub const PRTG_TEMPLATE: u64 = 3001;

impl PrtgStandin {
    /// Start with an API token and a user/passhash pair; `extra` are fault flags such as
    /// `--lose-duplicate-response 1`.
    pub fn start(apitoken: &str, username: &str, passhash: &str, extra: &[&str]) -> PrtgStandin {
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/peers/prtg/prtg_standin.py"))
            .args(["--port", "0", "--quiet", "--apitoken", apitoken])
            .args(["--username", username, "--passhash", passhash])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the PRTG stand-in");
        let port = ready_port(&mut child, "PRTG stand-in", "PORT ");
        PrtgStandin {
            base: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// Its objects and request log (`GET /__standin/state`).
    pub async fn state(&self) -> serde_json::Value {
        crate::client()
            .get(format!("{}/__standin/state", self.base))
            .send()
            .await
            .expect("PRTG stand-in state")
            .json()
            .await
            .expect("PRTG stand-in state JSON")
    }

    /// Devices other than the template.
    pub async fn devices(&self) -> Vec<serde_json::Value> {
        let state = self.state().await;
        state["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["type"] == "device" && o["objid"] != PRTG_TEMPLATE)
            .cloned()
            .collect()
    }
}

impl Drop for PrtgStandin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver (`tests/peers/webhook_receiver.py`) recording every POST.
pub struct WebhookReceiver {
    pub port: u16,
    pub record: PathBuf,
    child: Child,
}

impl WebhookReceiver {
    /// Start on `port` (0: any); the first `fail_first` requests get a 503.
    pub fn start(dir: &Path, port: u16, secret: &str, fail_first: u32) -> WebhookReceiver {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let record = dir.join(format!("webhooks-{}-{n}.jsonl", std::process::id()));
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/peers/webhook_receiver.py"))
            .args(["--port", &port.to_string(), "--secret", secret])
            .args(["--fail-first", &fail_first.to_string()])
            .arg("--record")
            .arg(&record)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the webhook receiver");
        let port = ready_port(&mut child, "webhook receiver", "READY ");
        WebhookReceiver {
            port,
            record,
            child,
        }
    }

    /// Everything received so far, one JSON object per POST.
    pub fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Wait (bounded) until `n` events have arrived.
    pub async fn wait_for(&self, n: usize, within: std::time::Duration) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} webhook events within {within:?}, expected {n}: {got:#?}",
                got.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

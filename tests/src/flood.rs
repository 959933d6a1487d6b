//! A hostile SSH "device" (a russh server): it accepts any login, then streams bytes
//! without ever printing a prompt, up to a total it is given. What ztpd's SSH client must
//! survive: its buffers and transcript stay bounded and the push fails naming its budget.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use russh::keys::PrivateKey;
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, CryptoVec};

/// The flooding server; stops when dropped.
pub struct FloodingDevice {
    pub addr: SocketAddr,
    /// Bytes sent so far, all sessions.
    pub sent: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct Flood {
    sent: Arc<AtomicUsize>,
    total: usize,
}

impl russh::server::Server for Flood {
    type Handler = Flood;

    fn new_client(&mut self, _peer: Option<SocketAddr>) -> Flood {
        self.clone()
    }
}

impl russh::server::Handler for Flood {
    type Error = russh::Error;

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        _c: Channel<Msg>,
        _s: &mut Session,
    ) -> Result<bool, Self::Error> {
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
        let handle = session.handle();
        let (sent, total) = (self.sent.clone(), self.total);
        tokio::spawn(async move {
            // Text with line breaks but nothing that ends like a prompt.
            let chunk = "flood flood flood flood flood flood flood flood flood flood\r\n"
                .repeat(512)
                .into_bytes();
            while sent.load(Ordering::Relaxed) < total {
                if handle
                    .data(channel, CryptoVec::from_slice(&chunk))
                    .await
                    .is_err()
                {
                    break;
                }
                sent.fetch_add(chunk.len(), Ordering::Relaxed);
            }
            let _ = handle.close(channel).await;
        });
        Ok(())
    }
}

impl FloodingDevice {
    /// Listen on 127.0.0.1 (a random port); each shell gets `total` bytes at most.
    pub async fn start(dir: &Path, total: usize) -> anyhow::Result<FloodingDevice> {
        let key_path = dir.join("flood_host_key");
        let _ = std::fs::remove_file(&key_path);
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key_path)
            .status()?;
        anyhow::ensure!(status.success(), "ssh-keygen failed");
        let key: PrivateKey = russh::keys::load_secret_key(&key_path, None)?;
        let config = Arc::new(russh::server::Config {
            keys: vec![key],
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sent = Arc::new(AtomicUsize::new(0));
        let mut flood = Flood {
            sent: sent.clone(),
            total,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            tokio::select! {
                _ = flood.run_on_socket(config, &listener) => {}
                _ = stopped => {}
            }
        });
        Ok(FloodingDevice {
            addr,
            sent,
            _stop: stop,
        })
    }
}

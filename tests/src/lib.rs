//! Shared test environment for ztpd's end-to-end tests: where the built policies are, a
//! per-test temporary folder, and a real ztpd server on a loopback port.

pub mod flood;
pub mod netbox;
pub mod netns;
pub mod peers;
pub mod sim;
pub mod standins;

use std::path::{Path, PathBuf};

use tokio::sync::oneshot;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// A policy component built by `just policies` (or the folder in `ZTPD_POLICY_DIR`).
pub fn policy(name: &str) -> PathBuf {
    let dir = std::env::var_os("ZTPD_POLICY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/wasm32-wasip2/policy"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the policies first with `just policies`",
        path.display()
    );
    path
}

/// A fresh, empty folder for one test (`tempfile`, kept after the test so a failure can
/// be looked at; the name says which test made it).
pub fn temp_dir(test: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(&format!("ztpd-test-{test}-"))
        .tempdir()
        .expect("create test temp dir")
        .keep()
}

/// Configuration text for one default tenant running `policy` on the Arista demo data.
pub fn arista_config(policy_name: &str, limits: &str) -> String {
    arista_config_at(&policy(policy_name), limits)
}

/// The same, with the policy at `policy_path` (a file a test may replace).
pub fn arista_config_at(policy_path: &Path, limits: &str) -> String {
    let root = repo_root();
    format!(
        r#"
listen = "127.0.0.1:0"
[[tenants]]
name = "default"
default = true
policy = "{policy}"
templates = "{root}/templates"
inventory = {{ file = "{root}/inventory/arista/swinfo.json", key = "mac" }}
limits = {{ {limits} }}
"#,
        policy = policy_path.display(),
        root = root.display(),
    )
}

/// Write `config_text` with a `data_dir` inside `dir` to `dir/ztpd.toml`; returns its path.
pub fn write_config(dir: &Path, config_text: &str) -> PathBuf {
    let path = dir.join("ztpd.toml");
    let text = format!(
        "data_dir = \"{}\"\n{}",
        dir.join("data").display(),
        with_open_api(config_text)
    );
    std::fs::write(&path, text).expect("write ztpd.toml");
    path
}

/// `config_text` with `[api] open = true` unless it says something about the API: test
/// servers listen on loopback, where ztpd allows a status API without a token.
pub fn with_open_api(config_text: &str) -> String {
    if config_text.contains("[api]") || config_text.contains("[[admin.tokens]]") {
        config_text.to_owned()
    } else {
        format!("{config_text}\n[api]\nopen = true\n")
    }
}

/// An inventory of the seed's IOS XE devices `serials`, each told to skip the boot wait
/// and take SSH on `ssh_port` of the call-back's source address (loopback in tests: the
/// seed's 10.x management addresses are never contacted). Returns its path.
pub fn iosxe_inventory(dir: &Path, serials: &[&str], ssh_port: u16, wait_s: u32) -> PathBuf {
    let seed = std::fs::read_to_string(repo_root().join("inventory/iosxe/inventory.yaml"))
        .expect("read the IOS XE inventory");
    let all: serde_json::Map<String, serde_json::Value> =
        serde_norway::from_str(&seed).expect("parse the IOS XE inventory");
    let mut out = serde_json::Map::new();
    for serial in serials {
        let mut record = all.get(*serial).cloned().unwrap_or_else(|| {
            // More devices than the seed has: clone the first one under a new serial.
            let mut r = all.values().next().cloned().expect("a device");
            r["serial"] = (*serial).into();
            r["hostname"] = format!("lab-{serial}").into();
            r
        });
        record["ssh_port"] = ssh_port.into();
        record["ztp_wait_s"] = wait_s.into();
        out.insert((*serial).to_owned(), record);
    }
    let path = dir.join("inventory.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).expect("json"))
        .expect("write inventory");
    path
}

/// Configuration text for one default tenant running the IOS XE call-back policy on
/// `inventory`, with the temporary credential `ztp` / `password`.
pub fn iosxe_config(inventory: &Path, password: &str, extra: &str) -> String {
    let root = repo_root();
    format!(
        r#"
listen = "127.0.0.1:0"
{extra}
[[tenants]]
name = "default"
default = true
templates = "{root}/templates"
inventory = {{ file = "{inventory}", key = "serial" }}
[tenants.policies]
cisco-iosxe = "{policy}"
[tenants.callback]
script_credential = "ztp"
[tenants.credentials.ztp]
username = "ztp"
password = "{password}"
"#,
        root = root.display(),
        inventory = inventory.display(),
        policy = policy("iosxe_callback").display(),
    )
}

/// SHA-256 of a file, hex: a policy's version as ztpd reports it.
pub fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Fetch the served IOS XE script and return its call-back token.
pub async fn fetch_token(base: &str) -> String {
    let script = client()
        .get(format!("{base}/script.py"))
        .send()
        .await
        .expect("GET /script.py")
        .text()
        .await
        .expect("script text");
    script_token(&script)
}

/// POST an IOS XE call-back for `serial`, with `token` if given.
pub async fn post_callback(base: &str, serial: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .post(format!("{base}/callback"))
        .header("X-Serial-Number", serial)
        .json(&serde_json::json!({"serial": serial, "model": "C9300-48P"}));
    if let Some(t) = token {
        req = req.header("X-Ztpd-Token", t);
    }
    req.send().await.expect("POST /callback")
}

/// The token in a served IOS XE script (`TOKEN = "..."`).
pub fn script_token(script: &str) -> String {
    script
        .lines()
        .find_map(|l| l.strip_prefix("TOKEN = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the script carries a token")
        .to_owned()
}

/// The one-time password a served IOS XE script carries (`ZTP_PASSWORD = "..."`).
pub fn script_password(script: &str) -> String {
    script
        .lines()
        .find_map(|l| l.strip_prefix("ZTP_PASSWORD = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the script carries a password")
        .to_owned()
}

/// Poll the status API until the device's job is done or failed (bounded).
pub async fn wait_for_job(
    base: &str,
    serial: &str,
    within: std::time::Duration,
) -> serde_json::Value {
    let http = client();
    let deadline = std::time::Instant::now() + within;
    loop {
        let r = http
            .get(format!("{base}/api/v1/devices/{serial}"))
            .send()
            .await
            .expect("status API");
        if r.status().is_success() {
            let v: serde_json::Value = r.json().await.expect("status JSON");
            if matches!(v["state"].as_str(), Some("done" | "failed")) {
                return v;
            }
            if std::time::Instant::now() > deadline {
                panic!("job of {serial} not finished within {within:?}: {v:#}");
            }
        } else if std::time::Instant::now() > deadline {
            panic!("no job for {serial} within {within:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The rendered configs Python Jinja2 produced for all 1000 demo switches.
pub fn arista_golden() -> std::collections::HashMap<String, String> {
    let path = repo_root().join("tests/fixtures/arista_golden.json");
    let text = std::fs::read_to_string(&path).expect("read arista_golden.json");
    serde_json::from_str(&text).expect("parse arista_golden.json")
}

/// Everything in-process servers of this test binary logged (at debug), so a test can read
/// the detail of a terse 5xx reply by its request id, as an operator reads the log.
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = LOGS.lock() {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Capture this process's ztpd log (once; later calls do nothing).
pub fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("ztpd=debug"))
            .with_ansi(false)
            .with_writer(|| LogSink)
            .try_init();
    });
}

/// The captured log so far.
pub fn logs() -> String {
    LOGS.lock()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .unwrap_or_default()
}

/// The log line of a 5xx reply: its body ends `(request <id>)`; the line with that id.
pub fn log_of_reply(body: &str) -> String {
    let id = body
        .rsplit_once("(request ")
        .and_then(|(_, rest)| rest.split(')').next())
        .unwrap_or_else(|| panic!("no request id in {body:?}"));
    let needle = format!("request={id}");
    logs()
        .lines()
        .find(|l| l.contains(&needle))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no log line for request {id}"))
}

/// A ztpd server on a loopback port, stopped when dropped.
pub struct TestServer {
    pub base: String,
    pub state: ztpd::http::AppState,
    /// The data directory (database, compiled policies).
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Start ztpd with this configuration text; data goes to a temp folder.
    pub async fn start(test: &str, config_text: &str) -> TestServer {
        Self::start_with(test, config_text, ztpd::dialect::Registry::builtin()).await
    }

    /// Like [`TestServer::start`], speaking the dialects of `registry`.
    pub async fn start_with(
        test: &str,
        config_text: &str,
        registry: ztpd::dialect::Registry,
    ) -> TestServer {
        capture_logs();
        let dir = temp_dir(&format!("{test}-server"));
        let config = ztpd::config::Config::parse(
            &format!(
                "data_dir = \"{}\"\n{}",
                dir.join("data").display(),
                with_open_api(config_text)
            ),
            &format!("{test} config"),
            &repo_root(),
        )
        .expect("test config is valid");
        let stores = ztpd::store::Stores::open(&config.data_dir).expect("open store");
        let state = ztpd::server::build(&config, stores, registry)
            .await
            .expect("build service");
        let mut server = ztpd::server::Server::bind_state(&config, state.clone())
            .await
            .expect("bind");
        if config.watch {
            server.watch().expect("watch policy and template files");
        }
        let addr = server.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            state,
            data_dir: config.data_dir.clone(),
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The ztpd binary (`cargo build -p ztpd`, which `just test` runs first).
pub fn ztpd_binary() -> PathBuf {
    let path = repo_root().join("target/debug/ztpd");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p ztpd`",
        path.display()
    );
    path
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// ztpd running as its own process, killed when dropped.
pub struct ZtpdProcess {
    pub base: String,
    child: std::process::Child,
}

impl ZtpdProcess {
    /// Start `ztpd serve --config <config>` on `port` and wait until it answers /ping.
    pub async fn start(config: &Path, port: u16, log: &Path) -> ZtpdProcess {
        Self::start_binary(&ztpd_binary(), config, port, log).await
    }

    pub async fn start_binary(binary: &Path, config: &Path, port: u16, log: &Path) -> ZtpdProcess {
        Self::start_logging(binary, config, port, log, "info").await
    }

    /// Like [`ZtpdProcess::start_binary`], logging at `filter` (a `RUST_LOG` value).
    pub async fn start_logging(
        binary: &Path,
        config: &Path,
        port: u16,
        log: &Path,
        filter: &str,
    ) -> ZtpdProcess {
        let log = std::fs::File::create(log).expect("log file");
        let child = std::process::Command::new(binary)
            .args(["serve", "--config"])
            .arg(config)
            .env("ZTPD_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", filter)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start ztpd");
        // Owned by the guard at once: if ztpd never answers, dropping it kills the child.
        let process = ZtpdProcess {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        let http = client();
        for _ in 0..300 {
            if http
                .get(format!("{}/ping", process.base))
                .send()
                .await
                .is_ok()
            {
                return process;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("ztpd did not answer on {} within 15 s", process.base);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ZtpdProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A memory figure of process `pid` from /proc/PID/status, in KiB (`VmRSS`, `VmHWM`: the
/// peak resident set); 0 if it cannot be read.
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// An HTTP client with a timeout, so a hung server fails the test instead of hanging it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// GET `url` as an Arista switch with system MAC `mac`: the status and the body.
pub async fn arista_get(url: &str, mac: &str) -> (u16, String) {
    let r = client()
        .get(url)
        .header("X-Arista-SystemMAC", mac)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// GET `url` and return the body as text (panics on transport errors).
pub async fn get_text(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url} body: {e}"))
}

/// The lines an SSH push sends in configuration mode for `config` logged in as the
/// call-back's temporary `user` (what a recording peer should have got): the config, then
/// the removal of that user.
pub fn pushed_lines(config: &str, user: &str) -> Vec<String> {
    ztpd::ssh::config_lines(config)
        .into_iter()
        .map(str::to_owned)
        .chain([format!("no username {user}")])
        .collect()
}

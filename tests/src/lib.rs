//! Shared test environment for ztpd's end-to-end tests: where the built policies are, a
//! per-test temporary folder, and a real ztpd server on a loopback port.

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

/// A fresh, empty folder for one test.
pub fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ztpd-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test temp dir");
    dir
}

/// Configuration text for one default tenant running `policy` on the Arista demo data.
pub fn arista_config(policy_name: &str, limits: &str) -> String {
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
        policy = policy(policy_name).display(),
        root = root.display(),
    )
}

/// The rendered configs Python Jinja2 produced for all 1000 demo switches.
pub fn arista_golden() -> std::collections::HashMap<String, String> {
    let path = repo_root().join("tests/fixtures/arista_golden.json");
    let text = std::fs::read_to_string(&path).expect("read arista_golden.json");
    serde_json::from_str(&text).expect("parse arista_golden.json")
}

/// A ztpd server on a loopback port, stopped when dropped.
pub struct TestServer {
    pub base: String,
    pub state: ztpd::http::AppState,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Start ztpd with this configuration text; data goes to a temp folder.
    pub async fn start(test: &str, config_text: &str) -> TestServer {
        let dir = temp_dir(test);
        let config = ztpd::config::Config::parse(
            &format!(
                "data_dir = \"{}\"\n{config_text}",
                dir.join("data").display()
            ),
            &format!("{test} config"),
            &repo_root(),
        )
        .expect("test config is valid");
        let store = ztpd::store::Store::open(&config.data_dir).expect("open store");
        let state = ztpd::server::build(&config, store)
            .await
            .expect("build service");
        let server = ztpd::server::Server::bind_state(config.listen, state.clone())
            .await
            .expect("bind");
        let addr = server.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            state,
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

/// An HTTP client with a timeout, so a hung server fails the test instead of hanging it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

//! The IOS XE call-back flow in process: served script, token checks, job state machine,
//! SSH push (to the in-process device simulator; real SSH servers are in peers.rs).

use std::time::Duration;

use ztpd_e2e::sim::SimDevices;
use ztpd_e2e::{
    TestServer, client, iosxe_config, iosxe_inventory, repo_root, script_token, temp_dir,
    wait_for_job,
};

const PASSWORD: &str = "ztp-temporary-test";

async fn setup(test: &str, serials: &[&str], wait_s: u32) -> (TestServer, SimDevices) {
    let dir = temp_dir(&format!("{test}-files"));
    let sim = SimDevices::start(&dir, "ztp", PASSWORD)
        .await
        .expect("simulator");
    let inventory = iosxe_inventory(&dir, serials, sim.addr.port(), wait_s);
    let srv = TestServer::start(test, &iosxe_config(&inventory, PASSWORD, "")).await;
    (srv, sim)
}

async fn token(srv: &TestServer) -> String {
    ztpd_e2e::fetch_token(&srv.base).await
}

async fn call_back(srv: &TestServer, serial: &str, token: Option<&str>) -> reqwest::Response {
    ztpd_e2e::post_callback(&srv.base, serial, token).await
}

#[tokio::test]
async fn script_is_python_with_callback_url_token_and_credential() {
    let (srv, _sim) = setup("script", &["FOC2101B001"], 0).await;
    let resp = client().get(srv.url("/script.py")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/x-python");
    let script = resp.text().await.unwrap();
    assert!(
        script.contains(&format!("CALLBACK_URL = \"{}/callback\"", srv.base)),
        "{script}"
    );
    assert!(script.contains(&format!("ZTP_PASSWORD = \"{PASSWORD}\"")));
    assert!(script_token(&script).starts_with("v2."));
    // The script is valid Python.
    let path = temp_dir("script-compile").join("script.py");
    std::fs::write(&path, &script).unwrap();
    let ok = std::process::Command::new("python3")
        .args(["-m", "py_compile"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(ok.success(), "python3 cannot compile the served script");
}

#[tokio::test]
async fn callback_is_acked_and_the_config_is_pushed_over_ssh() {
    let serial = "FOC2101B001";
    let (srv, sim) = setup("push", &[serial], 0).await;
    let token = token(&srv).await;
    let resp = call_back(&srv, serial, Some(&token)).await;
    assert_eq!(resp.status(), 200);
    let ack: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(ack["status"], "ACK");
    assert_eq!(ack["serial"], serial);

    let job = wait_for_job(&srv.base, serial, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    let golden =
        std::fs::read_to_string(repo_root().join(format!("tests/fixtures/iosxe_{serial}.txt")))
            .unwrap();
    assert_eq!(
        job["config"].as_str().unwrap(),
        golden,
        "rendered config equals the seed's golden file"
    );
    assert_eq!(job["pushes"], 1);
    assert!(
        job["policy_version"]
            .as_str()
            .is_some_and(|v| v.len() == 64)
    );
    let states: Vec<&str> = job["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    for s in ["received", "planned", "waiting", "pushing", "done"] {
        assert!(states.contains(&s), "state {s} missing from {states:?}");
    }
    // The device received exactly the rendered lines.
    let received = sim
        .received
        .lock()
        .unwrap()
        .get("fra2-acc0001")
        .cloned()
        .expect("config received");
    assert_eq!(received, ztpd_e2e::pushed_lines(&golden, "ztp"));
    // The temporary user it logged in as is gone from the device's final config.
    let users = sim.users.lock().unwrap().get("fra2-acc0001").cloned();
    assert_eq!(
        users,
        Some(vec!["netadmin".to_owned()]),
        "users left on the device"
    );
    // The transcript is kept and the password is masked in it.
    let transcript = job["transcript"].as_str().unwrap();
    assert!(transcript.contains("hostname fra2-acc0001"));
    assert!(!transcript.contains(PASSWORD));
}

#[tokio::test]
async fn callbacks_without_a_valid_token_start_nothing() {
    let serial = "FOC2101B001";
    let (srv, _sim) = setup("tokens", &[serial], 0).await;
    let resp = call_back(&srv, serial, None).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("X-Ztpd-Token"));

    let good = token(&srv).await;
    // The same token with its last signature digit changed.
    let mut forged = good.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let resp = call_back(&srv, serial, Some(&forged)).await;
    assert_eq!(resp.status(), 403);
    let resp = call_back(&srv, serial, Some("garbage")).await;
    assert_eq!(resp.status(), 403);

    let tenant = srv.state.ctx.service.tenant("default").unwrap();
    let two_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 2 * 86_400;
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    let expired =
        tenant
            .callback_key
            .issue_with(two_days_ago, "00112233445566778899aabbccddeeff", loopback);
    let resp = call_back(&srv, serial, Some(&expired)).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("expired"));

    let devices: serde_json::Value = client()
        .get(srv.url("/api/v1/devices"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        devices["devices"].as_array().unwrap().len(),
        0,
        "no job was started: {devices:#}"
    );
}

#[tokio::test]
async fn a_second_callback_does_not_start_a_parallel_push() {
    let serial = "FOC2101B001";
    let (srv, sim) = setup("dup", &[serial], 2).await;
    let token = token(&srv).await;
    let first: serde_json::Value = call_back(&srv, serial, Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["already_running"], false);
    for _ in 0..5 {
        let again: serde_json::Value = call_back(&srv, serial, Some(&token))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again["already_running"], true);
        assert_eq!(again["job"], first["job"]);
    }
    let job = wait_for_job(&srv.base, serial, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done");
    assert_eq!(job["pushes"], 1);
    assert_eq!(sim.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_serial_fails_the_job_with_the_reason() {
    let (srv, _sim) = setup("unknown", &["FOC2101B001"], 0).await;
    let token = token(&srv).await;
    assert_eq!(
        call_back(&srv, "NOSUCHSERIAL1", Some(&token))
            .await
            .status(),
        200
    );
    let job = wait_for_job(&srv.base, "NOSUCHSERIAL1", Duration::from_secs(30)).await;
    assert_eq!(job["state"], "failed");
    assert!(
        job["error"].as_str().unwrap().contains("NOSUCHSERIAL1"),
        "{job:#}"
    );
}

#[tokio::test]
async fn bad_callbacks_get_a_clear_4xx() {
    let (srv, _sim) = setup("badcb", &["FOC2101B001"], 0).await;
    let token = token(&srv).await;
    let http = client();
    let r = http
        .post(srv.url("/callback"))
        .header("X-Ztpd-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("X-Serial-Number"));
    let r = http
        .post(srv.url("/callback"))
        .header("X-Ztpd-Token", &token)
        .header("X-Serial-Number", "bad serial; rm -rf /")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(srv.url("/callback"))
        .header("X-Ztpd-Token", &token)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_job_past_its_timeout_fails_saying_where_it_was() {
    let serial = "FOC2101B001";
    let dir = temp_dir("timeout-files");
    let sim = SimDevices::start(&dir, "ztp", PASSWORD)
        .await
        .expect("simulator");
    let inventory = iosxe_inventory(&dir, &[serial], sim.addr.port(), 30);
    let srv = TestServer::start(
        "timeout",
        &iosxe_config(&inventory, PASSWORD, "[jobs]\njob_timeout_s = 1\n"),
    )
    .await;
    let token = token(&srv).await;
    assert_eq!(call_back(&srv, serial, Some(&token)).await.status(), 200);
    let job = wait_for_job(&srv.base, serial, Duration::from_secs(20)).await;
    assert_eq!(job["state"], "failed");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("timed out") && error.contains("waiting"),
        "{error}"
    );
    assert!(sim.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn ztpd_status_prints_the_devices_table() {
    let serial = "FOC2101B001";
    let (srv, _sim) = setup("status-cli", &[serial], 0).await;
    let token = token(&srv).await;
    call_back(&srv, serial, Some(&token)).await;
    wait_for_job(&srv.base, serial, Duration::from_secs(30)).await;
    let out = tokio::process::Command::new(ztpd_e2e::ztpd_binary())
        .args(["status", "--url", &srv.base])
        .output()
        .await
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("TENANT") && header.contains("STATE"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.contains(serial))
        .expect("a row for the device");
    assert!(
        row.contains("default") && row.contains("done") && row.contains("127.0.0.1"),
        "{row}"
    );

    let out = tokio::process::Command::new(ztpd_e2e::ztpd_binary())
        .args(["status", "--url", &srv.base, serial])
        .output()
        .await
        .unwrap();
    let detail = String::from_utf8_lossy(&out.stdout);
    assert!(
        detail.contains("state    done") && detail.contains("pushed"),
        "{detail}"
    );
}

#[tokio::test]
async fn ztpd_render_dry_runs_a_call_back_and_shows_the_config() {
    let out = std::process::Command::new(ztpd_e2e::ztpd_binary())
        .args([
            "render",
            "--path",
            "/callback",
            "-H",
            "X-Serial-Number: FOC2101B001",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("dry run: the policy planned (not run)"),
        "{text}"
    );
    let golden =
        std::fs::read_to_string(repo_root().join("tests/fixtures/iosxe_FOC2101B001.txt")).unwrap();
    assert!(
        text.contains(&format!("--- iosxe/config.j2 would render:\n{golden}")),
        "{text}"
    );
}

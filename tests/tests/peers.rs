//! Pushes to real SSH servers nobody on this project wrote: fakenos impersonating Cisco
//! IOS XE (reached through the whole seed flow: the served script runs under python3 with
//! a stand-in `cli` module and calls back), and OpenSSH's sshd. Then the faults: a device
//! whose SSH comes up late, a wrong password, a rejected line, a changed host key.

use std::path::Path;
use std::time::Duration;

use ztpd_e2e::peers::{Fakenos, SSHD_PASSWORD, SSHD_USER, Sshd, run_served_script};
use ztpd_e2e::{
    TestServer, free_port, iosxe_config, iosxe_inventory, pushed_lines, repo_root, temp_dir,
    wait_for_job,
};

const SERIAL: &str = "FOC2101B001";

fn golden(serial: &str) -> String {
    std::fs::read_to_string(repo_root().join(format!("tests/fixtures/iosxe_{serial}.txt"))).unwrap()
}

/// ztpd serving the IOS XE policy for `serials`, whose pushes go to 127.0.0.1:`port`
/// as `user`/`password`.
async fn ztpd(
    test: &str,
    dir: &Path,
    serials: &[&str],
    port: u16,
    user: &str,
    password: &str,
) -> TestServer {
    let inventory = iosxe_inventory(dir, serials, port, 0);
    let config = iosxe_config(
        &inventory,
        password,
        "[jobs]\nssh_command_timeout_s = 20\njob_timeout_s = 180\n",
    )
    .replace("username = \"ztp\"", &format!("username = \"{user}\""));
    TestServer::start(test, &config).await
}

/// Fetch the script's token and call back as `serial`; the acknowledgement.
async fn call_back(srv: &TestServer, serial: &str) -> serde_json::Value {
    let token = ztpd_e2e::fetch_token(&srv.base).await;
    let r = ztpd_e2e::post_callback(&srv.base, serial, Some(&token)).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn seed_flow_end_to_end_with_fakenos() {
    let dir = temp_dir("fakenos-e2e");
    let password = "fakenos-ztp-pw";
    let device = Fakenos::start(&dir, 0, "ztp", password);
    let srv = ztpd("fakenos-e2e", &dir, &[SERIAL], device.port, "ztp", password).await;

    // The device fetches the script and runs it: python3 with the stand-in `cli` module.
    let (stdout, cli_calls) = run_served_script(&srv.base, &dir, SERIAL).await;
    assert!(stdout.contains("callback: 200"), "{stdout}");
    // The script created the temporary user it told ztpd about.
    assert!(
        cli_calls.contains(&format!("username ztp privilege 15 secret 0 {password}")),
        "{cli_calls}"
    );

    let job = wait_for_job(&srv.base, SERIAL, Duration::from_secs(150)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(
        device.received(),
        pushed_lines(&golden(SERIAL), "ztp"),
        "fakenos received exactly the rendered config"
    );
    assert_eq!(job["source_ip"], "127.0.0.1");
}

#[tokio::test]
async fn push_to_openssh_sshd() {
    let dir = temp_dir("sshd-push");
    let sshd = Sshd::start(&dir.join("sshd"), free_port());
    let srv = ztpd(
        "sshd-push",
        &dir,
        &[SERIAL],
        sshd.port,
        SSHD_USER,
        SSHD_PASSWORD,
    )
    .await;
    call_back(&srv, SERIAL).await;
    let job = wait_for_job(&srv.base, SERIAL, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(sshd.received(), pushed_lines(&golden(SERIAL), SSHD_USER));
    assert!(!job["transcript"].as_str().unwrap().contains(SSHD_PASSWORD));
}

#[tokio::test]
async fn ssh_that_comes_up_late_is_retried() {
    let dir = temp_dir("sshd-late");
    let port = free_port();
    let srv = ztpd("sshd-late", &dir, &[SERIAL], port, SSHD_USER, SSHD_PASSWORD).await;
    call_back(&srv, SERIAL).await;
    // The device's SSH opens 3 s after the call-back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sshd = Sshd::start(&dir.join("sshd"), port);
    let job = wait_for_job(&srv.base, SERIAL, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    let events = job["events"].to_string();
    assert!(
        !events.contains("(1 connection attempts)"),
        "it took more than one attempt: {events}"
    );
    assert!(!sshd.received().is_empty());
}

#[tokio::test]
async fn wrong_password_fails_saying_authentication() {
    let dir = temp_dir("sshd-auth");
    let sshd = Sshd::start(&dir.join("sshd"), free_port());
    let srv = ztpd(
        "sshd-auth",
        &dir,
        &[SERIAL],
        sshd.port,
        SSHD_USER,
        "not-the-password",
    )
    .await;
    call_back(&srv, SERIAL).await;
    let job = wait_for_job(&srv.base, SERIAL, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "failed");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("authentication failed") && error.contains(SSHD_USER),
        "{error}"
    );
    assert!(!error.contains("not-the-password"));
    assert!(sshd.received().is_empty());
}

#[tokio::test]
async fn a_rejected_line_fails_the_job_naming_the_line() {
    let dir = temp_dir("sshd-reject");
    let sshd = Sshd::start(&dir.join("sshd"), free_port());
    let inventory = iosxe_inventory(&dir, &[SERIAL], sshd.port, 0);
    // One interface description the device refuses.
    let text = std::fs::read_to_string(&inventory).unwrap().replacen(
        "uplink-fra2-73",
        "uplink ztpd-reject-me",
        1,
    );
    std::fs::write(&inventory, text).unwrap();
    let config = iosxe_config(&inventory, SSHD_PASSWORD, "")
        .replace("username = \"ztp\"", &format!("username = \"{SSHD_USER}\""));
    let srv = TestServer::start("sshd-reject", &config).await;
    call_back(&srv, SERIAL).await;
    let job = wait_for_job(&srv.base, SERIAL, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "failed");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("description uplink ztpd-reject-me"),
        "names the line: {error}"
    );
    assert!(
        error.contains("% Invalid input"),
        "gives the device's words: {error}"
    );
    assert!(
        job["transcript"]
            .as_str()
            .unwrap()
            .contains("ztpd-reject-me"),
        "transcript kept"
    );
}

#[tokio::test]
async fn host_keys_are_trusted_per_device_and_a_changed_one_is_refused() {
    let dir = temp_dir("sshd-hostkey");
    let port = free_port();
    let second = "FOC2111B011";
    let inventory = iosxe_inventory(&dir, &[SERIAL, second], port, 0);
    // The device may call back again from the same address after its job finished
    // (a re-run of ZTP), and an operator token can forget a host key.
    let config = format!(
        "{}\n[api]\nopen = true\n[[admin.tokens]]\nname = \"ops\"\ntoken = \"ops-token-hostkey-1\"\n",
        iosxe_config(
            &inventory,
            SSHD_PASSWORD,
            "[jobs]\nssh_command_timeout_s = 20\njob_timeout_s = 180\n",
        )
        .replace("username = \"ztp\"", &format!("username = \"{SSHD_USER}\""))
        .replace(
            "script_credential = \"ztp\"",
            "script_credential = \"ztp\"\nreclaim = \"same-address\"",
        )
    );
    let srv = TestServer::start("sshd-hostkey", &config).await;
    {
        let _first = Sshd::start(&dir.join("sshd-a"), port);
        call_back(&srv, SERIAL).await;
        let job = wait_for_job(&srv.base, SERIAL, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "done", "{job:#}");
    }
    // The same device calls back again, but another host answers on its address with a
    // different host key: refused, nothing pushed.
    let impostor = Sshd::start(&dir.join("sshd-b"), port);
    let first = job_id(&srv, SERIAL).await;
    call_back(&srv, SERIAL).await;
    let job = wait_for_newer_job(&srv, SERIAL, first).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("host key") && error.contains("changed since first use"),
        "{error}"
    );
    assert!(
        impostor.received().is_empty(),
        "nothing was pushed to the impostor"
    );

    // Keys belong to devices, not addresses: another device at that address is trusted
    // on its own first use.
    call_back(&srv, second).await;
    let job = wait_for_job(&srv.base, second, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "done", "{job:#}");

    // An operator forgets the first device's key (it was replaced): its next push works.
    let r = ztpd_e2e::client()
        .post(srv.url(&format!(
            "/admin/v1/tenants/default/devices/{SERIAL}/forget-host-key"
        )))
        .bearer_auth("ops-token-hostkey-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let before = job_id(&srv, SERIAL).await;
    let ack = call_back(&srv, SERIAL).await;
    assert_eq!(ack["already_running"], false, "{ack}");
    let job = wait_for_newer_job(&srv, SERIAL, before).await;
    assert_eq!(job["state"], "done", "{job:#}");
}

/// The id of the latest job of `serial`.
async fn job_id(srv: &TestServer, serial: &str) -> i64 {
    let job = wait_for_job(&srv.base, serial, Duration::from_secs(60)).await;
    job["job"]
        .as_i64()
        .or_else(|| job["id"].as_i64())
        .unwrap_or(0)
}

/// Wait for a finished job of `serial` newer than job `after`.
async fn wait_for_newer_job(srv: &TestServer, serial: &str, after: i64) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let job = wait_for_job(&srv.base, serial, Duration::from_secs(60)).await;
        let id = job["job"]
            .as_i64()
            .or_else(|| job["id"].as_i64())
            .unwrap_or(0);
        if id > after {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no job after {after}: {job:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

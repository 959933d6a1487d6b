//! Device trust on an untrusted segment, tried as an attacker on the LAN would: the
//! attacker at 127.0.0.2, the real router at 127.0.0.3, each with a recording SSH device
//! simulator on the same port, so a push to either address is seen. Call-back tokens are
//! bound to the address that fetched the script; serials are claimed once; the push logs
//! in with a password made for that one script and removes the temporary user.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ztpd_e2e::sim::SimDevices;
use ztpd_e2e::{
    TestServer, free_port, iosxe_config, iosxe_inventory, logs, script_password, script_token,
    temp_dir, wait_for_job,
};

const SERIAL: &str = "FOC2101B001";
const HOSTNAME: &str = "fra2-acc0001";
const ATTACKER: &str = "127.0.0.2";
const ROUTER: &str = "127.0.0.3";
const OPS: &str = "ops-token-device-trust-0001";

/// An HTTP client whose connections come from `ip`.
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// `GET /script.py` from `ip`: the script's token and one-time password.
async fn fetch_from(srv: &TestServer, ip: &str) -> (String, String) {
    let script = client_from(ip)
        .get(srv.url("/script.py"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (script_token(&script), script_password(&script))
}

/// `POST /callback` from `ip` claiming `serial` with `token`.
async fn callback_from(srv: &TestServer, ip: &str, serial: &str, token: &str) -> reqwest::Response {
    client_from(ip)
        .post(srv.url("/callback"))
        .header("X-Serial-Number", serial)
        .header("X-Ztpd-Token", token)
        .json(&serde_json::json!({"serial": serial, "model": "C9300-48P"}))
        .send()
        .await
        .unwrap()
}

/// The device's status reply, as sent.
async fn status_text(srv: &TestServer, serial: &str) -> String {
    ztpd_e2e::get_text(&srv.url(&format!("/api/v1/devices/{serial}"))).await
}

/// The device's status reply.
async fn status(srv: &TestServer, serial: &str) -> serde_json::Value {
    serde_json::from_str(&status_text(srv, serial).await).unwrap()
}

/// Poll until the device's job is in `state` (bounded).
async fn wait_state(srv: &TestServer, serial: &str, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = status(srv, serial).await;
        if v["state"] == state {
            return v;
        }
        assert!(Instant::now() < deadline, "never {state}: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POST an operator decision about `serial` (admin API).
async fn decide(srv: &TestServer, serial: &str, action: &str, body: serde_json::Value) {
    let r = ztpd_e2e::client()
        .post(srv.url(&format!(
            "/admin/v1/tenants/default/devices/{serial}/{action}"
        )))
        .bearer_auth(OPS)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{action}: {}", r.text().await.unwrap());
}

/// A simulated device on `ip`:`port` that accepts nobody until told.
async fn device_at(dir: &Path, ip: &str, port: u16) -> SimDevices {
    SimDevices::start_at(
        dir,
        SocketAddr::new(ip.parse().unwrap(), port),
        "nobody",
        "no-password-matches-this",
    )
    .await
    .unwrap()
}

fn connections(sim: &SimDevices) -> usize {
    sim.sessions.connections.load(Ordering::Relaxed)
}

/// The inventory of `serials` (SSH on `port`, wait `wait_s`), each record changed by `edit`.
fn inventory(
    dir: &Path,
    serials: &[&str],
    port: u16,
    wait_s: u32,
    edit: impl Fn(&mut serde_json::Value),
) -> PathBuf {
    let path = iosxe_inventory(dir, serials, port, wait_s);
    let mut records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for r in records.as_object_mut().unwrap().values_mut() {
        edit(r);
    }
    std::fs::write(&path, records.to_string()).unwrap();
    path
}

/// The IOS XE site with one-time credentials (`callback.user`), more `[tenants.callback]`
/// lines, an open status API on loopback and an operator token.
fn site(inventory: &Path, callback: &str) -> String {
    format!(
        "{}\n[api]\nopen = true\n[[admin.tokens]]\nname = \"ops\"\ntoken = \"{OPS}\"\n",
        iosxe_config(inventory, "unused", "")
            .replace(
                "script_credential = \"ztp\"",
                &format!("user = \"ztp\"\n{callback}")
            )
            .replace("[tenants.credentials.ztp]", "[tenants.credentials.unused]")
    )
}

#[tokio::test]
async fn a_declared_address_refuses_an_impostor_and_provisions_the_router() {
    let dir = temp_dir("trust-declared");
    let port = free_port();
    let attacker = device_at(&dir, ATTACKER, port).await;
    let router = device_at(&dir, ROUTER, port).await;
    let inv = inventory(&dir, &[SERIAL], port, 0, |r| {
        r["ztp_address"] = ROUTER.into();
    });
    let srv = TestServer::start(
        "trust-declared",
        &site(&inv, "address_field = \"ztp_address\""),
    )
    .await;

    // The attacker fetches a script (a token for its own address) and claims the serial.
    let (token, password) = fetch_from(&srv, ATTACKER).await;
    attacker.allow("ztp", &password);
    let r = callback_from(&srv, ATTACKER, SERIAL, &token).await;
    assert_eq!(r.status(), 403);
    let log = logs();
    assert!(
        log.lines().any(|l| l.contains("security.claim-refused")
            && l.contains(ATTACKER)
            && l.contains(ROUTER)),
        "the refusal is logged naming both addresses"
    );

    // The router's own fetch and call-back provision it.
    let (token, password) = fetch_from(&srv, ROUTER).await;
    router.allow("ztp", &password);
    // Its token replayed from the attacker's address: refused, nothing starts.
    let r = callback_from(&srv, ATTACKER, SERIAL, &token).await;
    assert_eq!(r.status(), 403);
    assert!(
        logs()
            .lines()
            .any(|l| l.contains("security.token-address") && l.contains(ATTACKER)),
        "the replay is logged"
    );
    let r = callback_from(&srv, ROUTER, SERIAL, &token).await;
    assert_eq!(r.status(), 200);
    let job = wait_for_job(&srv.base, SERIAL, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(job["source_ip"], ROUTER);
    assert!(router.received.lock().unwrap().contains_key(HOSTNAME));
    assert_eq!(connections(&attacker), 0, "the attacker got no connection");

    // The audit log has both refusals.
    let audit: serde_json::Value = ztpd_e2e::client()
        .get(srv.url("/admin/v1/audit"))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"security.claim-refused"), "{actions:?}");
    assert!(actions.contains(&"security.token-address"), "{actions:?}");
}

#[tokio::test]
async fn a_second_claim_holds_both_until_an_operator_approves_one() {
    let dir = temp_dir("trust-conflict");
    let port = free_port();
    let attacker = device_at(&dir, ATTACKER, port).await;
    let router = device_at(&dir, ROUTER, port).await;
    // No address is known; the device waits 3 s before its push.
    let inv = inventory(&dir, &[SERIAL], port, 3, |_| {});
    let srv = TestServer::start("trust-conflict", &site(&inv, "")).await;

    // The attacker claims first.
    let (token, password) = fetch_from(&srv, ATTACKER).await;
    attacker.allow("ztp", &password);
    assert_eq!(
        callback_from(&srv, ATTACKER, SERIAL, &token).await.status(),
        200
    );
    // The router calls back during the wait: 409, the device is in conflict.
    let (token, password) = fetch_from(&srv, ROUTER).await;
    router.allow("ztp", &password);
    let r = callback_from(&srv, ROUTER, SERIAL, &token).await;
    assert_eq!(r.status(), 409);
    let v = wait_state(&srv, SERIAL, "conflict").await;
    assert_eq!(v["conflict"], true, "{v:#}");
    assert!(
        logs()
            .lines()
            .any(|l| l.contains("security.conflict") && l.contains(ROUTER)),
        "the conflict is logged"
    );
    // Well past the wait, nobody has been pushed to.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(status(&srv, SERIAL).await["state"], "conflict");
    assert_eq!(connections(&attacker), 0);
    assert_eq!(connections(&router), 0);

    // The operator approves the router's call-back: only the router is pushed to.
    decide(
        &srv,
        SERIAL,
        "approve",
        serde_json::json!({"address": ROUTER}),
    )
    .await;
    let job = wait_for_job(&srv.base, SERIAL, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(job["source_ip"], ROUTER);
    assert!(router.received.lock().unwrap().contains_key(HOSTNAME));
    assert_eq!(connections(&attacker), 0, "the attacker got no connection");
}

#[tokio::test]
async fn each_script_has_its_own_password_which_is_used_once_and_kept_nowhere() {
    let dir = temp_dir("trust-otp");
    let sim = SimDevices::start(&dir, "nobody", "no-password-matches-this")
        .await
        .unwrap();
    let inv = inventory(&dir, &[SERIAL], sim.addr.port(), 0, |_| {});
    let srv = TestServer::start("trust-otp", &site(&inv, "")).await;

    let (first_token, first) = fetch_from(&srv, "127.0.0.1").await;
    let (token, password) = fetch_from(&srv, "127.0.0.1").await;
    assert_ne!(first, password, "two scripts, two passwords");
    assert_ne!(first_token, token);
    assert!(password.len() >= 20, "{password}");
    // The device ran the second script: only that password opens it.
    sim.allow("ztp", &password);
    assert_eq!(
        callback_from(&srv, "127.0.0.1", SERIAL, &token)
            .await
            .status(),
        200
    );
    let job = wait_for_job(&srv.base, SERIAL, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    // The temporary user was removed as the last configuration line, and is gone.
    let received = sim.received.lock().unwrap()[HOSTNAME].clone();
    assert_eq!(received.last().map(String::as_str), Some("no username ztp"));
    assert_eq!(
        sim.users.lock().unwrap()[HOSTNAME],
        ["netadmin"],
        "users left on the device"
    );
    let transcript = job["transcript"].as_str().unwrap();
    assert!(transcript.contains("show running-config | include ^username ztp"));

    // Neither password is in the log, the status reply, the transcript or the database.
    let reply = status_text(&srv, SERIAL).await;
    let log = logs();
    for secret in [&first, &password] {
        assert!(!log.contains(secret.as_str()), "password in the log");
        assert!(!reply.contains(secret.as_str()), "password in status");
        assert!(
            !transcript.contains(secret.as_str()),
            "password in the transcript"
        );
        for entry in std::fs::read_dir(&srv.data_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "password in {}",
                    path.display()
                );
            }
        }
    }
}

#[tokio::test]
async fn manual_approval_waits_then_approve_pushes_and_deny_does_not() {
    let dir = temp_dir("trust-manual");
    let sim = SimDevices::start(&dir, "nobody", "no-password-matches-this")
        .await
        .unwrap();
    let other = "FOC2111B011";
    let inv = inventory(&dir, &[SERIAL, other], sim.addr.port(), 0, |_| {});
    // A job may work for 2 s; waiting for the operator does not count.
    let config = site(&inv, "approval = \"manual\"\napproval_timeout_s = 120").replacen(
        "listen = \"127.0.0.1:0\"\n",
        "listen = \"127.0.0.1:0\"\n[jobs]\njob_timeout_s = 2\n",
        1,
    );
    let srv = TestServer::start("trust-manual", &config).await;

    let mut passwords = Vec::new();
    for serial in [SERIAL, other] {
        let (token, password) = fetch_from(&srv, "127.0.0.1").await;
        passwords.push(password);
        assert_eq!(
            callback_from(&srv, "127.0.0.1", serial, &token)
                .await
                .status(),
            200
        );
        wait_state(&srv, serial, "pending-approval").await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = status(&srv, SERIAL).await;
    assert_eq!(v["state"], "pending-approval", "{v:#}");
    assert_eq!(
        connections(&sim),
        0,
        "nothing reached a device before approval"
    );

    // The simulator holds one password per user name: the first device's.
    sim.allow("ztp", &passwords[0]);
    decide(&srv, SERIAL, "approve", serde_json::json!({})).await;
    let job = wait_for_job(&srv.base, SERIAL, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(connections(&sim), 1);

    decide(&srv, other, "deny", serde_json::json!({})).await;
    let job = wait_for_job(&srv.base, other, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    assert!(job["error"].as_str().unwrap().contains("denied"), "{job:#}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(connections(&sim), 1, "nothing pushed to the denied device");
}

#[tokio::test]
async fn the_status_api_needs_a_token_and_a_tenant_token_sees_its_tenant() {
    let dir = temp_dir("trust-status");
    let sim = SimDevices::start(&dir, "ztp", "status-pw").await.unwrap();
    let other = "FOC2111B011";
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let inv_a = iosxe_inventory(&dir.join("a"), &[SERIAL], sim.addr.port(), 0);
    let inv_b = iosxe_inventory(&dir.join("b"), &[other], sim.addr.port(), 0);
    let b = iosxe_config(&inv_b, "status-pw", "");
    let b = b
        .get(b.find("[[tenants]]").unwrap()..)
        .unwrap()
        .replace("name = \"default\"\ndefault = true\n", "name = \"b\"\n");
    // No `api.open`: the status API takes the admin tokens only.
    let config = format!(
        "{}{b}\n[[admin.tokens]]\nname = \"ops\"\ntoken = \"{OPS}\"\n[[admin.tokens]]\nname = \"b-ci\"\ntenant = \"b\"\ntoken = \"b-token-device-trust-01\"\n",
        iosxe_config(&inv_a, "status-pw", "")
    );
    let srv = TestServer::start("trust-status", &config).await;
    for (prefix, serial) in [("", SERIAL), ("/t/b", other)] {
        let token =
            script_token(&ztpd_e2e::get_text(&srv.url(&format!("{prefix}/script.py"))).await);
        let r = ztpd_e2e::client()
            .post(srv.url(&format!("{prefix}/callback")))
            .header("X-Serial-Number", serial)
            .header("X-Ztpd-Token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{serial}");
    }
    let get = |path: &str, token: Option<&str>| {
        let mut req = ztpd_e2e::client().get(srv.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    // Wait for both jobs with the operator's token.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value = get("/api/v1/devices", Some(OPS))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let done = v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["state"] == "done")
            .count();
        if done == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{v:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Without a token, or with a wrong one: refused, and nothing of a device is shown.
    for path in ["/api/v1/devices", &format!("/api/v1/devices/{SERIAL}")] {
        let r = get(path, None).await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains(SERIAL) && !body.contains(HOSTNAME), "{body}");
    }
    let r = get("/api/v1/devices", Some("a-wrong-token-of-enough-length"))
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 403), "{}", r.status());

    // Tenant b's token sees b's device only.
    let v: serde_json::Value = get("/api/v1/devices", Some("b-token-device-trust-01"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let devices: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["device"].as_str())
        .collect();
    assert_eq!(devices, [other]);
    let r = get(
        &format!("/api/v1/devices/{SERIAL}"),
        Some("b-token-device-trust-01"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404, "another tenant's device is not found");

    // The failed attempts are in the audit log.
    let audit: serde_json::Value = get("/admin/v1/audit", Some(OPS))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "auth.failed")
        .count();
    assert!(failed >= 3, "{audit:#}");
}

#[tokio::test]
async fn claims_from_a_dead_address_do_not_delay_genuine_devices() {
    let dir = temp_dir("trust-dead");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let sim = SimDevices::start(&dir, "ztp", "dead-pw").await.unwrap();
    // Eight serials the attacker claims from 127.0.0.2, where no SSH listens, and one
    // genuine device per tenant on 127.0.0.1.
    let junk: Vec<String> = (0..8).map(|i| format!("FOC99DEAD{i:02}")).collect();
    let mut a_serials: Vec<&str> = junk.iter().map(String::as_str).collect();
    a_serials.push(SERIAL);
    let other = "FOC2111B011";
    let inv_a = iosxe_inventory(&dir.join("a"), &a_serials, sim.addr.port(), 0);
    let inv_b = iosxe_inventory(&dir.join("b"), &[other], sim.addr.port(), 0);
    let b = iosxe_config(&inv_b, "dead-pw", "");
    let b = b
        .get(b.find("[[tenants]]").unwrap()..)
        .unwrap()
        .replace("name = \"default\"\ndefault = true\n", "name = \"b\"\n");
    // As many push slots as dead claims, globally and for the tenant.
    let config = format!(
        "{}{b}",
        iosxe_config(
            &inv_a,
            "dead-pw",
            "[jobs]\nmax_concurrent_pushes = 8\njob_timeout_s = 120\nssh_connect_timeout_s = 2\n"
        )
        .replace(
            "[tenants.policies]",
            "limits = { pushes = 8 }\n[tenants.policies]"
        )
    );
    let srv = TestServer::start("trust-dead", &config).await;
    for serial in &junk {
        let (token, _) = fetch_from(&srv, ATTACKER).await;
        assert_eq!(
            callback_from(&srv, ATTACKER, serial, &token).await.status(),
            200
        );
    }
    for serial in &junk {
        wait_state(&srv, serial, "pushing").await;
    }
    // The genuine devices of both tenants are provisioned promptly.
    let started = Instant::now();
    for (prefix, serial) in [("", SERIAL), ("/t/b", other)] {
        let script = ztpd_e2e::get_text(&srv.url(&format!("{prefix}/script.py"))).await;
        let r = ztpd_e2e::client()
            .post(srv.url(&format!("{prefix}/callback")))
            .header("X-Serial-Number", serial)
            .header("X-Ztpd-Token", script_token(&script))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{serial}");
    }
    for serial in [SERIAL, other] {
        let job = wait_for_job(&srv.base, serial, Duration::from_secs(30)).await;
        assert_eq!(job["state"], "done", "{job:#}");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "genuine devices took {took:?} beside 8 dead claims"
    );
    // The dead claims are still trying: they held no slot while they did.
    for serial in &junk {
        assert_eq!(status(&srv, serial).await["state"], "pushing", "{serial}");
    }
}

//! After the push: PRTG registration (against the PRTG API stand-in) and signed webhooks
//! (checked by a receiver that verifies signatures with Python's hmac), driven by real
//! IOS XE call-backs and SSH pushes to the in-process device simulator.

use std::path::Path;
use std::time::Duration;

use ztpd_e2e::sim::SimDevices;
use ztpd_e2e::standins::{PRTG_GROUP, PRTG_TEMPLATE, PrtgStandin, WebhookReceiver};
use ztpd_e2e::{
    TestServer, fetch_token, free_port, iosxe_config, iosxe_inventory, post_callback, temp_dir,
    wait_for_job,
};

const PASSWORD: &str = "ztp-temporary-test";
const PRTG_TOKEN: &str = "prtg-api-token-5b0c1e7d9a";
const PRTG_USER: &str = "ztpd";
const PRTG_PASSHASH: &str = "4177052911";
const HOOK_SECRET: &str = "webhook-secret-8d1f4c2a9e7b";

/// An inventory whose devices ask to be registered in the sink `prtg`.
fn monitored_inventory(dir: &Path, serials: &[&str], ssh_port: u16) -> std::path::PathBuf {
    let path = iosxe_inventory(dir, serials, ssh_port, 0);
    let mut records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for record in records.as_object_mut().unwrap().values_mut() {
        record["monitoring"] = "prtg".into();
    }
    std::fs::write(&path, records.to_string()).unwrap();
    path
}

/// Call back as `serial` and wait for the job that call-back started.
async fn provision(srv: &TestServer, serial: &str) -> serde_json::Value {
    let token = fetch_token(&srv.base).await;
    let resp = post_callback(&srv.base, serial, Some(&token)).await;
    assert_eq!(resp.status(), 200);
    let ack: serde_json::Value = resp.json().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let job = wait_for_job(&srv.base, serial, Duration::from_secs(30)).await;
        if job["job"] == ack["job"] {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {} never finished: {job:#}",
            ack["job"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn events(job: &serde_json::Value) -> String {
    job["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn prtg_site(
    test: &str,
    prtg: &PrtgStandin,
    auth: &str,
    serials: &[&str],
) -> (TestServer, SimDevices) {
    let dir = temp_dir(&format!("{test}-files"));
    let sim = SimDevices::start(&dir, "ztp", PASSWORD).await.unwrap();
    let inventory = monitored_inventory(&dir, serials, sim.addr.port());
    let config = format!(
        "{}\n[tenants.monitoring.prtg]\nkind = \"prtg\"\nurl = \"{}\"\n{auth}\ngroup = {PRTG_GROUP}\ntemplate = {PRTG_TEMPLATE}\nretries = 2\n",
        // Devices provision again (a reload) from the same address.
        iosxe_config(&inventory, PASSWORD, "").replace(
            "script_credential = \"ztp\"",
            "script_credential = \"ztp\"\nreclaim = \"same-address\"",
        ),
        prtg.base
    );
    (TestServer::start(test, &config).await, sim)
}

#[tokio::test]
async fn a_pushed_device_is_added_to_prtg_resumed_and_never_added_twice() {
    let prtg = PrtgStandin::start(PRTG_TOKEN, PRTG_USER, PRTG_PASSHASH, &[]);
    let serial = "FOC2101B001";
    let (srv, _sim) = prtg_site(
        "prtg-add",
        &prtg,
        &format!("apitoken = \"{PRTG_TOKEN}\""),
        &[serial],
    )
    .await;

    let job = provision(&srv, serial).await;
    assert_eq!(job["state"], "done", "{job:#}");
    let devices = prtg.devices().await;
    assert_eq!(devices.len(), 1, "{devices:#?}");
    let d = &devices[0];
    assert_eq!(
        d["name"], "fra2-acc0001",
        "named after the inventory's hostname"
    );
    // The address the config was pushed to (the call-back's source), not the seed's 10.x.
    assert_eq!(d["host"], "127.0.0.1");
    assert_eq!(d["parentid"], PRTG_GROUP);
    assert_eq!(d["cloned_from"], PRTG_TEMPLATE);
    assert_eq!(
        d["active"], true,
        "monitoring resumed after the copy: {d:#}"
    );
    let id = d["objid"].as_u64().unwrap();
    assert!(
        events(&job).contains(&format!("PRTG device {id} added")),
        "{}",
        events(&job)
    );

    // The device provisions again (a reload): PRTG already has its host.
    let again = provision(&srv, serial).await;
    assert_eq!(again["state"], "done", "{again:#}");
    assert!(again["job"] != job["job"]);
    assert_eq!(prtg.devices().await.len(), 1, "no second PRTG device");
    assert!(
        events(&again).contains("already monitors 127.0.0.1"),
        "{}",
        events(&again)
    );
    // Every call authenticated with the token, and the log never held it in clear.
    let state = prtg.state().await;
    for r in state["requests"].as_array().unwrap() {
        assert_eq!(r["auth"], "apitoken", "{r:#}");
    }
    assert!(!state.to_string().contains(PRTG_TOKEN));
}

#[tokio::test]
async fn a_lost_duplicate_answer_is_retried_without_a_second_copy() {
    // PRTG creates the copy but the answer is lost (503): a blind retry would copy twice.
    let prtg = PrtgStandin::start(
        PRTG_TOKEN,
        PRTG_USER,
        PRTG_PASSHASH,
        &["--lose-duplicate-response", "1"],
    );
    let serial = "FOC2111B011";
    let (srv, _sim) = prtg_site(
        "prtg-lost",
        &prtg,
        &format!("username = \"{PRTG_USER}\"\npasshash = \"{PRTG_PASSHASH}\""),
        &[serial],
    )
    .await;
    let job = provision(&srv, serial).await;
    assert_eq!(job["state"], "done", "{job:#}");
    let devices = prtg.devices().await;
    assert_eq!(devices.len(), 1, "exactly one copy: {devices:#?}");
    assert_eq!(devices[0]["active"], true, "{devices:#?}");
    let state = prtg.state().await;
    let duplicates = state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/api/duplicateobject.htm")
        .count();
    assert_eq!(
        duplicates, 1,
        "the retry looked the host up instead of copying again"
    );
    assert!(
        state["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["auth"] == "passhash")
    );
}

#[tokio::test]
async fn a_wrong_prtg_token_fails_the_job_and_says_so() {
    let prtg = PrtgStandin::start(PRTG_TOKEN, PRTG_USER, PRTG_PASSHASH, &[]);
    let serial = "FOC2121B021";
    let wrong = "not-the-prtg-token-31337";
    let (srv, _sim) = prtg_site(
        "prtg-auth",
        &prtg,
        &format!("apitoken = \"{wrong}\""),
        &[serial],
    )
    .await;
    let job = provision(&srv, serial).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("register-monitoring prtg")
            && error.contains("PRTG refused the credentials")
            && error.contains("401"),
        "{error}"
    );
    assert!(
        !job.to_string().contains(wrong),
        "the token leaked: {job:#}"
    );
    assert!(prtg.devices().await.is_empty());
}

#[tokio::test]
async fn webhooks_are_signed_and_outlast_a_receiver_that_is_down() {
    let dir = temp_dir("webhook-files");
    let sim = SimDevices::start(&dir, "ztp", PASSWORD).await.unwrap();
    let known = "FOC2101B001";
    let unknown = "FOC9999X999";
    let inventory = iosxe_inventory(&dir, &[known], sim.addr.port(), 0);
    // `ops` is down at first; `audit` verifies with a different secret, so every
    // attempt is refused (401) and its small retry budget runs out.
    let ops_port = free_port();
    let audit = WebhookReceiver::start(&dir, 0, "a-different-secret-000000", 0);
    let config = format!(
        r#"{}
[tenants.webhooks.ops]
url = "http://127.0.0.1:{ops_port}/ztp"
secret = "{HOOK_SECRET}"
events = ["device.provisioned", "device.failed"]
max_attempts = 30
backoff_ms = 100
timeout_s = 2
[tenants.webhooks.audit]
url = "http://127.0.0.1:{}/ztp"
secret = "{HOOK_SECRET}"
events = ["device.failed"]
max_attempts = 2
backoff_ms = 50
"#,
        // Devices provision again (a reload) from the same address.
        iosxe_config(&inventory, PASSWORD, "").replace(
            "script_credential = \"ztp\"",
            "script_credential = \"ztp\"\nreclaim = \"same-address\"",
        ),
        audit.port
    );
    let srv = TestServer::start("webhooks", &config).await;
    let done = provision(&srv, known).await;
    assert_eq!(done["state"], "done", "{done:#}");
    let failed = provision(&srv, unknown).await;
    assert_eq!(failed["state"], "failed", "{failed:#}");

    // Both jobs ended while `ops` was down; the events wait in the outbox, retried.
    let outbox = srv.state.ctx.runner.outbox();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ops: Vec<_> = outbox
            .deliveries("default")
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.webhook == "ops")
            .collect();
        if ops.len() == 2 && ops.iter().all(|d| d.state == "pending" && d.attempts >= 3) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ops events not retried: {ops:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The receiver comes up (and still fails its first request): nothing was lost.
    let ops = WebhookReceiver::start(&dir, ops_port, HOOK_SECRET, 1);
    let got = ops.wait_for(2, Duration::from_secs(20)).await;
    assert!(got.iter().all(|e| e["valid"] == true), "{got:#?}");
    let by_event = |name: &str| {
        got.iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event: {got:#?}"))
            .clone()
    };
    let provisioned = by_event("device.provisioned");
    let body = &provisioned["body"];
    assert_eq!(provisioned["content_type"], "application/json");
    assert_eq!(body["event"], "device.provisioned");
    assert_eq!(body["tenant"], "default");
    assert_eq!(body["device"]["serial"], known);
    assert_eq!(body["job"]["id"], done["job"]);
    assert_eq!(body["policy_version"], done["policy_version"]);
    assert!(body["error"].is_null());
    for stamp in [&body["occurred_at"], &body["job"]["created_at"]] {
        let text = stamp.as_str().unwrap();
        assert!(
            text.len() == 24 && text.ends_with('Z') && text.as_bytes()[10] == b'T',
            "RFC 3339 UTC: {text}"
        );
    }
    let failure = by_event("device.failed");
    assert_eq!(failure["body"]["device"]["serial"], unknown);
    // The policy that said "unknown" is named.
    assert_eq!(failure["body"]["policy_version"], done["policy_version"]);
    assert!(
        failure["body"]["error"]
            .as_str()
            .unwrap()
            .contains("unknown device"),
        "{failure:#}"
    );
    // Retries carry the same delivery id (receivers deduplicate on it).
    assert!(provisioned["delivery"] != failure["delivery"]);

    // `audit` checked with the wrong secret: every signature failed, the budget ran out.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let audit_rows: Vec<_> = outbox
            .deliveries("default")
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.webhook == "audit")
            .collect();
        if audit_rows.len() == 1 && audit_rows[0].state == "gave-up" {
            assert_eq!(audit_rows[0].attempts, 2);
            assert!(
                audit_rows[0]
                    .last_error
                    .as_deref()
                    .unwrap_or("")
                    .contains("401"),
                "{audit_rows:#?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "audit event not given up: {audit_rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = audit.received();
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert!(refused.iter().all(|e| e["valid"] == false));
}

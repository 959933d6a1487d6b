//! NetBox as the source of truth, against a real NetBox (tests/peers/netbox): look-ups by
//! serial and MAC, configs rendered from NetBox data and by NetBox itself, write-back
//! after the push, the faults (wrong token, NetBox down, unknown device), the seed's
//! whole flow, and a search for secrets everywhere they must not be.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use ztpd_e2e::netbox::{self, NETBOX_TEMPLATE, NetBox, NewDevice, mac_for, unique_serial};
use ztpd_e2e::peers::{Fakenos, run_served_script};
use ztpd_e2e::standins::{PRTG_GROUP, PRTG_TEMPLATE, PrtgStandin, WebhookReceiver};
use ztpd_e2e::{
    TestServer, ZtpdProcess, client, fetch_token, free_port, get_text, policy, post_callback,
    pushed_lines, repo_root, temp_dir, wait_for_job, write_config, ztpd_binary,
};

const PASSWORD: &str = "ztp-temp-pw-6c1e9b";
const PRTG_TOKEN: &str = "prtg-token-e2e-2f7a91c4d3";
const HOOK_SECRET: &str = "hook-secret-e2e-91b3f0c2d7a4";

/// A tenant serving `policy_name` with NetBox as its inventory, reached with `token`.
fn tenant(name: &str, default: bool, nb_url: &str, token: &str, policy_name: &str) -> String {
    format!(
        r#"
[[tenants]]
name = "{name}"
default = {default}
templates = "{root}/templates"
inventory = {{ netbox = "{nb_url}", token = "{token}", retries = 2, cache_s = 0 }}
policy = "{policy}"
[tenants.callback]
script_credential = "ztp"
[tenants.credentials.ztp]
username = "ztp"
password = "{PASSWORD}"
"#,
        root = repo_root().display(),
        policy = policy(policy_name).display(),
    )
}

/// The shared real NetBox; a test that needs one fails if it cannot start.
async fn real_netbox() -> NetBox {
    netbox::shared().await
}

fn arista_get(base: &str, path: &str, mac: &str) -> reqwest::RequestBuilder {
    client()
        .get(format!("{base}{path}"))
        .header("X-Arista-SystemMAC", mac)
}

#[tokio::test]
#[ignore = "needs a real NetBox (root: PostgreSQL, Redis, NetBox from PyPI); `just test` starts one and runs these (cargo test -p ztpd-e2e --test netbox -- --ignored)"]
async fn devices_are_found_by_mac_and_serial_and_rendered_by_netbox() {
    let nb = real_netbox().await;
    let serial = unique_serial("NBM");
    let mac = mac_for(&serial);
    let name = format!("lab-{}", serial.to_lowercase());
    nb.add_device(&NewDevice {
        name: &name,
        serial: &serial,
        mac: &mac,
        ip: "192.0.2.21/24",
        local_context: json!({}),
    })
    .await;
    // v2 token (Bearer nbt_...).
    let config = format!(
        "listen = \"127.0.0.1:0\"\n{}",
        tenant("default", true, &nb.url, &nb.token_v2, "iosxe_netbox")
    );
    let srv = TestServer::start("netbox-lookup", &config).await;

    // Arista pull: found by MAC (in another spelling), config rendered by NetBox's own
    // config template from its data and config context.
    let dotted = mac.replace(':', "");
    let dotted = format!("{}.{}.{}", &dotted[0..4], &dotted[4..8], &dotted[8..12]);
    let resp = arista_get(&srv.base, "/dynconfig", &dotted)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(NETBOX_TEMPLATE.contains("hostname {{ device.name }}"));
    assert!(text.starts_with(&format!("hostname {name}\n")), "{text}");
    assert!(
        text.contains("ntp server 192.0.2.123") && text.contains("ntp server 192.0.2.124"),
        "{text}"
    );

    // A MAC NetBox does not know: the policy's unknown-device path, a 404.
    let resp = arista_get(&srv.base, "/dynconfig", "02:00:00:00:00:01")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("in NetBox"));

    // By serial, through the host import a policy uses (the spy policy shows what it got).
    let spy_config = format!(
        "listen = \"127.0.0.1:0\"\n{}",
        tenant("spy", true, &nb.url, &nb.token_v1, "hostile")
    );
    let spy = TestServer::start("netbox-spy", &spy_config).await;
    let seen = arista_get(&spy.base, "/dynconfig?attack=spy", &mac)
        .header("X-Arista-Serial", &serial)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "inventory by serial: Ok(Some(".to_owned(),
        format!("\\\"name\\\":\\\"{name}\\\""),
        "\\\"ip\\\":\\\"192.0.2.21\\\"".to_owned(),
        "\\\"netmask\\\":\\\"255.255.255.0\\\"".to_owned(),
        "\\\"site\\\":{\\\"id\\\":".to_owned(),
        "\\\"domain\\\":\\\"lab.example.net\\\"".to_owned(),
    ] {
        assert!(seen.contains(&want), "missing {want} in {seen}");
    }
    assert!(!seen.contains(&nb.token_v1), "the token reached the policy");
}

#[tokio::test]
#[ignore = "needs a real NetBox (root: PostgreSQL, Redis, NetBox from PyPI); `just test` starts one and runs these (cargo test -p ztpd-e2e --test netbox -- --ignored)"]
async fn wrong_tokens_are_reported_naming_netbox_and_its_answer() {
    let nb = real_netbox().await;
    let serial = unique_serial("NBT");
    let mac = mac_for(&serial);
    nb.add_device(&NewDevice {
        name: &format!("tok-{}", serial.to_lowercase()),
        serial: &serial,
        mac: &mac,
        ip: "192.0.2.22/24",
        local_context: json!({}),
    })
    .await;
    let v1 = "0123456789abcdef0123456789abcdef01234567";
    let (key, _) = nb.token_v2.split_once('.').expect("v2 token has a key");
    let v2 = format!("{key}.notthesecretnotthesecretnotthesecret00");
    for wrong in [v1.to_owned(), v2] {
        let config = format!(
            "listen = \"127.0.0.1:0\"\n{}",
            tenant("default", true, &nb.url, &wrong, "iosxe_netbox")
        );
        let srv = TestServer::start("netbox-token", &config).await;
        let resp = arista_get(&srv.base, "/dynconfig", &mac)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 500);
        // The device is told little; the log line of its request says what happened.
        let text = resp.text().await.unwrap();
        assert!(!text.contains("NetBox"), "{text}");
        let line = ztpd_e2e::log_of_reply(&text);
        assert!(
            line.contains("NetBox refused the API token")
                && line.contains(&format!("{}/api/dcim/devices/", nb.url))
                && line.contains("403"),
            "{line}"
        );
        assert!(!text.contains(&wrong), "the token is in the reply: {text}");
        assert!(!line.contains(&wrong), "the token is in the log: {line}");
    }
}

#[tokio::test]
async fn netbox_down_is_retried_then_the_job_fails_with_the_reason() {
    // No NetBox needed: nothing listens on this port.
    let down = format!("http://127.0.0.1:{}", free_port());
    let config = format!(
        "listen = \"127.0.0.1:0\"\n{}",
        tenant("default", true, &down, "nbt_abc.def", "iosxe_netbox")
    );
    let srv = TestServer::start("netbox-down", &config).await;
    let serial = "FOC0000D0WN";
    let token = fetch_token(&srv.base).await;
    assert_eq!(
        post_callback(&srv.base, serial, Some(&token))
            .await
            .status(),
        200
    );
    let job = wait_for_job(&srv.base, serial, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "cannot reach NetBox at {down}/api/dcim/devices/ after 3 attempts"
        )),
        "{error}"
    );
}

#[tokio::test]
#[ignore = "needs a real NetBox (root: PostgreSQL, Redis, NetBox from PyPI); `just test` starts one and runs these (cargo test -p ztpd-e2e --test netbox -- --ignored)"]
async fn a_device_netbox_does_not_know_fails_its_job_saying_so() {
    let nb = real_netbox().await;
    let config = format!(
        "listen = \"127.0.0.1:0\"\n{}",
        tenant("default", true, &nb.url, &nb.token_v1, "iosxe_netbox")
    );
    let srv = TestServer::start("netbox-unknown", &config).await;
    let serial = unique_serial("NBX");
    let token = fetch_token(&srv.base).await;
    assert_eq!(
        post_callback(&srv.base, &serial, Some(&token))
            .await
            .status(),
        200
    );
    let job = wait_for_job(&srv.base, &serial, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(
        job["error"],
        format!("unknown device: no device with serial {serial} in NetBox")
    );
}

/// NetBox's transient errors and paging, from a NetBox-shaped server this test scripts
/// (the real NetBox cannot be told to fail): two 503s, then the answer split over two
/// pages; a second look-up inside `cache_s` does not ask again.
#[tokio::test]
async fn netbox_5xx_is_retried_pages_are_followed_and_answers_cached() {
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let page2 = format!("{base}/api/dcim/devices/?mac_address=02:00:00:00:00:77&offset=1");
    let devices = move |State(hits): State<Arc<AtomicUsize>>,
                        Query(q): Query<HashMap<String, String>>| {
        let page2 = page2.clone();
        async move {
            if hits.fetch_add(1, Ordering::SeqCst) < 2 {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(json!({"detail": "busy"})),
                );
            }
            let body = if q.contains_key("offset") {
                json!({"count": 1, "next": null, "previous": null, "results": [
                    {"id": 77, "name": "paged-77", "serial": "PAGED77",
                     "status": {"value": "planned"}, "config_context": {}}
                ]})
            } else {
                json!({"count": 1, "next": page2, "previous": null, "results": []})
            };
            (StatusCode::OK, axum::Json(body))
        }
    };
    let app = axum::Router::new()
        .route("/api/dcim/devices/", get(devices))
        .route(
            "/api/dcim/devices/77/render-config/",
            post(|| async { axum::Json(json!({"content": "hostname paged-77\n"})) }),
        )
        .with_state(hits.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = format!(
        "listen = \"127.0.0.1:0\"\n{}",
        tenant("default", true, &base, "nbt_abc.def", "iosxe_netbox")
    )
    .replace("cache_s = 0", "cache_s = 60");
    let srv = TestServer::start("netbox-faults", &config).await;
    for _ in 0..2 {
        let resp = arista_get(&srv.base, "/dynconfig", "02:00:00:00:00:77")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "hostname paged-77\n");
    }
    // 503, 503, page 1, page 2 — and nothing for the second request (cached).
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

/// Every file below `dir` (logs, the database) as lossy text.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.push_str(&all_text(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

#[tokio::test]
#[ignore = "needs a real NetBox (root: PostgreSQL, Redis, NetBox from PyPI); `just test` starts one and runs these (cargo test -p ztpd-e2e --test netbox -- --ignored)"]
async fn the_seed_flow_end_to_end_and_no_secret_leaks() {
    let nb = real_netbox().await;
    let dir = temp_dir("netbox-e2e");
    let device = Fakenos::start(&dir, 0, "ztp", PASSWORD);
    let prtg = PrtgStandin::start(PRTG_TOKEN, "ztpd", "1234567890", &[]);
    let hooks = WebhookReceiver::start(&dir, 0, HOOK_SECRET, 0);
    let serial = unique_serial("FOC");
    let name = format!("fra2-{}", serial.to_lowercase());
    let created = nb
        .add_device(&NewDevice {
            name: &name,
            serial: &serial,
            mac: &mac_for(&serial),
            ip: "192.0.2.31/24",
            local_context: json!({"ztp": {"wait_s": 1, "ssh_port": device.port}}),
        })
        .await;

    let config = format!(
        r#"listen = "127.0.0.1:0"
[jobs]
ssh_command_timeout_s = 20
job_timeout_s = 180
{site}
[tenants.monitoring.prtg]
kind = "prtg"
url = "{prtg}"
apitoken = "{PRTG_TOKEN}"
group = {PRTG_GROUP}
template = {PRTG_TEMPLATE}
[tenants.webhooks.ops]
url = "http://127.0.0.1:{hook_port}/ztp"
secret = "{HOOK_SECRET}"
events = ["device.provisioned", "device.failed"]
backoff_ms = 100
{spy}"#,
        site = tenant("default", true, &nb.url, &nb.token_v2, "iosxe_netbox"),
        spy = tenant("spy", false, &nb.url, &nb.token_v1, "hostile"),
        prtg = prtg.base,
        hook_port = hooks.port,
    );
    let config_path = write_config(&dir, &config);
    let port = free_port();
    let log = dir.join("ztpd.log");
    let ztpd =
        ZtpdProcess::start_logging(&ztpd_binary(), &config_path, port, &log, "ztpd=debug,info")
            .await;

    // The router fetches the script, runs it, calls back; ztpd does the rest.
    let (stdout, _) = run_served_script(&ztpd.base, &dir, &serial).await;
    assert!(stdout.contains("callback: 200"), "{stdout}");
    let job = wait_for_job(&ztpd.base, &serial, Duration::from_secs(120)).await;
    assert_eq!(job["state"], "done", "{job:#}");

    // Rendered by ztpd's iosxe/netbox.j2 from NetBox's data, and pushed as rendered.
    let config_text = job["config"].as_str().unwrap();
    for line in [
        format!("hostname {name}"),
        "ip domain name lab.example.net".to_owned(),
        " ip address 192.0.2.31 255.255.255.0".to_owned(),
        "ntp server 192.0.2.123".to_owned(),
        "vlan 100".to_owned(),
    ] {
        assert!(
            config_text.lines().any(|l| l == line),
            "no {line:?} in\n{config_text}"
        );
    }
    assert_eq!(
        device.received(),
        pushed_lines(config_text, "ztp"),
        "fakenos got exactly the rendered config"
    );

    // PRTG has the device, resumed, at the address the config was pushed to.
    let in_prtg = prtg.devices().await;
    assert_eq!(in_prtg.len(), 1, "{in_prtg:#?}");
    assert_eq!(in_prtg[0]["name"], name.as_str());
    assert_eq!(in_prtg[0]["host"], "127.0.0.1");
    assert_eq!(in_prtg[0]["active"], true);

    // NetBox: active, ztp_state set, a journal entry naming the job and policy version.
    let nb_device = nb.device(created.id).await;
    assert_eq!(nb_device["status"]["value"], "active", "{nb_device:#}");
    assert_eq!(nb_device["custom_fields"]["ztp_state"], "provisioned");
    let journal = nb.journal(created.id).await;
    let version = job["policy_version"].as_str().unwrap();
    assert!(
        journal.iter().any(|e| {
            let c = e["comments"].as_str().unwrap_or("");
            c.contains("Zero-touch provisioning of")
                && c.contains(&format!("ztpd job {}", job["job"]))
                && c.contains(&version[..12])
        }),
        "{journal:#?}"
    );

    // The webhook got device.provisioned, signed (checked by the receiver).
    let events = hooks.wait_for(1, Duration::from_secs(20)).await;
    assert!(events.iter().all(|e| e["valid"] == true), "{events:#?}");
    assert_eq!(events[0]["body"]["device"]["serial"], serial.as_str());

    // What the spy policy (tenant spy) is given for this device.
    let seen = arista_get(&ztpd.base, "/t/spy/dynconfig?attack=spy", &mac_for(&serial))
        .header("X-Arista-Serial", &serial)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(seen.contains(&name), "the spy saw the record: {seen}");

    // No secret anywhere a user or a policy can read.
    let status_all = get_text(&format!("{}/api/v1/devices", ztpd.base)).await;
    let status_one = get_text(&format!("{}/api/v1/devices/{serial}", ztpd.base)).await;
    let webhook_bodies = serde_json::to_string(&events).unwrap();
    let v2_secret = nb
        .token_v2
        .split_once('.')
        .map_or("", |(_, s)| s)
        .to_owned();
    let secrets = [
        ("NetBox v1 token", nb.token_v1.clone()),
        ("NetBox v2 token", nb.token_v2.clone()),
        ("NetBox v2 token secret", v2_secret),
        ("PRTG API token", PRTG_TOKEN.to_owned()),
        ("webhook secret", HOOK_SECRET.to_owned()),
        ("device password", PASSWORD.to_owned()),
    ];
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("DEBUG"),
        "the log ran at debug level, so the search means something"
    );
    drop(ztpd);
    let database = all_text(&dir.join("data"));
    let places = [
        ("ztpd's log (debug)", log_text.as_str()),
        ("the status API (all devices)", status_all.as_str()),
        (
            "the status API (the device, with its job events)",
            status_one.as_str(),
        ),
        ("webhook bodies", webhook_bodies.as_str()),
        ("the spy policy's input", seen.as_str()),
        ("the database (jobs, events, outbox)", database.as_str()),
    ];
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} is long enough to search for");
        for (place, text) in &places {
            // The device password is the credential the served script creates; the
            // database keeps nothing of it either (transcripts are masked).
            assert!(!text.contains(secret.as_str()), "{what} found in {place}");
        }
    }
}

//! Jobs survive ztpd being killed: `kill -9` while a job waits, start ztpd again on the
//! same data directory, and the job finishes with the device configured exactly once.

use std::time::Duration;

use ztpd_e2e::sim::SimDevices;
use ztpd_e2e::standins::WebhookReceiver;
use ztpd_e2e::{
    ZtpdProcess, client, free_port, iosxe_config, iosxe_inventory, script_token, temp_dir,
    wait_for_job, write_config,
};

#[tokio::test]
async fn kill_9_during_the_wait_then_restart_finishes_the_job_once() {
    let dir = temp_dir("kill9");
    let serial = "FOC2101B001";
    let sim = SimDevices::start(&dir, "ztp", "pw-kill9").await.unwrap();
    let inventory = iosxe_inventory(&dir, &[serial], sim.addr.port(), 3);
    let config = write_config(&dir, &iosxe_config(&inventory, "pw-kill9", ""));
    let port = free_port();

    let mut ztpd = ZtpdProcess::start(&config, port, &dir.join("first.log")).await;
    let http = client();
    let script = http
        .get(format!("{}/script.py", ztpd.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = http
        .post(format!("{}/callback", ztpd.base))
        .header("X-Serial-Number", serial)
        .header("X-Ztpd-Token", script_token(&script))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Wait until the job is in its 3 s wait, then kill ztpd without warning.
    let mut waiting = false;
    for _ in 0..100 {
        let v: serde_json::Value = http
            .get(format!("{}/api/v1/devices/{serial}", ztpd.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if v["state"] == "waiting" {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(waiting, "the job never reached the waiting state");
    ztpd.kill9();
    assert!(
        sim.pushes.lock().unwrap().is_empty(),
        "nothing was pushed before the kill"
    );

    let ztpd = ZtpdProcess::start(&config, port, &dir.join("second.log")).await;
    let job = wait_for_job(&ztpd.base, serial, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(job["pushes"], 1);
    assert_eq!(
        sim.pushes.lock().unwrap().get("fra2-acc0001"),
        Some(&1),
        "the device got its config exactly once"
    );
    let log = std::fs::read_to_string(dir.join("second.log")).unwrap();
    assert!(log.contains("resuming job"), "{log}");
}

#[tokio::test]
async fn a_webhook_event_pending_at_kill_9_is_delivered_after_the_restart() {
    let dir = temp_dir("kill9-webhook");
    let serial = "FOC2101B001";
    let secret = "restart-webhook-secret-0042";
    let sim = SimDevices::start(&dir, "ztp", "pw-kill9-hook")
        .await
        .unwrap();
    let inventory = iosxe_inventory(&dir, &[serial], sim.addr.port(), 0);
    let hook_port = free_port();
    let config = write_config(
        &dir,
        &format!(
            "{}\n[tenants.webhooks.ops]\nurl = \"http://127.0.0.1:{hook_port}/ztp\"\nsecret = \"{secret}\"\nevents = [\"device.provisioned\"]\nbackoff_ms = 200\nmax_attempts = 50\n",
            iosxe_config(&inventory, "pw-kill9-hook", "")
        ),
    );
    let port = free_port();
    let mut ztpd = ZtpdProcess::start(&config, port, &dir.join("first.log")).await;
    let token = ztpd_e2e::fetch_token(&ztpd.base).await;
    assert_eq!(
        ztpd_e2e::post_callback(&ztpd.base, serial, Some(&token))
            .await
            .status(),
        200
    );
    let job = wait_for_job(&ztpd.base, serial, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    // The receiver is down: let a few attempts fail, then kill ztpd without warning.
    tokio::time::sleep(Duration::from_millis(800)).await;
    ztpd.kill9();

    let receiver = WebhookReceiver::start(&dir, hook_port, secret, 0);
    let _ztpd = ZtpdProcess::start(&config, port, &dir.join("second.log")).await;
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["valid"], true);
    assert_eq!(got[0]["event"], "device.provisioned");
    assert_eq!(got[0]["body"]["job"]["id"], job["job"]);
    let log = std::fs::read_to_string(dir.join("second.log")).unwrap();
    assert!(
        log.contains("webhook events pending from before the restart"),
        "{log}"
    );
}

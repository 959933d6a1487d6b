//! ztpd as its own process under abuse that costs memory or disk: a hostile SSH peer that
//! floods without a prompt, and a thousand call-backs carrying oversized bodies and
//! headers. Memory is read from /proc (VmRSS, VmHWM), disk from the database file.

use std::time::Duration;

use ztpd_e2e::flood::FloodingDevice;
use ztpd_e2e::{
    ZtpdProcess, client, fetch_token, free_port, iosxe_config, iosxe_inventory, post_callback,
    proc_kib, temp_dir, wait_for_job, write_config,
};

const SERIAL: &str = "FOC2101B001";

#[tokio::test]
async fn a_flooding_ssh_peer_fails_on_the_byte_budget_and_memory_stays_bounded() {
    let dir = temp_dir("abuse-flood");
    // The peer sends 300 MiB without a prompt; ztpd's budget per command is 256 MiB.
    let flood = FloodingDevice::start(&dir, 300 << 20).await.unwrap();
    let inventory = iosxe_inventory(&dir, &[SERIAL], flood.addr.port(), 0);
    let config = write_config(
        &dir,
        &iosxe_config(
            &inventory,
            "flood-pw",
            "[jobs]\nssh_output_kib = 262144\nssh_command_timeout_s = 120\njob_timeout_s = 300\n",
        ),
    );
    let ztpd = ZtpdProcess::start(&config, free_port(), &dir.join("ztpd.log")).await;
    // Idle, after the policies are loaded and a request has been served.
    let token = fetch_token(&ztpd.base).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = proc_kib(ztpd.pid(), "VmRSS");
    assert!(idle > 0);

    assert_eq!(
        post_callback(&ztpd.base, SERIAL, Some(&token))
            .await
            .status(),
        200
    );
    let job = wait_for_job(&ztpd.base, SERIAL, Duration::from_secs(240)).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("more than 262144 KiB") && error.contains("jobs.ssh_output_kib"),
        "{error}"
    );
    let streamed = flood.sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(streamed >= 256 << 20, "the peer sent only {streamed} bytes");
    let peak = proc_kib(ztpd.pid(), "VmHWM");
    println!(
        "idle RSS {} MiB, peak {} MiB, after {} MiB streamed",
        idle >> 10,
        peak >> 10,
        streamed >> 20
    );
    assert!(
        peak.saturating_sub(idle) < 100 << 10,
        "ztpd grew from {} MiB idle to {} MiB",
        idle >> 10,
        peak >> 10
    );
    // The transcript kept is capped (1 MiB).
    let transcript = job["transcript"].as_str().unwrap_or_default();
    assert!(transcript.len() <= (1 << 20) + 100, "{}", transcript.len());
}

/// Bytes the database holds (the main file after folding the write-ahead log into it).
fn database_bytes(data_dir: &std::path::Path) -> u64 {
    let db = rusqlite::Connection::open(data_dir.join("ztpd.db")).unwrap();
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let (pages, free, size): (u64, u64, u64) = db
        .query_row(
            "SELECT (SELECT page_count FROM pragma_page_count()), (SELECT freelist_count FROM pragma_freelist_count()), (SELECT page_size FROM pragma_page_size())",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    (pages - free) * size
}

#[tokio::test]
async fn a_thousand_oversized_call_backs_grow_the_database_little_and_retention_prunes() {
    let dir = temp_dir("abuse-db");
    let inventory = iosxe_inventory(&dir, &[SERIAL], free_port(), 0);
    let site = iosxe_config(&inventory, "db-pw", "");
    let config = write_config(&dir, &site);
    let data_dir = dir.join("data");
    let port = free_port();
    let mut ztpd = ZtpdProcess::start(&config, port, &dir.join("ztpd.log")).await;
    let before = database_bytes(&data_dir);

    let http = client();
    let big_body = "x".repeat(64 << 10);
    let mut accepted = 0;
    for i in 0..1000 {
        let serial = format!("JUNK{i:05}");
        let token = fetch_token(&ztpd.base).await;
        let with_headers = |req: reqwest::RequestBuilder| {
            // 40 KiB of headers: under the 64 KiB head limit, over what a job keeps.
            (0..20).fold(req, |r, h| r.header(format!("x-pad-{h}"), "p".repeat(2000)))
        };
        // A 64 KiB body is refused before anything is stored.
        let r = with_headers(http.post(format!("{}/callback", ztpd.base)))
            .header("X-Serial-Number", &serial)
            .header("X-Ztpd-Token", &token)
            .body(big_body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{serial}");
        // The same call-back with a 4 KiB body (the most a call-back may carry) is taken.
        let r = with_headers(http.post(format!("{}/callback", ztpd.base)))
            .header("X-Serial-Number", &serial)
            .header("X-Ztpd-Token", &token)
            .body(format!(
                "{{\"serial\": \"{serial}\", \"pad\": \"{}\"}}",
                "y".repeat(4000)
            ))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1000);
    // Every job ends (the policy does not know these serials).
    let last = wait_for_job(&ztpd.base, "JUNK00999", Duration::from_secs(60)).await;
    assert_eq!(last["state"], "failed", "{last:#}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    ztpd.kill9();
    let grown = database_bytes(&data_dir).saturating_sub(before);
    println!("1000 call-backs grew the database by {} KiB", grown >> 10);
    assert!(grown < 5 << 20, "the database grew by {grown} bytes");

    // Restarted with a retention of zero days, ztpd prunes the finished jobs at start.
    let config = write_config(
        &dir,
        &iosxe_config(&inventory, "db-pw", "[jobs]\nretention_days = 0\n"),
    );
    let ztpd = ZtpdProcess::start(&config, port, &dir.join("ztpd-2.log")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v: serde_json::Value = http
            .get(format!("{}/api/v1/devices", ztpd.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["devices"].as_array().is_some_and(|d| d.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} jobs left after pruning",
            v["devices"].as_array().map_or(0, Vec::len)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = std::fs::read_to_string(dir.join("ztpd-2.log")).unwrap();
    assert!(
        log.contains("pruned rows older than jobs.retention_days"),
        "{log}"
    );
}

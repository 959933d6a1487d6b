//! Hot swap while serving: a policy file replaced on disk goes live without a restart and
//! without a failed request; a broken replacement is refused and the old version stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ztpd_e2e::{TestServer, arista_config_at, arista_golden, client, policy, sha256, temp_dir};

const MACS: [&str; 4] = [
    "00:1c:73:00:00:01",
    "00:1c:73:00:00:0b",
    "00:1c:73:00:00:15",
    "00:1c:73:00:03:e8",
];
const VERSION: &str = ztpd::dialect::POLICY_VERSION_HEADER;

/// Replace `dest` the way deploy tools do: write beside it, then rename over it.
fn install(src: &Path, dest: &Path) {
    let tmp = dest.with_extension("tmp");
    std::fs::copy(src, &tmp).expect("copy policy");
    std::fs::rename(&tmp, dest).expect("rename policy");
}

/// A server whose default tenant's policy is the file `live` (a copy of arista_dynamic).
async fn server(test: &str, extra_tenant: &str) -> (TestServer, PathBuf) {
    let dir = temp_dir(&format!("{test}-files"));
    let live = dir.join("policy.wasm");
    std::fs::copy(policy("arista_dynamic"), &live).unwrap();
    let config = format!("{}{extra_tenant}", arista_config_at(&live, ""));
    (TestServer::start(test, &config).await, live)
}

async fn version_of_reply(srv: &TestServer) -> String {
    let r = client()
        .get(srv.url("/dynconfig"))
        .header("X-Arista-SystemMAC", MACS[0])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()[VERSION].to_str().unwrap().to_owned()
}

async fn wait_for_version(srv: &TestServer, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < within {
        if version_of_reply(srv).await == want {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("version {want} not live within {within:?}");
}

#[tokio::test]
async fn fifty_swaps_under_load_fail_no_request() {
    let (srv, live) = server("swap-load", "").await;
    let (a, b) = (policy("arista_dynamic"), policy("hostile"));
    let (ha, hb) = (sha256(&a), sha256(&b));
    assert_ne!(ha, hb);
    let golden = Arc::new(arista_golden());
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(120);
    // Eight clients in a bounded loop (count and time).
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (http, url, stop, golden) = (
                client(),
                srv.url("/dynconfig"),
                stop.clone(),
                golden.clone(),
            );
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for i in 0..200_000usize {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let mac = MACS[(c + i) % MACS.len()];
                    let r = http
                        .get(&url)
                        .header("X-Arista-SystemMAC", mac)
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    let version = r
                        .headers()
                        .get(VERSION)
                        .map(|v| v.to_str().unwrap().to_owned());
                    let body = r.text().await.unwrap();
                    seen.push((status, version, body == golden[mac]));
                }
                seen
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for i in 0..50 {
        let (src, want) = if i % 2 == 0 { (&b, &hb) } else { (&a, &ha) };
        install(src, &live);
        latencies.push(wait_for_version(&srv, want, Duration::from_secs(10)).await);
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        for (status, version, body_ok) in c.await.unwrap() {
            total += 1;
            assert_eq!(status, 200, "a request failed during the swaps");
            let v = version.expect("every reply names its policy version");
            assert!(v == ha || v == hb, "reply from an unknown version {v}");
            assert!(body_ok, "a reply's body is not the switch's config");
        }
    }
    assert!(total > 100, "the load loop ran ({total} requests)");
    latencies.sort();
    eprintln!(
        "{total} requests across 50 swaps; swap-to-live median {:?}, max {:?}",
        latencies[25], latencies[49]
    );
}

#[tokio::test]
async fn a_new_file_answers_within_a_second() {
    let (srv, live) = server("swap-drop", "").await;
    let b = policy("hostile");
    install(&b, &live);
    let took = wait_for_version(&srv, &sha256(&b), Duration::from_secs(1)).await;
    eprintln!("new policy answered {took:?} after the file was written");
    // The swap is in the version history and the audit log, like an API upload. It is
    // recorded just after it goes live, so allow the record a moment (bounded).
    let stores = srv.state.ctx.service.stores().clone();
    let versions = stores.versions.clone();
    for _ in 0..100 {
        let audit = stores.audit.entries(None).await.unwrap();
        if audit
            .iter()
            .any(|e| e.hash.as_deref() == Some(sha256(&b).as_str()))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let history = versions.activations("default", "any").await.unwrap();
    assert_eq!(
        history.first().map(|a| a.hash.as_str()),
        Some(sha256(&b).as_str()),
        "{history:?}"
    );
    assert!(history[0].actor.starts_with("file "), "{history:?}");
    assert!(
        history
            .iter()
            .any(|a| a.hash == sha256(&policy("arista_dynamic"))),
        "the configured version is there to roll back to"
    );
    let audit = stores.audit.entries(None).await.unwrap();
    assert!(
        audit.iter().any(
            |e| e.action == "policy.activate" && e.hash.as_deref() == Some(sha256(&b).as_str())
        ),
        "{audit:?}"
    );
}

#[tokio::test]
async fn broken_replacements_are_refused_and_the_old_version_stays() {
    let smoke = r#"[tenants.smoke]
dialect = "arista-eos"
path = "/dynconfig?attack=panic"
mac = "00:1c:73:00:00:01""#;
    let (srv, live) = server("swap-broken", smoke).await;
    let original = sha256(&live);
    let dir = live.parent().unwrap().to_owned();
    let corrupt = dir.join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm this is not a component at all").unwrap();
    let service = srv.state.ctx.service.clone();

    // The reason for each refusal.
    let err = service
        .activate_policy_file("default", None, &corrupt)
        .await
        .unwrap_err();
    let err = err.to_string();
    assert!(err.contains("not a valid WebAssembly component"), "{err}");
    let err = service
        .activate_policy_file("default", None, &policy("not-a-policy"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not fit any contract version") && err.contains("handle"),
        "{err}"
    );
    // hostile.wasm is a fine policy, but this tenant's smoke request makes it panic.
    let err = service
        .activate_policy_file("default", None, &policy("hostile"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("smoke request") && err.contains("panicked"),
        "{err}"
    );

    // The same files dropped into the watched folder: the watcher refuses each (its
    // refusal is in the audit log, naming the file's version), and the old version
    // answers. Waiting for the record proves the watcher saw the file.
    let audit = service.stores().audit.clone();
    let watched = format!("file {}", std::path::absolute(&live).unwrap().display());
    for bad in [corrupt, policy("not-a-policy"), policy("hostile")] {
        let hash = sha256(&bad);
        install(&bad, &live);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let entries = audit.entries(None).await.unwrap();
            let refused = entries.iter().any(|e| {
                e.action == "policy.rejected"
                    && e.hash.as_deref() == Some(hash.as_str())
                    && e.actor == watched
            });
            if refused {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no refusal of {} recorded: {entries:?}",
                bad.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            version_of_reply(&srv).await,
            original,
            "after dropping {}",
            bad.display()
        );
    }
}

//! Hostile policies: each attack fails only its own request, with an error that says what
//! happened, while good requests to the same policy at the same time succeed.

use ztpd_e2e::{TestServer, arista_config, arista_golden, client};

const GOOD_MAC: &str = "00:1c:73:00:00:15";
const CONCURRENT_GOOD: usize = 24;

/// Start a server on the hostile policy, fire `CONCURRENT_GOOD` good requests alongside one
/// `?attack=<attack>` request, check every good reply, and return the hostile reply.
async fn attack(attack: &str) -> (u16, String) {
    attack_with(
        attack,
        attack,
        "memory_mib = 32, cpu_ms = 100, wall_ms = 5000",
    )
    .await
}

/// Like [`attack`], with the query `attack=<query>` under these `limits`.
async fn attack_with(name: &str, query: &str, limits: &str) -> (u16, String) {
    let attack = name;
    let srv = TestServer::start(&format!("attack-{name}"), &arista_config("hostile", limits)).await;
    let http = client();
    let want = arista_golden()[GOOD_MAC].clone();
    let good = (0..CONCURRENT_GOOD).map(|_| {
        let (http, url) = (http.clone(), srv.url("/dynconfig"));
        async move {
            let r = http
                .get(url)
                .header("X-Arista-SystemMAC", GOOD_MAC)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    let bad = {
        let (http, url) = (http.clone(), srv.url(&format!("/dynconfig?attack={query}")));
        async move {
            let r = http
                .get(url)
                .header("X-Arista-SystemMAC", GOOD_MAC)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (bad, good) = tokio::join!(bad, futures::future::join_all(good));
    for (status, body) in good {
        assert_eq!(
            status, 200,
            "a good request failed during the {attack} attack: {body}"
        );
        assert!(
            body == want,
            "a good request got a wrong config during the {attack} attack"
        );
    }
    // The policy still serves after the attack.
    let after = http
        .get(srv.url("/dynconfig"))
        .header("X-Arista-SystemMAC", GOOD_MAC)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        200,
        "policy broken after the {attack} attack"
    );
    bad
}

/// The device gets a terse 500 (no tenant, no policy, no internal text); the log line it
/// points to names the tenant, the policy and what happened.
fn assert_failed(attack: &str, (status, body): &(u16, String), needles: &[&str]) {
    assert_eq!(*status, 500, "{attack}: {body}");
    for secret in ["tenant default", "hostile.wasm", "policy"] {
        assert!(
            !body.contains(secret),
            "{attack}: the reply to the device says {secret:?}: {body}"
        );
    }
    let line = ztpd_e2e::log_of_reply(body);
    assert!(
        line.contains("tenant default"),
        "{attack}: the log names the tenant: {line}"
    );
    assert!(
        line.contains("hostile.wasm"),
        "{attack}: the log names the policy: {line}"
    );
    for n in needles {
        assert!(line.contains(n), "{attack}: expected {n:?} in {line}");
    }
}

#[tokio::test]
async fn endless_loop_hits_the_cpu_limit() {
    let r = attack("loop").await;
    assert_failed("loop", &r, &["CPU limit of 100 ms"]);
}

#[tokio::test]
async fn memory_growth_hits_the_memory_limit() {
    let r = attack("memory").await;
    assert_failed("memory", &r, &["memory", "32 MiB"]);
}

#[tokio::test]
async fn unbounded_recursion_overflows_the_stack() {
    let r = attack("recursion").await;
    assert_failed("recursion", &r, &["stack overflow"]);
}

#[tokio::test]
async fn panic_is_reported_with_its_message() {
    let r = attack("panic").await;
    assert_failed(
        "panic",
        &r,
        &["panicked", "hostile policy panicked on purpose"],
    );
}

#[tokio::test]
async fn a_100_mb_reply_is_refused() {
    let r = attack("big-reply").await;
    // 100 MB does not fit in a 32 MiB sandbox: the memory limit stops it first.
    assert_failed("big-reply", &r, &["memory"]);
    assert!(r.1.len() < 4096);
}

#[tokio::test]
async fn reading_a_file_finds_no_file_system() {
    let r = attack("read-file").await;
    assert_failed("read-file", &r, &["cannot read /etc/passwd"]);
    assert!(!r.1.contains("root:"), "file content leaked: {}", r.1);
}

#[tokio::test]
async fn the_environment_is_empty() {
    let r = attack("env").await;
    assert_failed("env", &r, &["the environment is empty"]);
}

#[tokio::test]
async fn sockets_are_refused() {
    let r = attack("socket").await;
    assert_failed("socket", &r, &["cannot open a socket"]);
}

#[tokio::test]
async fn a_reply_over_reply_kib_is_refused_and_one_under_it_is_not() {
    let limits = "memory_mib = 32, cpu_ms = 100, wall_ms = 5000, reply_kib = 64";
    let r = attack_with("reply-200k", "reply&kib=200", limits).await;
    assert_failed(
        "reply-200k",
        &r,
        &[
            "decision of 204",
            "over its limit of 65536 bytes (limits.reply_kib)",
        ],
    );
    let (status, body) = attack_with("reply-32k", "reply&kib=32", limits).await;
    assert_eq!((status, body.len()), (200, 32 * 1024));
}

#[tokio::test]
async fn a_call_past_wall_ms_is_abandoned_saying_it_was_running() {
    // A generous CPU limit, a short wall-time limit: the wall clock ends the call.
    let r = attack_with(
        "wall",
        "loop",
        "memory_mib = 32, cpu_ms = 10000, wall_ms = 300",
    )
    .await;
    assert_failed(
        "wall",
        &r,
        &["did not finish within 300 ms (limits.wall_ms)", "ms of CPU"],
    );
}

//! The device-facing listener under abuse by an unauthenticated host: slow and idle
//! connections are closed at the header timeout while real requests are answered, one
//! source cannot hold more than its share of connections, oversized heads are refused.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use ztpd_e2e::{TestServer, policy, repo_root};

/// A site with the Arista demo policy and a 2 s header timeout.
fn site(http: &str) -> String {
    let root = repo_root();
    format!(
        "listen = \"127.0.0.1:0\"\n[http]\nheader_timeout_s = 2\n{http}\n[[tenants]]\nname = \"default\"\ndefault = true\npolicy = \"{}\"\ntemplates = \"{}\"\ninventory = {{ file = \"{}\", key = \"mac\" }}\n",
        policy("arista_dynamic").display(),
        root.join("templates").display(),
        root.join("inventory/arista/swinfo.json").display(),
    )
}

fn server_addr(srv: &TestServer) -> SocketAddr {
    srv.base
        .trim_start_matches("http://")
        .parse()
        .expect("the test server's address")
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Whether the server has closed `stream` (a read returns end of file or an error).
async fn closed(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before the close: keep reading to the end.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn slowloris_connections_are_closed_at_the_header_timeout_and_real_requests_answer() {
    let srv = TestServer::start("http-slowloris", &site("")).await;
    let to = server_addr(&srv);
    // 400 connections from 8 addresses (50 each, under the per-source cap): half send
    // nothing, half start a request and drip a header byte every 300 ms.
    let mut held = Vec::new();
    for i in 0..400u32 {
        let from: IpAddr = format!("127.0.0.{}", 10 + i % 8).parse().unwrap();
        let mut s = connect_from(from, to).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /ping HTTP/1.1\r\nHost: ztpd\r\n")
                .await
                .unwrap();
        }
        held.push((i, s));
    }
    let opened = Instant::now();
    let dripping = tokio::spawn(async move {
        for _ in 0..30 {
            for (i, s) in held.iter_mut() {
                if *i % 2 == 1 {
                    let _ = s.write_all(b"X").await;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        held
    });
    // Meanwhile a real request is answered at once.
    let t = Instant::now();
    let body = ztpd_e2e::get_text(&srv.url("/ping")).await;
    assert!(!body.is_empty());
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "/ping took {:?} beside 400 slow connections",
        t.elapsed()
    );
    let mut held = dripping.await.unwrap();
    // Every slow connection is closed by the header timeout (2 s; the drip ran 9 s).
    let mut open = 0;
    for (_, s) in held.iter_mut() {
        if !closed(s, Duration::from_millis(200)).await {
            open += 1;
        }
    }
    assert_eq!(
        open,
        0,
        "{open} of 400 slow connections still open {:?} after they began",
        opened.elapsed()
    );
}

#[tokio::test]
async fn one_source_cannot_hold_more_than_its_connections() {
    let srv = TestServer::start("http-per-source", &site("max_connections_per_source = 8")).await;
    let to = server_addr(&srv);
    let from: IpAddr = "127.0.0.20".parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect_from(from, to).await.unwrap());
    }
    // The ninth connection from that address is closed at once.
    let mut ninth = connect_from(from, to).await.unwrap();
    let _ = ninth
        .write_all(b"GET /ping HTTP/1.1\r\nHost: ztpd\r\n\r\n")
        .await;
    assert!(closed(&mut ninth, Duration::from_secs(2)).await);
    // Another address is served.
    let mut other = connect_from("127.0.0.21".parse().unwrap(), to)
        .await
        .unwrap();
    other
        .write_all(b"GET /ping HTTP/1.1\r\nHost: ztpd\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    other.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    drop(held);
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let srv = TestServer::start("http-head", &site("")).await;
    let http = ztpd_e2e::client();
    // 100 KiB of headers: past the 64 KiB head limit.
    let mut req = http.get(srv.url("/dynconfig"));
    for i in 0..50 {
        req = req.header(format!("x-junk-{i}"), "a".repeat(2048));
    }
    let status = match req.send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0, // closed without an answer
    };
    assert!(matches!(status, 431 | 0), "got {status}");
    // 80 small headers: past the 64-header limit.
    let mut req = http.get(srv.url("/dynconfig"));
    for i in 0..80 {
        req = req.header(format!("x-h-{i}"), "1");
    }
    let status = match req.send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    };
    assert!(matches!(status, 431 | 0), "got {status}");
    // The server still answers.
    assert!(!ztpd_e2e::get_text(&srv.url("/ping")).await.is_empty());
}

#[tokio::test]
async fn one_source_asking_for_configs_too_fast_gets_429() {
    // Loopback is exempt by default (a local proxy); this test limits it like any host.
    let srv = TestServer::start(
        "http-rate",
        &site("device_rate_per_source = 5\nrate_limit_loopback = true"),
    )
    .await;
    let from_ip = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let greedy = from_ip("127.0.0.40");
    let mut limited = 0;
    let mut retry_after = None;
    for i in 0..40 {
        let r = greedy
            .get(srv.url("/dynconfig"))
            .header(
                "X-Arista-SystemMAC",
                format!("00:1c:73:00:00:{:02x}", i + 1),
            )
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited += 1;
            retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
        }
    }
    assert!(limited >= 25, "only {limited} of 40 were limited");
    assert!(retry_after.is_some(), "429 says when to come back");
    // Another address is not slowed by it.
    let r = from_ip("127.0.0.41")
        .get(srv.url("/dynconfig"))
        .header("X-Arista-SystemMAC", "00:1c:73:00:00:01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

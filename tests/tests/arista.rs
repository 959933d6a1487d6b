//! The Arista pull flow over real HTTP through the wasm policy: golden configs, every
//! MAC form, and bad device input answered with a clear 4xx.

use ztpd_e2e::{TestServer, arista_config, arista_golden, client};

async fn server(test: &str) -> TestServer {
    TestServer::start(test, &arista_config("arista_dynamic", "")).await
}

#[tokio::test]
async fn golden_files_are_byte_identical() {
    let srv = server("golden").await;
    let dir = ztpd_e2e::repo_root().join("tests/fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(hex) = name
            .strip_prefix("arista_")
            .and_then(|n| n.strip_suffix(".txt"))
        else {
            continue;
        };
        let mac: Vec<String> = hex
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let resp = client()
            .get(srv.url("/dynconfig"))
            .header("X-Arista-SystemMAC", mac.join(":"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert!(
            resp.headers()
                .contains_key(ztpd::dialect::POLICY_VERSION_HEADER)
        );
        let body = resp.bytes().await.unwrap();
        assert_eq!(
            body.as_ref(),
            std::fs::read(&path).unwrap().as_slice(),
            "{name}"
        );
        seen += 1;
    }
    assert_eq!(seen, 3, "the three golden files of the baseline");
}

#[tokio::test]
async fn all_1000_switches_match_python_jinja2() {
    let srv = server("all1000").await;
    let golden = arista_golden();
    assert_eq!(golden.len(), 1000);
    let http = client();
    let mut macs: Vec<&String> = golden.keys().collect();
    macs.sort();
    for chunk in macs.chunks(50) {
        let replies = futures::future::join_all(chunk.iter().map(|mac| {
            let http = http.clone();
            let url = srv.url("/dynconfig");
            async move {
                let r = http
                    .get(url)
                    .header("X-Arista-SystemMAC", mac.as_str())
                    .send()
                    .await
                    .unwrap();
                (r.status(), r.text().await.unwrap())
            }
        }))
        .await;
        for (mac, (status, body)) in chunk.iter().zip(replies) {
            assert_eq!(status, 200, "{mac}: {body}");
            assert!(
                body == golden[*mac],
                "{mac}: reply differs from Python Jinja2's render"
            );
        }
    }
}

#[tokio::test]
async fn header_name_case_and_mac_forms_do_not_matter() {
    let srv = server("forms").await;
    let want = &arista_golden()["00:1c:73:00:00:01"];
    for name in [
        "X-Arista-SystemMAC",
        "x-arista-systemmac",
        "X-ARISTA-SYSTEMMAC",
        "x-Arista-SystemMac",
    ] {
        for mac in [
            "00:1C:73:00:00:01",
            "001c.7300.0001",
            "001c73000001",
            "00-1c-73-00-00-01",
        ] {
            let resp = client()
                .get(srv.url("/dynconfig"))
                .header(name, mac)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{name}: {mac}");
            assert_eq!(&resp.text().await.unwrap(), want, "{name}: {mac}");
        }
    }
}

/// Sends a request and returns (status, body); panics on a 5xx.
async fn expect_4xx(req: reqwest::RequestBuilder) -> (u16, String) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert!(
        (400..500).contains(&status),
        "expected 4xx, got {status}: {body}"
    );
    (status, body)
}

#[tokio::test]
async fn bad_device_input_gets_a_clear_4xx() {
    let srv = server("badinput").await;
    let http = client();
    let url = srv.url("/dynconfig");

    let (s, body) = expect_4xx(http.get(&url)).await;
    assert_eq!(s, 400);
    assert!(
        body.contains("X-Arista-SystemMAC") && body.contains("00:1c:73:00:00:01"),
        "{body}"
    );

    for bad in [
        "",
        "   ",
        "garbage",
        "00:1c:73:00:00",
        "00:1c:73:00:00:zz",
        "00:1c:73:00:00:01:02",
    ] {
        let (s, body) = expect_4xx(http.get(&url).header("X-Arista-SystemMAC", bad)).await;
        assert_eq!(s, 400, "{bad:?}");
        assert!(body.contains("X-Arista-SystemMAC"), "{bad:?}: {body}");
    }

    // A 64 KiB header: refused, and not echoed back.
    let huge = "a".repeat(64 * 1024);
    let (_, body) = expect_4xx(http.get(&url).header("X-Arista-SystemMAC", &huge)).await;
    assert!(body.len() < 1024, "the reply must not echo the header");
    // The same size in an unrelated header does not hurt.
    let resp = http
        .get(&url)
        .header("X-Arista-SystemMAC", "00:1c:73:00:00:01")
        .header("X-Padding", &huge)
        .send()
        .await
        .unwrap();
    assert!(
        resp.status() == 200 || resp.status().is_client_error(),
        "{}",
        resp.status()
    );

    // Non-UTF-8 bytes in the MAC header and in the serial header.
    let raw = reqwest::header::HeaderValue::from_bytes(b"00:1c:73:\xff\xfe:00:01").unwrap();
    let (s, body) = expect_4xx(http.get(&url).header("X-Arista-SystemMAC", raw.clone())).await;
    assert_eq!(s, 400);
    assert!(body.contains("X-Arista-SystemMAC"), "{body}");
    let (s, body) = expect_4xx(
        http.get(&url)
            .header("X-Arista-SystemMAC", "00:1c:73:00:00:01")
            .header("X-Arista-Serial", raw),
    )
    .await;
    assert_eq!(s, 400);
    assert!(body.contains("X-Arista-Serial"), "{body}");

    // Unknown switch: 404 with a one-line reason.
    let (s, body) = expect_4xx(
        http.get(&url)
            .header("X-Arista-SystemMAC", "de:ad:be:ef:00:00"),
    )
    .await;
    assert_eq!(s, 404);
    assert!(
        body.contains("de:ad:be:ef:00:00") && body.trim_end().lines().count() == 1,
        "{body}"
    );

    // Unknown path and unknown tenant.
    let (s, body) = expect_4xx(http.get(srv.url("/no/such/path"))).await;
    assert_eq!(s, 404);
    assert!(body.contains("/no/such/path"), "{body}");
    let (s, body) = expect_4xx(
        http.get(srv.url("/t/nobody/dynconfig"))
            .header("X-Arista-SystemMAC", "00:1c:73:00:00:01"),
    )
    .await;
    assert_eq!(s, 404);
    assert!(body.contains("nobody"), "{body}");
}

#[tokio::test]
async fn tenant_prefix_reaches_the_same_tenant() {
    let srv = server("prefix").await;
    let resp = client()
        .get(srv.url("/t/default/dynconfig"))
        .header("X-Arista-SystemMAC", "00:1c:73:00:00:0b")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        arista_golden()["00:1c:73:00:00:0b"]
    );
}

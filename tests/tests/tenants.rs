//! Tenants recognised by path prefix or by the device's source network; a device outside
//! a tenant's networks is refused; an unknown tenant is a clear 404.

use ztpd_e2e::{TestServer, arista_golden, client, policy, repo_root, sha256};

const MAC: &str = "00:1c:73:00:00:01";

#[tokio::test]
async fn source_networks_pick_and_restrict_tenants() {
    let root = repo_root();
    let tenant = |name: &str, default: bool, sources: &str, policy_name: &str| {
        format!(
            r#"
[[tenants]]
name = "{name}"
default = {default}
sources = [{sources}]
policy = "{policy}"
templates = "{root}/templates"
inventory = {{ file = "{root}/inventory/arista/swinfo.json", key = "mac" }}
"#,
            policy = policy(policy_name).display(),
            root = root.display(),
        )
    };
    let config = format!(
        "listen = \"127.0.0.1:0\"\n{}{}{}",
        tenant("lab", false, "\"127.0.0.0/8\"", "hostile"),
        tenant("faraway", false, "\"192.0.2.0/24\"", "arista_dynamic"),
        tenant("fallback", true, "", "arista_dynamic"),
    );
    let srv = TestServer::start("tenants-cidr", &config).await;
    let http = client();
    let get = |path: &str| {
        let url = srv.url(path);
        let http = http.clone();
        async move {
            http.get(url)
                .header("X-Arista-SystemMAC", MAC)
                .send()
                .await
                .unwrap()
        }
    };

    // 127.0.0.1 is in lab's network: the plain path goes to lab, not to the default tenant.
    let r = get("/dynconfig").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()[ztpd::dialect::POLICY_VERSION_HEADER],
        sha256(&policy("hostile")).as_str()
    );
    assert_eq!(r.text().await.unwrap(), arista_golden()[MAC]);

    // faraway serves 192.0.2.0/24 only: a device on loopback is refused, even by prefix.
    let r = get("/t/faraway/dynconfig").await;
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("faraway") && body.contains("127.0.0.1"),
        "{body}"
    );

    // A tenant without source networks takes devices from anywhere by prefix.
    let r = get("/t/fallback/dynconfig").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()[ztpd::dialect::POLICY_VERSION_HEADER],
        sha256(&policy("arista_dynamic")).as_str()
    );

    let r = get("/t/nobody/dynconfig").await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("nobody"));
}

#[tokio::test]
async fn a_tenant_over_its_request_rate_gets_429_with_retry_after() {
    let root = repo_root();
    let config = format!(
        r#"listen = "127.0.0.1:0"
[[tenants]]
name = "slow"
default = true
policy = "{}"
templates = "{}/templates"
inventory = {{ file = "{}/inventory/arista/swinfo.json", key = "mac" }}
limits = {{ rate_per_s = 5 }}
"#,
        policy("arista_dynamic").display(),
        root.display(),
        root.display()
    );
    let srv = TestServer::start("tenants-rate", &config).await;
    let http = client();
    let mut ok = 0;
    let mut limited = 0;
    for _ in 0..20 {
        let r = http
            .get(srv.url("/dynconfig"))
            .header("X-Arista-SystemMAC", MAC)
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                limited += 1;
                assert!(r.headers().contains_key("retry-after"));
                assert!(r.text().await.unwrap().contains("request rate of 5/s"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        (5..=8).contains(&ok),
        "the burst of 5 (plus refill) was served: {ok}"
    );
    assert_eq!(ok + limited, 20);
}

#[tokio::test]
async fn a_policy_cannot_read_another_tenants_key_value_state() {
    let root = repo_root();
    let tenant = |name: &str| {
        format!(
            "[[tenants]]\nname = \"{name}\"\npolicy = \"{}\"\ntemplates = \"{}/templates\"\ninventory = {{ file = \"{}/inventory/arista/swinfo.json\", key = \"mac\" }}\n",
            policy("hostile").display(),
            root.display(),
            root.display()
        )
    };
    let srv = TestServer::start(
        "tenants-kv",
        &format!("listen = \"127.0.0.1:0\"\n{}{}", tenant("a"), tenant("b")),
    )
    .await;
    let get = |path: &str| {
        let url = srv.url(path);
        async move {
            let r = client()
                .get(url)
                .header("X-Arista-SystemMAC", MAC)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    assert_eq!(get("/t/a/dynconfig?attack=kv-write").await, "wrote a");
    // The same policy, the same key, another tenant: nothing there.
    assert_eq!(get("/t/b/dynconfig?attack=kv-read").await, "read None");
    assert_eq!(
        get("/t/a/dynconfig?attack=kv-read").await,
        "read Some(\"a\")"
    );
    assert_eq!(get("/t/b/dynconfig?attack=kv-write").await, "wrote b");
    assert_eq!(
        get("/t/a/dynconfig?attack=kv-read").await,
        "read Some(\"a\")"
    );
}

//! The admin API: tokens scoped to tenants, policy upload/validate/activate/rollback with
//! versions and an audit log, the `ztpd policy` CLI, tenant isolation, the OpenAPI document.

use ztpd_e2e::{TestServer, client, policy, repo_root, sha256};

const OPS: &str = "operator-token-0123456789";
const A_TOKEN: &str = "tenant-a-token-0123456789";
const B_TOKEN: &str = "tenant-b-token-0123456789";
const MAC: &str = "00:1c:73:00:00:01";
const VERSION: &str = ztpd::dialect::POLICY_VERSION_HEADER;

/// Tenants a and b on the demo policy; b's inventory holds only the switches a lacks.
async fn server(test: &str) -> TestServer {
    let root = repo_root();
    let dir = ztpd_e2e::temp_dir(&format!("{test}-files"));
    let all: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(root.join("inventory/arista/swinfo.json")).unwrap(),
    )
    .unwrap();
    let (a_inv, b_inv) = (dir.join("a.json"), dir.join("b.json"));
    let (a, b): (Vec<_>, Vec<_>) = all.into_iter().partition(|(mac, _)| mac != MAC);
    std::fs::write(
        &a_inv,
        serde_json::to_string(&a.into_iter().collect::<serde_json::Map<_, _>>()).unwrap(),
    )
    .unwrap();
    std::fs::write(
        &b_inv,
        serde_json::to_string(&b.into_iter().collect::<serde_json::Map<_, _>>()).unwrap(),
    )
    .unwrap();
    // Each tenant gets its own copy of the templates: uploads write into it.
    let tenant = |name: &str, inv: &std::path::Path| {
        let templates = dir.join(format!("templates-{name}"));
        std::fs::create_dir_all(templates.join("arista")).unwrap();
        std::fs::copy(
            root.join("templates/arista/config.j2"),
            templates.join("arista/config.j2"),
        )
        .unwrap();
        format!(
            "[[tenants]]\nname = \"{name}\"\npolicy = \"{}\"\ntemplates = \"{}\"\ninventory = {{ file = \"{}\", key = \"mac\" }}\n",
            policy("arista_dynamic").display(),
            templates.display(),
            inv.display()
        )
    };
    let config = format!(
        "listen = \"127.0.0.1:0\"\n[[admin.tokens]]\nname = \"ops\"\ntoken = \"{OPS}\"\n[[admin.tokens]]\nname = \"a-ci\"\ntenant = \"a\"\ntoken = \"{A_TOKEN}\"\n[[admin.tokens]]\nname = \"b-ci\"\ntenant = \"b\"\ntoken = \"{B_TOKEN}\"\n{}{}",
        tenant("a", &a_inv),
        tenant("b", &b_inv)
    );
    TestServer::start(test, &config).await
}

/// GET an admin route with a token and parse the JSON reply.
async fn get_json(srv: &TestServer, path: &str, token: &str) -> serde_json::Value {
    client()
        .get(srv.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(policy(name)).unwrap()
}

#[tokio::test]
async fn tenant_tokens_reach_only_their_tenant() {
    let srv = server("admin-tokens").await;
    let http = client();
    let r = http.get(srv.url("/admin/v1/tenants")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(srv.url("/admin/v1/tenants"))
        .bearer_auth("not-a-token-at-all-xx")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let v: serde_json::Value = get_json(&srv, "/admin/v1/tenants", A_TOKEN).await;
    let names: Vec<&str> = v["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"], "a tenant token sees only its tenant");
    let v: serde_json::Value = get_json(&srv, "/admin/v1/tenants", OPS).await;
    assert_eq!(v["tenants"].as_array().unwrap().len(), 2);

    // A's token on B: read, upload, activate, rollback, templates, devices, all 403.
    let b_live = sha256(&policy("arista_dynamic"));
    let denied = [
        http.get(srv.url("/admin/v1/tenants/b/policies")),
        http.post(srv.url("/admin/v1/tenants/b/policies/any?activate=true"))
            .body(wasm("hostile")),
        http.post(srv.url(&format!(
            "/admin/v1/tenants/b/policies/any/{b_live}/activate"
        ))),
        http.post(srv.url("/admin/v1/tenants/b/policies/any/rollback")),
        http.put(srv.url("/admin/v1/tenants/b/templates/x.j2"))
            .body("x"),
        http.get(srv.url("/admin/v1/tenants/b/devices")),
    ];
    for req in denied {
        let r = req.bearer_auth(A_TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 403, "{:?}", r.url().path());
    }
    // B still runs its original version.
    let r = http
        .get(srv.url("/t/b/dynconfig"))
        .header("X-Arista-SystemMAC", MAC)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[VERSION], b_live.as_str());
    // A's audit log shows nothing of B.
    let v: serde_json::Value = get_json(&srv, "/admin/v1/audit", A_TOKEN).await;
    assert!(
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == "a")
    );
}

#[tokio::test]
async fn a_policy_sees_only_its_own_tenants_inventory() {
    let srv = server("admin-isolation").await;
    // MAC is in b's inventory only: a's policy cannot find it, b's can.
    let r = client()
        .get(srv.url("/t/a/dynconfig"))
        .header("X-Arista-SystemMAC", MAC)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client()
        .get(srv.url("/t/b/dynconfig"))
        .header("X-Arista-SystemMAC", MAC)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn push_activate_list_rollback_with_the_cli_and_an_audit_trail() {
    let srv = server("admin-cli").await;
    let base = srv.base.clone();
    let ztpd = move |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(ztpd_e2e::ztpd_binary());
        cmd.args(["policy"])
            .args(args)
            .args(["--url", &base, "--token", A_TOKEN]);
        async move {
            let out = cmd.output().await.unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let live = |srv: &TestServer| {
        let url = srv.url("/t/a/dynconfig");
        async move {
            let r = client()
                .get(url)
                .header("X-Arista-SystemMAC", "00:1c:73:00:00:0b")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.headers()[VERSION].to_str().unwrap().to_owned()
        }
    };
    let original = sha256(&policy("arista_dynamic"));
    let hostile = sha256(&policy("hostile"));
    let hostile_path = policy("hostile");
    let hostile_path = hostile_path.to_str().unwrap();

    // Upload without activating: stored and validated, not live.
    let (ok, out) = ztpd(&["push", "--tenant", "a", hostile_path]).await;
    assert!(
        ok && out.contains(&hostile) && out.contains("not live"),
        "{out}"
    );
    assert_eq!(live(&srv).await, original);
    let (ok, out) = ztpd(&["activate", "--tenant", "a", &hostile]).await;
    assert!(ok, "{out}");
    assert_eq!(live(&srv).await, hostile);
    let (ok, out) = ztpd(&["list", "--tenant", "a"]).await;
    assert!(
        ok && out.contains(&format!("* {hostile}")) && out.contains(&original),
        "{out}"
    );
    assert!(out.contains("uploaded by a-ci"), "{out}");
    let (ok, out) = ztpd(&["rollback", "--tenant", "a"]).await;
    assert!(ok && out.contains(&original), "{out}");
    assert_eq!(live(&srv).await, original);

    // A corrupt upload and a non-policy are refused with the reason; nothing changes.
    let (ok, out) = ztpd(&[
        "push",
        "--tenant",
        "a",
        "--activate",
        policy("not-a-policy").to_str().unwrap(),
    ])
    .await;
    assert!(
        !ok && out.contains("does not fit any contract version"),
        "{out}"
    );
    let bogus = ztpd_e2e::temp_dir("admin-cli-bogus").join("bogus.wasm");
    std::fs::write(&bogus, b"not wasm").unwrap();
    let (ok, out) = ztpd(&[
        "push",
        "--tenant",
        "a",
        "--activate",
        bogus.to_str().unwrap(),
    ])
    .await;
    assert!(
        !ok && out.contains("not a valid WebAssembly component"),
        "{out}"
    );
    assert_eq!(live(&srv).await, original);

    let v: serde_json::Value = get_json(&srv, "/admin/v1/audit", OPS).await;
    let actions: Vec<String> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["hash"].as_str().unwrap_or("-")
            )
        })
        .collect();
    for want in [
        format!("policy.upload a-ci {hostile}"),
        format!("policy.activate a-ci {hostile}"),
        format!("policy.rollback a-ci {original}"),
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:#?}");
    }
    assert!(
        actions
            .iter()
            .filter(|a| a.starts_with("policy.rejected a-ci"))
            .count()
            == 2,
        "{actions:#?}"
    );
}

#[tokio::test]
async fn templates_upload_goes_live_and_the_openapi_document_is_served() {
    let srv = server("admin-templates").await;
    let http = client();
    let r = http
        .put(srv.url("/admin/v1/tenants/a/templates/extra/banner.j2"))
        .bearer_auth(OPS)
        .body("{% for x in %}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("line 1"));
    let r = http
        .put(srv.url("/admin/v1/tenants/a/templates/extra/banner.j2"))
        .bearer_auth(A_TOKEN)
        .body("banner motd ^{{ hostname }}^\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = get_json(&srv, "/admin/v1/tenants", A_TOKEN).await;
    let names = v["tenants"][0]["templates"].to_string();
    assert!(
        names.contains("extra/banner.j2") && names.contains("arista/config.j2"),
        "{names}"
    );
    let v: serde_json::Value = http
        .get(srv.url("/admin/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["openapi"].as_str().is_some_and(|s| s.starts_with("3.")),
        "{v}"
    );
    assert!(
        v["components"]["securitySchemes"]["bearer"].is_object(),
        "{v}"
    );
    for path in [
        "/admin/v1/tenants",
        "/admin/v1/tenants/{tenant}/policies/{slot}",
        "/admin/v1/audit",
        "/api/v1/devices/{device}",
    ] {
        assert!(v["paths"].get(path).is_some(), "{path} documented");
    }
}

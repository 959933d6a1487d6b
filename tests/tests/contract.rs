//! The policy contract grows without breaking shipped policies: components built against
//! `ztpd:policy@0.1.0` (kept as built in `tests/fixtures/contract-0.1.0/`) answer exactly
//! as before, and a dialect added later — here a trivial one defined in this file — needs
//! no contract change: a 0.1.0 policy and a 0.2.0 policy both answer through it.

use std::path::PathBuf;
use std::time::Duration;

use ztpd::dialect::{
    DeviceError, DeviceHttp, DeviceReply, Dialect, Registry, Route, VendorRule, device_request,
    reply,
};
use ztpd::model::{Identity, stage};
use ztpd_e2e::sim::SimDevices;
use ztpd_e2e::{
    TestServer, arista_config_at, arista_get, arista_golden, client, iosxe_inventory, policy,
    repo_root, temp_dir, wait_for_job,
};

fn fixture(name: &str) -> PathBuf {
    repo_root().join(format!("tests/fixtures/contract-0.1.0/{name}.wasm"))
}

#[tokio::test]
async fn a_0_1_0_arista_policy_answers_all_1000_switches_byte_identically() {
    let config = arista_config_at(&fixture("arista_dynamic"), "");
    let srv = TestServer::start("contract-arista", &config).await;
    let tenant = srv.state.ctx.service.tenant("default").unwrap();
    assert_eq!(tenant.policies()[0].1.contract(), "0.1.0");
    let url = srv.url("/dynconfig");
    for (mac, want) in arista_golden() {
        assert_eq!(arista_get(&url, &mac).await, (200, want), "{mac}");
    }
    for name in ["001c73000001", "001c7300000b", "001c73000015"] {
        let golden =
            std::fs::read_to_string(repo_root().join(format!("tests/fixtures/arista_{name}.txt")))
                .unwrap();
        assert_eq!(arista_get(&url, name).await, (200, golden), "{name}");
    }
}

#[tokio::test]
async fn a_0_1_0_iosxe_policy_runs_the_whole_call_back_flow() {
    let serial = "FOC2101B001";
    let dir = temp_dir("contract-iosxe-files");
    let password = "contract-test-pw";
    let sim = SimDevices::start(&dir, "ztp", password).await.unwrap();
    let inventory = iosxe_inventory(&dir, &[serial], sim.addr.port(), 0);
    let config = ztpd_e2e::iosxe_config(&inventory, password, "").replace(
        &policy("iosxe_callback").display().to_string(),
        &fixture("iosxe_callback").display().to_string(),
    );
    let srv = TestServer::start("contract-iosxe", &config).await;
    let tenant = srv.state.ctx.service.tenant("default").unwrap();
    assert_eq!(tenant.policies()[0].1.contract(), "0.1.0");
    let token = ztpd_e2e::fetch_token(&srv.base).await;
    let r = ztpd_e2e::post_callback(&srv.base, serial, Some(&token)).await;
    assert_eq!(r.status(), 200);
    let job = wait_for_job(&srv.base, serial, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done", "{job:#}");
    let golden =
        std::fs::read_to_string(repo_root().join(format!("tests/fixtures/iosxe_{serial}.txt")))
            .unwrap();
    assert_eq!(job["config"].as_str().unwrap(), golden);
    let received = sim.received.lock().unwrap().get("fra2-acc0001").cloned();
    assert_eq!(received, Some(ztpd_e2e::pushed_lines(&golden, "ztp")));
}

/// A dialect of this test's own: a device names itself with `?device=SERIAL` on
/// `GET /generic/boot`. One module, and one line to register it (below).
mod generic {
    use super::*;

    pub(crate) struct Generic;

    impl Dialect for Generic {
        fn name(&self) -> &'static str {
            "generic"
        }

        fn title(&self) -> &'static str {
            "generic HTTP (test)"
        }

        fn routes(&self) -> Vec<Route> {
            vec![Route {
                path: "/generic/boot",
                methods: &[http::Method::GET],
                max_body: 0,
                handler: |ctx, tenant, req| Box::pin(boot(ctx, tenant, req)),
            }]
        }

        fn dhcp_rules(&self) -> Vec<VendorRule> {
            Vec::new()
        }
    }

    async fn boot(
        ctx: ztpd::dialect::Ctx,
        tenant: std::sync::Arc<ztpd::service::Tenant>,
        req: DeviceHttp,
    ) -> Result<DeviceReply, DeviceError> {
        let serial = req
            .query
            .as_deref()
            .and_then(form_serial)
            .ok_or_else(|| DeviceError::BadRequest("missing ?device=SERIAL".into()))?;
        let mut id = Identity::new(req.source_ip);
        id.serial = Some(serial);
        let request = device_request(&tenant, "generic", stage::BOOTSTRAP, id, &req);
        let answer = ctx.service.decide(&tenant, &request, None).await?;
        reply(&ctx, &tenant, request, answer).await
    }

    fn form_serial(query: &str) -> Option<String> {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("device="))
            .map(str::to_owned)
    }
}

#[tokio::test]
async fn a_dialect_added_later_reaches_0_1_0_and_0_2_0_policies() {
    let root = repo_root();
    let tenant = |name: &str, wasm: &std::path::Path| {
        format!(
            r#"
[[tenants]]
name = "{name}"
templates = "{root}/templates"
inventory = {{ file = "{root}/inventory/arista/swinfo.json", key = "mac" }}
[tenants.policies]
generic = "{}"
"#,
            wasm.display(),
            root = root.display()
        )
    };
    let config = format!(
        "listen = \"127.0.0.1:0\"\n{}{}",
        tenant("old", &fixture("hostile")),
        tenant("new", &policy("hostile"))
    );
    let registry = Registry::builtin().with(generic::Generic);
    let srv = TestServer::start_with("contract-generic", &config, registry).await;
    let spy = |t: &str| srv.url(&format!("/t/{t}/generic/boot?device=GEN123&attack=spy"));
    let http = client();
    let old = http.get(spy("old")).send().await.unwrap();
    assert_eq!(old.status(), 200);
    let old = old.text().await.unwrap();
    // 0.1.0 knows no dialect by that name: it sees `generic`, its catch-all.
    assert!(old.contains("dialect: Dialect::Generic"), "{old}");
    assert!(old.contains("GEN123"), "{old}");
    let new = http
        .get(spy("new"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(new.contains("dialect: \"generic\""), "{new}");
    assert!(new.contains("GEN123"), "{new}");
    // Without the registry line, ztpd refuses the configuration, naming the dialect.
    let parsed =
        ztpd::config::Config::parse(&ztpd_e2e::with_open_api(&config), "x", &root).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let stores = ztpd::store::Stores::in_memory(scratch.path()).unwrap();
    let err = ztpd::server::build(&parsed, stores, Registry::builtin())
        .await
        .err()
        .expect("the builtin registry has no generic dialect")
        .to_string();
    assert!(
        err.contains("\"generic\"") && err.contains("does not speak"),
        "{err}"
    );
}

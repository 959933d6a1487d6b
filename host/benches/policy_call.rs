//! In-process cost of one policy call: new store + instantiate + call + drop, for the
//! demo's arista-dynamic policy on a real request (it looks the switch up in the inventory
//! and returns a render decision). Also the whole decision with its template render, both
//! uncached (every render parses the variables and runs the template, as for a switch
//! seen for the first time) and from the render memo (a switch asking again).
//!
//! Prints p50/p99 in microseconds over a fixed number of calls, and a `BENCHJSON` line
//! for bench/run.py. Run: `cargo bench -p ztpd --bench policy_call` (after `just policies`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ztpd::config::KeyKind;
use ztpd::model::{Decision, DeviceRequest, Identity, stage};
use ztpd::policy::{EngineConfig, Limits, PolicyEngine, TenantCaps};
use ztpd::render::{Renderer, Templates};
use ztpd::sources::{FileInventory, Inventory, Source};
use ztpd::store::Db;
use ztpd::store::kv::{KvQuota, KvStore};

const WARMUP: usize = 2_000;
const CALLS: usize = 20_000;

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (
        at(0.50).as_nanos() as f64 / 1000.0,
        at(0.99).as_nanos() as f64 / 1000.0,
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let wasm_path = root.join("target/wasm32-wasip2/policy/arista_dynamic.wasm");
    let wasm = std::fs::read(&wasm_path)
        .map_err(|e| format!("{}: {e}; run `just policies` first", wasm_path.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let engine = PolicyEngine::new(&EngineConfig::default())?;
    let policy = engine.load("arista_dynamic.wasm", &wasm)?;
    let templates = Arc::new(Templates::load_dir(&root.join("templates"))?);
    let caps = Arc::new(TenantCaps {
        tenant: "default".into(),
        limits: Limits::default(),
        inventory: Arc::new(Inventory::new(vec![Source::File(FileInventory::load(
            &root.join("inventory/arista/swinfo.json"),
            KeyKind::Mac,
        )?)])),
        renderer: Arc::new(Renderer::new(templates.clone(), None)),
        settings: Arc::default(),
        kv: KvStore::new(Db::in_memory()?),
        kv_quota: KvQuota {
            keys: 1000,
            bytes: 1 << 20,
        },
    });
    let macs: Vec<String> = (1..=100)
        .map(|i| format!("00:1c:73:00:00:{i:02x}"))
        .collect();
    let requests: Vec<DeviceRequest> = macs
        .iter()
        .map(|mac| {
            let mut identity = Identity::new(IpAddr::V4(Ipv4Addr::LOCALHOST));
            identity.mac = mac.parse().ok();
            DeviceRequest {
                tenant: "default".into(),
                stage: stage::BOOTSTRAP.into(),
                dialect: "arista-eos".into(),
                identity,
                path: "/dynconfig".into(),
                headers: vec![
                    ("host".into(), "127.0.0.1:8080".into()),
                    ("x-arista-systemmac".into(), mac.clone()),
                ],
                query: vec![],
                body: Default::default(),
            }
        })
        .collect();

    let (call, uncached, memo) = rt.block_on(async {
        let mut calls = Vec::with_capacity(CALLS);
        let mut uncached = Vec::with_capacity(CALLS);
        let mut memo = Vec::with_capacity(CALLS);
        for i in 0..WARMUP + CALLS {
            let req = &requests[i % requests.len()];
            let t0 = Instant::now();
            let decision = engine.call(&policy, &caps, req).await?;
            let t1 = Instant::now();
            let Decision::Render(r) = &decision else {
                return Err(format!("unexpected decision {decision:?}").into());
            };
            // Uncached: parse the variables and run the template, as for a new switch.
            let vars: serde_json::Value = serde_json::from_str(&r.vars)?;
            std::hint::black_box(templates.render(&r.template, &vars)?);
            let t2 = Instant::now();
            // Memo: the same render again is a hash and a lookup.
            std::hint::black_box(templates.render_json(&r.template, &r.vars)?);
            let t3 = Instant::now();
            if i >= WARMUP {
                calls.push(t1 - t0);
                uncached.push(t2 - t0);
                memo.push((t1 - t0) + (t3 - t2));
            }
        }
        Ok::<_, Box<dyn std::error::Error>>((
            percentiles(calls),
            percentiles(uncached),
            percentiles(memo),
        ))
    })?;
    println!("policy call (new store + instantiate + call + drop), {CALLS} calls:");
    println!("  p50 {:8.1} µs   p99 {:8.1} µs", call.0, call.1);
    println!("policy call + template render, uncached (a switch seen for the first time):");
    println!("  p50 {:8.1} µs   p99 {:8.1} µs", uncached.0, uncached.1);
    println!("policy call + template render from the memo (a switch asking again):");
    println!("  p50 {:8.1} µs   p99 {:8.1} µs", memo.0, memo.1);
    println!(
        "BENCHJSON {{\"policy_call_p50_us\":{:.2},\"policy_call_p99_us\":{:.2},\"decide_uncached_p50_us\":{:.2},\"decide_uncached_p99_us\":{:.2},\"decide_memo_p50_us\":{:.2},\"decide_memo_p99_us\":{:.2},\"calls\":{CALLS}}}",
        call.0, call.1, uncached.0, uncached.1, memo.0, memo.1
    );
    Ok(())
}

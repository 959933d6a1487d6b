//! In-process cost of one policy call: new store + instantiate + call + drop, for the
//! demo's arista-dynamic policy on a real request (it looks the switch up in the inventory
//! and returns a render decision). Also the full decision path with the template render.
//!
//! Prints p50/p99 in microseconds over a fixed number of calls, and a `BENCHJSON` line
//! for bench/run.py. Run: `cargo bench -p ztpd --bench policy_call` (after `just policies`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ztpd::identity::Identity;
use ztpd::inventory::{FileInventory, Inventory, KeyKind, Source};
use ztpd::policy::{Capabilities, EngineConfig, Limits, PolicyEngine};
use ztpd::request::{DeviceRequest, Dialect, Stage};
use ztpd::store::Store;
use ztpd::templates::Templates;

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
    let caps = Arc::new(Capabilities {
        tenant: "default".into(),
        inventory: Arc::new(Inventory::new(vec![Source::File(FileInventory::load(
            &root.join("inventory/arista/swinfo.json"),
            KeyKind::Mac,
        )?)])),
        templates: Arc::new(Templates::load_dir(&root.join("templates"))?),
        store: Store::in_memory()?,
    });
    let limits = Limits::default();
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
                stage: Stage::Bootstrap,
                dialect: Dialect::AristaEos,
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

    let (call_p50, call_p99, full_p50, full_p99) = rt.block_on(async {
        let mut calls = Vec::with_capacity(CALLS);
        let mut full = Vec::with_capacity(CALLS);
        for i in 0..WARMUP + CALLS {
            let req = &requests[i % requests.len()];
            let t0 = Instant::now();
            let decision = engine.call(&policy, caps.clone(), &limits, req).await?;
            let t1 = Instant::now();
            if let ztpd::decision::Decision::Render(r) = &decision {
                let text = caps.templates.render_json(&r.template, &r.vars)?;
                std::hint::black_box(text);
            } else {
                return Err(format!("unexpected decision {decision:?}").into());
            }
            let t2 = Instant::now();
            if i >= WARMUP {
                calls.push(t1 - t0);
                full.push(t2 - t0);
            }
        }
        let (a, b) = percentiles(calls);
        let (c, d) = percentiles(full);
        Ok::<_, Box<dyn std::error::Error>>((a, b, c, d))
    })?;
    println!("policy call (new store + instantiate + call + drop), {CALLS} calls:");
    println!("  p50 {call_p50:8.1} µs   p99 {call_p99:8.1} µs");
    println!("policy call + template render (the whole /dynconfig decision):");
    println!("  p50 {full_p50:8.1} µs   p99 {full_p99:8.1} µs");
    println!(
        "BENCHJSON {{\"policy_call_p50_us\":{call_p50:.2},\"policy_call_p99_us\":{call_p99:.2},\"decide_p50_us\":{full_p50:.2},\"decide_p99_us\":{full_p99:.2},\"calls\":{CALLS}}}"
    );
    Ok(())
}

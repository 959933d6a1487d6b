//! Mass run: 2,000 simulated IOS XE devices fetch the script, call back, and all receive
//! their config over SSH from the release ztpd running as its own process. Reports wall
//! time, ztpd's peak RSS (VmHWM) and the push concurrency the devices saw.
//!
//! `cargo bench -p ztpd-e2e --bench mass_run` (bench/run.py runs it); prints BENCHJSON.

use std::time::{Duration, Instant};

use futures::StreamExt;
use ztpd_e2e::sim::SimDevices;
use ztpd_e2e::{
    ZtpdProcess, client, free_port, iosxe_config, iosxe_inventory, repo_root, script_token,
    temp_dir, write_config,
};

const DEVICES: usize = 2_000;
const MAX_PUSHES: usize = 64;
/// Call-backs in flight at once from the simulated devices.
const CALLERS: usize = 200;
const LIMIT: Duration = Duration::from_secs(300);

fn vm_hwm_kib(pid: u32) -> u64 {
    ztpd_e2e::proc_kib(pid, "VmHWM")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = repo_root().join("target/release/ztpd");
    anyhow::ensure!(
        binary.is_file(),
        "{} missing: cargo build --release -p ztpd",
        binary.display()
    );
    let dir = temp_dir("mass-run");
    let sim = SimDevices::start(&dir, "ztp", "mass-pw").await?;
    let serials: Vec<String> = (0..DEVICES).map(|i| format!("MASS{i:05}")).collect();
    let refs: Vec<&str> = serials.iter().map(String::as_str).collect();
    let inventory = iosxe_inventory(&dir, &refs, sim.addr.port(), 0);
    let config = write_config(
        &dir,
        &iosxe_config(
            &inventory,
            "mass-pw",
            // All simulated devices call from 127.0.0.1: lift the per-source connection cap.
            &format!(
                "[jobs]\nmax_concurrent_pushes = {MAX_PUSHES}\n[http]\nmax_connections_per_source = {}\n",
                CALLERS * 2
            ),
        ),
    );
    let port = free_port();
    let ztpd = ZtpdProcess::start_binary(&binary, &config, port, &dir.join("ztpd.log")).await;
    let http = client();
    let started = Instant::now();
    let acks = futures::stream::iter(serials.iter().cloned())
        .map(|serial| {
            let (http, base) = (http.clone(), ztpd.base.clone());
            async move {
                // Each device fetches its own script (and token), as a real one would.
                let script = http
                    .get(format!("{base}/script.py"))
                    .send()
                    .await?
                    .text()
                    .await?;
                let r = http
                    .post(format!("{base}/callback"))
                    .header("X-Serial-Number", &serial)
                    .header("X-Ztpd-Token", script_token(&script))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "{serial}: {}", r.status());
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(CALLERS)
        .collect::<Vec<_>>()
        .await;
    let acked = acks.iter().filter(|r| r.is_ok()).count();
    let ack_s = started.elapsed().as_secs_f64();
    let mut peak_rss = 0;
    loop {
        peak_rss = peak_rss.max(vm_hwm_kib(ztpd.pid()));
        let done = sim.received.lock().map(|r| r.len()).unwrap_or(0);
        if done >= DEVICES || started.elapsed() > LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let received = sim.received.lock().map(|r| r.len()).unwrap_or(0);
    let twice = sim
        .pushes
        .lock()
        .map(|p| p.values().filter(|n| **n > 1).count())
        .unwrap_or(0);
    let peak_sessions = sim.sessions.peak.load(std::sync::atomic::Ordering::Relaxed);
    peak_rss = peak_rss.max(vm_hwm_kib(ztpd.pid()));
    println!("mass run: {DEVICES} devices, {acked} call-backs acknowledged in {ack_s:.1} s");
    println!("  configs received: {received} (pushed twice: {twice}) in {wall:.1} s");
    println!(
        "  ztpd peak RSS: {:.1} MiB; push concurrency seen by devices: {peak_sessions} (limit {MAX_PUSHES})",
        peak_rss as f64 / 1024.0
    );
    println!(
        "BENCHJSON {{\"devices\":{DEVICES},\"acked\":{acked},\"received\":{received},\"pushed_twice\":{twice},\"wall_s\":{wall:.2},\"ack_s\":{ack_s:.2},\"peak_rss_mib\":{:.1},\"push_concurrency_peak\":{peak_sessions},\"push_limit\":{MAX_PUSHES}}}",
        peak_rss as f64 / 1024.0
    );
    anyhow::ensure!(
        received == DEVICES,
        "only {received} of {DEVICES} devices got their config"
    );
    Ok(())
}

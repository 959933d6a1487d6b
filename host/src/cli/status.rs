//! `ztpd status`: the status API of a running ztpd, printed as a table.

use anyhow::{Context, bail};
use serde_json::Value;

async fn get(url: &str, token: Option<&str>) -> anyhow::Result<Value> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| {
        format!("cannot reach ztpd at {url}; is it running? (--url or ZTPD_URL)")
    })?;
    let status = resp.status();
    let text = resp.text().await.context("reading the reply")?;
    if !status.is_success() {
        bail!("{url}: {status}: {}", text.trim_end());
    }
    serde_json::from_str(&text).with_context(|| format!("{url} did not answer JSON"))
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn age(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "-".into() };
    let secs = (crate::clock::now_ms() - ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// Print every device, or one device in detail.
pub async fn print(url: &str, token: Option<&str>, device: Option<&str>) -> anyhow::Result<()> {
    let base = url.trim_end_matches('/');
    match device {
        None => {
            let all = get(&format!("{base}/api/v1/devices"), token).await?;
            let devices = all
                .get("devices")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if devices.is_empty() {
                println!("no device has called back yet");
                return Ok(());
            }
            let rows: Vec<[String; 7]> = devices
                .iter()
                .map(|d| {
                    let version = s(d, "policy_version");
                    [
                        s(d, "tenant"),
                        s(d, "device"),
                        s(d, "source_ip"),
                        s(d, "state"),
                        age(d.get("updated_ms").and_then(Value::as_i64)),
                        version.chars().take(12).collect(),
                        s(d, "error"),
                    ]
                })
                .collect();
            let header = [
                "TENANT", "DEVICE", "ADDRESS", "STATE", "UPDATED", "POLICY", "ERROR",
            ];
            let mut widths = header.map(str::len);
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count()).min(60);
                }
            }
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{:<w$}", c.chars().take(w).collect::<String>()))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            println!("{}", line(&header.map(String::from)));
            for row in &rows {
                println!("{}", line(row));
            }
        }
        Some(device) => {
            let d = get(&format!("{base}/api/v1/devices/{device}"), token).await?;
            println!(
                "device   {}  (tenant {}, job {})",
                s(&d, "device"),
                s(&d, "tenant"),
                s(&d, "job")
            );
            println!("state    {}", s(&d, "state"));
            println!("address  {}", s(&d, "source_ip"));
            if let Some(lease) = d.get("lease").filter(|l| !l.is_null()) {
                println!(
                    "dhcp     {} to {} ({}, {}, bootfile {})",
                    s(lease, "ip"),
                    s(lease, "mac"),
                    s(lease, "state"),
                    age(lease.get("leased_ms").and_then(Value::as_i64)),
                    s(lease, "bootfile")
                );
            }
            println!("policy   {}", s(&d, "policy_version"));
            if d.get("error").is_some_and(|e| !e.is_null()) {
                println!("error    {}", s(&d, "error"));
            }
            println!("events:");
            for e in d
                .get("events")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                println!(
                    "  {:>10}  {:<8}  {}",
                    age(e.get("at_ms").and_then(Value::as_i64)),
                    s(e, "state"),
                    s(e, "message")
                );
            }
        }
    }
    Ok(())
}

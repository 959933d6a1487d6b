//! `ztpd policy ...`: the admin API from the command line.

use anyhow::{Context, bail};
use serde_json::Value;

/// Where the admin API is and how to authenticate.
pub struct AdminClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(url: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let token = token
            .context("the admin API needs a token: --token or ZTPD_ADMIN_TOKEN")?
            .to_owned();
        Ok(AdminClient {
            base: url.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .build()?,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req.bearer_auth(&self.token).send().await.with_context(|| {
            format!(
                "cannot reach ztpd at {}; is it running? (--url or ZTPD_URL)",
                self.base
            )
        })?;
        let status = resp.status();
        let text = resp.text().await.context("reading the reply")?;
        if !status.is_success() {
            bail!("{status}: {}", text.trim_end());
        }
        serde_json::from_str(&text).context("the admin API did not answer JSON")
    }

    /// An operator's decision about a device: `approve`, `deny`, `reset` or
    /// `forget-host-key`; prints what ztpd did.
    pub async fn device(
        &self,
        tenant: &str,
        serial: &str,
        action: &str,
        address: Option<&str>,
    ) -> anyhow::Result<()> {
        let url = format!(
            "{}/admin/v1/tenants/{tenant}/devices/{serial}/{action}",
            self.base
        );
        let body = serde_json::json!({ "address": address });
        let v = self.send(self.http.post(url).json(&body)).await?;
        println!("{}", v["result"].as_str().unwrap_or("done"));
        Ok(())
    }

    pub async fn push(
        &self,
        tenant: &str,
        slot: &str,
        file: &std::path::Path,
        activate: bool,
    ) -> anyhow::Result<()> {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let url = format!(
            "{}/admin/v1/tenants/{tenant}/policies/{slot}?activate={activate}",
            self.base
        );
        let v = self
            .send(
                self.http
                    .post(url)
                    .header("content-type", "application/wasm")
                    .body(bytes),
            )
            .await?;
        let version = v["version"].as_str().unwrap_or("?");
        println!(
            "{} {} for tenant {tenant} slot {slot}: version {version}",
            file.display(),
            if activate {
                "validated and live"
            } else {
                "validated and stored (not live: ztpd policy activate)"
            }
        );
        Ok(())
    }

    pub async fn activate(&self, tenant: &str, slot: &str, version: &str) -> anyhow::Result<()> {
        let url = format!(
            "{}/admin/v1/tenants/{tenant}/policies/{slot}/{version}/activate",
            self.base
        );
        let v = self.send(self.http.post(url)).await?;
        println!(
            "tenant {tenant} slot {slot}: version {} live",
            v["live"].as_str().unwrap_or(version)
        );
        Ok(())
    }

    pub async fn rollback(&self, tenant: &str, slot: &str) -> anyhow::Result<()> {
        let url = format!(
            "{}/admin/v1/tenants/{tenant}/policies/{slot}/rollback",
            self.base
        );
        let v = self.send(self.http.post(url)).await?;
        println!(
            "tenant {tenant} slot {slot}: rolled back to version {}",
            v["live"].as_str().unwrap_or("?")
        );
        Ok(())
    }

    pub async fn list(&self, tenant: &str) -> anyhow::Result<()> {
        let v = self
            .send(
                self.http
                    .get(format!("{}/admin/v1/tenants/{tenant}/policies", self.base)),
            )
            .await?;
        for slot in v["slots"].as_array().into_iter().flatten() {
            let live = slot["live"].as_str().unwrap_or("");
            println!(
                "slot {}  (live {})",
                slot["slot"].as_str().unwrap_or("?"),
                &live[..12.min(live.len())]
            );
            let activations = slot["activations"].as_array().cloned().unwrap_or_default();
            for ver in slot["versions"].as_array().into_iter().flatten() {
                let hash = ver["hash"].as_str().unwrap_or("");
                let last = activations.iter().find(|a| a["hash"] == hash);
                println!(
                    "  {} {}  {:>8} bytes  uploaded by {}{}",
                    if hash == live { "*" } else { " " },
                    hash,
                    ver["size"],
                    ver["uploaded_by"].as_str().unwrap_or("?"),
                    last.map(|a| format!(
                        ", last activated by {}",
                        a["actor"].as_str().unwrap_or("?")
                    ))
                    .unwrap_or_default()
                );
            }
        }
        Ok(())
    }
}

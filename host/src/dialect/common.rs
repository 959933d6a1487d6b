//! What every dialect does the same way: build the [`DeviceRequest`] a policy sees, and
//! turn the service's answer into a reply (a plan becomes a job and an acknowledgement).

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};

use super::{Ctx, DeviceError, DeviceHttp, DeviceReply, ReplyBody};
use crate::jobs::NewJob;
use crate::model::{DeviceRequest, Identity, Mac};
use crate::service::{Answer, Body, Outcome, Tenant};

/// Response header carrying the policy version (content hash) that decided the reply.
pub const POLICY_VERSION_HEADER: &str = "x-ztpd-policy-version";

/// Longest identity header value accepted; serials and versions are far shorter.
pub(crate) const MAX_IDENTITY_HEADER: usize = 256;

/// The request a policy sees: `dialect`, `stage`, the identity the dialect extracted, the
/// path without the tenant prefix, headers, query and body.
pub fn device_request(
    tenant: &Tenant,
    dialect: &'static str,
    stage: &'static str,
    identity: Identity,
    req: &DeviceHttp,
) -> DeviceRequest {
    DeviceRequest {
        tenant: tenant.name.clone(),
        stage: Cow::Borrowed(stage),
        dialect: Cow::Borrowed(dialect),
        identity,
        path: req.path.clone(),
        headers: lossy_headers(&req.headers),
        query: req
            .query
            .as_deref()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        body: req.body.clone(),
    }
}

fn lossy_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A header as trimmed text; absent or empty is `None`, non-ASCII or huge is a 400 naming
/// the header as `display`.
pub fn text_header(
    headers: &HeaderMap,
    name: &str,
    display: &str,
) -> Result<Option<String>, DeviceError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    if value.len() > MAX_IDENTITY_HEADER {
        return Err(DeviceError::BadRequest(format!(
            "header {display} is {} bytes long; at most {MAX_IDENTITY_HEADER} are accepted",
            value.len()
        )));
    }
    let text = value.to_str().map_err(|_| {
        DeviceError::BadRequest(format!("header {display} is not printable ASCII text"))
    })?;
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// Reasons go on one line: a policy cannot smuggle extra lines into a reply.
pub fn one_line(reason: &str) -> String {
    reason
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(512)
        .collect()
}

/// Turn the service's answer into a reply; a plan becomes a job and an acknowledgement.
pub async fn reply(
    ctx: &Ctx,
    tenant: &Tenant,
    request: DeviceRequest,
    answer: Answer,
) -> Result<DeviceReply, DeviceError> {
    let version = http::HeaderValue::from_str(&answer.policy_hash).ok();
    let mut reply = match answer.outcome {
        Outcome::Reply { content_type, body } => DeviceReply {
            status: StatusCode::OK,
            content_type,
            headers: Vec::new(),
            body: match body {
                Body::Owned(b) => ReplyBody::Bytes(b.into()),
                Body::Shared(s) => ReplyBody::Shared(s),
            },
        },
        Outcome::File { path, content_type } => DeviceReply {
            status: StatusCode::OK,
            content_type: content_type.unwrap_or_default(),
            headers: Vec::new(),
            body: ReplyBody::File(path),
        },
        Outcome::UnknownDevice(reason) => return Err(DeviceError::NotFound(one_line(&reason))),
        Outcome::Rejected(reason) => return Err(DeviceError::Forbidden(one_line(&reason))),
        Outcome::Plan(plan) if ctx.dry_run => DeviceReply::new(
            StatusCode::ACCEPTED,
            "text/plain; charset=utf-8",
            dry_run_plan(tenant, &plan).await,
        ),
        Outcome::Plan(plan) => {
            let ack = plan.ack.clone();
            let new = NewJob {
                request,
                plan: Some((plan, answer.policy_hash.clone())),
                nonce: None,
                pending_approval: false,
            };
            let submitted = ctx
                .runner
                .submit(ctx.service.clone(), new)
                .await
                .map_err(|e| {
                    DeviceError::internal(format!(
                        "tenant {}: cannot record the plan: {e}",
                        tenant.name
                    ))
                })?;
            if let crate::jobs::Submitted::TenantFull { running } = submitted {
                return Err(DeviceError::TooManyRequests {
                    reason: format!(
                        "tenant {} is provisioning {running} devices, its limit; retry later",
                        tenant.name
                    ),
                    retry_after_s: 30,
                });
            }
            match ack {
                Some(c) => DeviceReply::new(StatusCode::OK, &c.content_type, c.body),
                None => DeviceReply::new(StatusCode::ACCEPTED, "text/plain", "ACK\n"),
            }
        }
    };
    if let Some(v) = version {
        reply
            .headers
            .push((http::HeaderName::from_static(POLICY_VERSION_HEADER), v));
    }
    Ok(reply)
}

/// What a dry run shows of a plan: its steps, and the text each render step would render.
async fn dry_run_plan(tenant: &Tenant, plan: &crate::model::Plan) -> String {
    let mut out = format!(
        "dry run: the policy planned (not run):\n{}\n",
        serde_json::to_string_pretty(plan).unwrap_or_default()
    );
    let limits = crate::render::RenderLimits {
        max_output: tenant.limits.reply_bytes,
    };
    for step in &plan.steps {
        if let crate::model::Step::Render(r) = step {
            let rendered = tenant
                .capabilities()
                .renderer
                .render(&r.template, &r.vars, None, limits)
                .await;
            match rendered {
                Ok(text) => out.push_str(&format!("--- {} would render:\n{text}", r.template)),
                Err(e) => out.push_str(&format!("--- {} would fail: {e}\n", r.template)),
            }
        }
    }
    out
}

/// Shorthand for a dialect handler's boxed future.
pub(super) fn boxed<F>(
    f: F,
) -> futures_util::future::BoxFuture<'static, Result<DeviceReply, DeviceError>>
where
    F: std::future::Future<Output = Result<DeviceReply, DeviceError>> + Send + 'static,
{
    Box::pin(f)
}

/// The tenant as the handler gets it.
pub(super) type TenantRef = Arc<Tenant>;

/// The address the built-in DHCP server has bound to `mac` for `tenant`, if any.
pub(super) async fn leased_address(
    ctx: &Ctx,
    tenant: &Tenant,
    mac: Mac,
) -> Result<Option<std::net::IpAddr>, DeviceError> {
    let lease = ctx
        .service
        .stores()
        .leases
        .find(Some(mac.to_string()), None)
        .await
        .map_err(|e| DeviceError::internal(format!("DHCP lease of {mac}: {e}")))?;
    Ok(lease
        .filter(|l| {
            l.tenant == tenant.name
                && l.mac == mac.to_string()
                && l.state == crate::store::leases::LeaseState::Bound
        })
        .map(|l| std::net::IpAddr::V4(l.ip)))
}

/// With `lease_bound`, a device named by `mac` is answered only at the address the
/// built-in DHCP server leased to that MAC: a host elsewhere on the segment cannot fetch
/// another device's configuration by naming its MAC. Refusals are logged and audited.
pub(super) async fn check_lease_bound(
    ctx: &Ctx,
    tenant: &Tenant,
    mac: Mac,
    source: std::net::IpAddr,
) -> Result<(), DeviceError> {
    if !tenant.config.lease_bound {
        return Ok(());
    }
    let holder = leased_address(ctx, tenant, mac).await?;
    if holder == Some(source) {
        return Ok(());
    }
    let detail = match holder {
        Some(ip) => format!("{source} asked as {mac}, whose lease is {ip}; refused (lease_bound)"),
        None => {
            format!("{source} asked as {mac}, which holds no lease here; refused (lease_bound)")
        }
    };
    tracing::warn!(tenant = %tenant.name, %mac, "{detail}");
    ctx.service
        .audit(
            tenant,
            "device",
            "security.lease-mismatch",
            &mac.to_string(),
            None,
            detail,
        )
        .await;
    Err(DeviceError::Forbidden(format!(
        "{mac} is not leased to {source}"
    )))
}

//! Cisco IOS XE ZTP. DHCP option 67 points the device at `script.py`, which runs in
//! guestshell, creates a temporary user, enables SSH, reads the serial number and calls
//! back; ztpd then provisions the device in the background.
//!
//! - `GET /script.py`: the policy picks the script template and its variables; the host
//!   adds what only it knows under `ztpd.*`: the call-back URL, a fresh call-back token
//!   and the temporary credential.
//! - `POST|GET /callback`: the token is checked (401 missing, 403 forged or expired), the
//!   call is acknowledged at once, and a job does the rest.
//!
//! DHCP: IOS XE at day zero sends option 60 `ciscopnp` whether it will run ZTP or Cisco
//! PnP: option 67 starts ZTP (this dialect), option 43 would start PnP.

use http::{HeaderMap, Method, StatusCode, header};

use super::common::{TenantRef, boxed, device_request, reply};
use super::{
    ClassMatch, Ctx, DeviceError, DeviceHttp, DeviceReply, Dialect, Offer, Route, VendorRule,
};
use crate::jobs::{NewJob, Submitted};
use crate::model::{Identity, stage};
use crate::trust::token::TokenError;

/// The dialect's name in the policy contract.
pub const NAME: &str = "cisco-iosxe";

/// The header a call-back carries its token in.
pub const TOKEN_HEADER: &str = "x-ztpd-token";
const SERIAL_HEADER: &str = "x-serial-number";

/// Largest call-back body accepted.
pub const MAX_CALLBACK_BODY: usize = 64 << 10;

pub struct Iosxe;

impl Dialect for Iosxe {
    fn name(&self) -> &'static str {
        NAME
    }

    fn title(&self) -> &'static str {
        "Cisco IOS XE"
    }

    fn routes(&self) -> Vec<Route> {
        vec![
            Route {
                path: "/script.py",
                methods: &[Method::GET],
                max_body: 0,
                handler: |ctx, tenant, req| boxed(script(ctx, tenant, req)),
            },
            Route {
                path: "/callback",
                methods: &[Method::GET, Method::POST],
                max_body: MAX_CALLBACK_BODY,
                handler: |ctx, tenant, req| boxed(callback(ctx, tenant, req)),
            },
        ]
    }

    fn dhcp_rules(&self) -> Vec<VendorRule> {
        vec![VendorRule {
            name: NAME,
            class: ClassMatch::Prefix("ciscopnp"),
            offer: Offer::Bootfile {
                path: "script.py",
                tftp_options: true,
            },
        }]
    }
}

/// The IOS XE script: the policy chooses template and variables, the host adds `ztpd.*`.
async fn script(ctx: Ctx, tenant: TenantRef, req: DeviceHttp) -> Result<DeviceReply, DeviceError> {
    let base = match &tenant.config.callback.url {
        Some(url) => url.clone(),
        None => {
            let host = req
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty())
                .ok_or_else(|| {
                    DeviceError::BadRequest(
                        "missing Host header: cannot tell the script where to call back (or set callback.url for the tenant)".into(),
                    )
                })?;
            format!("http://{host}")
        }
    };
    let (username, password) = match tenant
        .config
        .callback
        .script_credential
        .as_deref()
        .and_then(|c| tenant.credentials.get(c))
    {
        Some(c) => (Some(c.username.clone()), c.secret_text()),
        None => (None, None),
    };
    let host_vars = serde_json::json!({
        "callback_url": format!("{base}{}/callback", req.prefix),
        "token": tenant.callback_key.issue(),
        "token_header": "X-Ztpd-Token",
        "username": username,
        "password": password,
    });
    let identity = Identity::new(req.source_ip);
    let request = device_request(&tenant, NAME, stage::BOOTSTRAP, identity, &req);
    let answer = ctx
        .service
        .decide(&tenant, &request, Some(host_vars))
        .await?;
    reply(&ctx, &tenant, request, answer).await
}

/// An IOS XE call-back: check the token, ACK at once, provision in the background.
async fn callback(
    ctx: Ctx,
    tenant: TenantRef,
    req: DeviceHttp,
) -> Result<DeviceReply, DeviceError> {
    if !ctx.dry_run {
        let token = req.headers.get(TOKEN_HEADER).and_then(|t| t.to_str().ok());
        tenant.callback_key.verify(token).map_err(|e| match e {
            TokenError::Missing => DeviceError::Unauthorized(e.to_string()),
            _ => DeviceError::Forbidden(e.to_string()),
        })?;
    }
    let identity = callback_identity(&req.headers, &req.body, req.source_ip)?;
    let serial = identity.serial.clone().unwrap_or_default();
    let request = device_request(&tenant, NAME, stage::CALLBACK, identity, &req);
    if ctx.dry_run {
        let answer = ctx.service.decide(&tenant, &request, None).await?;
        return reply(&ctx, &tenant, request, answer).await;
    }
    // A device calling back again while its job runs: the same job, nothing new to record.
    if let Some(job) = ctx.runner.running_job(&tenant.name, &serial) {
        return Ok(ack(&serial, job, true));
    }
    let submitted = ctx
        .runner
        .submit(
            ctx.service.clone(),
            NewJob {
                request,
                plan: None,
            },
        )
        .await
        .map_err(|e| DeviceError::internal(format!("cannot record the call-back: {e}")))?;
    let (job, already) = match submitted {
        Submitted::Started(id) => (id, false),
        Submitted::AlreadyRunning(id) => (id, true),
    };
    Ok(ack(&serial, job, already))
}

/// The call-back acknowledgement (the seed's `{"status": "ACK", "serial": ...}`, plus the job).
fn ack(serial: &str, job: i64, already_running: bool) -> DeviceReply {
    DeviceReply::json(
        StatusCode::OK,
        &serde_json::json!({
            "status": "ACK",
            "serial": serial,
            "job": job,
            "already_running": already_running,
        }),
    )
}

/// The identity an IOS XE call-back presents: the serial from `X-Serial-Number` (as the
/// seed's script sends it) or from the JSON body `{"serial": ..., "model": ...}`.
pub fn callback_identity(
    headers: &HeaderMap,
    body: &[u8],
    source_ip: std::net::IpAddr,
) -> Result<Identity, DeviceError> {
    let body_json: Option<serde_json::Value> = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(body)
                .map_err(|e| DeviceError::BadRequest(format!("call-back body is not JSON: {e}")))?,
        )
    };
    let from_body = |key: &str| {
        body_json
            .as_ref()
            .and_then(|b| b.get(key))
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= super::common::MAX_IDENTITY_HEADER)
            .map(str::to_owned)
    };
    let header_serial = super::text_header(headers, SERIAL_HEADER, "X-Serial-Number")?;
    let serial = header_serial.or_else(|| from_body("serial")).ok_or_else(|| {
        DeviceError::BadRequest(
            "missing header X-Serial-Number (or \"serial\" in the JSON body): the device's serial number, such as FOC2101B001".into(),
        )
    })?;
    if serial.len() > 64
        || !serial
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(DeviceError::BadRequest(format!(
            "serial number {:?} is not 1-64 letters, digits, '-' or '_'",
            serial.chars().take(80).collect::<String>()
        )));
    }
    let mut id = Identity::new(source_ip);
    id.serial = Some(serial);
    id.model = from_body("model");
    id.software_version = from_body("version");
    Ok(id)
}

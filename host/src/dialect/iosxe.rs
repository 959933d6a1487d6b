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

use http::{HeaderMap, Method, header};

use super::common::{TenantRef, boxed, device_request, reply};
use super::{
    ClassMatch, Ctx, DeviceError, DeviceHttp, DeviceReply, Dialect, Offer, Route, VendorRule,
};
use crate::config::ExposeSecret;
use crate::model::{Identity, stage};

/// The dialect's name in the policy contract.
pub const NAME: &str = "cisco-iosxe";

pub use super::callback::TOKEN_HEADER;
const SERIAL_HEADER: &str = "x-serial-number";

/// Largest call-back body accepted (IOS XE posts a few hundred bytes of JSON).
pub const MAX_CALLBACK_BODY: usize = 4 << 10;

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
    let (token, nonce) = tenant
        .callback_key
        .issue(req.source_ip)
        .map_err(|e| DeviceError::internal(format!("no randomness for a call-back token: {e}")))?;
    let callback = &tenant.config.callback;
    // The temporary user the script creates: a one-time password bound to this token, or
    // (explicitly configured) a static credential.
    let (username, password) = match (&callback.user, &callback.script_credential) {
        (Some(user), _) => (
            Some(user.clone()),
            Some(
                tenant
                    .callback_key
                    .password(&nonce)
                    .expose_secret()
                    .to_owned(),
            ),
        ),
        (None, Some(name)) => match tenant.credentials.get(name) {
            Some(c) => (Some(c.username.clone()), c.secret_text()),
            None => (None, None),
        },
        (None, None) => (None, None),
    };
    let host_vars = serde_json::json!({
        "callback_url": format!("{base}{}/callback", req.prefix),
        "token": token,
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

/// An IOS XE call-back: checked and bound ([`super::callback`]), acknowledged at once,
/// provisioned in the background. A dry run asks the policy and shows its plan instead.
async fn callback(
    ctx: Ctx,
    tenant: TenantRef,
    req: DeviceHttp,
) -> Result<DeviceReply, DeviceError> {
    let identity = callback_identity(&req.headers, &req.body, req.source_ip)?;
    let request = device_request(&tenant, NAME, stage::CALLBACK, identity, &req);
    if ctx.dry_run {
        let answer = ctx.service.decide(&tenant, &request, None).await?;
        return reply(&ctx, &tenant, request, answer).await;
    }
    super::callback::accept(&ctx, &tenant, &req.headers, request).await
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

//! Arista EOS ZTP. DHCP option 67 gives every switch the same URL; the switch GETs it with
//! `X-Arista-*` identity headers (`X-Arista-SystemMAC`, `X-Arista-Serial` or the older
//! `X-Arista-Serialnum`, `X-Arista-ModelName`, `X-Arista-SoftwareVersion`,
//! `X-Arista-HardwareVersion`, ...). The reply is a startup-config (EOS saves it and
//! reboots) or a script starting with `#!` (EOS runs it). Header names are matched
//! case-insensitively; the MAC may come in any common form.
//!
//! DHCP: EOS sends option 60 `Arista;<model>;<hardware revision>;<serial>`.

use http::{HeaderMap, Method};

use super::common::{TenantRef, boxed, device_request, reply, text_header};
use super::{
    ClassMatch, Ctx, DeviceError, DeviceHttp, DeviceReply, Dialect, Offer, Route, VendorRule,
};
use crate::model::{Identity, Mac, stage};

/// The dialect's name in the policy contract.
pub const NAME: &str = "arista-eos";

const SYSTEM_MAC: &str = "x-arista-systemmac";

pub struct Arista;

impl Dialect for Arista {
    fn name(&self) -> &'static str {
        NAME
    }

    fn title(&self) -> &'static str {
        "Arista EOS"
    }

    fn routes(&self) -> Vec<Route> {
        vec![Route {
            path: "/dynconfig",
            methods: &[Method::GET],
            max_body: 0,
            handler: |ctx, tenant, req| boxed(dynconfig(ctx, tenant, req)),
        }]
    }

    fn dhcp_rules(&self) -> Vec<VendorRule> {
        vec![VendorRule {
            name: NAME,
            class: ClassMatch::Prefix("Arista"),
            offer: Offer::Bootfile {
                path: "dynconfig",
                tftp_options: false,
            },
        }]
    }
}

async fn dynconfig(
    ctx: Ctx,
    tenant: TenantRef,
    req: DeviceHttp,
) -> Result<DeviceReply, DeviceError> {
    let id = identity(&req.headers, req.source_ip)?;
    if let Some(mac) = id.mac {
        super::common::check_lease_bound(&ctx, &tenant, mac, req.source_ip).await?;
    }
    let request = device_request(&tenant, NAME, stage::BOOTSTRAP, id, &req);
    let answer = ctx.service.decide(&tenant, &request, None).await?;
    reply(&ctx, &tenant, request, answer).await
}

/// The identity an EOS switch presents. A missing or malformed system MAC is a 400 that
/// names the header and the expected format.
pub fn identity(headers: &HeaderMap, source_ip: std::net::IpAddr) -> Result<Identity, DeviceError> {
    let mac_text = text_header(headers, SYSTEM_MAC, "X-Arista-SystemMAC")?.ok_or_else(|| {
        DeviceError::BadRequest(
            "missing header X-Arista-SystemMAC: expected the switch's system MAC, such as 00:1c:73:00:00:01"
                .into(),
        )
    })?;
    let mac: Mac = mac_text
        .parse()
        .map_err(|e| DeviceError::BadRequest(format!("header X-Arista-SystemMAC: {e}")))?;
    let mut id = Identity::new(source_ip);
    id.mac = Some(mac);
    id.serial = match text_header(headers, "x-arista-serial", "X-Arista-Serial")? {
        Some(s) => Some(s),
        None => text_header(headers, "x-arista-serialnum", "X-Arista-Serialnum")?,
    };
    id.model = text_header(headers, "x-arista-modelname", "X-Arista-ModelName")?;
    id.software_version = text_header(
        headers,
        "x-arista-softwareversion",
        "X-Arista-SoftwareVersion",
    )?;
    if let Some(hw) = text_header(
        headers,
        "x-arista-hardwareversion",
        "X-Arista-HardwareVersion",
    )? {
        id.extra.push(("hardware-version".into(), hw));
    }
    Ok(id)
}

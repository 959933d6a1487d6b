//! Arista EOS ZTP: the switch GETs its bootfile URL with `X-Arista-*` identity headers
//! (`X-Arista-SystemMAC`, `X-Arista-Serial` or the older `X-Arista-Serialnum`,
//! `X-Arista-ModelName`, `X-Arista-SoftwareVersion`, ...). Header names are matched
//! case-insensitively; the MAC may come in any common form.

use std::net::IpAddr;

use axum::http::HeaderMap;

use super::error::AppError;
use crate::identity::{Identity, Mac};

pub(super) const SYSTEM_MAC: &str = "x-arista-systemmac";

/// The identity an EOS switch presents. A missing or malformed system MAC is a 400 that
/// names the header and the expected format.
pub(super) fn identity(headers: &HeaderMap, source_ip: IpAddr) -> Result<Identity, AppError> {
    let mac_text = text_header(headers, SYSTEM_MAC)?.ok_or_else(|| {
        AppError::BadRequest(
            "missing header X-Arista-SystemMAC: expected the switch's system MAC, such as 00:1c:73:00:00:01"
                .into(),
        )
    })?;
    let mac: Mac = mac_text
        .parse()
        .map_err(|e| AppError::BadRequest(format!("header X-Arista-SystemMAC: {e}")))?;
    let mut id = Identity::new(source_ip);
    id.mac = Some(mac);
    id.serial = match text_header(headers, "x-arista-serial")? {
        Some(s) => Some(s),
        None => text_header(headers, "x-arista-serialnum")?,
    };
    id.model = text_header(headers, "x-arista-modelname")?;
    id.software_version = text_header(headers, "x-arista-softwareversion")?;
    Ok(id)
}

/// Longest identity header value accepted; serials and versions are far shorter.
const MAX_IDENTITY_HEADER: usize = 256;

/// A header as trimmed text; absent or empty is `None`, non-ASCII or huge is a 400.
fn text_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let display = display_name(name);
    if value.len() > MAX_IDENTITY_HEADER {
        return Err(AppError::BadRequest(format!(
            "header {display} is {} bytes long; at most {MAX_IDENTITY_HEADER} are accepted",
            value.len()
        )));
    }
    let text = value.to_str().map_err(|_| {
        AppError::BadRequest(format!("header {display} is not printable ASCII text"))
    })?;
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// `x-arista-systemmac` → `X-Arista-SystemMAC` for messages, as EOS documents it.
fn display_name(name: &str) -> &str {
    match name {
        "x-arista-systemmac" => "X-Arista-SystemMAC",
        "x-arista-serial" => "X-Arista-Serial",
        "x-arista-serialnum" => "X-Arista-Serialnum",
        "x-arista-modelname" => "X-Arista-ModelName",
        "x-arista-softwareversion" => "X-Arista-SoftwareVersion",
        other => other,
    }
}

//! Cisco IOS XE ZTP: DHCP option 67 points the device at `script.py`, which runs in
//! guestshell, creates a temporary user, enables SSH, reads the serial number and calls
//! back; ztpd then provisions the device in the background.
//!
//! - `GET /script.py`: the policy picks the script template and its variables; the host
//!   adds what only it knows under `ztpd.*`: the call-back URL, a fresh call-back token
//!   and the temporary credential.
//! - `POST|GET /callback`: the token is checked (401 missing, 403 forged or expired), the
//!   call is acknowledged at once, and a job does the rest.

use std::net::IpAddr;

use axum::http::HeaderMap;

use super::error::AppError;
use crate::identity::Identity;

pub(super) const TOKEN_HEADER: &str = "x-ztpd-token";
const SERIAL_HEADER: &str = "x-serial-number";

/// The identity an IOS XE call-back presents: the serial from `X-Serial-Number` (as the
/// seed's script sends it) or from the JSON body `{"serial": ..., "model": ...}`.
pub(super) fn callback_identity(
    headers: &HeaderMap,
    body: &[u8],
    source_ip: IpAddr,
) -> Result<Identity, AppError> {
    let body_json: Option<serde_json::Value> = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(body)
                .map_err(|e| AppError::BadRequest(format!("call-back body is not JSON: {e}")))?,
        )
    };
    let from_body = |key: &str| {
        body_json
            .as_ref()
            .and_then(|b| b.get(key))
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let header_serial = match headers.get(SERIAL_HEADER) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    AppError::BadRequest(
                        "header X-Serial-Number is not printable ASCII text".into(),
                    )
                })?
                .trim()
                .to_owned(),
        )
        .filter(|s| !s.is_empty()),
        None => None,
    };
    let serial = header_serial.or_else(|| from_body("serial")).ok_or_else(|| {
        AppError::BadRequest(
            "missing header X-Serial-Number (or \"serial\" in the JSON body): the device's serial number, such as FOC2101B001".into(),
        )
    })?;
    if serial.len() > 64
        || !serial
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AppError::BadRequest(format!(
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

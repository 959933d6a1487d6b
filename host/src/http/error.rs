//! One error type for every route. 4xx replies say exactly what the device (or the person
//! with curl) got wrong; 5xx replies say little — no tenant, no policy hash, no internal
//! text — and the full story goes to the log with a request id the reply repeats.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::dialect::DeviceError;

#[derive(Debug)]
pub enum AppError {
    BadRequest(String),
    Unauthorized(String),
    PayloadTooLarge(String),
    TooManyRequests {
        reason: String,
        retry_after_s: u64,
    },
    NotFound(String),
    Forbidden(String),
    Conflict(String),
    /// `detail` is logged, never sent.
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            AppError::TooManyRequests { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        };
        let (status, reason) = match self {
            AppError::BadRequest(r) => (StatusCode::BAD_REQUEST, r),
            AppError::Unauthorized(r) => (StatusCode::UNAUTHORIZED, r),
            AppError::PayloadTooLarge(r) => (StatusCode::PAYLOAD_TOO_LARGE, r),
            AppError::TooManyRequests { reason, .. } => (StatusCode::TOO_MANY_REQUESTS, reason),
            AppError::NotFound(r) => (StatusCode::NOT_FOUND, r),
            AppError::Forbidden(r) => (StatusCode::FORBIDDEN, r),
            AppError::Conflict(r) => (StatusCode::CONFLICT, r),
            AppError::Internal(detail) => {
                let id = request_id();
                tracing::error!(request = %id, "{detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "ztpd could not answer this request; the operator's log has the details (request {id})"
                    ),
                )
            }
        };
        let mut resp = (status, format!("{reason}\n")).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A short random id tying a 5xx reply to its log line.
fn request_id() -> String {
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        return "-".into();
    }
    hex::encode(b)
}

impl From<DeviceError> for AppError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::BadRequest(r) => AppError::BadRequest(r),
            DeviceError::Unauthorized(r) => AppError::Unauthorized(r),
            DeviceError::Forbidden(r) => AppError::Forbidden(r),
            DeviceError::NotFound(r) => AppError::NotFound(r),
            DeviceError::Conflict(r) => AppError::Conflict(r),
            DeviceError::PayloadTooLarge(r) => AppError::PayloadTooLarge(r),
            DeviceError::TooManyRequests {
                reason,
                retry_after_s,
            } => AppError::TooManyRequests {
                reason,
                retry_after_s,
            },
            DeviceError::Internal { detail } => AppError::Internal(detail),
        }
    }
}

//! One error type for every device-facing route. 4xx replies say exactly what the device
//! (or the person with curl) got wrong; 5xx replies carry a one-line reason and the full
//! story goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::service::DecideError;

#[derive(Debug)]
pub enum AppError {
    BadRequest(String),
    Unauthorized(String),
    PayloadTooLarge(String),
    TooManyRequests { reason: String, retry_after_s: u64 },
    NotFound(String),
    Forbidden(String),
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
            AppError::Internal(r) => (StatusCode::INTERNAL_SERVER_ERROR, r),
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

impl From<DecideError> for AppError {
    fn from(e: DecideError) -> Self {
        tracing::error!("{e}");
        AppError::Internal(e.to_string())
    }
}

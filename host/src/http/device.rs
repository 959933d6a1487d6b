//! Device-facing routes, mounted from the dialect registry: every route of every dialect
//! at its plain path (for the tenant a device is routed to by its source address, or the
//! default tenant) and under `/t/{tenant}`.
//!
//! Before a dialect sees a request, the tenant must admit it (its source networks, its
//! request rate) and the body must fit the route's limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

use super::{AppError, AppState};
use crate::dialect::{DeviceError, DeviceHttp, DeviceReply, Handler, ReplyBody, Route};
use crate::service::Tenant;

/// Mount every route of every dialect in `state.registry`.
pub(super) fn routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for dialect in state.registry.dialects() {
        for route in dialect.routes() {
            router = router
                .route(route.path, method_router(&route, false))
                .route(
                    &format!("/t/{{tenant}}{}", route.path),
                    method_router(&route, true),
                );
        }
    }
    router
}

fn method_router(route: &Route, prefixed: bool) -> MethodRouter<AppState> {
    let mut filter: Option<MethodFilter> = None;
    for m in route.methods {
        if let Ok(f) = MethodFilter::try_from(m.clone()) {
            filter = Some(filter.map_or(f, |acc| acc.or(f)));
        }
    }
    let (handler, max_body, path) = (route.handler, route.max_body, route.path);
    on(
        filter.unwrap_or(MethodFilter::GET),
        move |State(app): State<AppState>, req: Request| async move {
            match serve(app, handler, max_body, path, prefixed, req).await {
                Ok(resp) => resp,
                Err(e) => AppError::from(e).into_response(),
            }
        },
    )
}

async fn serve(
    app: AppState,
    handler: Handler,
    max_body: usize,
    path: &'static str,
    prefixed: bool,
    req: Request,
) -> Result<Response, DeviceError> {
    let source_ip = source_ip(&req);
    let (tenant, prefix) = if prefixed {
        let name = tenant_segment(req.uri().path());
        let tenant = app
            .ctx
            .service
            .tenant(name)
            .cloned()
            .ok_or_else(|| DeviceError::NotFound(format!("no tenant named {name:?}")))?;
        let prefix = format!("/t/{name}");
        (tenant, prefix)
    } else {
        let tenant = app
            .ctx
            .service
            .tenant_for_source(source_ip)
            .cloned()
            .ok_or_else(|| {
                DeviceError::NotFound(format!(
                    "no tenant serves devices at {source_ip}: use /t/{{tenant}}{path}, add the network to a tenant's sources, or set default = true on a tenant"
                ))
            })?;
        (tenant, String::new())
    };
    limit_source(&app, source_ip)?;
    admit(&tenant, source_ip)?;
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, max_body).await.map_err(|_| {
        DeviceError::PayloadTooLarge(format!(
            "request body over {max_body} bytes, the most {path} accepts"
        ))
    })?;
    let device = DeviceHttp {
        method: parts.method,
        prefix,
        path: path.to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        source_ip,
    };
    let reply = handler(app.ctx.clone(), tenant, device).await?;
    Ok(into_response(reply).await)
}

/// The tenant name in `/t/{tenant}/...`.
fn tenant_segment(path: &str) -> &str {
    path.strip_prefix("/t/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
}

/// Refuse a source address over `http.device_rate_per_source`.
fn limit_source(app: &AppState, ip: IpAddr) -> Result<(), DeviceError> {
    let Some(limiter) = &app.source_limit else {
        return Ok(());
    };
    if ip.is_loopback() && !app.limit_loopback {
        return Ok(());
    }
    limiter.check_key(&ip).map_err(|not_until| {
        use governor::clock::Clock;
        let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
        DeviceError::TooManyRequests {
            reason: format!("too many requests from {ip}; retry later"),
            retry_after_s: wait.as_secs().max(1),
        }
    })
}

/// Refuse a device outside the tenant's source networks, or over its request rate.
fn admit(tenant: &Tenant, ip: IpAddr) -> Result<(), DeviceError> {
    if !tenant.admits(ip) {
        return Err(DeviceError::Forbidden(format!(
            "tenant {} does not serve devices at {ip}",
            tenant.name
        )));
    }
    if let Some(rate) = &tenant.rate
        && let Err(wait) = rate.take()
    {
        return Err(DeviceError::TooManyRequests {
            reason: format!(
                "tenant {} is over its request rate of {}/s; retry later",
                tenant.name,
                rate.per_second()
            ),
            retry_after_s: wait.as_secs().max(1),
        });
    }
    Ok(())
}

async fn into_response(reply: DeviceReply) -> Response {
    let content_type = HeaderValue::from_str(&reply.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut resp = match reply.body {
        ReplyBody::Bytes(b) => (reply.status, b).into_response(),
        ReplyBody::Shared(s) => (
            reply.status,
            axum::body::Body::from(bytes::Bytes::from_owner(ArcStr(s))),
        )
            .into_response(),
        ReplyBody::File(path) => match tokio::fs::File::open(&path).await {
            Ok(file) => {
                let stream = tokio_util::io::ReaderStream::new(file);
                (StatusCode::OK, axum::body::Body::from_stream(stream)).into_response()
            }
            Err(e) => {
                tracing::error!("cannot open {}: {e}", path.display());
                return AppError::from(DeviceError::internal(e)).into_response();
            }
        },
    };
    if !reply.content_type.is_empty() {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    for (name, value) in reply.headers {
        resp.headers_mut().insert(name, value);
    }
    resp
}

/// Lets a memoised render be sent without copying it.
struct ArcStr(Arc<str>);

impl AsRef<[u8]> for ArcStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The peer address; in-process calls without a socket (dry runs) get 0.0.0.0.
pub(super) fn source_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

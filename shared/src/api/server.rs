//! Serving a router on a TCP listener: hyper's HTTP/1 server with a timer, a cap on the
//! connections served at once, a deadline for whole bodies, and graceful shutdown.
//!
//! `axum::serve` sets no timer, so a client that connects and sends nothing would hold
//! its connection for good. Here:
//! - the head timeout closes a connection whose request line and headers have not arrived
//!   in time. hyper starts the same timer while it waits for the next request on a
//!   keep-alive connection, so it is also how long an idle connection stays open;
//! - at most `max_connections` are served at once. A permit is taken before `accept`, so
//!   further clients wait in the kernel's listen queue rather than use the file
//!   descriptors the database and Redis need;
//! - a body is read whole before the router sees it, within the body timeout (408) and
//!   no larger than [`BODY_LIMIT`] (413; a declared `Content-Length` over it is refused
//!   before a byte of the body is read). A deadline on the whole body, not on each read,
//!   so a body trickled a byte at a time is cut off too.
//!
//! Both close the connection after answering. What hyper refuses itself (a malformed
//! request line or header, a URI over 65,534 bytes, more than 100 headers, a head larger
//! than its buffer) is answered by hyper with an empty body before the router runs.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response};
use axum::response::IntoResponse;
use axum::Router;
use futures_util::StreamExt;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_service::Service;

use super::{ApiError, BODY_LIMIT};
use crate::config::ConnectionSettings;

/// Open files kept for what is not a client connection: database and Redis connections,
/// listeners, logs.
const FILES_KEPT: u64 = 64;

/// Fewest connections served at once, whatever the open-file limit says.
const FEWEST_CONNECTIONS: usize = 16;

/// How often "every connection is in use" is logged while it stays so.
const FULL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, closes
/// idle connections and waits for requests in flight to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(max_connections(&settings)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.head_timeout);
    let graceful = GracefulShutdown::new();
    let mut full_since_logged: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = take_permit(&permits, &mut full_since_logged) => permit,
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let body_timeout = settings.body_timeout;
        let service = hyper::service::service_fn(move |request| {
            answer(router.clone(), request, peer, body_timeout)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Connections served at once: `API_MAX_CONNECTIONS`, or what the open-file limit leaves
/// after [`FILES_KEPT`].
fn max_connections(settings: &ConnectionSettings) -> usize {
    settings.max_connections.unwrap_or_else(|| {
        crate::os::raise_open_file_limit()
            .map(|limit| usize::try_from(limit.saturating_sub(FILES_KEPT)).unwrap_or(usize::MAX))
            .unwrap_or(1024)
            .clamp(FEWEST_CONNECTIONS, Semaphore::MAX_PERMITS)
    })
}

/// A permit to accept one connection, waiting for one to be returned when all are in use
/// (said in the log at most once a minute).
async fn take_permit(
    permits: &Arc<Semaphore>,
    full_since_logged: &mut Option<Instant>,
) -> OwnedSemaphorePermit {
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        return permit;
    }
    if full_since_logged.is_none_or(|at| at.elapsed() >= FULL_LOG_INTERVAL) {
        tracing::warn!(
            "every connection the API serves at once is in use; new clients wait until one \
             closes (API_MAX_CONNECTIONS, the open-file limit, API_HEAD_TIMEOUT)"
        );
        *full_since_logged = Some(Instant::now());
    }
    loop {
        // The semaphore is never closed, so this only waits.
        if let Ok(permit) = permits.clone().acquire_owned().await {
            return permit;
        }
    }
}

/// An `accept` that failed: out of file descriptors, or a connection reset before it was
/// taken. Waits a little so a full table does not spin the loop.
async fn accept_failed(error: &std::io::Error) {
    tracing::warn!(%error, "could not accept a connection");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// One request: the client's address added, the body read whole within its deadline,
/// then the router.
async fn answer(
    mut router: Router,
    request: Request<Incoming>,
    peer: SocketAddr,
    body_timeout: Duration,
) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    if declared_length(&parts.headers).is_some_and(|length| length > BODY_LIMIT as u64) {
        return Ok(closing(ApiError::payload_too_large(BODY_LIMIT)));
    }
    let body = match tokio::time::timeout(body_timeout, read_whole(body, &parts.headers)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(refused)) => return Ok(closing(refused)),
        Err(_) => return Ok(closing(ApiError::body_timeout(body_timeout))),
    };
    router
        .call(Request::from_parts(parts, Body::from(body)))
        .await
}

/// The `Content-Length` the client declared (hyper has already refused a malformed or
/// repeated one).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The whole body, refused once it passes [`BODY_LIMIT`].
async fn read_whole(body: Incoming, headers: &HeaderMap) -> Result<Bytes, ApiError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let expected = declared_length(headers).unwrap_or(0).min(BODY_LIMIT as u64) as usize;
    let mut whole = Vec::with_capacity(expected);
    let mut frames = Body::new(body).into_data_stream();
    while let Some(frame) = frames.next().await {
        let data = frame.map_err(|error| {
            ApiError::invalid_body(format!("request body could not be read: {error}"))
        })?;
        if whole.len() + data.len() > BODY_LIMIT {
            return Err(ApiError::payload_too_large(BODY_LIMIT));
        }
        whole.extend_from_slice(&data);
    }
    Ok(Bytes::from(whole))
}

/// `error` as the answer, with the connection closed after it: what is left of the body
/// is not read.
fn closing(error: ApiError) -> Response<Body> {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

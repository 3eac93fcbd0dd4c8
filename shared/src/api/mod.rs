//! The HTTP API: an axum router over the store (and the queue, for health).
//!
//! Every error is JSON, `{"error":{"code","message","field"}}`, mapped in one place
//! ([`ApiError`]); a client's mistake is never a 500.

mod auth;
mod body;
mod cursor;
mod error;
mod health;
mod jobs;
mod operate;
mod views;

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::middleware;
use axum::routing::{delete, get, post};
use axum::Router;
use tokio::net::TcpListener;

pub use auth::{Auth, Caller};
pub use error::ApiError;
pub use views::time as format_time;

use crate::queue::Queue;
use crate::store::Store;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Jobs and history.
    pub store: Arc<dyn Store>,
    /// The work queue, for health and stats.
    pub queue: Arc<dyn Queue>,
    /// Which addresses job targets may reach; checked when a job's URL is set.
    pub targets: crate::outbound::TargetPolicy,
    /// Seals credential headers and signing secrets before they are stored.
    pub keyring: Arc<crate::secrets::Keyring>,
    /// How callers are recognised (`API_ADMIN_KEY`, `AUTH_DISABLED`).
    pub auth: Auth,
    /// Requests each caller may make (`RATE_LIMIT_PER_SECOND`, `RATE_LIMIT_BURST`).
    pub rate_limit: Option<crate::queue::RateLimit>,
}

/// The router with every route, JSON 404/405 fallbacks and the body limit.
pub fn router(state: AppState) -> Router {
    // Everything but `/health` needs a key (`auth::require_key`).
    let keyed = Router::new()
        .route("/queue/stats", get(jobs::stats))
        .route("/api/v1/jobs", get(jobs::list).post(jobs::create))
        .route(
            "/api/v1/jobs/{id}",
            get(jobs::get).patch(jobs::update).delete(jobs::delete),
        )
        .route("/api/v1/jobs/{id}/history", get(jobs::history))
        .route("/api/v1/jobs/{id}/schedule", get(jobs::schedule))
        .route("/api/v1/jobs/{id}/trigger", post(operate::trigger))
        .route("/api/v1/jobs/{id}/pause", post(operate::pause))
        .route("/api/v1/jobs/{id}/resume", post(operate::resume))
        .route(
            "/api/v1/jobs/{id}/signing-secret",
            post(operate::rotate_signing_secret),
        )
        .route("/api/v1/executions/{id}", get(jobs::execution))
        .route("/api/v1/dead-letters", get(operate::dead_letters))
        .route("/api/v1/dead-letters/{id}/requeue", post(operate::requeue))
        .route("/api/v1/schedule/preview", get(operate::preview))
        .route(
            "/api/v1/api-keys",
            get(auth::list_keys).post(auth::create_key),
        )
        .route("/api/v1/api-keys/{id}", delete(auth::revoke_key))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    Router::new()
        .route("/health", get(health::health))
        .merge(keyed)
        .fallback(|uri: Uri| async move { ApiError::no_route(uri.path()) })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The `/metrics` router: this process's counters and, given the API's state, the queue
/// depths an autoscaler scales on. It is never part of the public router: it is served on
/// `METRICS_PORT` only, for a scraper on a private network.
pub fn metrics_router(state: Option<AppState>) -> Router {
    match state {
        Some(state) => Router::new()
            .route("/metrics", get(jobs::metrics))
            .with_state(state),
        None => Router::new().route(
            "/metrics",
            get(|| async { jobs::prometheus_text(crate::metrics::render(None)) }),
        ),
    }
}

/// Serves [`metrics_router`] on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    state: Option<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, metrics_router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the API on `listener` until `shutdown` completes, letting requests in flight
/// finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

//! The HTTP API: an axum router over the store (and the queue, for health).
//!
//! Every error is JSON, `{"error":{"code","message","field"}}`, mapped in one place
//! ([`ApiError`]); a client's mistake is never a 500.

mod activity;
mod auth;
mod body;
mod client;
mod credentials;
mod cursor;
mod error;
mod fields;
mod health;
mod jobs;
mod key_failures;
mod keys;
mod limits;
mod metrics;
mod openapi;
mod operate;
mod page;
mod path;
mod query;
mod request;
mod reseal;
mod server;
mod views;

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::middleware;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use auth::{Auth, Caller};
pub use error::ApiError;
pub use key_failures::KeyFailures;
pub use limits::{HEADERS_LIMIT, URI_LIMIT};
pub use views::time as format_time;

use crate::config::ConnectionSettings;
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
    /// Wrong keys counted per client address (`WRONG_KEY_LIMIT_PER_SECOND`,
    /// `WRONG_KEY_LIMIT_BURST`, `TRUSTED_PROXY_CIDRS`).
    pub key_failures: KeyFailures,
}

/// Every route, from the handlers' OpenAPI annotations: those open to anyone, and those
/// that need a key. The router and the document come from these lists, so no route is
/// served undocumented.
fn routes() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let open = OpenApiRouter::new().routes(routes!(health::health));
    let keyed = OpenApiRouter::new()
        .routes(routes!(jobs::stats))
        .routes(routes!(activity::activity))
        .routes(routes!(jobs::list, jobs::create))
        .routes(routes!(jobs::get, jobs::update, jobs::delete))
        .routes(routes!(jobs::history))
        .routes(routes!(jobs::schedule))
        .routes(routes!(operate::trigger))
        .routes(routes!(operate::pause))
        .routes(routes!(operate::resume))
        .routes(routes!(operate::rotate_signing_secret))
        .routes(routes!(jobs::execution))
        .routes(routes!(operate::dead_letters))
        .routes(routes!(operate::requeue))
        .routes(routes!(operate::preview))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(keys::me))
        .routes(routes!(reseal::reseal));
    (open, keyed)
}

/// The OpenAPI 3.1 document of [`router`], as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (open, keyed) = routes();
    openapi::document(open.into_openapi(), keyed.into_openapi())
}

/// The router with every route, `/openapi.json` and Swagger UI at `/docs`, JSON 404/405
/// fallbacks, and the limits on bodies, paths and headers.
pub fn router(state: AppState) -> Router {
    let (open, keyed) = routes();
    let (open, open_doc) = open.split_for_parts();
    let (keyed, keyed_doc) = keyed.split_for_parts();
    // Everything but `/health` and the documentation needs a key (`auth::require_key`).
    let keyed = keyed.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_key,
    ));
    let docs = SwaggerUi::new("/docs").url("/openapi.json", openapi::document(open_doc, keyed_doc));
    Router::new()
        .merge(open)
        .merge(keyed)
        .merge(docs)
        .merge(crate::ui::router())
        .fallback(|uri: Uri| async move { ApiError::no_route(uri.path()) })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(limits::within_limits))
        .with_state(state)
}

/// The `/metrics` router: this process's counters and, given the API's state, the queue
/// depths an autoscaler scales on. It is never part of the public router: it is served on
/// `METRICS_PORT` only, for a scraper on a private network.
pub fn metrics_router(state: Option<AppState>) -> Router {
    match state {
        Some(state) => Router::new()
            .route("/metrics", get(metrics::with_depths))
            .with_state(state),
        None => Router::new().route("/metrics", get(metrics::without_depths)),
    }
}

/// Serves [`metrics_router`] on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    state: Option<AppState>,
    settings: ConnectionSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, metrics_router(state), settings, shutdown).await
}

/// Serves the API on `listener` until `shutdown` completes, letting requests in flight
/// finish; `settings` bound how long clients may take and how many are served at once.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    settings: ConnectionSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, router(state), settings, shutdown).await
}

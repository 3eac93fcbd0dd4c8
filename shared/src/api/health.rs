//! `GET /health`: whether this process can reach its store and its queue (PostgreSQL and
//! Redis, or the embedded SQLite file and in-memory queue), each named by its kind.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::AppState;
use crate::telemetry::error_chain;

/// How long each check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/health` answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
    /// One verdict per dependency (`ok`, `unreachable`, or how long it did not answer),
    /// by kind: `postgres` and `redis`, or `sqlite` and `memory`.
    #[schema(value_type = BTreeMap<String, String>, example = json!({"postgres": "ok", "redis": "ok"}))]
    checks: Checks,
}

/// One verdict per dependency, by kind (`postgres`, `redis`, `sqlite`, `memory`).
type Checks = BTreeMap<&'static str, String>;

fn verdict<E: std::error::Error>(
    name: &str,
    result: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> String {
    match result {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(error)) => {
            tracing::warn!(check = name, error = %error_chain(&error), "health check failed");
            "unreachable".to_string()
        }
        Err(_) => {
            tracing::warn!(check = name, "health check timed out");
            format!("no answer within {}s", CHECK_TIMEOUT.as_secs())
        }
    }
}

/// 200 when both answer; 503 naming the failing check otherwise.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "getHealth",
    tag = "health",
    summary = "Health",
    description = "Whether this process reaches its store and queue (PostgreSQL and Redis, or SQLite and memory), each check named by its kind. Needs no key.",
    responses(
        (status = 200, description = "Both answer.", body = Health),
        (status = 503, description = "A check failed; it is named.", body = Health),
    )
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (store, queue) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()),
        tokio::time::timeout(CHECK_TIMEOUT, state.queue.ping()),
    );
    let (store_kind, queue_kind) = (state.store.kind(), state.queue.kind());
    let checks = Checks::from([
        (store_kind, verdict(store_kind, store)),
        (queue_kind, verdict(queue_kind, queue)),
    ]);
    let healthy = checks.values().all(|verdict| verdict == "ok");
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if healthy { "ok" } else { "unavailable" },
            checks,
        }),
    )
}

//! The three functions on AWS Lambda: the same router, tick loop and worker loop as the
//! long-lived processes, run inside invocations. Only the loop's stop differs: an
//! invocation stops before its deadline instead of at SIGTERM.
//!
//! - **api**: the axum router, served by `lambda_http` (API Gateway HTTP and REST APIs,
//!   function URLs).
//! - **tick**: each invocation runs [`tick::run`] at every second boundary until its
//!   deadline minus [`TICK_MARGIN`] and the look-ahead, releases the fires it recorded
//!   ahead at their time, then returns a [`TickRun`]. The event
//!   `{"action":"migrate"}` applies pending migrations instead.
//! - **worker**: each invocation takes new work for at most `WORKER_INTAKE_BUDGET`, and
//!   only while a request started now would end before the deadline (the longest request
//!   is `WORKER_HTTP_TIMEOUT`); then lets running requests finish, hands back what cannot
//!   finish in time, and returns a [`WorkerInvocation`].
//!
//! Clients and pools are built once per cold start and reused by every invocation.
//! Failed invocations carry an error type: `Tickwork.Unavailable` is transient (the
//! database or Redis did not answer; a retry may succeed), `Tickwork.InvalidEvent` is not.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lambda_http::lambda_runtime::{self, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::api;
use crate::config::Settings;
use crate::queue::Queue;
use crate::startup::Services;
use crate::telemetry::error_chain;
use crate::tick::{self, TickRun, TickSettings};
use crate::worker::{Worker, WorkerRun};

/// Why a function could not be served on Lambda.
pub type LambdaError = lambda_http::Error;

/// Time a tick invocation leaves itself before its deadline.
pub const TICK_MARGIN: Duration = Duration::from_secs(2);

/// Time a worker invocation leaves itself before its deadline, after the longest request.
pub const WORKER_MARGIN: Duration = Duration::from_secs(5);

/// The tick function's timeout in `template.yaml`: how long a tick invocation runs when the
/// runtime gives no deadline and `LAMBDA_FALLBACK_TIMEOUT` is unset.
pub const TICK_FALLBACK: Duration = Duration::from_secs(70);

/// The worker function's timeout in `template.yaml`, used likewise.
pub const WORKER_FALLBACK: Duration = Duration::from_secs(190);

/// Serves the API router to Lambda invocations until the runtime stops the process.
pub async fn serve_api(services: Services, settings: &Settings) -> Result<(), LambdaError> {
    let state = crate::startup::app_state(
        settings,
        services.store,
        services.queue,
        crate::startup::require_keyring(settings)?,
        crate::startup::Runner::Function,
    );
    lambda_http::run(api::router(state)).await
}

/// What a tick invocation was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum TickEvent {
    /// A scheduled invocation (any event without an `action`): run the tick.
    Scheduled,
    /// `{"action":"migrate"}`: apply pending migrations.
    Migrate,
}

impl TickEvent {
    /// Reads the invocation's payload.
    pub fn parse(payload: &Value) -> Result<Self, Diagnostic> {
        match payload.get("action") {
            None | Some(Value::Null) => Ok(Self::Scheduled),
            Some(Value::String(action)) if action == "migrate" => Ok(Self::Migrate),
            Some(other) => Err(invalid_event(format!(
                "unknown action {other}; the tick function takes a scheduled event, or \
                 {{\"action\":\"migrate\"}} to apply migrations"
            ))),
        }
    }
}

/// Runs the tick function's invocations until the runtime stops the process.
pub async fn serve_tick(services: Services, settings: Settings) -> Result<(), LambdaError> {
    let services = &services;
    let settings = &settings;
    let tick_settings = TickSettings::from(settings);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<Value>| async move {
            match TickEvent::parse(&event.payload)? {
                TickEvent::Migrate => {
                    services.migrate(settings).await.map_err(unavailable)?;
                    tracing::info!("migrations applied");
                    // The history's conversion goes on, a step at a time, for as long as
                    // this invocation has; invoke again until `done`.
                    let left = time_left(event.context.deadline(), settings, TICK_FALLBACK);
                    let deadline = tokio::time::Instant::now() + left.saturating_sub(TICK_MARGIN);
                    let history = services
                        .convert_history(settings, Some(deadline))
                        .await
                        .map_err(unavailable)?;
                    Ok::<Value, Diagnostic>(serde_json::json!({
                        "migrated": true,
                        "history": history,
                    }))
                }
                TickEvent::Scheduled => {
                    let left = time_left(event.context.deadline(), settings, TICK_FALLBACK);
                    // After the stop, the tick releases what it recorded ahead (at most
                    // the look-ahead) before it returns.
                    let stop = left.saturating_sub(TICK_MARGIN + tick_settings.lookahead);
                    let run: TickRun = tick::run(
                        services.store.as_ref(),
                        services.queue.as_ref(),
                        tick_settings,
                        tokio::time::sleep(stop),
                    )
                    .await;
                    tracing::info!(?run, "tick invocation done");
                    Ok(serde_json::to_value(run).unwrap_or_default())
                }
            }
        },
    ))
    .await
}

/// What a worker invocation returns: the run's counts and what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInvocation {
    /// What the worker loop did.
    #[serde(flatten)]
    pub run: WorkerRun,
    /// Items left in the ready list when the invocation ended (`null` if Redis did not
    /// answer).
    pub remaining: Option<u64>,
}

/// How long a worker invocation takes new work, and how long it then lets running
/// requests finish, given the time left before its deadline.
pub fn worker_windows(left: Duration, budget: Duration, longest: Duration) -> (Duration, Duration) {
    let intake = budget.min(left.saturating_sub(longest + WORKER_MARGIN));
    let grace = left.saturating_sub(intake + WORKER_MARGIN);
    (intake, grace)
}

/// Runs the worker function's invocations until the runtime stops the process.
pub async fn serve_worker(
    worker: Arc<Worker>,
    queue: Arc<dyn Queue>,
    settings: Settings,
) -> Result<(), LambdaError> {
    let worker = &worker;
    let queue = &queue;
    let settings = &settings;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<Value>| async move {
            let started = tokio::time::Instant::now();
            let left = time_left(event.context.deadline(), settings, WORKER_FALLBACK);
            let (intake, grace) = worker_windows(
                left,
                settings.lambda.intake_budget,
                settings.delivery.http_timeout,
            );
            if intake.is_zero() {
                return Err(invalid_event(format!(
                    "the invocation has {} s left, not enough for a request of up to \
                     WORKER_HTTP_TIMEOUT ({} s) plus {} s: raise the function timeout",
                    left.as_secs(),
                    settings.delivery.http_timeout.as_secs(),
                    WORKER_MARGIN.as_secs()
                )));
            }
            let run: WorkerRun = Arc::clone(worker)
                .run_until(tokio::time::sleep(intake), started + intake + grace)
                .await;
            // Best effort: the work is done and recorded whether or not Redis answers now.
            let remaining = match queue.stats().await {
                Ok(stats) => Some(stats.ready),
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "could not read the queue depth");
                    None
                }
            };
            let summary = WorkerInvocation { run, remaining };
            tracing::info!(?summary, "worker invocation done");
            Ok::<WorkerInvocation, Diagnostic>(summary)
        },
    ))
    .await
}

/// Time left before the invocation's deadline; when the runtime gives none in the future
/// (the `cargo lambda watch` emulator sends a fixed one), `LAMBDA_FALLBACK_TIMEOUT` or the
/// function's own `fallback`.
fn time_left(deadline: SystemTime, settings: &Settings, fallback: Duration) -> Duration {
    invocation_length(
        deadline,
        SystemTime::now(),
        settings.lambda.fallback_timeout.unwrap_or(fallback),
    )
}

/// How long an invocation that started at `now` with `deadline` may run.
pub fn invocation_length(deadline: SystemTime, now: SystemTime, fallback: Duration) -> Duration {
    match deadline.duration_since(now) {
        Ok(left) if !left.is_zero() => left,
        _ => {
            tracing::warn!(
                fallback_secs = fallback.as_secs(),
                "the runtime gave no deadline in the future; using LAMBDA_FALLBACK_TIMEOUT"
            );
            fallback
        }
    }
}

/// A transient failure: the database or Redis did not answer.
fn unavailable(error: impl std::error::Error) -> Diagnostic {
    let message = error_chain(&error);
    tracing::error!(error = %message, "invocation failed");
    Diagnostic {
        error_type: "Tickwork.Unavailable".into(),
        error_message: message,
    }
}

/// A failure a retry will not fix: the event or the function's configuration is wrong.
fn invalid_event(message: String) -> Diagnostic {
    tracing::error!(error = %message, "invocation refused");
    Diagnostic {
        error_type: "Tickwork.InvalidEvent".into(),
        error_message: message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scheduled_events_run_the_tick_and_migrate_is_an_action() {
        let eventbridge = json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.scheduler",
            "time": "2026-11-27T10:00:00Z", "region": "eu-west-1", "resources": [], "detail": {}
        });
        assert_eq!(
            TickEvent::parse(&eventbridge).unwrap(),
            TickEvent::Scheduled
        );
        assert_eq!(TickEvent::parse(&json!({})).unwrap(), TickEvent::Scheduled);
        assert_eq!(
            TickEvent::parse(&json!({"action": "migrate"})).unwrap(),
            TickEvent::Migrate
        );
        let refused = TickEvent::parse(&json!({"action": "drop"})).unwrap_err();
        assert_eq!(refused.error_type, "Tickwork.InvalidEvent");
        assert!(refused.error_message.contains("\"drop\""));
    }

    #[test]
    fn a_deadline_in_the_past_falls_back_to_the_configured_length() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let fallback = Duration::from_secs(60);
        let in_70s = now + Duration::from_secs(70);
        assert_eq!(
            invocation_length(in_70s, now, fallback),
            Duration::from_secs(70)
        );
        // The emulator's fixed deadline: 600 000 ms after the epoch.
        let fixed = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(invocation_length(fixed, now, fallback), fallback);
        assert_eq!(invocation_length(now, now, fallback), fallback);
    }

    #[test]
    fn worker_intake_leaves_room_for_the_longest_request() {
        let s = Duration::from_secs;
        // The template's numbers: 190 s timeout, 90 s budget, 90 s requests.
        assert_eq!(worker_windows(s(190), s(90), s(90)), (s(90), s(95)));
        // A shorter timeout shortens intake, never the room for requests.
        assert_eq!(worker_windows(s(120), s(90), s(90)), (s(25), s(90)));
        // Too short for even one request: no intake.
        assert_eq!(worker_windows(s(60), s(90), s(90)).0, Duration::ZERO);
    }
}

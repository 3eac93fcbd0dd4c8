//! Operator controls: run a job now, pause and resume it, list the dead letters and put
//! them back, and preview a schedule without creating a job.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Caller;
use super::credentials::seal;
use super::error::{ApiError, ErrorBody};
use super::jobs::{history_page, owned_execution, owned_job, with_attempts, ScheduleCount};
use super::openapi::{BadQuery, ExecutionId, ExecutionNotFound, JobId, JobNotFound, Page};
use super::path::RawId;
use super::query::{Count, Flag, Id, Query, Seconds, Text};
use super::views::{time, ExecutionView, HistoryPage, JobView, RotatedSecretView, ScheduleView};
use super::AppState;
use crate::model::{Job, JobPatch};
use crate::schedule::{CronExpression, Schedule, ScheduleError, Timezone};
use crate::secrets::{new_signing_secret, signing_context};
use crate::store::{DeadLetterListing, Requeued};

/// Default and largest page of dead letters.
type DeadLetterLimit = Count<50, 500>;

/// Hands fires to the queue. They are committed already: if the queue does not answer,
/// the sweeper pushes them within seconds, so the request still succeeds.
async fn enqueue(state: &AppState, ids: &[Uuid]) {
    if let Err(error) = state.queue.push(ids).await {
        tracing::warn!(error = %crate::telemetry::error_chain(&error), "queue push failed; the sweeper will push the fire");
    }
}

/// 202 with an execution and where to follow it.
fn accepted(view: ExecutionView) -> Response {
    let location = format!("/api/v1/executions/{}", view.id());
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response()
}

/// `POST /api/v1/jobs/{id}/trigger`: one MANUAL fire, due now. It follows the job's overlap
/// policy when a worker claims it (under `FORBID`, SKIPPED while an earlier fire is
/// unfinished). Works on paused jobs; refused for deleted ones.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/trigger",
    operation_id = "triggerJob",
    tag = "operate",
    summary = "Run a job now",
    description = "One MANUAL fire, due now, following the job's concurrency policy. Works on paused jobs; refused for deleted ones.",
    params(JobId),
    responses(
        (status = 202, description = "The fire, queued.", body = ExecutionView, headers(("Location" = String, description = "Where the execution is."))),
        (status = 404, response = JobNotFound),
        (status = 409, description = "The job is deleted (`job_deleted`), or already has a fire at this millisecond (`fire_exists`).", body = ErrorBody),
    )
)]
pub async fn trigger(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
) -> Result<Response, ApiError> {
    let job = owned_job(&state, &caller, &id).await?;
    let job_id = job.id;
    if job.deleted_at.is_some() {
        return Err(ApiError::conflict(
            "job_deleted",
            format!(
                "job {id} is deleted; bring it back with PATCH {{\"isActive\": true}} to run it"
            ),
        ));
    }
    let Some(execution) = state.store.job_trigger(job_id).await? else {
        return Err(ApiError::conflict(
            "fire_exists",
            format!(
                "job {id} already has a fire recorded at this millisecond (or was deleted \
                 meanwhile); try again"
            ),
        ));
    };
    tracing::info!(%job_id, execution_id = %execution.id, "job triggered by hand");
    enqueue(&state, &[execution.id]).await;
    // A fire made just now has no attempts yet.
    Ok(accepted(ExecutionView::new(execution, &[])))
}

async fn set_active(
    state: AppState,
    caller: Caller,
    id: String,
    active: bool,
) -> Result<Json<JobView>, ApiError> {
    let job_id = owned_job(&state, &caller, &id).await?.id;
    let patch = JobPatch {
        is_active: Some(active),
        ..JobPatch::default()
    };
    let change = move |job, now| patch.clone().apply(job, now);
    match state.store.job_update(job_id, &change).await? {
        None => Err(ApiError::job_not_found(&id)),
        Some(Err(invalid)) => Err(invalid.into()),
        Some(Ok(job)) => {
            tracing::info!(job_id = %job.id, active, "job paused or resumed");
            Ok(Json(job.into()))
        }
    }
}

/// `POST /api/v1/jobs/{id}/pause`: `PATCH {"isActive": false}`.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/pause",
    operation_id = "pauseJob",
    tag = "operate",
    summary = "Pause a job",
    description = "The same as `PATCH {\"isActive\": false}`.",
    params(JobId),
    responses(
        (status = 200, description = "The paused job.", body = JobView),
        (status = 404, response = JobNotFound),
        (status = 422, description = "The job's stored schedule no longer reads (a time zone this build does not know, say); `field` names it.", body = ErrorBody),
    )
)]
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
) -> Result<Json<JobView>, ApiError> {
    set_active(state, caller, id, false).await
}

/// `POST /api/v1/jobs/{id}/resume`: `PATCH {"isActive": true}` (also undeletes).
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/resume",
    operation_id = "resumeJob",
    tag = "operate",
    summary = "Resume a job",
    description = "The same as `PATCH {\"isActive\": true}`: the job fires again from its next fire time (a deleted job comes back).",
    params(JobId),
    responses(
        (status = 200, description = "The active job.", body = JobView),
        (status = 404, response = JobNotFound),
        (status = 422, description = "The job's stored schedule no longer reads (a time zone this build does not know, say); `field` names it.", body = ErrorBody),
    )
)]
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
) -> Result<Json<JobView>, ApiError> {
    set_active(state, caller, id, true).await
}

/// Default and longest grace period of a signing-secret rotation, in seconds.
type RotationGrace = Seconds<86_400, { 7 * 86_400 }>;

/// `POST /api/v1/jobs/{id}/signing-secret`'s parameters.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateQuery {
    #[serde(default)]
    grace_seconds: RotationGrace,
}

/// `POST /api/v1/jobs/{id}/signing-secret?graceSeconds=N`: a new signing secret, shown
/// once. For `graceSeconds` (default a day) requests carry a signature made with the
/// previous secret too, so targets can switch without missing a request.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/signing-secret",
    operation_id = "rotateSigningSecret",
    tag = "operate",
    summary = "Rotate the signing secret",
    description = "A new signing secret, shown once. During `graceSeconds`, requests carry signatures made with both the new and the previous secret.",
    params(
        JobId,
        ("graceSeconds" = Option<u32>, Query, nullable = false, minimum = 0, maximum = 604800, description = "How long the previous secret also signs (default 86400; 0 ends it now)."),
    ),
    responses(
        (status = 200, description = "The new secret.", body = RotatedSecretView),
        (status = 400, response = BadQuery),
        (status = 404, response = JobNotFound),
    )
)]
pub async fn rotate_signing_secret(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
    Query(query): Query<RotateQuery>,
) -> Result<Json<RotatedSecretView>, ApiError> {
    let job_id = owned_job(&state, &caller, &id).await?.id;
    let grace = query.grace_seconds.0;
    let secret = new_signing_secret();
    let sealed = seal(&state.keyring, &secret, &signing_context(job_id))?;
    let change = move |mut job: Job, now: chrono::DateTime<chrono::Utc>| {
        job.previous_signing_secret = job.signing_secret.take().filter(|_| grace > 0);
        job.previous_secret_expires_at = job
            .previous_signing_secret
            .as_ref()
            .map(|_| now + chrono::Duration::seconds(i64::from(grace)));
        job.signing_secret = Some(sealed.clone());
        Ok(job)
    };
    match state.store.job_update(job_id, &change).await? {
        None => Err(ApiError::job_not_found(&id)),
        Some(Err(invalid)) => Err(invalid.into()),
        Some(Ok(job)) => {
            tracing::info!(%job_id, grace, "signing secret rotated");
            Ok(Json(RotatedSecretView {
                job_id,
                signing_secret: secret,
                previous_secret_valid_until: job.previous_secret_expires_at.map(time),
            }))
        }
    }
}

/// `GET /api/v1/dead-letters`'s parameters.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterQuery {
    job_id: Option<Id>,
    #[serde(default)]
    limit: DeadLetterLimit,
    cursor: Option<Id>,
}

/// `GET /api/v1/dead-letters?jobId=&limit=&cursor=`: FAILED, ABANDONED and EXPIRED fires, newest
/// first, with their attempts.
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    operation_id = "listDeadLetters",
    tag = "operate",
    summary = "Dead letters",
    description = "FAILED, ABANDONED and EXPIRED fires of the caller's tenant, newest first, with their attempts.",
    params(
        ("jobId" = Option<Uuid>, Query, nullable = false, description = "Only this job's."),
        Page,
    ),
    responses(
        (status = 200, description = "A page of dead letters.", body = HistoryPage),
        (status = 400, response = BadQuery),
    )
)]
pub async fn dead_letters(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let limit = query.limit.0;
    let executions = state
        .store
        .dead_letter_list(DeadLetterListing {
            tenant: Some(&caller.tenant),
            job_id: query.job_id.map(|Id(id)| id),
            before: query.cursor.map(|Id(id)| id),
            limit: limit + 1,
        })
        .await?;
    // One more than asked tells whether another page follows.
    let positions = executions.iter().map(|e| e.id.to_string()).collect();
    history_page(&state, executions, limit, positions).await
}

/// `POST /api/v1/dead-letters/{id}/requeue`'s parameters.
#[derive(Deserialize)]
pub struct RequeueQuery {
    #[serde(default)]
    force: Flag,
}

/// `POST /api/v1/dead-letters/{executionId}/requeue[?force=true]`: the same execution back
/// in the queue with a fresh round of retries. A FAILED or ABANDONED AT_MOST_ONCE fire needs
/// `force=true`: its target may already have acted. An EXPIRED one was never sent.
#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/{id}/requeue",
    operation_id = "requeueDeadLetter",
    tag = "operate",
    summary = "Requeue a dead letter",
    description = "The same execution back in the queue with a fresh round of retries (and, for an EXPIRED fire, its starting deadline counted from now). A FAILED or ABANDONED AT_MOST_ONCE fire needs `force=true`: its target may already have acted on it. An EXPIRED fire was never sent and needs no force.",
    params(
        ExecutionId,
        ("force" = Option<bool>, Query, nullable = false, description = "Requeue a FAILED or ABANDONED AT_MOST_ONCE fire too (default false)."),
    ),
    responses(
        (status = 202, description = "The execution, queued again.", body = ExecutionView, headers(("Location" = String, description = "Where the execution is."))),
        (status = 400, response = BadQuery),
        (status = 404, response = ExecutionNotFound),
        (status = 409, description = "Not a dead letter (`not_dead_letter`), its job is deleted (`job_deleted`), or it is a FAILED or ABANDONED AT_MOST_ONCE fire without force=true (`at_most_once`).", body = ErrorBody),
    )
)]
pub async fn requeue(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
    Query(query): Query<RequeueQuery>,
) -> Result<Response, ApiError> {
    let force = query.force.0;
    let execution_id = owned_execution(&state, &caller, &id).await?.id;
    match state.store.dead_letter_requeue(execution_id, force).await? {
        Requeued::NoExecution => Err(ApiError::execution_not_found(&id)),
        Requeued::NotDeadLetter(status) => Err(ApiError::conflict(
            "not_dead_letter",
            format!(
                "execution {id} is {status}; only FAILED, ABANDONED and EXPIRED fires can be \
                 requeued"
            ),
        )),
        Requeued::JobDeleted => Err(ApiError::conflict(
            "job_deleted",
            format!(
                "the job of execution {id} is deleted; bring it back with PATCH \
                 {{\"isActive\": true}} first"
            ),
        )),
        Requeued::AtMostOnce => Err(ApiError::conflict(
            "at_most_once",
            format!(
                "execution {id} is AT_MOST_ONCE and its target may already have acted on it; \
                 add ?force=true to send it again anyway"
            ),
        )),
        Requeued::Queued(execution) => {
            tracing::info!(%execution_id, force, "dead letter requeued");
            enqueue(&state, &[execution.id]).await;
            // A requeued fire keeps its attempts; the answer shows them.
            let view = with_attempts(&state, vec![execution]).await?.pop();
            Ok(accepted(
                view.ok_or_else(|| ApiError::execution_not_found(&id))?,
            ))
        }
    }
}

/// `GET /api/v1/schedule/preview`'s parameters.
#[derive(Deserialize)]
pub struct PreviewQuery {
    cron: Option<Text>,
    timezone: Option<Text>,
    #[serde(default)]
    count: ScheduleCount,
}

/// `GET /api/v1/schedule/preview?cron=&timezone=&count=`: the next fire times of an
/// expression from now, without creating a job.
#[utoipa::path(
    get,
    path = "/api/v1/schedule/preview",
    operation_id = "previewSchedule",
    tag = "operate",
    summary = "Preview a schedule",
    description = "The next fire times of a cron expression from now, without creating a job.",
    params(
        ("cron" = String, Query, max_length = 256, description = "A cron expression (six fields, seconds first, or five, minute first), URL-encoded; at most 256 characters and 60 comma-separated items a field. One that never fires is refused (400 `invalid_query`) as creating a job with it is.", example = "*/5 * * * * *"),
        ("timezone" = Option<String>, Query, nullable = false, description = "An IANA zone (default UTC).", example = "Europe/Paris"),
        ("count" = Option<u32>, Query, nullable = false, minimum = 1, maximum = 1000, description = "How many (default 10)."),
    ),
    responses(
        (status = 200, description = "The next fire times.", body = ScheduleView),
        (status = 400, description = "cron is missing or invalid, timezone is unknown, or count is out of range (`invalid_query`, `field` names it).", body = ErrorBody),
    )
)]
pub async fn preview(
    State(state): State<AppState>,
    Query(query): Query<PreviewQuery>,
) -> Result<Json<ScheduleView>, ApiError> {
    let count = query.count.0;
    let Some(Text(cron)) = &query.cron else {
        return Err(ApiError::invalid_query(
            "cron",
            "cron is missing; expected a cron expression, e.g. cron=*/5 * * * * * (URL-encoded)",
        ));
    };
    let timezone = query.timezone.as_ref().map_or("UTC", |Text(tz)| tz);
    let refused = |error: ScheduleError| {
        let name = match error {
            ScheduleError::UnknownTimezone(_) => "timezone",
            _ => "cron",
        };
        ApiError::invalid_query(name, format!("{name}: {error}"))
    };
    let schedule = CronExpression::parse_submitted(cron)
        .and_then(|cron| Ok(Schedule::new(cron, Timezone::parse(timezone)?)))
        .map_err(refused)?;
    let now = state.store.clock().await?;
    // An expression that never fires is refused here as creating a job with it is.
    schedule.first_fire(now).map_err(refused)?;
    Ok(Json(ScheduleView::of(&schedule, now, count as usize)))
}

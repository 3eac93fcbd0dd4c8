//! `/api/v1/jobs`: create, read, list, and a job's history.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Caller;
use super::credentials::{credentials_stay_with_their_origin, seal, seal_headers, seal_query};
use super::error::{ApiError, ErrorBody};
use super::openapi::{
    BadBody, BadQuery, ExecutionId, ExecutionNotFound, InvalidFields, JobId, JobNotFound, Page,
    TooLarge,
};

use super::path::{parse_id, RawId};
use super::query::{words_schema, Count, Flag, OneOf, Query, Search, Text, Word};
use super::request::{self, JobPatchRequest, JobRequest};
use super::views::{Counts, ExecutionView, HistoryPage, JobPage, JobView, ScheduleView, StatsView};
use super::{body, cursor, page, AppState};
use crate::model::{ExecutionStatus, Job, TargetUrl};
use crate::schedule::Schedule;
use crate::secrets::{new_signing_secret, signing_context};
use crate::store::{ExecutionListing, IdempotentInsert, JobCursor, JobFilter, JobOrder};

/// Default and largest page of jobs.
type JobsLimit = Count<50, 500>;
/// Default and largest page of history.
type HistoryLimit = Count<50, 500>;
/// How many recent outcomes a job list shows per job (`recent=N`).
type RecentCount = Count<20, 20>;
/// Default and largest number of upcoming fire times.
pub(super) type ScheduleCount = Count<10, 1000>;

/// The caller's job `raw_id`: 404 when there is none, or it is another tenant's (whose jobs
/// the caller must not learn exist).
pub(super) async fn owned_job(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<Job, ApiError> {
    let job_id = parse_id(raw_id)?;
    match state.store.job_get(job_id).await? {
        Some(job) if job.tenant == caller.tenant => Ok(job),
        _ => Err(ApiError::job_not_found(raw_id)),
    }
}

/// The caller's execution `raw_id` (of one of its tenant's jobs), or 404.
pub(super) async fn owned_execution(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<crate::model::Execution, ApiError> {
    let not_found = || ApiError::execution_not_found(raw_id);
    let execution_id = Uuid::parse_str(raw_id).map_err(|_| not_found())?;
    let execution = state
        .store
        .execution_get(execution_id)
        .await?
        .ok_or_else(not_found)?;
    match state.store.job_get(execution.job_id).await? {
        Some(job) if job.tenant == caller.tenant => Ok(execution),
        _ => Err(not_found()),
    }
}

/// Refuses a target URL the outbound guard would refuse at call time (422 on `httpUrl`).
async fn target_allowed(state: &AppState, url: &TargetUrl) -> Result<(), ApiError> {
    state
        .targets
        .check_url(url.as_url())
        .await
        .map_err(|refused| ApiError::target_not_allowed(&refused))
}

/// `POST /api/v1/jobs`: 201 with the job and its `Location`.
#[utoipa::path(
    post,
    path = "/api/v1/jobs",
    operation_id = "createJob",
    tag = "jobs",
    summary = "Create a job",
    description = "Registers a job; it fires from its next fire time on. The answer carries the job's signing secret (`signingSecret`), shown this once. With an `Idempotency-Key`, a retried request returns the first job (200, `Idempotent-Replayed: true`) instead of making a second one.",
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible ASCII characters (a UUID is a good key); the same key with the same body returns the first job, with another body 422 `idempotency_key_reused`."),
    ),
    request_body(content = JobRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The job, with its signing secret in clear (shown once).", body = JobView, headers(("Location" = String, description = "Where the job is."))),
        (status = 200, description = "The job an earlier request with this Idempotency-Key made (without its signing secret).", body = JobView, headers(("Location" = String, description = "Where the job is."), ("Idempotent-Replayed" = String, description = "Always `true`."))),
        (status = 400, description = "The body is not JSON or not a JSON object (`invalid_json`, `invalid_body`), or the Idempotency-Key header is malformed (`invalid_header`).", body = ErrorBody),
        (status = 413, response = TooLarge),
        (status = 422, description = "A field is missing, of the wrong type, invalid or unknown (`missing_field`, `invalid_field`, `unknown_field`, `target_not_allowed`; `field` names it), or the Idempotency-Key came before with another body (`idempotency_key_reused`).", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let bytes = body::read(body)?;
    let new_job = request::new_job(&bytes)?;
    target_allowed(&state, &new_job.target.url).await?;
    let now = state.store.clock().await?;
    let marked = new_job.target.headers.marked_secret().clone();
    let mut job = new_job.into_job(Uuid::now_v7(), now)?;
    job.tenant = caller.tenant.clone();
    job.http_headers = seal_headers(&state.keyring, job.id, job.http_headers, &marked, None)?;
    job.http_url = seal_query(&state.keyring, job.id, &job.http_url, None)?;
    let secret = new_signing_secret();
    job.signing_secret = Some(seal(&state.keyring, &secret, &signing_context(job.id))?);
    if let Some(key) = key {
        let fingerprint = fingerprint(&bytes);
        if let IdempotentInsert::Existing {
            job_id,
            fingerprint: first,
        } = state
            .store
            .job_insert_once(&job, &key, &fingerprint)
            .await?
        {
            return replay(&state, &caller, &key, job_id, first == fingerprint).await;
        }
    } else {
        state.store.job_insert(&job).await?;
    }
    tracing::info!(job_id = %job.id, cron = %job.cron_expression, "job created");
    let location = format!("/api/v1/jobs/{}", job.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(JobView::from(job).with_secret(secret)),
    )
        .into_response())
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_string()))
        }
        _ => Err(ApiError::invalid_header(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good key)",
        )),
    }
}

/// SHA-256 of a request body, in hex: tells a retry from another request with its key.
fn fingerprint(body: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The answer to a create whose key was used before: the first job again (without its
/// signing secret, shown in the first answer only), or 422 when the key came with another
/// body.
async fn replay(
    state: &AppState,
    caller: &Caller,
    key: &str,
    job_id: Uuid,
    same_request: bool,
) -> Result<Response, ApiError> {
    if !same_request {
        return Err(ApiError::idempotency_key_reused(key));
    }
    let job = owned_job(state, caller, &job_id.to_string()).await?;
    // The signing secret was in the first answer only; a client that lost it rotates it.
    tracing::info!(%job_id, "job create replayed for its idempotency key");
    let view = JobView::from(job);
    Ok((
        StatusCode::OK,
        [
            (header::LOCATION, format!("/api/v1/jobs/{job_id}")),
            (
                header::HeaderName::from_static("idempotent-replayed"),
                "true".into(),
            ),
        ],
        Json(view),
    )
        .into_response())
}

/// `GET /api/v1/jobs/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    operation_id = "getJob",
    tag = "jobs",
    summary = "Read a job",
    description = "One job, deleted or not.",
    params(JobId),
    responses(
        (status = 200, description = "The job.", body = JobView),
        (status = 404, response = JobNotFound),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(owned_job(&state, &caller, &id).await?.into()))
}

/// `GET /api/v1/jobs`'s parameters.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobListQuery {
    #[serde(default)]
    limit: JobsLimit,
    cursor: Option<Text>,
    is_active: Option<Flag>,
    #[serde(default)]
    include_deleted: Flag,
    q: Option<Search>,
    recent: Option<RecentCount>,
    status: Option<OneOf<ExecutionStatus>>,
    sort: Option<OneOf<JobOrder>>,
}

/// The statuses `status=` filters on: those a worker records.
impl Word for ExecutionStatus {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("SUCCEEDED", ExecutionStatus::Succeeded),
        ("FAILED", ExecutionStatus::Failed),
        ("RETRYING", ExecutionStatus::Retrying),
    ];
}

words_schema!(StatusWords, ExecutionStatus);

impl Word for JobOrder {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("newest", JobOrder::Newest),
        ("name", JobOrder::Name),
        ("nextRun", JobOrder::NextRun),
    ];
}

words_schema!(OrderWords, JobOrder);

/// `GET /api/v1/jobs?limit=&cursor=&isActive=&includeDeleted=&q=&recent=&status=&sort=`:
/// newest first unless sorted otherwise, deleted jobs left out unless asked for.
#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    operation_id = "listJobs",
    tag = "jobs",
    summary = "List jobs",
    description = "The caller's tenant's jobs, newest first unless `sort` says otherwise; deleted jobs only with `includeDeleted=true`. Cursors are stable in the orders `newest` and `name`; `nextRun` answers a first page only.",
    params(
        Page,
        ("isActive" = Option<bool>, Query, nullable = false, description = "Only active (true) or inactive (false) jobs."),
        ("includeDeleted" = Option<bool>, Query, nullable = false, description = "Include deleted jobs (default false)."),
        ("q" = Option<String>, Query, nullable = false, max_length = 200, description = "Only jobs whose name or description holds this text, ignoring case (`%` and `_` match themselves)."),
        ("recent" = Option<u32>, Query, nullable = false, minimum = 1, maximum = 20, description = "Include each job's last N finished fires (`recent`), read for the whole page at once."),
        ("status" = inline(Option<StatusWords>), Query, nullable = false, description = "Only jobs whose latest recorded outcome (noted by the workers within seconds) is SUCCEEDED, FAILED or RETRYING."),
        ("sort" = inline(Option<OrderWords>), Query, nullable = false, description = "`newest` (default), `name`, or `nextRun` (soonest first; a first page only, without `cursor`)."),
    ),
    responses(
        (status = 200, description = "A page of jobs.", body = JobPage),
        (status = 400, response = BadQuery),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<JobListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let limit = query.limit.0;
    let order = query.sort.map(|OneOf(order)| order).unwrap_or_default();
    let after = query
        .cursor
        .map(|Text(raw)| cursor::decode_jobs(&raw))
        .transpose()?;
    if let Some(after) = &after {
        if after.order() != order || order == JobOrder::NextRun {
            return Err(ApiError::invalid_query(
                "cursor",
                "cursor belongs to a list in another order (sort); pass the sort of the page it came from, and no cursor with sort=nextRun",
            ));
        }
    }
    let filter = JobFilter {
        tenant: Some(caller.tenant.clone()),
        is_active: query.is_active.map(|Flag(flag)| flag),
        include_deleted: query.include_deleted.0,
        search: query.q.and_then(|Search(text)| text),
        last_status: query.status.map(|OneOf(status)| status),
        order,
    };
    let mut jobs = state.store.job_list(filter, after, limit + 1).await?;
    let mut next_cursor = cut_to_page(&mut jobs, limit, order);
    let positions: Vec<Option<JobCursor>> =
        jobs.iter().map(|job| JobCursor::of(job, order)).collect();
    let recent = match query.recent {
        Some(Count(per_job)) => {
            let ids: Vec<Uuid> = jobs.iter().map(|job| job.id).collect();
            Some(state.store.execution_list_recent(&ids, per_job).await?)
        }
        None => None,
    };
    let mut views: Vec<JobView> = jobs.into_iter().map(JobView::from).collect();
    if let Some(recent) = recent {
        views = JobView::with_recent(views, recent);
    }
    let fitting = page::fitting(&views);
    if fitting < views.len() {
        views.truncate(fitting);
        next_cursor = positions[fitting - 1].as_ref().map(cursor::encode_jobs);
    }
    Ok(Json(JobPage {
        jobs: views,
        next_cursor,
    }))
}

/// Cuts jobs read with one more than `limit` to a page; the cursor of the next page, if
/// there is one and the order has pages.
pub(super) fn cut_to_page(jobs: &mut Vec<Job>, limit: u32, order: JobOrder) -> Option<String> {
    if jobs.len() <= limit as usize {
        return None;
    }
    jobs.truncate(limit as usize);
    jobs.last()
        .and_then(|job| JobCursor::of(job, order))
        .map(|position| cursor::encode_jobs(&position))
}

/// `GET /api/v1/jobs/{id}/history`'s parameters.
#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    limit: HistoryLimit,
    cursor: Option<Text>,
}

/// `GET /api/v1/jobs/{id}/history?limit=&cursor=`: latest fire first.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/history",
    operation_id = "getJobHistory",
    tag = "history",
    summary = "A job's history",
    description = "The job's executions, latest fire first, each with its attempts.",
    params(
        JobId,
        Page,
    ),
    responses(
        (status = 200, description = "A page of executions.", body = HistoryPage),
        (status = 400, response = BadQuery),
        (status = 404, response = JobNotFound),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let job_id = parse_id(&id)?;
    let limit = query.limit.0;
    let before = query
        .cursor
        .map(|Text(raw)| cursor::decode_history(&raw))
        .transpose()?;
    owned_job(&state, &caller, &id).await?;
    let executions = state
        .store
        .execution_list(ExecutionListing {
            job_id,
            before,
            limit: limit + 1,
        })
        .await?;
    let positions: Vec<String> = executions
        .iter()
        .map(|e| cursor::encode_history(e.scheduled_at))
        .collect();
    history_page(&state, executions, limit, positions).await
}

/// A page of `executions` read with one more than `limit`, cut to `limit` and to the
/// page's byte budget; `positions[i]` is the cursor of the page after `executions[i]`.
pub(super) async fn history_page(
    state: &AppState,
    mut executions: Vec<crate::model::Execution>,
    limit: u32,
    positions: Vec<String>,
) -> Result<Json<HistoryPage>, ApiError> {
    let mut next_cursor = None;
    if executions.len() > limit as usize {
        executions.truncate(limit as usize);
        next_cursor = positions.get(executions.len() - 1).cloned();
    }
    let mut views = with_attempts(state, executions).await?;
    let fitting = page::fitting(&views);
    if fitting < views.len() {
        views.truncate(fitting);
        next_cursor = positions.get(fitting - 1).cloned();
    }
    Ok(Json(HistoryPage {
        executions: views,
        next_cursor,
    }))
}

/// Executions as the API shows them, each with its attempts (read in one query).
pub(super) async fn with_attempts(
    state: &AppState,
    executions: Vec<crate::model::Execution>,
) -> Result<Vec<ExecutionView>, ApiError> {
    let ids: Vec<Uuid> = executions.iter().map(|e| e.id).collect();
    let attempts = state.store.attempt_list(&ids).await?;
    Ok(executions
        .into_iter()
        .map(|e| ExecutionView::new(e, &attempts))
        .collect())
}

/// `PATCH /api/v1/jobs/{id}`: any subset of the fields, checked as at creation.
#[utoipa::path(
    patch,
    path = "/api/v1/jobs/{id}",
    operation_id = "updateJob",
    tag = "jobs",
    summary = "Change a job",
    description = "Any subset of the job's fields, checked as at creation. A new schedule takes effect from now; `isActive: true` also brings back a deleted job. Credential headers sent as `********` keep their stored value.",
    params(JobId),
    request_body(content = JobPatchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed job.", body = JobView),
        (status = 400, response = BadBody),
        (status = 404, response = JobNotFound),
        (status = 413, response = TooLarge),
        (status = 422, response = InvalidFields),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JobView>, ApiError> {
    let job_id = owned_job(&state, &caller, &id).await?.id;
    let bytes = body::read(body)?;
    let patch = request::job_patch(&bytes)?;
    if let Some(url) = &patch.url {
        target_allowed(&state, url).await?;
    }
    let keyring = state.keyring.clone();
    let change = move |job: Job, now| {
        let before = job.clone();
        let marked = patch.headers.as_ref().map(|h| h.marked_secret().clone());
        let new_url = patch.url.is_some();
        let mut job = patch.clone().apply(job, now)?;
        if new_url {
            job.http_url = seal_query(&keyring, job.id, &job.http_url, Some(&before.http_url))?;
        }
        if let Some(marked) = marked {
            job.http_headers = seal_headers(
                &keyring,
                job.id,
                job.http_headers,
                &marked,
                Some(&before.http_headers),
            )?;
        }
        credentials_stay_with_their_origin(&before, &job)?;
        Ok(job)
    };
    match state.store.job_update(job_id, &change).await? {
        None => Err(ApiError::job_not_found(&id)),
        Some(Err(invalid)) => Err(invalid.into()),
        Some(Ok(job)) => {
            tracing::info!(job_id = %job.id, active = job.is_active, "job updated");
            Ok(Json(job.into()))
        }
    }
}

/// `DELETE /api/v1/jobs/{id}`: a soft delete; 204 again for a job already deleted.
#[utoipa::path(
    delete,
    path = "/api/v1/jobs/{id}",
    operation_id = "deleteJob",
    tag = "jobs",
    summary = "Delete a job",
    description = "A soft delete: the job stops firing, fires waiting to run or to be retried (QUEUED, RETRYING) are cancelled, its history stays. Deleting it again answers 204 too.",
    params(JobId),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, response = JobNotFound),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
) -> Result<StatusCode, ApiError> {
    let job_id = owned_job(&state, &caller, &id).await?.id;
    if state.store.job_delete(job_id).await? {
        tracing::info!(%job_id, "job deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::job_not_found(&id))
    }
}

/// `GET /api/v1/jobs/{id}/schedule`'s parameters.
#[derive(Deserialize)]
pub struct ScheduleQuery {
    #[serde(default)]
    count: ScheduleCount,
}

/// `GET /api/v1/jobs/{id}/schedule?count=N`: the next fire times from now.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/schedule",
    operation_id = "getJobSchedule",
    tag = "jobs",
    summary = "A job's next fire times",
    description = "The next fire times of the job's schedule from now, in UTC.",
    params(
        JobId,
        ("count" = Option<u32>, Query, nullable = false, minimum = 1, maximum = 1000, description = "How many (default 10)."),
    ),
    responses(
        (status = 200, description = "The next fire times.", body = ScheduleView),
        (status = 400, response = BadQuery),
        (status = 404, response = JobNotFound),
    )
)]
pub async fn schedule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
    Query(query): Query<ScheduleQuery>,
) -> Result<Json<ScheduleView>, ApiError> {
    let count = query.count.0;
    let job = owned_job(&state, &caller, &id).await?;
    let schedule =
        Schedule::parse(&job.cron_expression, &job.timezone).map_err(|e| ApiError::internal(&e))?;
    let now = state.store.clock().await?;
    Ok(Json(ScheduleView::of(&schedule, now, count as usize)))
}

/// `GET /api/v1/executions/{id}`: one execution with all its attempts.
#[utoipa::path(
    get,
    path = "/api/v1/executions/{id}",
    operation_id = "getExecution",
    tag = "history",
    summary = "Read an execution",
    description = "One execution with all its attempts.",
    params(ExecutionId),
    responses(
        (status = 200, description = "The execution.", body = ExecutionView),
        (status = 404, response = ExecutionNotFound),
    )
)]
pub async fn execution(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
) -> Result<Json<ExecutionView>, ApiError> {
    let execution = owned_execution(&state, &caller, &id).await?;
    let attempts = state.store.attempt_list(&[execution.id]).await?;
    Ok(Json(ExecutionView::new(execution, &attempts)))
}

/// `GET /queue/stats`: what the queue holds, and how many fires wait to be retried.
#[utoipa::path(
    get,
    path = "/queue/stats",
    operation_id = "getQueueStats",
    tag = "health",
    summary = "Queue statistics",
    description = "For the operator key, the whole queue; for a tenant's key, its own fires (without `scheduled` and `completed`).",
    responses(
        (status = 200, description = "The counts.", body = StatsView),
    )
)]
pub async fn stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<StatsView>, ApiError> {
    if !caller.operator {
        let counts = state.store.tenant_counts(&caller.tenant).await?;
        return Ok(Json(StatsView {
            queue_stats: Counts::tenant(counts),
        }));
    }
    let (queue, retrying) =
        tokio::join!(state.queue.stats(), state.store.execution_count_retrying());
    Ok(Json(StatsView {
        queue_stats: Counts::new(queue?, retrying?),
    }))
}

//! `/api/v1/jobs`: create, read, list, and a job's history.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use uuid::Uuid;

use super::error::ApiError;
use super::views::{ExecutionView, HistoryPage, JobPage, JobView};
use super::{body, cursor, AppState, BODY_LIMIT};
use crate::store::JobCursor;

/// Default and largest page of jobs.
const JOBS_PAGE: (u32, u32) = (50, 500);
/// Default and largest page of history.
const HISTORY_PAGE: (u32, u32) = (50, 500);

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::job_not_found(raw))
}

/// Reads the query string, refusing parameters the route does not take.
fn query<'a>(
    params: &'a HashMap<String, String>,
    allowed: &[&str],
) -> Result<impl Fn(&str) -> Option<&'a str>, ApiError> {
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid_query(
            unknown,
            format!(
                "unknown query parameter {unknown:?}; expected {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(move |name: &str| params.get(name).map(String::as_str))
}

fn limit(raw: Option<&str>, (default, max): (u32, u32)) -> Result<u32, ApiError> {
    match raw {
        None => Ok(default),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid_query(
                "limit",
                format!("limit is {raw:?}; expected a whole number from 1 to {max}"),
            )),
        },
    }
}

fn query_map(
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<HashMap<String, String>, ApiError> {
    query
        .map(|Query(map)| map)
        .map_err(|e| ApiError::invalid_query("query", format!("query string is malformed: {e}")))
}

/// `POST /api/v1/jobs`: 201 with the job and its `Location`.
pub async fn create(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(|_| ApiError::payload_too_large(BODY_LIMIT))?;
    let new_job = body::new_job(&bytes)?;
    let now = state.store.clock().await?;
    let job = new_job.into_job(Uuid::now_v7(), now)?;
    state.store.insert_job(&job).await?;
    tracing::info!(job_id = %job.id, cron = %job.cron_expression, "job created");
    let location = format!("/api/v1/jobs/{}", job.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(JobView::from(job)),
    )
        .into_response())
}

/// `GET /api/v1/jobs/{id}`
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let job_id = parse_id(&id)?;
    match state.store.job(job_id).await? {
        Some(job) => Ok(Json(job.into())),
        None => Err(ApiError::job_not_found(&id)),
    }
}

/// `GET /api/v1/jobs?limit=&cursor=`: newest first.
pub async fn list(
    State(state): State<AppState>,
    params: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let params = query_map(params)?;
    let param = query(&params, &["limit", "cursor"])?;
    let limit = limit(param("limit"), JOBS_PAGE)?;
    let after = param("cursor").map(cursor::decode_jobs).transpose()?;
    let mut jobs = state.store.jobs(after, limit + 1).await?;
    let next_cursor = if jobs.len() > limit as usize {
        jobs.truncate(limit as usize);
        jobs.last().map(|j| {
            cursor::encode_jobs(JobCursor {
                created_at: j.created_at,
                id: j.id,
            })
        })
    } else {
        None
    };
    Ok(Json(JobPage {
        jobs: jobs.into_iter().map(JobView::from).collect(),
        next_cursor,
    }))
}

/// `GET /api/v1/jobs/{id}/history?limit=&cursor=`: latest fire first.
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
    let job_id = parse_id(&id)?;
    let params = query_map(params)?;
    let param = query(&params, &["limit", "cursor"])?;
    let limit = limit(param("limit"), HISTORY_PAGE)?;
    let before = param("cursor").map(cursor::decode_history).transpose()?;
    if state.store.job(job_id).await?.is_none() {
        return Err(ApiError::job_not_found(&id));
    }
    let mut executions = state.store.executions(job_id, before, limit + 1).await?;
    let next_cursor = if executions.len() > limit as usize {
        executions.truncate(limit as usize);
        executions
            .last()
            .map(|e| cursor::encode_history(e.scheduled_at))
    } else {
        None
    };
    Ok(Json(HistoryPage {
        executions: executions.into_iter().map(ExecutionView::from).collect(),
        next_cursor,
    }))
}

//! Rows as both stores read them, and their conversion into the model. Times are
//! `DateTime<Utc>` in both: `timestamptz` in PostgreSQL, RFC 3339 text in SQLite (one
//! offset, `+00:00`, so text order is time order).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::FromRow;
use uuid::Uuid;

use super::{DueJob, StoreError};
use crate::model::{
    Attempt, ConcurrencyPolicy, Delivery, Execution, ExecutionStatus, ExecutionType, FireKind,
    Histogram, HttpBody, HttpHeaders, HttpMethod, HttpTarget, Job, MinuteRollup, MisfirePolicy,
    TargetUrl,
};
/// A job row with its last finished run.
#[derive(FromRow)]
pub(super) struct JobRow {
    pub(super) id: Uuid,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) cron_expression: String,
    pub(super) timezone: String,
    pub(super) http_method: String,
    pub(super) http_url: String,
    pub(super) http_headers: Json<BTreeMap<String, String>>,
    pub(super) http_body: Option<String>,
    pub(super) execution_type: String,
    pub(super) max_retries: i32,
    pub(super) timeout_seconds: i32,
    pub(super) is_active: bool,
    pub(super) next_run_at: Option<DateTime<Utc>>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) deleted_at: Option<DateTime<Utc>>,
    pub(super) misfire_policy: String,
    pub(super) catch_up_limit: i32,
    pub(super) concurrency_policy: String,
    pub(super) starting_deadline_seconds: Option<i32>,
    pub(super) skipped_fires: i64,
    pub(super) signing_secret: Option<String>,
    pub(super) previous_signing_secret: Option<String>,
    pub(super) previous_secret_expires_at: Option<DateTime<Utc>>,
    pub(super) tenant: String,
    pub(super) last_run_at: Option<DateTime<Utc>>,
    pub(super) last_status: Option<String>,
}

/// A duration in whole milliseconds, saturating.
pub(super) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A row this build cannot read.
pub(super) fn corrupt(what: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.into(),
    }
}

/// An execution status as stored.
pub(super) fn read_status(raw: &str) -> Result<ExecutionStatus, StoreError> {
    ExecutionStatus::parse(raw).map_err(|e| corrupt("execution", e.message))
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Self, StoreError> {
        Ok(Job {
            id: row.id,
            name: row.name,
            description: row.description,
            cron_expression: row.cron_expression,
            timezone: row.timezone,
            http_method: HttpMethod::parse(&row.http_method)
                .map_err(|e| corrupt("job", e.message))?,
            http_url: row.http_url,
            http_headers: row.http_headers.0,
            http_body: row.http_body,
            execution_type: ExecutionType::parse(&row.execution_type)
                .map_err(|e| corrupt("job", e.message))?,
            max_retries: row.max_retries,
            timeout_seconds: row.timeout_seconds,
            is_active: row.is_active,
            next_run_at: row.next_run_at,
            last_run_at: row.last_run_at,
            last_status: row.last_status.as_deref().map(read_status).transpose()?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
            misfire_policy: MisfirePolicy::parse(&row.misfire_policy)
                .map_err(|e| corrupt("job", e.message))?,
            catch_up_limit: row.catch_up_limit,
            concurrency_policy: ConcurrencyPolicy::parse(&row.concurrency_policy)
                .map_err(|e| corrupt("job", e.message))?,
            starting_deadline_seconds: row.starting_deadline_seconds,
            skipped_fires: row.skipped_fires,
            signing_secret: row.signing_secret,
            previous_signing_secret: row.previous_signing_secret,
            previous_secret_expires_at: row.previous_secret_expires_at,
            tenant: row.tenant,
        })
    }
}

/// An execution row.
#[derive(FromRow)]
pub(super) struct ExecutionRow {
    pub(super) id: Uuid,
    pub(super) job_id: Uuid,
    pub(super) scheduled_at: DateTime<Utc>,
    pub(super) status: String,
    pub(super) attempt: i32,
    pub(super) started_at: Option<DateTime<Utc>>,
    pub(super) finished_at: Option<DateTime<Utc>>,
    pub(super) duration_ms: Option<i64>,
    pub(super) http_status: Option<i32>,
    pub(super) error: Option<String>,
    pub(super) next_attempt_at: Option<DateTime<Utc>>,
    pub(super) crashes: i32,
    pub(super) kind: String,
    pub(super) first_sent_at: Option<DateTime<Utc>>,
}

impl TryFrom<ExecutionRow> for Execution {
    type Error = StoreError;

    fn try_from(row: ExecutionRow) -> Result<Self, StoreError> {
        Ok(Execution {
            id: row.id,
            job_id: row.job_id,
            scheduled_at: row.scheduled_at,
            status: read_status(&row.status)?,
            attempt: row.attempt,
            started_at: row.started_at,
            finished_at: row.finished_at,
            duration_ms: row.duration_ms,
            http_status: row.http_status,
            error: row.error,
            next_attempt_at: row.next_attempt_at,
            crashes: row.crashes,
            first_sent_at: row.first_sent_at,
            kind: FireKind::parse(&row.kind).map_err(|e| corrupt("execution", e.message))?,
        })
    }
}

/// An attempt row.
#[derive(FromRow)]
pub(super) struct AttemptRow {
    pub(super) execution_id: Uuid,
    pub(super) attempt: i32,
    pub(super) started_at: DateTime<Utc>,
    pub(super) finished_at: DateTime<Utc>,
    pub(super) duration_ms: i64,
    pub(super) http_status: Option<i32>,
    pub(super) error: Option<String>,
    pub(super) response_body: Option<String>,
}

impl From<AttemptRow> for Attempt {
    fn from(row: AttemptRow) -> Self {
        Attempt {
            execution_id: row.execution_id,
            attempt: row.attempt,
            started_at: row.started_at,
            finished_at: row.finished_at,
            duration_ms: row.duration_ms,
            http_status: row.http_status,
            error: row.error,
            response_body: row.response_body,
        }
    }
}

/// A claimed fire joined with its job: what a worker needs to send it.
#[derive(FromRow)]
pub(super) struct DeliveryRow {
    pub(super) id: Uuid,
    pub(super) job_id: Uuid,
    pub(super) tenant: String,
    pub(super) scheduled_at: DateTime<Utc>,
    pub(super) attempt: i32,
    pub(super) worker_id: Uuid,
    pub(super) execution_type: String,
    pub(super) max_retries: i32,
    pub(super) crashes: i32,
    pub(super) handbacks: i32,
    pub(super) attempt_base: i32,
    pub(super) http_method: String,
    pub(super) http_url: String,
    pub(super) http_headers: Json<BTreeMap<String, String>>,
    pub(super) http_body: Option<String>,
    pub(super) timeout_seconds: i32,
    pub(super) signing_secret: Option<String>,
    pub(super) previous_signing_secret: Option<String>,
    pub(super) overlap: bool,
    /// Not started within its job's `startingDeadlineSeconds`: recorded EXPIRED, not sent.
    pub(super) expired: bool,
    pub(super) wait_ms: i64,
    /// Left QUEUED for a second claim statement (a FORBID job's fire; PostgreSQL).
    #[sqlx(default)]
    pub(super) deferred: bool,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;

    fn try_from(row: DeliveryRow) -> Result<Self, StoreError> {
        let bad = |e: crate::model::InvalidField| corrupt("job", e.message);
        Ok(Delivery {
            execution_id: row.id,
            job_id: row.job_id,
            tenant: row.tenant,
            scheduled_at: row.scheduled_at,
            attempt: row.attempt,
            worker_id: row.worker_id,
            execution_type: ExecutionType::parse(&row.execution_type).map_err(bad)?,
            max_retries: row.max_retries,
            crashes: row.crashes,
            handbacks: row.handbacks,
            attempt_base: row.attempt_base,
            signing_secrets: row
                .signing_secret
                .into_iter()
                .chain(row.previous_signing_secret)
                .collect(),
            target: HttpTarget {
                method: HttpMethod::parse(&row.http_method).map_err(bad)?,
                url: TargetUrl::from_stored(&row.http_url).map_err(bad)?,
                headers: HttpHeaders::from_stored(row.http_headers.0),
                body: HttpBody::parse(row.http_body).map_err(bad)?,
            },
            wait: Duration::from_millis(u64::try_from(row.wait_ms).unwrap_or(0)),
            timeout_seconds: u8::try_from(row.timeout_seconds).map_err(|_| {
                corrupt(
                    "job",
                    format!("timeout {} out of range", row.timeout_seconds),
                )
            })?,
        })
    }
}

/// A due job's row.
#[derive(FromRow)]
pub(super) struct DueRow {
    pub(super) id: Uuid,
    pub(super) cron_expression: String,
    pub(super) timezone: String,
    pub(super) next_run_at: DateTime<Utc>,
    pub(super) misfire_policy: String,
    pub(super) catch_up_limit: i32,
}

impl TryFrom<DueRow> for DueJob {
    type Error = StoreError;

    fn try_from(row: DueRow) -> Result<Self, StoreError> {
        Ok(DueJob {
            id: row.id,
            cron_expression: row.cron_expression,
            timezone: row.timezone,
            next_run_at: row.next_run_at,
            misfire_policy: MisfirePolicy::parse(&row.misfire_policy)
                .map_err(|e| corrupt("job", e.message))?,
            catch_up_limit: u32::try_from(row.catch_up_limit).unwrap_or(1),
        })
    }
}

/// What a dead letter is, as the requeue decision needs it.
#[derive(FromRow)]
pub(super) struct DeadRow {
    pub(super) status: String,
    pub(super) execution_type: String,
    pub(super) job_deleted: bool,
}

/// A count as stored (a BIGINT / INTEGER column).
pub(super) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A row of `outcome_minutes`; `H` is how the backend stores a histogram.
#[derive(FromRow)]
pub(super) struct RollupRow<H> {
    pub(super) minute: DateTime<Utc>,
    pub(super) tenant: String,
    pub(super) fires: i64,
    pub(super) succeeded: i64,
    pub(super) failed: i64,
    pub(super) retried: i64,
    pub(super) lateness: H,
    pub(super) latency: H,
}

impl<H> RollupRow<H> {
    /// The rollup, reading histograms with `counts`.
    pub(super) fn into_rollup(self, counts: impl Fn(&H) -> Vec<i64>) -> MinuteRollup {
        let read = |n: i64| u64::try_from(n).unwrap_or(0);
        MinuteRollup {
            minute: self.minute,
            tenant: self.tenant,
            fires: read(self.fires),
            succeeded: read(self.succeeded),
            failed: read(self.failed),
            retried: read(self.retried),
            lateness: Histogram::from_counts(&counts(&self.lateness)),
            latency: Histogram::from_counts(&counts(&self.latency)),
        }
    }
}

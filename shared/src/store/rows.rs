//! Rows as both stores read them, and their conversion into the model. Times are
//! `DateTime<Utc>` in both: `timestamptz` in PostgreSQL, RFC 3339 text in SQLite (one
//! offset, `+00:00`, so text order is time order).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::FromRow;
use uuid::Uuid;

use super::fire_id::fire_id;
use super::{DueJob, JobChange, Planner, Reaped, Requeued, StoreError, TenantCounts};
use crate::model::{
    Attempt, ConcurrencyPolicy, Delivery, Execution, ExecutionStatus, ExecutionType, FireKind,
    HttpBody, HttpHeaders, HttpMethod, HttpTarget, InvalidField, Job, MisfirePolicy, TargetUrl,
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

/// Reads the (id, status) rows of fires taken back from a worker.
pub(super) fn taken_back(rows: Vec<(Uuid, String)>) -> Result<Vec<Reaped>, StoreError> {
    rows.into_iter()
        .map(|(execution_id, status)| {
            Ok(Reaped {
                execution_id,
                status: read_status(&status)?,
            })
        })
        .collect()
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

/// Soft-deletes job `$1` at `$2` (the first deletion time is kept).
pub(super) const SOFT_DELETE_JOB: &str = "UPDATE jobs SET is_active = false, \
     next_run_at = NULL, updated_at = CASE WHEN deleted_at IS NULL THEN $2 ELSE updated_at END, \
     deleted_at = COALESCE(deleted_at, $2) WHERE id = $1";

/// Cancels the QUEUED and RETRYING fires of job `$1` at `$2` (a finished fire is never
/// held: the index of held fires keeps only those waiting).
pub(super) const CANCEL_WAITING: &str = "UPDATE executions SET status = 'CANCELLED', \
     finished_at = $2, next_attempt_at = NULL, held = false \
     WHERE job_id = $1 AND status IN ('QUEUED', 'RETRYING')";

/// QUEUED fires queued from `$4` and before `$1` and due by `$3`, at most `$2`; held fires
/// are not lost.
pub(super) const STALE_QUEUED: &str = "SELECT id, queued_at FROM executions \
     WHERE finished_at IS NULL AND status = 'QUEUED' AND NOT held \
     AND queued_at >= $4 AND queued_at < $1 AND scheduled_at <= $3 \
     ORDER BY queued_at LIMIT $2";

/// Whether any fire is held.
pub(super) const HOLDS_ANY: &str =
    "SELECT EXISTS (SELECT 1 FROM executions WHERE held AND status = 'QUEUED')";

/// RETRYING fires due before `$1`, at most `$2`.
pub(super) const OVERDUE_RETRIES: &str = "SELECT id FROM executions \
     WHERE status = 'RETRYING' AND next_attempt_at < $1 \
     ORDER BY next_attempt_at LIMIT $2";

/// The attempt that ended a SUCCEEDED fire, read from its execution row (no attempt row is
/// written for it), as attempt rows are read; the caller appends which executions
/// (`e.id = ...`). Fires that succeeded before the row kept it have an attempt row instead.
pub(super) const SUCCEEDED_ATTEMPT: &str = "SELECT e.id AS execution_id, e.attempt, \
     COALESCE(e.started_at, e.finished_at) AS started_at, e.finished_at, \
     COALESCE(e.duration_ms, 0) AS duration_ms, e.http_status, e.error, e.response_body \
     FROM executions e WHERE e.status = 'SUCCEEDED' AND e.finished_at IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM attempts a \
         WHERE a.execution_id = e.id AND a.attempt = e.attempt) AND";

/// Why a fire ended EXPIRED, as an SQL expression over its job `j` (both stores).
pub(super) const EXPIRED_ERROR: &str = "'not started within startingDeadlineSeconds (' \
     || j.starting_deadline_seconds || ' s) of its time; not sent'";

/// Columns of an execution.
pub(super) const EXECUTION_COLUMNS: &str = "id, job_id, scheduled_at, status, attempt, \
     started_at, finished_at, duration_ms, http_status, error, next_attempt_at, crashes, kind";

/// Writes every column of a job: inserts a new one, or replaces the row of an existing one
/// (its creation time and tenant kept). The same text serves both stores (`$n` parameters).
pub(super) const WRITE_JOB: &str = "INSERT INTO jobs (id, name, description, cron_expression, \
     timezone, http_method, http_url, http_headers, http_body, execution_type, max_retries, \
     timeout_seconds, is_active, next_run_at, created_at, updated_at, deleted_at, \
     misfire_policy, catch_up_limit, concurrency_policy, signing_secret, \
     previous_signing_secret, previous_secret_expires_at, tenant, starting_deadline_seconds) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20, $21, $22, $23, $24, $25) \
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
     description = EXCLUDED.description, cron_expression = EXCLUDED.cron_expression, \
     timezone = EXCLUDED.timezone, http_method = EXCLUDED.http_method, \
     http_url = EXCLUDED.http_url, http_headers = EXCLUDED.http_headers, \
     http_body = EXCLUDED.http_body, execution_type = EXCLUDED.execution_type, \
     max_retries = EXCLUDED.max_retries, timeout_seconds = EXCLUDED.timeout_seconds, \
     is_active = EXCLUDED.is_active, next_run_at = EXCLUDED.next_run_at, \
     updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at, \
     misfire_policy = EXCLUDED.misfire_policy, catch_up_limit = EXCLUDED.catch_up_limit, \
     concurrency_policy = EXCLUDED.concurrency_policy, \
     signing_secret = EXCLUDED.signing_secret, \
     previous_signing_secret = EXCLUDED.previous_signing_secret, \
     previous_secret_expires_at = EXCLUDED.previous_secret_expires_at, \
     starting_deadline_seconds = EXCLUDED.starting_deadline_seconds";

/// Binds a job's columns to [`WRITE_JOB`], in its parameter order.
macro_rules! bind_job {
    ($query:expr, $job:expr) => {{
        let job = $job;
        $query
            .bind(job.id)
            .bind(&job.name)
            .bind(&job.description)
            .bind(&job.cron_expression)
            .bind(&job.timezone)
            .bind(job.http_method.as_str())
            .bind(&job.http_url)
            .bind(sqlx::types::Json(&job.http_headers))
            .bind(&job.http_body)
            .bind(job.execution_type.as_str())
            .bind(job.max_retries)
            .bind(job.timeout_seconds)
            .bind(job.is_active)
            .bind(job.next_run_at)
            .bind(job.created_at)
            .bind(job.updated_at)
            .bind(job.deleted_at)
            .bind(job.misfire_policy.as_str())
            .bind(job.catch_up_limit)
            .bind(job.concurrency_policy.as_str())
            .bind(&job.signing_secret)
            .bind(&job.previous_signing_secret)
            .bind(job.previous_secret_expires_at)
            .bind(&job.tenant)
            .bind(job.starting_deadline_seconds)
    }};
}
pub(super) use bind_job;

/// Columns of a due job, as the tick's claim reads them.
pub(super) const DUE_COLUMNS: &str =
    "id, cron_expression, timezone, next_run_at, misfire_policy, catch_up_limit";

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

/// The writes one claim makes for the jobs it holds, planned before any is made.
#[derive(Default)]
pub(super) struct ClaimWrites {
    /// New executions: id, job, fire time.
    pub(super) fires: Vec<(Uuid, Uuid, DateTime<Utc>)>,
    /// Per new execution, whether it is recorded held (see [`ClaimWrites::hold_past`]).
    pub(super) held: Vec<bool>,
    /// Per job: id, next fire time, missed fires dropped.
    pub(super) jobs: Vec<(Uuid, Option<DateTime<Utc>>, i64)>,
    /// Missed fires dropped in all.
    pub(super) skipped_fires: u64,
}

impl ClaimWrites {
    /// Plans the fires of each due job.
    pub(super) fn plan(due: &[DueJob], plan: Planner<'_>) -> Self {
        let mut writes = Self::default();
        for job in due {
            let fire_plan = plan(job);
            for fire in &fire_plan.fires {
                writes.fires.push((fire_id(*fire), job.id, *fire));
            }
            let skipped_fires = i64::try_from(fire_plan.skipped_fires).unwrap_or(i64::MAX);
            writes
                .jobs
                .push((job.id, fire_plan.next_run_at, skipped_fires));
            writes.skipped_fires += fire_plan.skipped_fires;
        }
        writes.held = vec![false; writes.fires.len()];
        writes
    }

    /// Marks held every fire past the first `room` by time: those are recorded held, to be
    /// pushed when the queue has room, and the rest pushed now.
    pub(super) fn hold_past(mut self, room: u64) -> Self {
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        if room >= self.fires.len() {
            return self;
        }
        let mut by_time: Vec<usize> = (0..self.fires.len()).collect();
        by_time.sort_by_key(|&i| (self.fires[i].2, self.fires[i].0));
        for &i in &by_time[room..] {
            self.held[i] = true;
        }
        self
    }
}

/// What a change to a job means for its waiting fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WaitingFires {
    /// The job is inactive now: cancel them (and forget those recorded ahead).
    Cancel,
    /// The schedule changed: forget fires recorded ahead (they belong to the old one).
    ForgetAhead,
    /// Nothing to do.
    Keep,
}

/// Applies `change` to a job read under lock; returns the job to write and what to do with
/// its waiting fires.
pub(super) fn change_job(
    before: Job,
    change: JobChange<'_>,
    now: DateTime<Utc>,
) -> Result<(Job, WaitingFires), InvalidField> {
    let schedule = (before.cron_expression.clone(), before.timezone.clone());
    let job = change(before, now)?;
    let waiting = if !job.is_active {
        WaitingFires::Cancel
    } else if schedule.0 != job.cron_expression || schedule.1 != job.timezone {
        WaitingFires::ForgetAhead
    } else {
        WaitingFires::Keep
    };
    Ok((job, waiting))
}

/// The smallest UUID v7 of the millisecond `at`: every id made at or after it is larger.
pub(super) fn first_uuid_at(at: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_uuid_of_a_millisecond_orders_below_every_id_made_then_or_later() {
        let now = Utc::now();
        let cutoff = first_uuid_at(now - chrono::Duration::milliseconds(5));
        let later = Uuid::now_v7();
        assert!(cutoff < later);
        let much_later = first_uuid_at(now + chrono::Duration::seconds(1));
        assert!(later < much_later);
        assert_eq!(cutoff.get_version_num(), 7);
    }
}

/// Puts a dead letter back in the queue: same execution, a fresh round of retries and crash
/// budget (the attempts so far stay in the history and keep their numbers). `$1` is the
/// execution, `$2` the time (kept in `requeued_at`); only a FAILED, ABANDONED or EXPIRED fire moves. `queued_at`
/// restarts the clock of the job's `startingDeadlineSeconds`, and `attempt_base = attempt`
/// makes its next attempt a first one again, subject to it.
pub(super) const REQUEUE_DEAD_LETTER: &str = "UPDATE executions SET status = 'QUEUED', \
     queued_at = $2, started_at = NULL, finished_at = NULL, duration_ms = NULL, \
     http_status = NULL, error = NULL, response_body = NULL, \
     next_attempt_at = NULL, crashes = 0, handbacks = 0, \
     attempt_base = attempt, requeued_at = $2, held = false \
     WHERE id = $1 AND status IN ('FAILED', 'ABANDONED', 'EXPIRED')";

/// What a dead letter is, as the requeue decision needs it.
#[derive(FromRow)]
pub(super) struct DeadRow {
    pub(super) status: String,
    pub(super) execution_type: String,
    pub(super) job_deleted: bool,
}

/// Decides whether a dead letter may go back in the queue. An EXPIRED fire was never sent,
/// so putting it back needs no `force` whatever its promise.
pub(super) fn may_requeue(row: &DeadRow, force: bool) -> Result<Option<Requeued>, StoreError> {
    let status = read_status(&row.status)?;
    if !matches!(
        status,
        ExecutionStatus::Failed | ExecutionStatus::Abandoned | ExecutionStatus::Expired
    ) {
        return Ok(Some(Requeued::NotDeadLetter(status)));
    }
    if row.job_deleted {
        return Ok(Some(Requeued::JobDeleted));
    }
    if status == ExecutionStatus::Expired {
        return Ok(None);
    }
    let kind =
        ExecutionType::parse(&row.execution_type).map_err(|e| corrupt("execution", e.message))?;
    if kind == ExecutionType::AtMostOnce && !force {
        return Ok(Some(Requeued::AtMostOnce));
    }
    Ok(None)
}

/// A job's sealed values replaced, only if they are still what was read; nothing else
/// about the job changes. Parameters: id, the new headers and signing secrets, then the
/// ones read (see [`bind_reseal`]).
pub(super) const RESEAL_JOB: &str = "UPDATE jobs \
     SET http_headers = $2, signing_secret = $3, previous_signing_secret = $4, http_url = $8 \
     WHERE id = $1 AND http_headers = $5 \
       AND signing_secret IS NOT DISTINCT FROM $6 \
       AND previous_signing_secret IS NOT DISTINCT FROM $7 AND http_url = $9";

/// Binds [`RESEAL_JOB`]'s parameters.
macro_rules! bind_reseal {
    ($query:expr, $id:expr, $before:expr, $after:expr) => {{
        let (before, after): (&$crate::store::SealedValues, &$crate::store::SealedValues) =
            ($before, $after);
        $query
            .bind($id)
            .bind(sqlx::types::Json(&after.http_headers))
            .bind(&after.signing_secret)
            .bind(&after.previous_signing_secret)
            .bind(sqlx::types::Json(&before.http_headers))
            .bind(&before.signing_secret)
            .bind(&before.previous_signing_secret)
            .bind(&after.http_url)
            .bind(&before.http_url)
    }};
}
pub(super) use bind_reseal;

/// A tenant's unfinished fires and dead letters by state (`$1` the tenant).
pub(super) const TENANT_COUNTS: &str = "SELECT e.status, count(*) FROM executions e \
     JOIN jobs j ON j.id = e.job_id WHERE j.tenant = $1 \
     AND e.status IN ('QUEUED', 'RUNNING', 'RETRYING', 'FAILED', 'ABANDONED', 'EXPIRED') \
     AND (e.finished_at IS NULL OR (e.finished_at IS NOT NULL AND e.error IS NOT NULL)) \
     GROUP BY e.status";

/// Counts by status, as `TENANT_COUNTS` returns them.
pub(super) fn tenant_counts(rows: Vec<(String, i64)>) -> TenantCounts {
    let mut counts = TenantCounts::default();
    for (status, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match status.as_str() {
            "QUEUED" => counts.queued += n,
            "RUNNING" => counts.running += n,
            "RETRYING" => counts.retrying += n,
            _ => counts.dead += n,
        }
    }
    counts
}

/// Created executions split into how many were held and those to push now.
pub(super) fn split_held(
    created: Vec<(Uuid, DateTime<Utc>, bool)>,
) -> (usize, Vec<(Uuid, DateTime<Utc>)>) {
    let held = created.iter().filter(|(_, _, held)| *held).count();
    let pushed = created
        .into_iter()
        .filter(|(_, _, held)| !held)
        .map(|(id, at, _)| (id, at))
        .collect();
    (held, pushed)
}

//! What the API returns: jobs and executions as camelCase JSON, times in UTC RFC 3339
//! with milliseconds.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::model::{
    Attempt, ConcurrencyPolicy, Execution, ExecutionStatus, ExecutionType, FireKind, HttpMethod,
    Job, MisfirePolicy,
};
use crate::queue::QueueStats;
use crate::schedule::Schedule;
use crate::store::RecentOutcome;

/// Formats an instant the way every API time is written: `2026-01-01T00:00:00.000Z`.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A job as JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Job)]
pub struct JobView {
    /// The job's id (a UUIDv7: ids sort by creation).
    id: Uuid,
    name: String,
    description: String,
    /// As given: six fields, seconds first, or five, minute first.
    cron_expression: String,
    /// The IANA zone the expression is read in.
    timezone: String,
    /// The schedule in plain words, ending with its zone (null for a stored expression
    /// this build cannot read).
    #[schema(
        required = true,
        example = "at 02:30, on Monday through Friday, Europe/Paris"
    )]
    schedule_description: Option<String>,
    #[schema(value_type = HttpMethod)]
    http_method: &'static str,
    http_url: String,
    /// Headers sent to the target; credential headers read back as `********` (send the
    /// mask back in a PATCH to keep the stored value).
    http_headers: BTreeMap<String, String>,
    /// Headers read back as `********`: credential headers by name, and those marked
    /// secret.
    secret_headers: Vec<String>,
    #[schema(required = true)]
    http_body: Option<String>,
    #[schema(value_type = ExecutionType)]
    execution_type: &'static str,
    max_retries: i32,
    timeout_seconds: i32,
    /// Whether the job fires; false while paused or deleted.
    is_active: bool,
    /// The next fire time, when the job is active.
    #[schema(format = DateTime, required = true)]
    next_run_at: Option<String>,
    /// When the latest finished fire (SUCCEEDED or FAILED) started.
    #[schema(format = DateTime, required = true)]
    last_run_at: Option<String>,
    /// The outcome of that fire: SUCCEEDED or FAILED.
    #[schema(value_type = Option<ExecutionStatus>, required = true)]
    last_status: Option<&'static str>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// When the job was deleted (soft delete; its history stays).
    #[schema(format = DateTime, required = true)]
    deleted_at: Option<String>,
    #[schema(value_type = MisfirePolicy)]
    misfire_policy: &'static str,
    catch_up_limit: i32,
    #[schema(value_type = ConcurrencyPolicy)]
    concurrency_policy: &'static str,
    /// Seconds a fire may wait for its first attempt before it ends EXPIRED, unsent; null:
    /// none.
    #[schema(required = true, minimum = 1, maximum = 86400)]
    starting_deadline_seconds: Option<i32>,
    /// Fires recorded SKIPPED (missed, or overlapping under FORBID).
    skipped_fires: i64,
    /// Whether requests carry Standard Webhooks signatures.
    signed: bool,
    /// Until when the previous signing secret also signs, during a rotation.
    #[schema(format = DateTime, required = true)]
    previous_signing_secret_expires_at: Option<String>,
    /// The signing secret in clear: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    signing_secret: Option<String>,
    /// The job's last finished fires, latest first: only in a list asked for them
    /// (`recent=N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    recent: Option<Vec<RecentView>>,
}

/// How one of a job's recent fires ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RecentOutcome)]
pub struct RecentView {
    #[schema(format = DateTime)]
    scheduled_at: String,
    #[schema(value_type = ExecutionStatus)]
    status: &'static str,
}

impl JobView {
    /// The view with the job's new signing secret in clear, for the one answer that shows
    /// it (creation).
    pub fn with_secret(mut self, secret: String) -> Self {
        self.signing_secret = Some(secret);
        self
    }

    /// `views`, each with its job's outcomes among `recent` (latest first).
    pub fn with_recent(views: Vec<JobView>, recent: Vec<RecentOutcome>) -> Vec<JobView> {
        let mut by_job: HashMap<Uuid, Vec<RecentView>> = HashMap::new();
        for outcome in recent {
            by_job.entry(outcome.job_id).or_default().push(RecentView {
                scheduled_at: time(outcome.scheduled_at),
                status: outcome.status.as_str(),
            });
        }
        views
            .into_iter()
            .map(|mut view| {
                view.recent = Some(by_job.remove(&view.id).unwrap_or_default());
                view
            })
            .collect()
    }
}

/// Whether a stored header reads back as the mask: sealed, or a credential's by name
/// (stored in clear before its name was one).
fn is_masked(name: &str, value: &str) -> bool {
    crate::secrets::is_sealed(value) || crate::secrets::is_secret_header(name)
}

impl From<Job> for JobView {
    fn from(job: Job) -> Self {
        Self {
            id: job.id,
            name: job.name,
            description: job.description,
            schedule_description: Schedule::parse(&job.cron_expression, &job.timezone)
                .ok()
                .map(|schedule| crate::schedule::describe(&schedule)),
            cron_expression: job.cron_expression,
            timezone: job.timezone,
            http_method: job.http_method.as_str(),
            // Credentials in the query read back as the mask.
            http_url: crate::secrets::query::masked(&job.http_url),
            secret_headers: job
                .http_headers
                .iter()
                .filter(|(name, value)| is_masked(name, value))
                .map(|(name, _)| name.clone())
                .collect(),
            // Sealed values (credentials) are never shown; the mask sent back means
            // "unchanged".
            http_headers: job
                .http_headers
                .into_iter()
                .map(|(name, value)| {
                    if is_masked(&name, &value) {
                        (name, crate::secrets::MASK.to_string())
                    } else {
                        (name, value)
                    }
                })
                .collect(),
            http_body: job.http_body,
            execution_type: job.execution_type.as_str(),
            max_retries: job.max_retries,
            timeout_seconds: job.timeout_seconds,
            is_active: job.is_active,
            next_run_at: job.next_run_at.map(time),
            last_run_at: job.last_run_at.map(time),
            last_status: job.last_status.map(|s| s.as_str()),
            created_at: time(job.created_at),
            updated_at: time(job.updated_at),
            deleted_at: job.deleted_at.map(time),
            misfire_policy: job.misfire_policy.as_str(),
            catch_up_limit: job.catch_up_limit,
            concurrency_policy: job.concurrency_policy.as_str(),
            starting_deadline_seconds: job.starting_deadline_seconds,
            skipped_fires: job.skipped_fires,
            signed: job.signing_secret.is_some(),
            previous_signing_secret_expires_at: job
                .previous_signing_secret
                .and(job.previous_secret_expires_at)
                .map(time),
            signing_secret: None,
            recent: None,
        }
    }
}

/// `POST /api/v1/jobs/{id}/signing-secret`: the new secret, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RotatedSigningSecret)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecretView {
    /// The job.
    pub job_id: Uuid,
    /// The new secret, in clear; keep it now, it is not shown again.
    pub signing_secret: String,
    /// Until when requests also carry a signature made with the previous secret.
    #[schema(format = DateTime, required = true)]
    pub previous_secret_valid_until: Option<String>,
}

/// One fire of a job (an execution) as JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Execution)]
pub struct ExecutionView {
    id: Uuid,
    job_id: Uuid,
    /// The fire time it stands for (for MANUAL fires, when it was asked for).
    #[schema(format = DateTime)]
    scheduled_at: String,
    #[schema(value_type = ExecutionStatus)]
    status: &'static str,
    /// Attempts made so far.
    attempt: i32,
    #[schema(format = DateTime, required = true)]
    started_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    finished_at: Option<String>,
    #[schema(required = true)]
    duration_ms: Option<i64>,
    /// The target's status code in the latest attempt.
    #[schema(required = true)]
    http_status: Option<i32>,
    /// Why the latest attempt failed.
    #[schema(required = true)]
    error: Option<String>,
    /// When a RETRYING fire is tried again.
    #[schema(format = DateTime, required = true)]
    next_attempt_at: Option<String>,
    /// Attempts lost to a worker that stopped mid-call.
    crashes: i32,
    #[schema(value_type = FireKind)]
    kind: &'static str,
    /// How late the fire's first recorded request was sent, in milliseconds after its
    /// scheduled time (by the worker's clock); null until an attempt is recorded.
    #[schema(required = true)]
    lateness_ms: Option<i64>,
    /// Every attempt, first first.
    attempts: Vec<AttemptView>,
}

impl ExecutionView {
    /// The execution's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// An execution with its attempts (those of other executions are ignored).
    pub fn new(e: Execution, attempts: &[Attempt]) -> Self {
        let attempts = attempts
            .iter()
            .filter(|a| a.execution_id == e.id)
            .map(AttemptView::from)
            .collect();
        Self {
            id: e.id,
            job_id: e.job_id,
            scheduled_at: time(e.scheduled_at),
            status: e.status.as_str(),
            attempt: e.attempt,
            started_at: e.started_at.map(time),
            finished_at: e.finished_at.map(time),
            duration_ms: e.duration_ms,
            http_status: e.http_status,
            error: e.error,
            next_attempt_at: e.next_attempt_at.map(time),
            crashes: e.crashes,
            kind: e.kind.as_str(),
            lateness_ms: e
                .first_sent_at
                .map(|sent| (sent - e.scheduled_at).num_milliseconds()),
            attempts,
        }
    }
}

/// One call to the target.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Attempt)]
pub struct AttemptView {
    /// 1 for the first call.
    attempt: i32,
    #[schema(format = DateTime)]
    started_at: String,
    #[schema(format = DateTime)]
    finished_at: String,
    duration_ms: i64,
    #[schema(required = true)]
    http_status: Option<i32>,
    #[schema(required = true)]
    error: Option<String>,
    /// The start of the target's answer (kept to 2 KiB).
    #[schema(required = true)]
    response_body: Option<String>,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> Self {
        Self {
            attempt: a.attempt,
            started_at: time(a.started_at),
            finished_at: time(a.finished_at),
            duration_ms: a.duration_ms,
            http_status: a.http_status,
            error: a.error.clone(),
            response_body: a.response_body.clone(),
        }
    }
}

/// A job's next fire times.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Schedule)]
pub struct ScheduleView {
    /// The expression.
    pub cron_expression: String,
    /// The zone it is read in.
    pub timezone: String,
    /// The schedule in plain words, ending with its zone.
    #[schema(
        example = "at second 31, minutes 10 through 15 past 01:00, on Monday through Friday, Europe/Paris"
    )]
    pub description: String,
    /// Upcoming fire times, UTC.
    #[schema(value_type = Vec<String>, format = DateTime)]
    pub next_runs: Vec<String>,
}

impl ScheduleView {
    /// `schedule`'s next `count` fire times after `now`, with its words.
    pub fn of(schedule: &Schedule, now: DateTime<Utc>, count: usize) -> Self {
        Self {
            cron_expression: schedule.cron().as_str().to_string(),
            timezone: schedule.timezone().name().to_string(),
            description: crate::schedule::describe(schedule),
            next_runs: schedule
                .upcoming(now, count)
                .into_iter()
                .map(time)
                .collect(),
        }
    }
}

/// `/queue/stats`; the outer key is snake_case, as the original API had it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = QueueStats)]
pub struct StatsView {
    /// The counts.
    pub queue_stats: Counts,
}

/// What the queue and the store hold now. For a tenant's key: its own fires, from the store
/// (`scheduled` and `completed` are the whole queue's and are left out).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = QueueCounts)]
pub struct Counts {
    /// Fires waiting for a worker.
    ready: u64,
    /// Fires waiting for their time (operator key only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    scheduled: Option<u64>,
    /// Fires a worker is calling.
    processing: u64,
    /// Fires waiting to be retried.
    retrying: u64,
    /// Fires finished lately (operator key only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    completed: Option<u64>,
    /// Dead letters: FAILED, ABANDONED and EXPIRED fires (for the operator key, the ids
    /// that entered the queue's dead-letter list).
    failed: u64,
}

impl Counts {
    /// Queue counts plus the RETRYING count from the store.
    pub fn new(queue: QueueStats, retrying: u64) -> Self {
        Self {
            ready: queue.ready,
            scheduled: Some(queue.scheduled),
            processing: queue.processing,
            retrying,
            completed: Some(queue.completed),
            failed: queue.failed,
        }
    }

    /// One tenant's fires: QUEUED, RUNNING, RETRYING, and its dead letters.
    pub fn tenant(counts: crate::store::TenantCounts) -> Self {
        Self {
            ready: counts.queued,
            scheduled: None,
            processing: counts.running,
            retrying: counts.retrying,
            completed: None,
            failed: counts.dead,
        }
    }
}

/// A page of jobs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobPage {
    /// Newest first.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; `null` on the last page. A page ends early when
    /// its items reach 4 MiB, so one shorter than `limit` is not the last unless this is
    /// `null`.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A page of executions: a job's history (latest fire first) or the dead letters (newest
/// first).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    /// The executions, each with its attempts.
    pub executions: Vec<ExecutionView>,
    /// Pass as `cursor` for the next page; `null` on the last page. A page ends early when
    /// its items reach 4 MiB, so one shorter than `limit` is not the last unless this is
    /// `null`.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

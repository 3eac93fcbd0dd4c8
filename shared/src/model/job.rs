//! A job: what to call, when, and with which delivery guarantee.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    CatchUpLimit, ConcurrencyPolicy, Description, ExecutionStatus, ExecutionType, HttpBody,
    HttpHeaders, HttpMethod, HttpTarget, InvalidField, JobName, MaxRetries, MisfirePolicy,
    StartingDeadline, TargetUrl, TimeoutSeconds,
};
use crate::schedule::{CronExpression, Schedule, Timezone};

/// A job as a user asked for it, every part already checked.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Display name.
    pub name: JobName,
    /// Free text.
    pub description: Description,
    /// When it fires.
    pub schedule: Schedule,
    /// What each fire calls.
    pub target: HttpTarget,
    /// The delivery promise.
    pub execution_type: ExecutionType,
    /// Retries after a failed attempt (AT_LEAST_ONCE only).
    pub max_retries: MaxRetries,
    /// Per-request timeout.
    pub timeout: TimeoutSeconds,
    /// Whether the job fires at all.
    pub is_active: bool,
    /// What to do with fires missed while the tick was down.
    pub misfire_policy: MisfirePolicy,
    /// Most missed fires `FIRE_ALL` records.
    pub catch_up_limit: CatchUpLimit,
    /// Whether fires may overlap.
    pub concurrency_policy: ConcurrencyPolicy,
    /// How long a fire may wait for its first attempt; `None`: as long as it takes.
    pub starting_deadline: Option<StartingDeadline>,
}

impl NewJob {
    /// Turns the request into a stored job, created at `now`.
    ///
    /// Refuses a schedule that would not fire for years, so a job that can never run is
    /// never stored.
    pub fn into_job(self, id: Uuid, now: DateTime<Utc>) -> Result<Job, InvalidField> {
        let first_fire = self
            .schedule
            .first_fire(now)
            .map_err(InvalidField::from_schedule)?;
        Ok(Job {
            id,
            name: self.name.as_str().to_string(),
            description: self.description.as_str().to_string(),
            cron_expression: self.schedule.cron().as_str().to_string(),
            timezone: self.schedule.timezone().name().to_string(),
            http_method: self.target.method,
            http_url: self.target.url.as_str().to_string(),
            http_headers: self.target.headers.as_map().clone(),
            http_body: self.target.body.as_deref().map(str::to_string),
            execution_type: self.execution_type,
            max_retries: i32::from(self.max_retries.get()),
            timeout_seconds: i32::from(self.timeout.get()),
            is_active: self.is_active,
            next_run_at: self.is_active.then_some(first_fire),
            last_run_at: None,
            last_status: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            misfire_policy: self.misfire_policy,
            catch_up_limit: i32::from(self.catch_up_limit.get()),
            concurrency_policy: self.concurrency_policy,
            starting_deadline_seconds: StartingDeadline::seconds(self.starting_deadline),
            skipped_fires: 0,
            signing_secret: None,
            previous_signing_secret: None,
            previous_secret_expires_at: None,
            tenant: super::DEFAULT_TENANT.to_string(),
        })
    }
}

/// A partial update: each `Some` replaces the job's value, checked like a new job's.
#[derive(Debug, Clone, Default)]
pub struct JobPatch {
    /// New display name.
    pub name: Option<JobName>,
    /// New description.
    pub description: Option<Description>,
    /// New cron expression.
    pub cron: Option<CronExpression>,
    /// New time zone.
    pub timezone: Option<Timezone>,
    /// New method.
    pub method: Option<HttpMethod>,
    /// New URL.
    pub url: Option<TargetUrl>,
    /// New headers (replacing all of them).
    pub headers: Option<HttpHeaders>,
    /// New body.
    pub body: Option<HttpBody>,
    /// New delivery promise.
    pub execution_type: Option<ExecutionType>,
    /// New retry count.
    pub max_retries: Option<MaxRetries>,
    /// New timeout.
    pub timeout: Option<TimeoutSeconds>,
    /// Pause (`false`) or resume (`true`); resuming also undeletes.
    pub is_active: Option<bool>,
    /// New misfire policy.
    pub misfire_policy: Option<MisfirePolicy>,
    /// New catch-up limit.
    pub catch_up_limit: Option<CatchUpLimit>,
    /// New overlap policy.
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// New starting deadline: `Some(None)` clears it.
    pub starting_deadline: Option<Option<StartingDeadline>>,
}

impl JobPatch {
    /// Applies the patch at `now`. A change to the expression, the time zone or
    /// `isActive` recomputes `next_run_at` from `now`; a schedule that would never fire is
    /// refused as at creation.
    pub fn apply(self, mut job: Job, now: DateTime<Utc>) -> Result<Job, InvalidField> {
        let reschedule = self.cron.is_some() || self.timezone.is_some() || self.is_active.is_some();
        if let Some(name) = self.name {
            job.name = name.as_str().to_string();
        }
        if let Some(description) = self.description {
            job.description = description.as_str().to_string();
        }
        if let Some(method) = self.method {
            job.http_method = method;
        }
        if let Some(url) = self.url {
            job.http_url = url.as_str().to_string();
        }
        if let Some(headers) = self.headers {
            job.http_headers = headers.as_map().clone();
        }
        if let Some(body) = self.body {
            job.http_body = body.as_deref().map(str::to_string);
        }
        if let Some(execution_type) = self.execution_type {
            job.execution_type = execution_type;
        }
        if let Some(max_retries) = self.max_retries {
            job.max_retries = i32::from(max_retries.get());
        }
        if let Some(timeout) = self.timeout {
            job.timeout_seconds = i32::from(timeout.get());
        }
        if let Some(policy) = self.misfire_policy {
            job.misfire_policy = policy;
        }
        if let Some(limit) = self.catch_up_limit {
            job.catch_up_limit = i32::from(limit.get());
        }
        if let Some(policy) = self.concurrency_policy {
            job.concurrency_policy = policy;
        }
        if let Some(deadline) = self.starting_deadline {
            job.starting_deadline_seconds = StartingDeadline::seconds(deadline);
        }
        if let Some(is_active) = self.is_active {
            job.is_active = is_active;
            if is_active {
                job.deleted_at = None;
            }
        }
        if reschedule {
            let cron = match self.cron {
                Some(cron) => cron,
                None => CronExpression::parse(&job.cron_expression)
                    .map_err(InvalidField::from_schedule)?,
            };
            let timezone = match self.timezone {
                Some(tz) => tz,
                None => Timezone::parse(&job.timezone).map_err(InvalidField::from_schedule)?,
            };
            let schedule = Schedule::new(cron, timezone);
            let first_fire = schedule
                .first_fire(now)
                .map_err(InvalidField::from_schedule)?;
            job.cron_expression = schedule.cron().as_str().to_string();
            job.timezone = schedule.timezone().name().to_string();
            job.next_run_at = job.is_active.then_some(first_fire);
        }
        job.updated_at = now;
        Ok(job)
    }
}

/// A job as stored. Its values were checked when it was written; the schedule and target
/// keep their stored forms (the URL and headers sealed at rest), so a job stays readable
/// after a rule tightens (see `docs/decisions.md`, "A stored job keeps its stored forms").
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Stable id (UUID v7, so ids sort by creation time).
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Cron expression, 5 or 6 fields.
    pub cron_expression: String,
    /// IANA zone the expression is read in.
    pub timezone: String,
    /// Method of each request.
    pub http_method: HttpMethod,
    /// Where each request goes.
    pub http_url: String,
    /// The job's own headers.
    pub http_headers: BTreeMap<String, String>,
    /// The request body.
    pub http_body: Option<String>,
    /// The delivery promise.
    pub execution_type: ExecutionType,
    /// Retries after a failed attempt.
    pub max_retries: i32,
    /// Per-request timeout, seconds.
    pub timeout_seconds: i32,
    /// Whether the job fires.
    pub is_active: bool,
    /// The next fire time; `None` when inactive or the schedule has ended.
    pub next_run_at: Option<DateTime<Utc>>,
    /// When the latest finished fire started.
    pub last_run_at: Option<DateTime<Utc>>,
    /// How the latest finished fire ended.
    pub last_status: Option<ExecutionStatus>,
    /// When the job was created.
    pub created_at: DateTime<Utc>,
    /// When a user last changed it.
    pub updated_at: DateTime<Utc>,
    /// When it was deleted; deleted jobs are inactive and left out of lists.
    pub deleted_at: Option<DateTime<Utc>>,
    /// What to do with fires missed while the tick was down.
    pub misfire_policy: MisfirePolicy,
    /// Most missed fires `FIRE_ALL` records.
    pub catch_up_limit: i32,
    /// Whether fires may overlap.
    pub concurrency_policy: ConcurrencyPolicy,
    /// Seconds a fire may wait for its first attempt before it ends EXPIRED unsent; `None`:
    /// as long as it takes.
    pub starting_deadline_seconds: Option<i32>,
    /// Fires that came due and were not recorded, by the misfire policy.
    pub skipped_fires: i64,
    /// The secret requests are signed with, sealed (`secrets::Keyring`); never shown.
    pub signing_secret: Option<String>,
    /// During a rotation, the secret before it, sealed; it signs too until
    /// `previous_secret_expires_at`.
    pub previous_signing_secret: Option<String>,
    /// When the previous secret stops signing.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// The tenant it belongs to; only its keys reach it. Never changes.
    pub tenant: String,
}

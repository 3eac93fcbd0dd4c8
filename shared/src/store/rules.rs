//! The decisions both stores make the same way around their SQL: what a change to a job
//! means for its waiting fires, whether a dead letter may go back, how a claim plans its
//! writes, how rows read back become results, and how rollups are written and summed.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::fire_id::fire_id;
use super::rows::{corrupt, read_status, DeadRow};
use super::{
    DueJob, JobChange, Planner, Reaped, RecentOutcome, Requeued, StoreError, TenantCounts,
};
use crate::model::{ExecutionStatus, ExecutionType, InvalidField, Job, LastOutcome, MinuteRollup};

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

/// A `LIKE` pattern matching `text` anywhere, its own `%`, `_` and `\` taken literally
/// (the statements say `ESCAPE '\'`).
pub(super) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Reads the (job, time, status) rows of recent outcomes.
pub(super) fn recent_outcomes(
    rows: Vec<(Uuid, DateTime<Utc>, String)>,
) -> Result<Vec<RecentOutcome>, StoreError> {
    rows.into_iter()
        .map(|(job_id, scheduled_at, status)| {
            Ok(RecentOutcome {
                job_id,
                scheduled_at,
                status: read_status(&status)?,
            })
        })
        .collect()
}

/// Rollups and latest outcomes sorted by their keys, so that two writers lock rows in one
/// order and never wait on each other in a circle.
pub(super) fn in_lock_order(
    minutes: &[MinuteRollup],
    latest: &[LastOutcome],
) -> (Vec<MinuteRollup>, Vec<LastOutcome>) {
    let mut minutes = minutes.to_vec();
    minutes.sort_by(|a, b| (a.minute, &a.tenant).cmp(&(b.minute, &b.tenant)));
    let mut latest = latest.to_vec();
    latest.sort_by_key(|l| l.job_id);
    (minutes, latest)
}

/// Rollups read oldest first, summed minute by minute: over every tenant unless `tenant`
/// names one (then the rows are that tenant's already).
pub(super) fn sum_by_minute(
    rows: impl Iterator<Item = MinuteRollup>,
    tenant: Option<&str>,
) -> Vec<MinuteRollup> {
    let mut summed: Vec<MinuteRollup> = Vec::new();
    for row in rows {
        match summed.last_mut() {
            Some(last) if last.minute == row.minute => last.add(&row),
            _ => summed.push(MinuteRollup {
                tenant: tenant.unwrap_or_default().to_string(),
                ..row
            }),
        }
    }
    summed
}

//! The tick: every second, turn due jobs into queued executions.
//!
//! [`run_tick_once`] is one pass at a given `now`; [`run`] runs it on second boundaries of
//! the storage clock, with the maintenance duties ([`crate::maintenance`]). A pass commits
//! the executions before it pushes them, so a crash between the two delays a fire (until
//! the sweeper finds it) and never loses it. A tick told to stop records nothing more and
//! releases the fires it recorded ahead at their instants before it returns.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::Instrument;
use uuid::Uuid;

use crate::maintenance::{
    keep_history_every_minute, promote_due, release_held, release_upcoming, sweep_once, take_turn,
    trim_history, Duty, MaintenanceSettings, RetentionClock, SweepFloor,
};
use crate::metrics::METRICS;
use crate::model::MisfirePolicy;
use crate::queue::{Queue, QueueError};
use crate::schedule::Schedule;
use crate::store::{DueJob, FirePlan, Store, StoreError};
use crate::telemetry::error_chain;

/// Tuning of the tick pass and the sweeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickSettings {
    /// Jobs claimed by a pass's first transaction when the last pass found fewer due; a
    /// batch that comes back full doubles the next (up to [`MAX_BATCH`]), and a pass starts
    /// at what the last one claimed, so transactions follow the work due.
    pub batch_size: u32,
    /// A fire later than this is a misfire and fires once (`MISFIRE_THRESHOLD`).
    pub misfire_threshold: Duration,
    /// Time between passes (`SCHEDULER_POLL_INTERVAL`); passes start on its boundaries.
    pub poll_interval: Duration,
    /// How far ahead fires are recorded and queued, to be released at their exact time
    /// (`SCHEDULER_LOOKAHEAD`).
    pub lookahead: Duration,
    /// How long before each boundary its fires are released to workers, which claim them
    /// and wait for the exact time (`SCHEDULER_RELEASE_LEAD`).
    pub release_lead: Duration,
    /// The maintenance duties the tick runs after each pass.
    pub maintenance: MaintenanceSettings,
}

impl Default for TickSettings {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            misfire_threshold: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            lookahead: Duration::ZERO,
            release_lead: Duration::ZERO,
            maintenance: MaintenanceSettings::default(),
        }
    }
}

/// A tick failure. The loop logs it and tries again at the next boundary.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// Claiming due jobs or reading the clock failed; nothing was fired.
    #[error("could not claim due jobs")]
    Store(#[from] StoreError),
    /// Executions were committed but could not be pushed; the sweeper will push them.
    #[error("committed {committed} executions but could not push them; the sweeper will")]
    Push {
        /// Executions recorded and waiting for the sweeper.
        committed: usize,
        /// Why the push failed.
        #[source]
        source: QueueError,
    },
}

/// What one tick pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickOutcome {
    /// Claim transactions run (the last one found nothing, unless the pass stopped early).
    pub batches: usize,
    /// Due jobs claimed.
    pub jobs: usize,
    /// Executions created (QUEUED).
    pub fired: usize,
    /// Missed fires dropped by misfire policies (counted on each job, no row).
    pub uncounted: u64,
    /// Executions newly pushed to the queue.
    pub pushed: usize,
    /// Executions recorded ahead of their time, waiting in the upcoming set.
    pub ahead: usize,
    /// Executions recorded held, not pushed: the queue's window was full.
    pub held: usize,
}

/// What [`run`] did until it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickRun {
    /// Passes run (one per boundary of the poll interval).
    pub ticks: u64,
    /// Executions created.
    pub fired: u64,
    /// Executions the sweeper found missing from the queue and pushed again.
    pub swept_requeued: u64,
}

/// Most missed fire times a misfire plan walks through to count them.
const MISSED_COUNT_LIMIT: u64 = 1_000_000;

/// Decides which fires to record for a due job at `now`, up to `horizon` (`now` plus the
/// look-ahead), and its next fire time.
///
/// A job less than `misfire_threshold` late fires every missed time, late. A job later
/// than that (the tick was down) follows its misfire policy and resumes from `now`. Fires
/// after `now` and up to `horizon` are recorded ahead of time. (Overlap under `FORBID` is
/// decided when a worker claims a fire, not here.) A job whose stored schedule no longer
/// parses fires nothing and stops.
pub fn plan_fires(
    job: &DueJob,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    misfire_threshold: Duration,
) -> FirePlan {
    match Schedule::parse(&job.cron_expression, &job.timezone) {
        Ok(schedule) => plan_fires_on(job, &schedule, now, horizon, misfire_threshold),
        Err(error) => {
            tracing::error!(job_id = %job.id, %error, "stored schedule does not parse; the job stops firing");
            FirePlan::default()
        }
    }
}

/// Most parsed schedules a tick keeps.
const SCHEDULES_KEPT: usize = 10_000;

/// Schedules already parsed, by expression and time zone: a pass does not parse the same
/// expression for every due job, nor again every second. Bounded: past
/// [`SCHEDULES_KEPT`] it starts over.
#[derive(Debug, Default)]
pub struct ScheduleCache {
    parsed: std::sync::Mutex<HashMap<(String, String), Arc<Schedule>>>,
}

impl ScheduleCache {
    /// As [`plan_fires`], parsing each expression once.
    pub fn plan(
        &self,
        job: &DueJob,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        misfire_threshold: Duration,
    ) -> FirePlan {
        let key = (job.cron_expression.clone(), job.timezone.clone());
        let cached = self
            .parsed
            .lock()
            .ok()
            .and_then(|parsed| parsed.get(&key).cloned());
        let schedule = match cached {
            Some(schedule) => schedule,
            None => match Schedule::parse(&job.cron_expression, &job.timezone) {
                Ok(schedule) => {
                    let schedule = Arc::new(schedule);
                    if let Ok(mut parsed) = self.parsed.lock() {
                        if parsed.len() >= SCHEDULES_KEPT {
                            parsed.clear();
                        }
                        parsed.insert(key, schedule.clone());
                    }
                    schedule
                }
                Err(error) => {
                    tracing::error!(job_id = %job.id, %error, "stored schedule does not parse; the job stops firing");
                    return FirePlan::default();
                }
            },
        };
        plan_fires_on(job, &schedule, now, horizon, misfire_threshold)
    }
}

/// [`plan_fires`] with the job's schedule already parsed.
fn plan_fires_on(
    job: &DueJob,
    schedule: &Schedule,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    misfire_threshold: Duration,
) -> FirePlan {
    let threshold = chrono::Duration::from_std(misfire_threshold).unwrap_or(chrono::Duration::MAX);
    let horizon = horizon.max(now);
    let mut plan = if now - job.next_run_at > threshold {
        plan_misfire(job, schedule, now)
    } else {
        FirePlan {
            fires: vec![job.next_run_at],
            next_run_at: schedule.next_after(job.next_run_at),
            ..FirePlan::default()
        }
    };
    while let Some(t) = plan.next_run_at.filter(|t| *t <= horizon) {
        plan.fires.push(t);
        plan.next_run_at = schedule.next_after(t);
    }
    plan
}

/// The plan for a job whose first due fire is older than the misfire threshold.
fn plan_misfire(job: &DueJob, schedule: &Schedule, now: DateTime<Utc>) -> FirePlan {
    let keep = match job.misfire_policy {
        MisfirePolicy::FireAll => job.catch_up_limit.max(1) as usize,
        MisfirePolicy::FireOnce | MisfirePolicy::Skip => 0,
    };
    // Walk the missed times oldest first: keep the first `keep`, count them all.
    let mut oldest = Vec::with_capacity(keep.min(1024));
    let mut missed = 0u64;
    let mut cursor = Some(job.next_run_at);
    while let Some(t) = cursor.filter(|t| *t <= now) {
        missed += 1;
        if oldest.len() < keep {
            oldest.push(t);
        }
        if missed >= MISSED_COUNT_LIMIT {
            break;
        }
        cursor = schedule.next_after(t);
    }
    let fires = match job.misfire_policy {
        MisfirePolicy::FireOnce => vec![schedule
            .latest_at_or_before(now)
            .filter(|t| *t >= job.next_run_at)
            .unwrap_or(job.next_run_at)],
        MisfirePolicy::Skip => Vec::new(),
        MisfirePolicy::FireAll => oldest,
    };
    FirePlan {
        uncounted: missed.saturating_sub(fires.len() as u64),
        fires,
        next_run_at: schedule.next_after(now),
    }
}

/// Most jobs claimed in one transaction.
pub const MAX_BATCH: u32 = 20_000;

/// One tick pass at `now`: claim due jobs batch by batch, commit their executions, then
/// push them, until no job is due. Batches start at `batch_size` and double while they
/// come back full.
pub async fn run_tick_once(
    now: DateTime<Utc>,
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &TickSettings,
) -> Result<TickOutcome, TickError> {
    run_pass(now, store, queue, settings, &ScheduleCache::default()).await
}

/// [`run_tick_once`] with schedules parsed once across passes.
#[tracing::instrument(name = "tick", skip_all, fields(%now))]
async fn run_pass(
    now: DateTime<Utc>,
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &TickSettings,
    schedules: &ScheduleCache,
) -> Result<TickOutcome, TickError> {
    let mut outcome = TickOutcome::default();
    let horizon = now + chrono::Duration::from_std(settings.lookahead).unwrap_or_default();
    let planner = |job: &DueJob| schedules.plan(job, now, horizon, settings.misfire_threshold);
    let mut size = settings.batch_size.max(1);
    loop {
        let room = room_for_new_fires(store, queue, &settings.maintenance).await?;
        let batch = store
            .fire_due_jobs(now, horizon, size, &planner, room)
            .await?;
        outcome.batches += 1;
        if batch.jobs == 0 {
            return Ok(outcome);
        }
        if batch.jobs >= size as usize {
            size = size
                .saturating_mul(2)
                .min(MAX_BATCH.max(settings.batch_size));
        }
        METRICS.tick_batch.observe(batch.jobs as f64);
        METRICS
            .fires_queued
            .add((batch.executions.len() + batch.held) as u64);
        METRICS.fires_skipped_misfire.add(batch.uncounted);
        outcome.jobs += batch.jobs;
        outcome.fired += batch.executions.len() + batch.held;
        outcome.uncounted += batch.uncounted;
        // Fires past the room left are recorded, not pushed: the release duty pushes them,
        // oldest first, when the queue has room.
        outcome.held += batch.held;
        METRICS.fires_held.add(batch.held as u64);
        // Fires due now go to the ready list; fires ahead of time wait in the upcoming set
        // until the loop releases them at their second.
        let committed = batch.executions.len();
        let (due, ahead): (Vec<(Uuid, DateTime<Utc>)>, Vec<_>) =
            batch.executions.into_iter().partition(|(_, at)| *at <= now);
        let due: Vec<Uuid> = due.into_iter().map(|(id, _)| id).collect();
        outcome.pushed += queue
            .push(&due)
            .await
            .map_err(|source| TickError::Push { committed, source })?;
        outcome.ahead += ahead.len();
        queue
            .push_upcoming(&ahead)
            .await
            .map_err(|source| TickError::Push { committed, source })?;
    }
}

/// How many new fires may be pushed: the room left in the queue's window, or none while
/// fires are held already (so new fires do not pass older ones).
async fn room_for_new_fires(
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &MaintenanceSettings,
) -> Result<u64, TickError> {
    let room = crate::maintenance::room_in_queue(queue, settings)
        .await
        .map_err(|source| TickError::Push {
            committed: 0,
            source,
        })?;
    if room == 0 || store.holds_any().await? {
        return Ok(0);
    }
    Ok(room)
}

/// Time from `now` to the next multiple of `interval` since the epoch.
fn until_next_boundary(now: DateTime<Utc>, interval: Duration) -> Duration {
    let interval_us = interval.as_micros().max(1) as i64;
    let now_us = now.timestamp_micros();
    let next = (now_us.div_euclid(interval_us) + 1) * interval_us;
    Duration::from_micros((next - now_us) as u64)
}

/// Runs the tick until `shutdown` completes: on every boundary of the poll interval (by
/// the storage clock), shortly before it by `release_lead`, it releases the fires of that
/// boundary recorded ahead of time (workers claim them and send each at its exact time),
/// runs a pass, promotes due retries and, when it is its turn, sweeps. Failures are logged
/// and retried at the next boundary. Once `shutdown` completes it runs no more passes, and
/// releases the fires it recorded ahead at their boundaries (at most `lookahead` more)
/// before it returns what it did.
pub async fn run(
    store: &dyn Store,
    queue: &dyn Queue,
    settings: TickSettings,
    shutdown: impl Future<Output = ()>,
) -> TickRun {
    tokio::pin!(shutdown);
    let lead = settings.release_lead.min(settings.poll_interval / 2);
    let lead_span = chrono::Duration::from_std(lead).unwrap_or_default();
    let lookahead = chrono::Duration::from_std(settings.lookahead).unwrap_or_default();
    let mut wait = Duration::ZERO;
    let mut retention = RetentionClock::default();
    let mut summary = TickRun::default();
    // The furthest fire time any pass may have recorded ahead.
    let mut recorded_until: Option<DateTime<Utc>> = None;
    // Jobs the last pass claimed: the next pass's first batch.
    let mut last_jobs = 0u32;
    let schedules = ScheduleCache::default();
    let sweep_floor = SweepFloor::default();
    // The history's partitions are seen to while the loop waits between passes (the
    // round never ends; dropping a partition may wait for other transactions).
    let history = keep_history_every_minute(store, &settings.maintenance);
    tokio::pin!(history);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = &mut history => {}
            _ = tokio::time::sleep(wait) => {}
        }
        let now = match store.clock().await {
            Ok(now) => now,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "cannot read the storage clock");
                wait = settings.poll_interval;
                continue;
            }
        };
        let started = tokio::time::Instant::now();
        let span = tracing::info_span!("tick_loop");
        async {
            release(now + lead_span, queue).await;
            summary.ticks += 1;
            recorded_until = Some(now + lookahead);
            let pass_settings = TickSettings {
                batch_size: last_jobs
                    .clamp(settings.batch_size, MAX_BATCH.max(settings.batch_size)),
                ..settings
            };
            let pass = run_pass(now, store, queue, &pass_settings, &schedules).await;
            last_jobs = pass
                .as_ref()
                .map_or(0, |o| u32::try_from(o.jobs).unwrap_or(u32::MAX));
            match pass {
                Ok(outcome) if outcome.jobs > 0 => {
                    summary.fired += outcome.fired as u64;
                    tracing::info!(
                        fired = outcome.fired,
                        ahead = outcome.ahead,
                        jobs = outcome.jobs,
                        pushed = outcome.pushed,
                        held = outcome.held,
                        skipped_misfired = outcome.uncounted,
                        "fired due jobs"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    if let TickError::Push { committed, .. } = error {
                        summary.fired += committed as u64;
                    }
                    tracing::error!(error = %error_chain(&error), "tick pass failed");
                }
            }
            // Fires this pass recorded for the coming boundary (a job created or changed
            // within the look-ahead) are released now too.
            release(now + lead_span, queue).await;
            if let Err(error) = promote_due(now, store, queue, &settings.maintenance).await {
                tracing::error!(error = %error_chain(&error), "promoting due retries failed");
            }
            if take_turn(queue, Duty::Release).await {
                if let Err(error) = release_held(now, store, queue, &settings.maintenance).await {
                    tracing::error!(error = %error_chain(&error), "releasing held fires failed");
                }
            }
            if take_turn(queue, Duty::Sweep).await {
                match sweep_once(now, store, queue, &settings.maintenance, &sweep_floor).await {
                    Ok(requeued) => summary.swept_requeued += requeued as u64,
                    Err(error) => tracing::error!(error = %error_chain(&error), "sweep failed"),
                }
            }
            if retention.due(now, &settings.maintenance) {
                // The time left before the next boundary, less a batch's worth, and at most
                // half an interval: an idle tick deletes more, a busy one a batch.
                let next = started + until_next_boundary(now + lead_span, settings.poll_interval);
                let until = (next - RETENTION_MARGIN).min(started + settings.poll_interval / 2);
                match trim_history(now, store, &settings.maintenance, until).await {
                    Ok(0) => {}
                    Ok(deleted) => {
                        tracing::info!(deleted, "deleted executions past the retention period")
                    }
                    Err(error) => {
                        tracing::error!(error = %error_chain(&error), "retention sweep failed")
                    }
                }
            }
        }
        .instrument(span)
        .await;
        METRICS.tick_pass.observe_duration(started.elapsed());
        wait = until_next_boundary(now + lead_span, settings.poll_interval)
            .saturating_sub(started.elapsed())
            + MARGIN;
    }
    if let Some(until) = recorded_until {
        release_recorded_ahead(store, queue, &settings, until).await;
    }
    summary
}

/// Wake a little after a planned instant so the storage clock has surely passed it.
const MARGIN: Duration = Duration::from_millis(2);

/// Time left free before the next boundary when the retention sweep stops.
const RETENTION_MARGIN: Duration = Duration::from_millis(150);

/// Releases fires recorded ahead whose time (less the lead) has come; a failure is logged
/// (the sweeper pushes them later).
async fn release(at: DateTime<Utc>, queue: &dyn Queue) {
    if let Err(error) = release_upcoming(at, queue).await {
        tracing::error!(error = %error_chain(&error), "releasing upcoming fires failed; the sweeper will push them");
    }
}

/// A stopping tick's last duty: the fires its passes recorded ahead (up to `until`) are
/// released at their boundaries, as the running tick would have, so none waits for another
/// process's sweeper. Bounded by the look-ahead (and a second more if the storage clock
/// cannot be read).
async fn release_recorded_ahead(
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &TickSettings,
    until: DateTime<Utc>,
) {
    let lead = settings.release_lead.min(settings.poll_interval / 2);
    let lead_span = chrono::Duration::from_std(lead).unwrap_or_default();
    let give_up = tokio::time::Instant::now() + settings.lookahead + Duration::from_secs(1);
    tracing::info!(%until, "tick stopping: releasing the fires it recorded ahead at their time");
    while tokio::time::Instant::now() < give_up {
        let now = match store.clock().await {
            Ok(now) => now,
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "cannot read the storage clock");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        release(now + lead_span, queue).await;
        if now + lead_span >= until {
            return;
        }
        tokio::time::sleep(until_next_boundary(now + lead_span, settings.poll_interval) + MARGIN)
            .await;
    }
    tracing::warn!("tick stopped before every fire it recorded ahead was released; the sweeper pushes the rest");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).single().unwrap()
    }

    fn due(expr: &str, next: DateTime<Utc>) -> DueJob {
        DueJob {
            id: Uuid::nil(),
            cron_expression: expr.into(),
            timezone: "UTC".into(),
            next_run_at: next,
            misfire_policy: MisfirePolicy::FireOnce,
            catch_up_limit: 100,
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn misfire_policies_after_five_minutes_down() {
        let job = |policy, limit| DueJob {
            misfire_policy: policy,
            catch_up_limit: limit,
            ..due("*/10 * * * * *", at(10, 0, 0))
        };
        let now = at(10, 5, 5);
        // 31 fire times were missed: 10:00:00 to 10:05:00 every 10 s.
        let once = plan_fires(&job(MisfirePolicy::FireOnce, 100), now, now, MINUTE);
        assert_eq!(
            (once.fires.clone(), once.uncounted),
            (vec![at(10, 5, 0)], 30)
        );
        assert_eq!(once.next_run_at, Some(at(10, 5, 10)));
        let skip = plan_fires(&job(MisfirePolicy::Skip, 100), now, now, MINUTE);
        assert_eq!((skip.fires.len(), skip.uncounted), (0, 31));
        assert_eq!(skip.next_run_at, Some(at(10, 5, 10)));
        let all = plan_fires(&job(MisfirePolicy::FireAll, 100), now, now, MINUTE);
        assert_eq!((all.fires.len(), all.uncounted), (31, 0));
        assert_eq!(all.fires[0], at(10, 0, 0));
        let capped = plan_fires(&job(MisfirePolicy::FireAll, 5), now, now, MINUTE);
        assert_eq!(
            capped.fires,
            (0..5).map(|i| at(10, 0, 10 * i)).collect::<Vec<_>>()
        );
        assert_eq!(capped.uncounted, 26);
    }

    #[test]
    fn fires_up_to_the_horizon_are_planned_ahead() {
        let job = due("*/2 * * * * *", at(10, 0, 0));
        let plan = plan_fires(&job, at(10, 0, 0), at(10, 0, 3), MINUTE);
        assert_eq!(plan.fires, vec![at(10, 0, 0), at(10, 0, 2)]);
        assert_eq!(plan.next_run_at, Some(at(10, 0, 4)));
        // A job not yet due but inside the horizon is planned too.
        let ahead = plan_fires(
            &due("*/2 * * * * *", at(10, 0, 2)),
            at(10, 0, 1),
            at(10, 0, 2),
            MINUTE,
        );
        assert_eq!(ahead.fires, vec![at(10, 0, 2)]);
    }

    #[test]
    fn an_on_time_job_fires_once_and_moves_to_its_next_time() {
        let plan = plan_fires(
            &due("*/2 * * * * *", at(10, 0, 0)),
            at(10, 0, 0),
            at(10, 0, 0),
            MINUTE,
        );
        assert_eq!(plan.fires, vec![at(10, 0, 0)]);
        assert_eq!(plan.next_run_at, Some(at(10, 0, 2)));
    }

    #[test]
    fn a_job_a_few_seconds_late_fires_every_missed_time() {
        let now = at(10, 0, 5) + chrono::Duration::milliseconds(300);
        let plan = plan_fires(&due("* * * * * *", at(10, 0, 2)), now, now, MINUTE);
        assert_eq!(
            plan.fires,
            vec![at(10, 0, 2), at(10, 0, 3), at(10, 0, 4), at(10, 0, 5)]
        );
        assert_eq!(plan.next_run_at, Some(at(10, 0, 6)));
    }

    #[test]
    fn a_job_later_than_the_misfire_threshold_fires_once_at_the_latest_missed_time() {
        let plan = plan_fires(
            &due("0 * * * * *", at(9, 0, 0)),
            at(10, 0, 30),
            at(10, 0, 30),
            MINUTE,
        );
        assert_eq!(plan.fires, vec![at(10, 0, 0)]);
        assert_eq!(plan.next_run_at, Some(at(10, 1, 0)));
    }

    #[test]
    fn a_job_not_yet_due_in_its_plan_never_fires_before_its_time() {
        // Due at 10:00:04 and planned at 10:00:01 with 4 s of look-ahead: its schedule has
        // times between now and its due time (10:00:02), and none of them is planned.
        let job = due("*/2 * * * * *", at(10, 0, 4));
        let plan = plan_fires(&job, at(10, 0, 1), at(10, 0, 5), MINUTE);
        assert!(
            plan.fires.iter().all(|t| *t >= job.next_run_at),
            "a fire before the job's time: {:?}",
            plan.fires
        );
        assert_eq!(plan.fires, vec![at(10, 0, 4)]);
        assert_eq!(plan.next_run_at, Some(at(10, 0, 6)));
        // Without look-ahead and long before its time (the store would not hand it over),
        // the plan still holds nothing before the job's time.
        let later = due("0 0 * * * *", at(11, 0, 0));
        let plan = plan_fires(&later, at(10, 0, 0), at(10, 0, 0), MINUTE);
        assert!(
            plan.fires.iter().all(|t| *t >= later.next_run_at),
            "a fire before the job's time: {:?}",
            plan.fires
        );
    }

    #[test]
    fn a_schedule_that_no_longer_parses_stops_without_firing() {
        let plan = plan_fires(
            &due("not cron", at(10, 0, 0)),
            at(10, 0, 0),
            at(10, 0, 0),
            MINUTE,
        );
        assert_eq!(plan, FirePlan::default());
    }

    #[test]
    fn the_schedule_cache_plans_as_parsing_each_time_does() {
        let cache = ScheduleCache::default();
        for (expr, next, now) in [
            ("*/2 * * * * *", at(10, 0, 0), at(10, 0, 3)),
            ("0 * * * * *", at(9, 0, 0), at(10, 0, 30)),
            ("*/2 * * * * *", at(10, 0, 4), at(10, 0, 5)),
            ("not cron", at(10, 0, 0), at(10, 0, 0)),
        ] {
            let job = due(expr, next);
            assert_eq!(
                cache.plan(&job, now, now, MINUTE),
                plan_fires(&job, now, now, MINUTE),
                "{expr} at {now}"
            );
        }
        assert_eq!(cache.parsed.lock().unwrap().len(), 2, "parsed once each");
    }

    #[test]
    fn boundaries_are_whole_intervals_of_the_clock() {
        let now = at(10, 0, 0) + chrono::Duration::milliseconds(250);
        assert_eq!(
            until_next_boundary(now, Duration::from_secs(1)),
            Duration::from_millis(750)
        );
        assert_eq!(
            until_next_boundary(at(10, 0, 0), Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}

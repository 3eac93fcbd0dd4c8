//! One tick pass: claim due jobs batch by batch, commit their fires, then push them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ScheduleCache, TickError, TickOutcome, TickSettings, MAX_BATCH};
use crate::maintenance::MaintenanceSettings;
use crate::metrics::METRICS;
use crate::queue::Queue;
use crate::store::{DueJob, Store};

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
pub(super) async fn run_pass(
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
            .job_fire_due(now, horizon, size, &planner, room)
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
            .inc_by((batch.executions.len() + batch.held) as u64);
        METRICS.fires_skipped_misfire.inc_by(batch.skipped_fires);
        outcome.jobs += batch.jobs;
        outcome.fired += batch.executions.len() + batch.held;
        outcome.skipped_fires += batch.skipped_fires;
        // Fires past the room left are recorded, not pushed: the release duty pushes them,
        // oldest first, when the queue has room.
        outcome.held += batch.held;
        METRICS.fires_held.inc_by(batch.held as u64);
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
    if room == 0 || store.execution_any_held().await? {
        return Ok(0);
    }
    Ok(room)
}

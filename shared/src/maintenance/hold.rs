//! The queue holds a bounded window of ready work: fires recorded while it is full are held
//! in the store and pushed, oldest first, as room frees up.

use chrono::{DateTime, Utc};

use super::{MaintenanceError, MaintenanceSettings};
use crate::queue::{Queue, QueueError};
use crate::store::Store;

/// Most held fires released per statement.
const RELEASE_BATCH: u64 = 10_000;

/// How many more fires the queue may take before its window is full: the window less what
/// is ready, recorded ahead or waiting for a retry.
pub async fn room_in_queue(
    queue: &dyn Queue,
    settings: &MaintenanceSettings,
) -> Result<u64, QueueError> {
    let stats = queue.stats().await?;
    Ok(settings
        .ready_window
        .saturating_sub(stats.ready + stats.scheduled))
}

/// Pushes held fires, oldest first, while the queue has room (fires due by `now` to the
/// ready list, later ones to the upcoming set); those past their starting deadline end
/// EXPIRED instead and go to the dead-letter list. Returns how many were pushed. Safe in
/// every process at once: each held fire is released once.
pub async fn release_held(
    now: DateTime<Utc>,
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &MaintenanceSettings,
) -> Result<usize, MaintenanceError> {
    let mut released = 0;
    loop {
        if !store.execution_any_held().await? {
            return Ok(released);
        }
        let room = room_in_queue(queue, settings).await?.min(RELEASE_BATCH);
        if room == 0 {
            return Ok(released);
        }
        let batch = store
            .execution_release_held(u32::try_from(room).unwrap_or(u32::MAX))
            .await?;
        if batch.fires.is_empty() && batch.expired.is_empty() {
            return Ok(released);
        }
        // Past their starting deadline while held: dead letters, never pushed.
        super::expire::record_expired(queue, &batch.expired).await?;
        released += batch.fires.len();
        let (due, ahead): (Vec<_>, Vec<_>) =
            batch.fires.into_iter().partition(|(_, at)| *at <= now);
        let due: Vec<_> = due.into_iter().map(|(id, _)| id).collect();
        queue.push(&due).await?;
        queue.push_upcoming(&ahead).await?;
    }
}

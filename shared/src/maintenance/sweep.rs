//! QUEUED fires whose push was lost are pushed again.

use chrono::{DateTime, Utc};

use super::{MaintenanceError, MaintenanceSettings};

/// How long a worker may take to claim what it took from the queue before the sweeper
/// hands it out again (a worker that dies between taking and claiming).
const CLAIM_PATIENCE: chrono::Duration = chrono::Duration::seconds(15);
use crate::queue::Queue;
use crate::store::Store;

/// Pushes executions QUEUED for longer than `sweep_after` at `now` again, after moving
/// RETRYING ones overdue by as long back to QUEUED; the queue keeps one item per id, so
/// this is safe in every process at once. Returns how many were missing from the queue
/// and were pushed.
#[tracing::instrument(name = "sweep", skip_all, fields(%now))]
pub async fn sweep_once(
    now: DateTime<Utc>,
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &MaintenanceSettings,
) -> Result<usize, MaintenanceError> {
    let cutoff = now - chrono::Duration::from_std(settings.sweep_after).unwrap_or_default();
    // Retries whose scheduled item was lost become QUEUED and are pushed below.
    let overdue = store.overdue_retries(cutoff, settings.sweep_limit).await?;
    let mut stale = store.requeue_retries(&overdue, now).await?;
    // Rows waiting far longer than any backlog explains are pushed even if the queue says
    // they are there: its list and its set of ids may have drifted apart (eviction).
    let very_stale = now - chrono::Duration::seconds(60);
    let mut forced = Vec::new();
    for (id, queued_at) in store
        .stale_queued(cutoff, now, settings.sweep_limit)
        .await?
    {
        if queued_at < very_stale {
            forced.push(id);
        } else {
            stale.push(id);
        }
    }
    if stale.is_empty() && forced.is_empty() {
        return Ok(0);
    }
    let mut pushed = queue.push_untaken(&stale, now - CLAIM_PATIENCE).await?;
    pushed += queue.repush(&forced).await?;
    if pushed > 0 {
        tracing::warn!(pushed, "re-pushed queued executions missing from the queue");
    }
    Ok(pushed)
}

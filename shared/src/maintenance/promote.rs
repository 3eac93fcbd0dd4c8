//! Retries whose time has come go back to the ready list.

use chrono::{DateTime, Utc};

use super::{MaintenanceError, MaintenanceSettings};
use crate::queue::Queue;
use crate::store::Store;

/// Moves retries due at `now` from the scheduled set back to the ready list: takes them
/// out of the set (one script call per batch), marks them QUEUED in the store (CANCELLED
/// if their job was deactivated meanwhile), and pushes the QUEUED ones. Returns how many
/// were pushed. A crash between these steps leaves RETRYING or QUEUED rows that the
/// sweeper finds.
#[tracing::instrument(name = "promote", skip_all, fields(%now))]
pub async fn promote_due(
    now: DateTime<Utc>,
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &MaintenanceSettings,
) -> Result<usize, MaintenanceError> {
    let batch = settings.promote_batch.max(1) as usize;
    let mut pushed = 0;
    loop {
        let due = queue.take_due(now, batch).await?;
        if due.is_empty() {
            return Ok(pushed);
        }
        let queued = store.execution_requeue_retries(&due, now).await?;
        pushed += queue.push(&queued).await?;
        if due.len() < batch {
            return Ok(pushed);
        }
    }
}

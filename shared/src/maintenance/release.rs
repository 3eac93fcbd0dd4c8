//! Fires recorded ahead of time go to the ready list when their time comes.

use chrono::{DateTime, Utc};

use super::MaintenanceError;
use crate::queue::Queue;

/// Ids moved per script call.
const RELEASE_BATCH: usize = 10_000;

/// Moves executions recorded ahead of time whose fire time has come (by the storage
/// clock's `now`) to the ready list. One script call per batch; safe in every process.
pub async fn release_upcoming(
    now: DateTime<Utc>,
    queue: &dyn Queue,
) -> Result<usize, MaintenanceError> {
    let mut released = 0;
    loop {
        let moved = queue.release_upcoming(now, RELEASE_BATCH).await?;
        released += moved;
        if moved < RELEASE_BATCH {
            return Ok(released);
        }
    }
}

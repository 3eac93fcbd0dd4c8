//! QUEUED fires past their job's starting deadline end EXPIRED without waiting for a claim.

use super::{MaintenanceError, MaintenanceSettings};
use crate::metrics::METRICS;
use crate::queue::{Queue, QueueError, Settled};
use crate::store::Store;

/// Ends as EXPIRED, unsent, the QUEUED fires whose first attempt has not started within
/// their job's `startingDeadlineSeconds` (by the storage clock), in batches of
/// `expire_batch` until a batch comes back short, and records them in the queue's
/// dead-letter list. A claim makes the same decision for the fires it takes; this pass is
/// for a backlog no worker reaches in time. Their ready items, if any, are dropped when a
/// worker takes them (the claim finds them no longer QUEUED). Returns how many expired.
#[tracing::instrument(name = "expire", skip_all)]
pub async fn expire_overdue(
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &MaintenanceSettings,
) -> Result<usize, MaintenanceError> {
    let batch = settings.expire_batch.max(1);
    let mut expired = 0;
    loop {
        let ids = store.execution_expire_overdue(batch).await?;
        expired += ids.len();
        record_expired(queue, &ids).await?;
        if ids.len() < batch as usize {
            if expired > 0 {
                tracing::warn!(
                    expired,
                    "fires not started within their startingDeadlineSeconds expired unsent"
                );
            }
            return Ok(expired);
        }
    }
}

/// Counts fires just ended EXPIRED and puts them on the queue's dead-letter list.
pub(super) async fn record_expired(
    queue: &dyn Queue,
    ids: &[uuid::Uuid],
) -> Result<(), QueueError> {
    if ids.is_empty() {
        return Ok(());
    }
    METRICS.executions_expired.inc_by(ids.len() as u64);
    METRICS.dead_letters.inc_by(ids.len() as u64);
    let settled: Vec<_> = ids.iter().map(|id| (*id, Settled::Failed)).collect();
    queue.settle(&settled).await
}

//! Finished history past `HISTORY_RETENTION` is deleted.

use chrono::{DateTime, Utc};

use super::{MaintenanceError, MaintenanceSettings};
use crate::metrics::METRICS;
use crate::store::Store;

/// How often the retention sweep runs.
const RETENTION_EVERY: chrono::Duration = chrono::Duration::seconds(1);

/// When the retention sweep last ran, so it runs at most once a second.
#[derive(Debug, Default)]
pub struct RetentionClock {
    last: Option<DateTime<Utc>>,
}

impl RetentionClock {
    /// Whether the sweep is due at `now` (and, if so, notes that it runs now).
    pub fn due(&mut self, now: DateTime<Utc>, settings: &MaintenanceSettings) -> bool {
        if settings.retention.is_none() || self.last.is_some_and(|l| now - l < RETENTION_EVERY) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// Deletes finished executions (and their attempts) older than the retention period, in
/// batches of `retention_batch`, one batch and then more until `until` (the tick passes
/// the time it has left before its next boundary); what is left is deleted on the next
/// sweep. Returns the rows deleted.
pub async fn trim_history(
    now: DateTime<Utc>,
    store: &dyn Store,
    settings: &MaintenanceSettings,
    until: tokio::time::Instant,
) -> Result<u64, MaintenanceError> {
    let Some(retention) = settings.retention else {
        return Ok(0);
    };
    let cutoff = now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut deleted = 0;
    loop {
        let n = store
            .history_delete(cutoff, settings.retention_batch)
            .await?;
        deleted += n;
        METRICS.history_deleted.inc_by(n);
        if n < u64::from(settings.retention_batch) || tokio::time::Instant::now() >= until {
            return Ok(deleted);
        }
    }
}

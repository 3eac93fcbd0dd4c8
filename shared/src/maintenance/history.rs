//! The history's time partitions: made ahead of the days they hold, and dropped once a
//! day is past `HISTORY_RETENTION` and every fire in it is final (see
//! [`History::history_keep`]). PostgreSQL only; other stores delete rows
//! ([`super::trim_history`]).

use std::time::Duration;

use super::{MaintenanceError, MaintenanceSettings};
use crate::metrics::METRICS;
use crate::store::{HistoryKept, Store};
use crate::telemetry::error_chain;

/// How often a process sees to the partitions. Days are made two ahead, so a round may be
/// missed for a day without a fire finding its partition missing (and a write that does
/// makes it).
const KEEP_EVERY: Duration = Duration::from_secs(60);

/// One round: partitions made ahead, and those past the retention period dropped or, when
/// some of their fires are unfinished or were put back from the dead letters within it,
/// kept and reported.
pub async fn keep_history(
    store: &dyn Store,
    settings: &MaintenanceSettings,
) -> Result<HistoryKept, MaintenanceError> {
    let before = match settings.retention {
        Some(retention) => Some(
            store.clock().await?
                - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX),
        ),
        None => None,
    };
    let kept = store.history_keep(before).await?;
    if !kept.created.is_empty() {
        tracing::info!(partitions = ?kept.created, "history partitions made ahead");
    }
    if !kept.dropped.is_empty() {
        METRICS
            .history_partitions_dropped
            .inc_by(kept.dropped.len() as u64);
        tracing::info!(partitions = ?kept.dropped, "history partitions past the retention period dropped");
    }
    for partition in &kept.kept {
        tracing::warn!(
            partition = %partition.name,
            unfinished = partition.unfinished,
            requeued = partition.requeued,
            "history partition past the retention period kept: some of its fires are unfinished or were put back from the dead letters within it"
        );
    }
    Ok(kept)
}

/// Runs [`keep_history`] now and every minute, forever (the caller stops it).
pub async fn keep_history_every_minute(store: &dyn Store, settings: &MaintenanceSettings) {
    let mut every = tokio::time::interval(KEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(error) = keep_history(store, settings).await {
            tracing::warn!(error = %error_chain(&error), "keeping the history's partitions failed");
        }
    }
}

//! Per-minute rollups are kept for [`ROLLUP_RETENTION`], longer than the day the
//! dashboard charts, and forgotten after, by the workers in a task of its own.
//!
//! Not in the tick's history round: the tick polls that round only while it waits between
//! passes, so a write transaction open in it would be held through the next pass, and on
//! the embedded store (one writer connection) the pass would wait for it for ever.

use std::time::Duration;

use super::MaintenanceError;
use crate::store::Store;
use crate::telemetry::error_chain;

/// How often old rollups are looked for.
const FORGET_EVERY: Duration = Duration::from_secs(3600);

/// How long rollups are kept.
pub const ROLLUP_RETENTION: Duration = Duration::from_secs(8 * 24 * 3600);

/// Forgets rollups older than [`ROLLUP_RETENTION`] by the storage clock; returns the rows.
pub async fn forget_old_rollups(store: &dyn Store) -> Result<u64, MaintenanceError> {
    let before = store.clock().await?
        - chrono::Duration::from_std(ROLLUP_RETENTION).unwrap_or(chrono::Duration::MAX);
    Ok(store.rollup_forget(before).await?)
}

/// Runs [`forget_old_rollups`] now and every hour, forever (the caller stops it).
pub async fn forget_old_rollups_every_hour(store: &dyn Store) {
    let mut every = tokio::time::interval(FORGET_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(error) = forget_old_rollups(store).await {
            tracing::warn!(error = %error_chain(&error), "forgetting old outcome rollups failed");
        }
    }
}

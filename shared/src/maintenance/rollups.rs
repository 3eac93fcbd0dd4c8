//! Per-minute rollups are kept for [`ROLLUP_RETENTION`], longer than the day the
//! dashboard charts, and forgotten after.

use std::time::Duration;

use super::MaintenanceError;
use crate::store::Store;

/// How long rollups are kept.
pub const ROLLUP_RETENTION: Duration = Duration::from_secs(8 * 24 * 3600);

/// Forgets rollups older than [`ROLLUP_RETENTION`] by the storage clock; returns the rows.
pub async fn forget_old_rollups(store: &dyn Store) -> Result<u64, MaintenanceError> {
    let before = store.clock().await?
        - chrono::Duration::from_std(ROLLUP_RETENTION).unwrap_or(chrono::Duration::MAX);
    Ok(store.rollup_forget(before).await?)
}

//! Maintenance duties: the passes that keep fires moving besides the tick's own work.
//! Each is a pass of its own, safe in every process at once, and runs in the tick and in
//! every worker, so due fires move even while no tick runs:
//!
//! - [`release_upcoming`]: fires recorded ahead of time go to the ready list at their time;
//! - [`promote_due`]: retries whose time has come go back to the ready list;
//! - [`expire_overdue`]: QUEUED fires past their job's starting deadline end EXPIRED, held
//!   ones included (one process a second does it, by turn);
//! - [`release_held`]: fires recorded while the queue's window was full are pushed, oldest
//!   first, as room frees up;
//! - [`sweep_once`]: QUEUED fires whose push was lost are pushed again (one process a
//!   second does it, by turn: see [`take_turn`]);
//! - [`trim_history`]: finished history past `HISTORY_RETENTION` is deleted (the tick;
//!   a history in time partitions deletes no rows);
//! - [`keep_history`]: the history's time partitions are made ahead and dropped past
//!   `HISTORY_RETENTION` (the tick and every worker, once a minute, one at a time).
//!
//! [`run_duties`] is one round of the first five, as a worker runs it every second.

mod expire;
mod history;
mod hold;
mod promote;
mod release;
mod retention;
mod rollups;
mod sweep;

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use expire::expire_overdue;
pub use history::{keep_history, keep_history_every_minute};
pub use hold::{release_held, room_in_queue};
pub use promote::promote_due;
pub use release::release_upcoming;
pub use retention::{trim_history, RetentionClock};
pub use rollups::{forget_old_rollups, forget_old_rollups_every_hour, ROLLUP_RETENTION};
pub use sweep::{sweep_once, SweepFloor};

use crate::queue::{Queue, QueueError, RateLimit};
use crate::store::{Store, StoreError};
use crate::telemetry::error_chain;

/// Tuning of the maintenance duties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceSettings {
    /// Most fires the queue holds ready or recorded ahead; past it the tick records fires
    /// held, in the store only, and [`release_held`] pushes them as room frees up.
    pub ready_window: u64,
    /// Most retries promoted per round trip.
    pub promote_batch: u32,
    /// How long an execution may stay QUEUED before the sweeper pushes it again.
    pub sweep_after: Duration,
    /// Most executions one sweep re-pushes.
    pub sweep_limit: u32,
    /// Finished executions older than this are deleted (`HISTORY_RETENTION`); `None` keeps
    /// them forever.
    pub retention: Option<Duration>,
    /// Executions deleted per statement by the retention sweep.
    pub retention_batch: u32,
    /// Most fires one statement of the expiry pass ends EXPIRED.
    pub expire_batch: u32,
}

impl Default for MaintenanceSettings {
    fn default() -> Self {
        Self {
            ready_window: READY_WINDOW,
            promote_batch: 1000,
            sweep_after: Duration::from_secs(5),
            sweep_limit: 1000,
            retention: None,
            retention_batch: 5000,
            expire_batch: 10_000,
        }
    }
}

/// The default ready window: at 10,000 fires a second, ten seconds of work, about 15 MB of
/// Redis; a backlog past it waits in the store.
pub const READY_WINDOW: u64 = 100_000;

/// A duty that could not finish; the next round tries again.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The store failed.
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// The queue failed.
    #[error("the queue failed")]
    Queue(#[from] QueueError),
}

/// A duty that one process in the deployment runs per second, by turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// [`sweep_once`].
    Sweep,
    /// [`expire_overdue`].
    Expire,
    /// [`release_held`]: one process fills the room at a time, so several do not each
    /// fill it and take the queue past its window.
    Release,
}

impl Duty {
    fn bucket(self) -> &'static str {
        match self {
            Duty::Sweep => "duty:sweep",
            Duty::Expire => "duty:expire",
            Duty::Release => "duty:release",
        }
    }
}

/// Whether this process takes its turn at `duty` now: one turn a second is shared by every
/// tick and worker on the queue, so several processes do not repeat each other's work. A
/// queue that cannot be asked gives the turn (the duties are safe to repeat).
pub async fn take_turn(queue: &dyn Queue, duty: Duty) -> bool {
    let once_a_second = RateLimit {
        per_second: 1,
        burst: 1,
    };
    match queue.take_token(duty.bucket(), once_a_second).await {
        Ok(wait) => wait.is_none(),
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "could not ask for a maintenance turn; taking it");
            true
        }
    }
}

/// One round of the duties that keep due fires moving, at the storage clock's `now`:
/// releases fires recorded ahead whose time has come, promotes due retries, expires fires
/// past their starting deadline (when it is this process's turn), releases held fires while
/// the queue has room (by turn), and sweeps (by turn); expiry comes before the last two, so neither
/// pushes what just expired. Failures are logged; the next round tries again.
pub async fn run_duties(
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &MaintenanceSettings,
    floor: &SweepFloor,
) {
    let now: DateTime<Utc> = match store.clock().await {
        Ok(now) => now,
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "maintenance: cannot read the storage clock");
            return;
        }
    };
    if let Err(error) = release_upcoming(now, queue).await {
        tracing::warn!(error = %error_chain(&error), "releasing upcoming fires failed");
    }
    if let Err(error) = promote_due(now, store, queue, settings).await {
        tracing::warn!(error = %error_chain(&error), "promoting due retries failed");
    }
    if take_turn(queue, Duty::Expire).await {
        if let Err(error) = expire_overdue(store, queue, settings).await {
            tracing::warn!(error = %error_chain(&error), "expiring fires past their deadline failed");
        }
    }
    if take_turn(queue, Duty::Release).await {
        if let Err(error) = release_held(now, store, queue, settings).await {
            tracing::warn!(error = %error_chain(&error), "releasing held fires failed");
        }
    }
    if take_turn(queue, Duty::Sweep).await {
        if let Err(error) = sweep_once(now, store, queue, settings, floor).await {
            tracing::warn!(error = %error_chain(&error), "sweep failed");
        }
    }
}

//! The tick: every second, turn due jobs into queued executions.
//!
//! [`run_tick_once`] is one pass at a given `now` (`pass.rs`), which plans each due job's
//! fires (`plan.rs`); [`run`] runs passes on second boundaries of the storage clock, with
//! the maintenance duties ([`crate::maintenance`]) (`run.rs`). A pass commits
//! the executions before it pushes them, so a crash between the two delays a fire (until
//! the sweeper finds it) and never loses it. A tick told to stop records nothing more and
//! releases the fires it recorded ahead at their instants before it returns.

mod pass;
mod plan;
mod run;

use std::time::Duration;

use crate::maintenance::MaintenanceSettings;
use crate::queue::QueueError;
use crate::store::StoreError;

pub use pass::run_tick_once;
pub use plan::{plan_fires, ScheduleCache};
pub use run::run;

/// Tuning of the tick pass and the sweeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickSettings {
    /// Jobs claimed by a pass's first transaction when the last pass found fewer due; a
    /// batch that comes back full doubles the next (up to [`MAX_BATCH`]), and a pass starts
    /// at what the last one claimed, so transactions follow the work due.
    pub batch_size: u32,
    /// A fire later than this is a misfire and fires once (`MISFIRE_THRESHOLD`).
    pub misfire_threshold: Duration,
    /// Time between passes (`SCHEDULER_POLL_INTERVAL`); passes start on its boundaries.
    pub poll_interval: Duration,
    /// How far ahead fires are recorded and queued, to be released at their exact time
    /// (`SCHEDULER_LOOKAHEAD`).
    pub lookahead: Duration,
    /// How long before each boundary its fires are released to workers, which claim them
    /// and wait for the exact time (`SCHEDULER_RELEASE_LEAD`).
    pub release_lead: Duration,
    /// The maintenance duties the tick runs after each pass.
    pub maintenance: MaintenanceSettings,
}

impl Default for TickSettings {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            misfire_threshold: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            lookahead: Duration::ZERO,
            release_lead: Duration::ZERO,
            maintenance: MaintenanceSettings::default(),
        }
    }
}

/// A tick failure. The loop logs it and tries again at the next boundary.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// Claiming due jobs or reading the clock failed; nothing was fired.
    #[error("could not claim due jobs")]
    Store(#[from] StoreError),
    /// Executions were committed but could not be pushed; the sweeper will push them.
    #[error("committed {committed} executions but could not push them; the sweeper will")]
    Push {
        /// Executions recorded and waiting for the sweeper.
        committed: usize,
        /// Why the push failed.
        #[source]
        source: QueueError,
    },
}

/// What one tick pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickOutcome {
    /// Claim transactions run (the last one found nothing, unless the pass stopped early).
    pub batches: usize,
    /// Due jobs claimed.
    pub jobs: usize,
    /// Executions created (QUEUED).
    pub fired: usize,
    /// Missed fires dropped by misfire policies (counted on each job, no row).
    pub skipped_fires: u64,
    /// Executions newly pushed to the queue.
    pub pushed: usize,
    /// Executions recorded ahead of their time, waiting in the upcoming set.
    pub ahead: usize,
    /// Executions recorded held, not pushed: the queue's window was full.
    pub held: usize,
}

/// What [`run`] did until it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickRun {
    /// Passes run (one per boundary of the poll interval).
    pub ticks: u64,
    /// Executions created.
    pub fired: u64,
    /// Executions the sweeper found missing from the queue and pushed again.
    pub swept_requeued: u64,
}

/// Most jobs claimed in one transaction.
pub const MAX_BATCH: u32 = 20_000;

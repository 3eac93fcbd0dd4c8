//! The tick's loop: a pass on every boundary of the poll interval, the maintenance duties
//! after it, and at the stop, the release of what it recorded ahead.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::pass::run_pass;
use super::{ScheduleCache, TickError, TickRun, TickSettings, MAX_BATCH};
use crate::maintenance::{
    keep_history_every_minute, promote_due, release_held, release_upcoming, sweep_once, take_turn,
    trim_history, Duty, RetentionClock, SweepFloor,
};
use crate::metrics::METRICS;
use crate::queue::Queue;
use crate::store::Store;
use crate::telemetry::error_chain;

/// Time from `now` to the next multiple of `interval` since the epoch.
fn until_next_boundary(now: DateTime<Utc>, interval: Duration) -> Duration {
    let interval_us = interval.as_micros().max(1) as i64;
    let now_us = now.timestamp_micros();
    let next = (now_us.div_euclid(interval_us) + 1) * interval_us;
    Duration::from_micros((next - now_us) as u64)
}

/// Runs the tick until `shutdown` completes: on every boundary of the poll interval (by
/// the storage clock), shortly before it by `release_lead`, it releases the fires of that
/// boundary recorded ahead of time (workers claim them and send each at its exact time),
/// runs a pass, promotes due retries and, when it is its turn, sweeps. Failures are logged
/// and retried at the next boundary. Once `shutdown` completes it runs no more passes, and
/// releases the fires it recorded ahead at their boundaries (at most `lookahead` more)
/// before it returns what it did.
pub async fn run(
    store: &dyn Store,
    queue: &dyn Queue,
    settings: TickSettings,
    shutdown: impl Future<Output = ()>,
) -> TickRun {
    tokio::pin!(shutdown);
    let mut state = LoopState::new(settings);
    let mut wait = Duration::ZERO;
    // The history's partitions are seen to while the loop waits between passes (the
    // round never ends; dropping a partition may wait for other transactions). The round
    // is left unpolled through a pass, so nothing in it may hold a write open across an
    // await on the embedded store, whose one writer the pass needs: it would wait for ever.
    let history = keep_history_every_minute(store, &settings.maintenance);
    tokio::pin!(history);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = &mut history => {}
            _ = tokio::time::sleep(wait) => {}
        }
        let now = match store.clock().await {
            Ok(now) => now,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "cannot read the storage clock");
                wait = settings.poll_interval;
                continue;
            }
        };
        let started = tokio::time::Instant::now();
        state
            .boundary(now, started, store, queue)
            .instrument(tracing::info_span!("tick_loop"))
            .await;
        METRICS.tick_pass.observe_duration(started.elapsed());
        wait = until_next_boundary(now + state.lead, settings.poll_interval)
            .saturating_sub(started.elapsed())
            + MARGIN;
    }
    if let Some(until) = state.recorded_until {
        release_recorded_ahead(store, queue, &settings, until).await;
    }
    state.summary
}

/// What the loop keeps from one boundary to the next.
struct LoopState {
    settings: TickSettings,
    /// How long before its boundary a fire recorded ahead is released.
    lead: chrono::Duration,
    lookahead: chrono::Duration,
    retention: RetentionClock,
    summary: TickRun,
    /// The furthest fire time any pass may have recorded ahead.
    recorded_until: Option<DateTime<Utc>>,
    /// Jobs the last pass claimed: the next pass's first batch.
    last_jobs: u32,
    schedules: ScheduleCache,
    sweep_floor: SweepFloor,
}

impl LoopState {
    fn new(settings: TickSettings) -> Self {
        let lead = settings.release_lead.min(settings.poll_interval / 2);
        Self {
            settings,
            lead: chrono::Duration::from_std(lead).unwrap_or_default(),
            lookahead: chrono::Duration::from_std(settings.lookahead).unwrap_or_default(),
            retention: RetentionClock::default(),
            summary: TickRun::default(),
            recorded_until: None,
            last_jobs: 0,
            schedules: ScheduleCache::default(),
            sweep_floor: SweepFloor::default(),
        }
    }

    /// One boundary at `now`: release what is due, run a pass, release what it recorded
    /// for this boundary, then the maintenance duties.
    async fn boundary(
        &mut self,
        now: DateTime<Utc>,
        started: tokio::time::Instant,
        store: &dyn Store,
        queue: &dyn Queue,
    ) {
        release(now + self.lead, queue).await;
        self.summary.ticks += 1;
        self.recorded_until = Some(now + self.lookahead);
        self.fire(now, store, queue).await;
        // Fires this pass recorded for the coming boundary (a job created or changed
        // within the look-ahead) are released now too.
        release(now + self.lead, queue).await;
        self.maintain(now, started, store, queue).await;
    }

    /// A pass, starting at the batch size the last one needed; what it did is logged.
    async fn fire(&mut self, now: DateTime<Utc>, store: &dyn Store, queue: &dyn Queue) {
        let settings = self.settings;
        let pass_settings = TickSettings {
            batch_size: self
                .last_jobs
                .clamp(settings.batch_size, MAX_BATCH.max(settings.batch_size)),
            ..settings
        };
        let pass = run_pass(now, store, queue, &pass_settings, &self.schedules).await;
        self.last_jobs = pass
            .as_ref()
            .map_or(0, |o| u32::try_from(o.jobs).unwrap_or(u32::MAX));
        match pass {
            Ok(outcome) if outcome.jobs > 0 => {
                self.summary.fired += outcome.fired as u64;
                tracing::info!(
                    fired = outcome.fired,
                    ahead = outcome.ahead,
                    jobs = outcome.jobs,
                    pushed = outcome.pushed,
                    held = outcome.held,
                    skipped_fires = outcome.skipped_fires,
                    "fired due jobs"
                );
            }
            Ok(_) => {}
            Err(error) => {
                if let TickError::Push { committed, .. } = error {
                    self.summary.fired += committed as u64;
                }
                tracing::error!(error = %error_chain(&error), "tick pass failed");
            }
        }
    }

    /// The duties after a pass: promote due retries, and in turn with other processes,
    /// release held fires and sweep; retention when it is due.
    async fn maintain(
        &mut self,
        now: DateTime<Utc>,
        started: tokio::time::Instant,
        store: &dyn Store,
        queue: &dyn Queue,
    ) {
        let settings = &self.settings.maintenance;
        if let Err(error) = promote_due(now, store, queue, settings).await {
            tracing::error!(error = %error_chain(&error), "promoting due retries failed");
        }
        if take_turn(queue, Duty::Release).await {
            if let Err(error) = release_held(now, store, queue, settings).await {
                tracing::error!(error = %error_chain(&error), "releasing held fires failed");
            }
        }
        if take_turn(queue, Duty::Sweep).await {
            match sweep_once(now, store, queue, settings, &self.sweep_floor).await {
                Ok(requeued) => self.summary.swept_requeued += requeued as u64,
                Err(error) => tracing::error!(error = %error_chain(&error), "sweep failed"),
            }
        }
        if self.retention.due(now, settings) {
            // The time left before the next boundary, less a batch's worth, and at most
            // half an interval: an idle tick deletes more, a busy one a batch.
            let interval = self.settings.poll_interval;
            let next = started + until_next_boundary(now + self.lead, interval);
            let until = (next - RETENTION_MARGIN).min(started + interval / 2);
            match trim_history(now, store, settings, until).await {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(deleted, "deleted executions past the retention period")
                }
                Err(error) => {
                    tracing::error!(error = %error_chain(&error), "retention sweep failed")
                }
            }
        }
    }
}

/// Wake a little after a planned instant so the storage clock has surely passed it.
const MARGIN: Duration = Duration::from_millis(2);

/// Time left free before the next boundary when the retention sweep stops.
const RETENTION_MARGIN: Duration = Duration::from_millis(150);

/// Releases fires recorded ahead whose time (less the lead) has come; a failure is logged
/// (the sweeper pushes them later).
async fn release(at: DateTime<Utc>, queue: &dyn Queue) {
    if let Err(error) = release_upcoming(at, queue).await {
        tracing::error!(error = %error_chain(&error), "releasing upcoming fires failed; the sweeper will push them");
    }
}

/// A stopping tick's last duty: the fires its passes recorded ahead (up to `until`) are
/// released at their boundaries, as the running tick would have, so none waits for another
/// process's sweeper. Bounded by the look-ahead (and a second more if the storage clock
/// cannot be read).
async fn release_recorded_ahead(
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &TickSettings,
    until: DateTime<Utc>,
) {
    let lead = settings.release_lead.min(settings.poll_interval / 2);
    let lead_span = chrono::Duration::from_std(lead).unwrap_or_default();
    let give_up = tokio::time::Instant::now() + settings.lookahead + Duration::from_secs(1);
    tracing::info!(%until, "tick stopping: releasing the fires it recorded ahead at their time");
    while tokio::time::Instant::now() < give_up {
        let now = match store.clock().await {
            Ok(now) => now,
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "cannot read the storage clock");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        release(now + lead_span, queue).await;
        if now + lead_span >= until {
            return;
        }
        tokio::time::sleep(until_next_boundary(now + lead_span, settings.poll_interval) + MARGIN)
            .await;
    }
    tracing::warn!("tick stopped before every fire it recorded ahead was released; the sweeper pushes the rest");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).single().unwrap()
    }

    #[test]
    fn boundaries_are_whole_intervals_of_the_clock() {
        let now = at(10, 0, 0) + chrono::Duration::milliseconds(250);
        assert_eq!(
            until_next_boundary(now, Duration::from_secs(1)),
            Duration::from_millis(750)
        );
        assert_eq!(
            until_next_boundary(at(10, 0, 0), Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}

//! QUEUED fires whose push was lost are pushed again.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{MaintenanceError, MaintenanceSettings};
use crate::config::MAX_LOOKAHEAD;

/// How long a worker may take to claim what it took from the queue before the sweeper
/// hands it out again (a worker that dies between taking and claiming).
const CLAIM_PATIENCE: chrono::Duration = chrono::Duration::seconds(15);
use crate::queue::Queue;
use crate::store::Store;

/// Pushes executions QUEUED for longer than `sweep_after` at `now` again, after moving
/// RETRYING ones overdue by as long back to QUEUED; the queue keeps one item per id, so
/// this is safe in every process at once. Returns how many were missing from the queue
/// and were pushed.
#[tracing::instrument(name = "sweep", skip_all, fields(%now))]
pub async fn sweep_once(
    now: DateTime<Utc>,
    store: &dyn Store,
    queue: &dyn Queue,
    settings: &MaintenanceSettings,
    floor: &SweepFloor,
) -> Result<usize, MaintenanceError> {
    let cutoff = now - chrono::Duration::from_std(settings.sweep_after).unwrap_or_default();
    // Retries whose scheduled item was lost become QUEUED and are pushed below.
    let overdue = store
        .execution_list_overdue_retries(cutoff, settings.sweep_limit)
        .await?;
    let mut stale = store.execution_requeue_retries(&overdue, now).await?;
    // Rows waiting far longer than any backlog explains are pushed even if the queue says
    // they are there: its list and its set of ids may have drifted apart (eviction).
    let very_stale = now - chrono::Duration::seconds(60);
    let mut forced = Vec::new();
    let (from, full) = floor.start(now);
    let waiting = store
        .execution_list_stale_queued(from, cutoff, now, settings.sweep_limit)
        .await?;
    floor.advance(now, full, waiting.first().map(|(_, at)| *at), cutoff);
    for (id, queued_at) in waiting {
        if queued_at < very_stale {
            forced.push(id);
        } else {
            stale.push(id);
        }
    }
    if stale.is_empty() && forced.is_empty() {
        return Ok(0);
    }
    let mut pushed = queue.push_untaken(&stale, now - CLAIM_PATIENCE).await?;
    pushed += queue.repush(&forced).await?;
    if pushed > 0 {
        tracing::warn!(pushed, "re-pushed queued executions missing from the queue");
    }
    Ok(pushed)
}

/// How far back the sweeper's scan must start, kept by each process between its turns.
///
/// The history's index of unfinished fires is ordered by `queued_at`, and until a vacuum
/// clears them it still holds the entries of fires that finished since: a scan from its
/// beginning walks every fire of the day. A fire enters QUEUED with `queued_at` set to the
/// storage clock at that moment (recorded, retried, taken back, handed back, requeued), at
/// most [`MAX_LOOKAHEAD`] before its scheduled time; so once a scan has found no waiting
/// fire queued before some instant, none appears there later, and the next scan starts
/// there, a few seconds back rather than hours. Once a minute a scan starts from the
/// beginning anyway, for what enters with an older time (a held fire released).
#[derive(Debug, Default)]
pub struct SweepFloor {
    kept: Mutex<Option<Floor>>,
}

#[derive(Debug, Clone, Copy)]
struct Floor {
    /// No waiting fire was queued before this.
    from: DateTime<Utc>,
    /// When the last scan from the beginning was made.
    full_at: DateTime<Utc>,
}

/// How often a process's sweep scans from the beginning.
const FULL_SCAN_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// The furthest ahead of its time a fire is recorded ([`MAX_LOOKAHEAD`]): a fire recorded
/// ahead is not yet due when the sweep reads, so it is not returned, and the floor stays
/// that far behind the cutoff to find it once it is due.
const LOOKAHEAD_REACH: chrono::Duration = chrono::Duration::seconds(MAX_LOOKAHEAD.as_secs() as i64);

impl SweepFloor {
    /// Where a scan at `now` starts, and whether it is a scan from the beginning.
    fn start(&self, now: DateTime<Utc>) -> (DateTime<Utc>, bool) {
        let kept = self.kept.lock().map(|kept| *kept).unwrap_or(None);
        match kept {
            Some(floor) if now - floor.full_at < FULL_SCAN_EVERY => (floor.from, false),
            _ => (DateTime::UNIX_EPOCH, true),
        }
    }

    /// After a scan at `now` below `cutoff` whose oldest waiting fire (if any) was queued
    /// at `oldest`: the next scan starts there, or at the cutoff less the look-ahead.
    fn advance(
        &self,
        now: DateTime<Utc>,
        full: bool,
        oldest: Option<DateTime<Utc>>,
        cutoff: DateTime<Utc>,
    ) {
        let reach = cutoff - LOOKAHEAD_REACH;
        let from = oldest.map_or(reach, |oldest| oldest.min(reach));
        if let Ok(mut kept) = self.kept.lock() {
            let full_at = match (*kept, full) {
                (Some(floor), false) => floor.full_at,
                _ => now,
            };
            *kept = Some(Floor { from, full_at });
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_first_scan_starts_from_the_beginning() {
        let floor = SweepFloor::default();
        assert_eq!(floor.start(at(0)), (DateTime::UNIX_EPOCH, true));
    }

    #[test]
    fn with_nothing_waiting_the_next_scan_starts_the_look_ahead_before_the_cutoff() {
        let floor = SweepFloor::default();
        floor.advance(at(100), true, None, at(95));
        assert_eq!(floor.start(at(101)), (at(95) - LOOKAHEAD_REACH, false));
    }

    #[test]
    fn a_fire_still_waiting_keeps_the_floor_at_its_time() {
        let floor = SweepFloor::default();
        floor.advance(at(100), true, Some(at(20)), at(95));
        assert_eq!(floor.start(at(101)), (at(20), false));
        // Never past the look-ahead before the cutoff, whatever was found.
        floor.advance(at(102), false, Some(at(96)), at(97));
        assert_eq!(floor.start(at(103)), (at(97) - LOOKAHEAD_REACH, false));
    }

    #[test]
    fn a_minute_after_the_last_full_scan_the_scan_starts_from_the_beginning_again() {
        let floor = SweepFloor::default();
        floor.advance(at(100), true, None, at(95));
        floor.advance(at(130), false, None, at(125));
        assert_eq!(floor.start(at(159)), (at(125) - LOOKAHEAD_REACH, false));
        assert_eq!(floor.start(at(160)), (DateTime::UNIX_EPOCH, true));
        floor.advance(at(160), true, None, at(155));
        assert_eq!(floor.start(at(161)), (at(155) - LOOKAHEAD_REACH, false));
    }
}

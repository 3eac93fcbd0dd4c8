//! What the recorder adds up between writes of the rollups: per minute and tenant, the
//! outcomes it recorded and their lateness and latency; per job, the latest outcome. A
//! write every few seconds carries a few rows, however many fires there were.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{minute_of, LastOutcome, MinuteRollup, Outcome, Recorded};
use crate::store::{Store, StoreError};

/// Rollups not yet written.
#[derive(Debug, Default)]
pub struct Tally {
    /// By tenant, then minute: a tenant's name is looked up, not copied, per outcome.
    minutes: HashMap<String, HashMap<DateTime<Utc>, MinuteRollup>>,
    latest: HashMap<Uuid, LastOutcome>,
}

impl Tally {
    /// Counts an outcome the store accepted, in the minute holding `at`.
    pub fn count(&mut self, outcome: &Outcome, recorded: &Recorded, at: DateTime<Utc>) {
        if !self.minutes.contains_key(outcome.tenant.as_str()) {
            self.minutes.insert(outcome.tenant.clone(), HashMap::new());
        }
        if let Some(by_minute) = self.minutes.get_mut(outcome.tenant.as_str()) {
            by_minute
                .entry(minute_of(at))
                .or_insert_with(|| MinuteRollup::empty(at, &outcome.tenant))
                .count(outcome, recorded.status);
        }
        self.note(LastOutcome {
            job_id: outcome.job_id,
            scheduled_at: outcome.scheduled_at,
            status: recorded.status,
        });
    }

    /// Keeps `latest` unless an outcome of a later fire of its job is kept already.
    fn note(&mut self, latest: LastOutcome) {
        match self.latest.entry(latest.job_id) {
            Entry::Occupied(mut kept) => {
                if kept.get().scheduled_at <= latest.scheduled_at {
                    kept.insert(latest);
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(latest);
            }
        }
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty() && self.latest.is_empty()
    }

    /// Adds a tally that could not be written back into this one.
    pub fn merge(&mut self, other: Tally) {
        for (tenant, by_minute) in other.minutes {
            let mine = self.minutes.entry(tenant).or_default();
            for (minute, rollup) in by_minute {
                match mine.entry(minute) {
                    Entry::Occupied(mut kept) => kept.get_mut().add(&rollup),
                    Entry::Vacant(slot) => {
                        slot.insert(rollup);
                    }
                }
            }
        }
        for latest in other.latest.into_values() {
            self.note(latest);
        }
    }

    /// Writes it in one transaction; on failure it comes back to be merged and tried again.
    pub async fn write(self, store: &dyn Store) -> Result<(), (StoreError, Tally)> {
        if self.is_empty() {
            return Ok(());
        }
        let minutes: Vec<MinuteRollup> = self
            .minutes
            .values()
            .flat_map(|by_minute| by_minute.values().cloned())
            .collect();
        let latest: Vec<LastOutcome> = self.latest.values().cloned().collect();
        store
            .rollup_add(&minutes, &latest)
            .await
            .map_err(|error| (error, self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExecutionStatus;

    fn outcome(job: Uuid, at: DateTime<Utc>, attempt: i32) -> Outcome {
        Outcome {
            execution_id: Uuid::now_v7(),
            job_id: job,
            tenant: "default".into(),
            scheduled_at: at,
            attempt,
            status: ExecutionStatus::Succeeded,
            retry_in: None,
            response_body: None,
            duration_ms: 20,
            http_status: Some(200),
            error: None,
            sent_at: at,
        }
    }

    fn recorded(o: &Outcome, status: ExecutionStatus) -> Recorded {
        Recorded {
            execution_id: o.execution_id,
            status,
            next_attempt_at: None,
        }
    }

    #[test]
    fn a_later_fire_wins_and_minutes_add_up_across_merges() {
        let job = Uuid::now_v7();
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t1 = t0 + chrono::TimeDelta::seconds(1);
        let mut a = Tally::default();
        let late = outcome(job, t1, 1);
        a.count(&late, &recorded(&late, ExecutionStatus::Succeeded), t1);
        let early = outcome(job, t0, 2);
        a.count(&early, &recorded(&early, ExecutionStatus::Failed), t1);
        assert_eq!(a.latest[&job].status, ExecutionStatus::Succeeded);
        let mut b = Tally::default();
        b.count(&early, &recorded(&early, ExecutionStatus::Failed), t1);
        b.merge(a);
        assert_eq!(b.latest[&job].scheduled_at, t1);
        let minute = b.minutes["default"].values().next().unwrap();
        assert_eq!((minute.succeeded, minute.failed, minute.fires), (1, 2, 1));
        assert!(!b.is_empty());
        assert!(Tally::default().is_empty());
    }
}

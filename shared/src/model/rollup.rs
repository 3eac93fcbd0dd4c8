//! Per-minute rollups of recorded outcomes: counts, and two histograms (lateness and target
//! latency) over fixed bucket bounds, so that rollups from any number of workers add up and
//! percentiles over an hour or a day are read from a few hundred rows, never from the history.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use uuid::Uuid;

use super::{ExecutionStatus, Outcome};

/// Upper bounds of the histogram buckets, in milliseconds; one more bucket holds the rest.
pub const BUCKET_BOUNDS_MS: [u64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000,
];

/// How many buckets a histogram has.
pub const BUCKETS: usize = BUCKET_BOUNDS_MS.len() + 1;

/// Counts of observations per bucket of [`BUCKET_BOUNDS_MS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Histogram(pub [u64; BUCKETS]);

impl Histogram {
    /// A histogram from stored counts; missing buckets count zero, extra ones are ignored.
    pub fn from_counts(counts: &[i64]) -> Self {
        let mut histogram = Self::default();
        for (slot, count) in histogram.0.iter_mut().zip(counts) {
            *slot = u64::try_from(*count).unwrap_or(0);
        }
        histogram
    }

    /// The counts as stored.
    pub fn counts(&self) -> Vec<i64> {
        self.0
            .iter()
            .map(|c| i64::try_from(*c).unwrap_or(i64::MAX))
            .collect()
    }

    /// Counts one observation of `ms` milliseconds (negative values count as zero).
    pub fn observe(&mut self, ms: i64) {
        let ms = u64::try_from(ms).unwrap_or(0);
        let bucket = BUCKET_BOUNDS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(BUCKET_BOUNDS_MS.len());
        self.0[bucket] += 1;
    }

    /// Adds another histogram's counts.
    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }

    /// How many observations it holds.
    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `q`-quantile (0–1) in milliseconds, interpolated linearly within its bucket;
    /// values past the last bound read as that bound. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (bucket, count) in self.0.iter().enumerate() {
            let upto = below + count;
            if *count > 0 && upto as f64 >= rank {
                let low = if bucket == 0 {
                    0.0
                } else {
                    BUCKET_BOUNDS_MS[bucket - 1] as f64
                };
                let Some(high) = BUCKET_BOUNDS_MS.get(bucket) else {
                    return Some(low);
                };
                let within = ((rank - below as f64) / *count as f64).clamp(0.0, 1.0);
                return Some(low + within * (*high as f64 - low));
            }
            below = upto;
        }
        Some(BUCKET_BOUNDS_MS[BUCKET_BOUNDS_MS.len() - 1] as f64)
    }
}

/// What the workers recorded in one minute for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteRollup {
    /// The minute, truncated.
    pub minute: DateTime<Utc>,
    /// The tenant whose jobs these were.
    pub tenant: String,
    /// Fires whose first attempt was recorded.
    pub fires: u64,
    /// Fires recorded SUCCEEDED.
    pub succeeded: u64,
    /// Fires recorded FAILED (no retry left, or not retried).
    pub failed: u64,
    /// Attempts that failed and were left RETRYING.
    pub retried: u64,
    /// First attempts: sent time less scheduled time.
    pub lateness: Histogram,
    /// Every attempt: how long the target took.
    pub latency: Histogram,
}

impl MinuteRollup {
    /// An empty rollup of the minute holding `at`.
    pub fn empty(at: DateTime<Utc>, tenant: &str) -> Self {
        Self {
            minute: minute_of(at),
            tenant: tenant.to_string(),
            fires: 0,
            succeeded: 0,
            failed: 0,
            retried: 0,
            lateness: Histogram::default(),
            latency: Histogram::default(),
        }
    }

    /// Counts one recorded outcome.
    pub fn count(&mut self, outcome: &Outcome, status: ExecutionStatus) {
        match status {
            ExecutionStatus::Succeeded => self.succeeded += 1,
            ExecutionStatus::Failed => self.failed += 1,
            ExecutionStatus::Retrying => self.retried += 1,
            _ => {}
        }
        if outcome.attempt == 1 {
            self.fires += 1;
            self.lateness
                .observe((outcome.sent_at - outcome.scheduled_at).num_milliseconds());
        }
        self.latency.observe(outcome.duration_ms);
    }

    /// Adds another rollup's counts (of any minute or tenant) to this one.
    pub fn add(&mut self, other: &MinuteRollup) {
        self.fires += other.fires;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.retried += other.retried;
        self.lateness.add(&other.lateness);
        self.latency.add(&other.latency);
    }
}

/// The minute holding `at`.
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

/// The latest recorded outcome of a job: what `GET /api/v1/jobs?status=` filters on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastOutcome {
    pub job_id: Uuid,
    /// The fire it belongs to; an outcome of an older fire never replaces a newer one's.
    pub scheduled_at: DateTime<Utc>,
    /// SUCCEEDED, FAILED or RETRYING.
    pub status: ExecutionStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut h = Histogram::default();
        for ms in [-3, 0, 5, 6, 120_000, 120_001, i64::MAX] {
            h.observe(ms);
        }
        assert_eq!(h.0[0], 3);
        assert_eq!(h.0[1], 1);
        assert_eq!(h.0[BUCKETS - 2], 1);
        assert_eq!(h.0[BUCKETS - 1], 2);
        assert_eq!(h.count(), 7);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket_and_stop_at_the_last_bound() {
        assert_eq!(Histogram::default().quantile(0.5), None);
        let mut h = Histogram::default();
        for _ in 0..10 {
            h.observe(30); // (25, 50]
        }
        let p50 = h.quantile(0.5).unwrap();
        assert!((37.0..=38.0).contains(&p50), "{p50}");
        assert_eq!(h.quantile(1.0), Some(50.0));
        let mut slow = Histogram::default();
        slow.observe(500_000);
        assert_eq!(slow.quantile(0.95), Some(120_000.0));
        let mut mixed = Histogram::default();
        for _ in 0..95 {
            mixed.observe(3);
        }
        for _ in 0..5 {
            mixed.observe(2_000);
        }
        assert!(mixed.quantile(0.5).unwrap() <= 5.0);
        assert!(mixed.quantile(0.99).unwrap() > 1_000.0);
    }

    #[test]
    fn stored_counts_round_trip_and_rollups_add_up() {
        let mut h = Histogram::default();
        h.observe(7);
        h.observe(70_000);
        assert_eq!(Histogram::from_counts(&h.counts()), h);
        assert_eq!(Histogram::from_counts(&[1, -1]).count(), 1);
        let at = DateTime::from_timestamp(1_700_000_059, 0).unwrap();
        let mut a = MinuteRollup::empty(at, "t");
        assert_eq!(a.minute.timestamp() % 60, 0);
        let outcome = Outcome {
            execution_id: Uuid::nil(),
            job_id: Uuid::nil(),
            tenant: "t".into(),
            scheduled_at: at,
            attempt: 1,
            status: ExecutionStatus::Succeeded,
            retry_in: None,
            response_body: None,
            duration_ms: 12,
            http_status: Some(200),
            error: None,
            sent_at: at + TimeDelta::milliseconds(40),
        };
        a.count(&outcome, ExecutionStatus::Succeeded);
        let retry = Outcome {
            attempt: 2,
            ..outcome.clone()
        };
        a.count(&retry, ExecutionStatus::Retrying);
        let mut b = a.clone();
        b.add(&a);
        assert_eq!((b.fires, b.succeeded, b.retried, b.failed), (2, 2, 2, 0));
        assert_eq!(b.lateness.count(), 2);
        assert_eq!(b.latency.count(), 4);
    }
}

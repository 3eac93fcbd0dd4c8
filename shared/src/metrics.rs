//! Process metrics in the Prometheus text format: counters and fixed-bucket histograms
//! kept in atomics, so recording costs a few relaxed additions and never locks.
//!
//! Each process records what it does (the tick: fires and pass times; the worker:
//! executions, lag, request latency, retries, dead letters); the API adds queue depths
//! when it is scraped.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// Upper bounds of the batch-size histogram.
const SIZE_BUCKETS: [f64; 10] = [
    1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0,
];

/// A histogram with fixed buckets.
pub struct Histogram {
    bounds: &'static [f64],
    counts: [AtomicU64; 16],
    /// Sum, in millionths of the unit.
    sum_micros: AtomicU64,
    total: AtomicU64,
}

impl Histogram {
    const fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: [const { AtomicU64::new(0) }; 16],
            sum_micros: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub fn observe(&self, value: f64) {
        let value = value.max(0.0);
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a duration, in seconds.
    pub fn observe_duration(&self, value: Duration) {
        self.observe(value.as_secs_f64());
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        let total = self.total.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {total}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let labels = labels.trim_end_matches(',');
        if labels.is_empty() {
            let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
        } else {
            let _ = writeln!(
                out,
                "{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {total}"
            );
        }
    }
}

/// A monotonic counter.
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything this process counts.
pub struct Metrics {
    /// Fires recorded QUEUED by the tick.
    pub fires_queued: Counter,
    /// Of those, fires recorded held (the queue's window was full), pushed later.
    pub fires_held: Counter,
    /// Fires recorded SKIPPED (overlap forbidden).
    pub fires_skipped_overlap: Counter,
    /// Missed fires dropped by misfire policies.
    pub fires_skipped_misfire: Counter,
    /// Executions ended SUCCEEDED.
    pub executions_succeeded: Counter,
    /// Executions ended FAILED (dead letters from failed answers).
    pub executions_failed: Counter,
    /// Fires ended EXPIRED: not started within their job's `startingDeadlineSeconds`, never
    /// sent (by a claim or by the expiry pass).
    pub executions_expired: Counter,
    /// Attempts that failed and were scheduled again.
    pub retries: Counter,
    /// Fires taken back from dead workers.
    pub reaped: Counter,
    /// Fires that reached the dead-letter list (failed answers, the crash limit, or expired).
    pub dead_letters: Counter,
    /// Executions deleted by the retention sweep.
    pub history_deleted: Counter,
    /// History partitions (a day each) dropped past the retention period.
    pub history_partitions_dropped: Counter,
    /// API answers 401: no key, a malformed `Authorization`, or a wrong key.
    pub api_unauthorized: Counter,
    /// API answers 429 to a client address past its wrong keys, before any lookup.
    pub api_wrong_keys_throttled: Counter,
    /// From the fire time to sending the first byte, seconds.
    pub fire_lag: Histogram,
    /// HTTP attempt latency, seconds.
    pub attempt_latency: Histogram,
    /// Tick pass duration, seconds.
    pub tick_pass: Histogram,
    /// Jobs claimed per tick transaction.
    pub tick_batch: Histogram,
}

/// This process's metrics.
pub static METRICS: Metrics = Metrics {
    fires_queued: Counter::new(),
    fires_held: Counter::new(),
    fires_skipped_overlap: Counter::new(),
    fires_skipped_misfire: Counter::new(),
    executions_succeeded: Counter::new(),
    executions_failed: Counter::new(),
    executions_expired: Counter::new(),
    retries: Counter::new(),
    reaped: Counter::new(),
    dead_letters: Counter::new(),
    history_deleted: Counter::new(),
    history_partitions_dropped: Counter::new(),
    api_unauthorized: Counter::new(),
    api_wrong_keys_throttled: Counter::new(),
    fire_lag: Histogram::new(&SECONDS_BUCKETS),
    attempt_latency: Histogram::new(&SECONDS_BUCKETS),
    tick_pass: Histogram::new(&SECONDS_BUCKETS),
    tick_batch: Histogram::new(&SIZE_BUCKETS),
};

fn counter(out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Queue depths to add to a scrape, per state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Depths {
    /// Waiting for a worker.
    pub ready: u64,
    /// Waiting for their time (retries and fires recorded ahead).
    pub scheduled: u64,
    /// Taken by workers.
    pub processing: u64,
    /// RETRYING in the store.
    pub retrying: u64,
    /// In the dead-letter list.
    pub failed: u64,
}

/// Renders this process's metrics, with queue depths when given.
pub fn render(depths: Option<Depths>) -> String {
    let m = &METRICS;
    let mut out = String::with_capacity(8 * 1024);
    if let Some(d) = depths {
        let _ = writeln!(
            out,
            "# HELP tickwork_queue_depth Items in the queue by state; scale workers on state=\"ready\".\n# TYPE tickwork_queue_depth gauge"
        );
        for (state, value) in [
            ("ready", d.ready),
            ("scheduled", d.scheduled),
            ("processing", d.processing),
            ("retrying", d.retrying),
            ("failed", d.failed),
        ] {
            let _ = writeln!(out, "tickwork_queue_depth{{state=\"{state}\"}} {value}");
        }
    }
    counter(
        &mut out,
        "tickwork_fires_total",
        "Fires the tick recorded, by outcome.",
        &[
            ("outcome=\"queued\"", m.fires_queued.get()),
            ("outcome=\"held\"", m.fires_held.get()),
            ("outcome=\"skipped_overlap\"", m.fires_skipped_overlap.get()),
            ("outcome=\"skipped_misfire\"", m.fires_skipped_misfire.get()),
        ],
    );
    counter(
        &mut out,
        "tickwork_executions_total",
        "Executions this process finished, by final status (EXPIRED: not started within \
         startingDeadlineSeconds, never sent).",
        &[
            ("status=\"SUCCEEDED\"", m.executions_succeeded.get()),
            ("status=\"FAILED\"", m.executions_failed.get()),
            ("status=\"EXPIRED\"", m.executions_expired.get()),
        ],
    );
    counter(
        &mut out,
        "tickwork_retries_total",
        "Failed attempts scheduled again.",
        &[("", m.retries.get())],
    );
    counter(
        &mut out,
        "tickwork_reaped_total",
        "Fires taken back from workers that lost their lease.",
        &[("", m.reaped.get())],
    );
    counter(
        &mut out,
        "tickwork_dead_letters_total",
        "Fires that ended in the dead-letter list.",
        &[("", m.dead_letters.get())],
    );
    counter(
        &mut out,
        "tickwork_history_deleted_total",
        "Executions deleted by the retention sweep.",
        &[("", m.history_deleted.get())],
    );
    counter(
        &mut out,
        "tickwork_history_partitions_dropped_total",
        "History partitions (a UTC day of fires each) dropped past the retention period.",
        &[("", m.history_partitions_dropped.get())],
    );
    counter(
        &mut out,
        "tickwork_api_unauthorized_total",
        "API requests answered 401: no key, a malformed Authorization header, or a wrong key.",
        &[("", m.api_unauthorized.get())],
    );
    counter(
        &mut out,
        "tickwork_api_wrong_keys_throttled_total",
        "API requests answered 429 because their client address sent too many wrong keys \
         (refused before the key was looked up).",
        &[("", m.api_wrong_keys_throttled.get())],
    );
    m.fire_lag.render(
        &mut out,
        "tickwork_fire_lag_seconds",
        "From a fire's scheduled time to its request being sent.",
        "",
    );
    m.attempt_latency.render(
        &mut out,
        "tickwork_attempt_duration_seconds",
        "HTTP attempt latency.",
        "",
    );
    m.tick_pass.render(
        &mut out,
        "tickwork_tick_pass_seconds",
        "Duration of a tick pass.",
        "",
    );
    m.tick_batch.render(
        &mut out,
        "tickwork_tick_batch_jobs",
        "Jobs claimed per tick transaction.",
        "",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets() {
        let h = Histogram::new(&SECONDS_BUCKETS);
        h.observe(0.003);
        h.observe(0.2);
        h.observe(100.0);
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "help", "");
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 1"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.25\"} 2"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3"), "{out}");
        assert!(out.contains("x_seconds_count 3"), "{out}");
    }

    #[test]
    fn a_scrape_names_every_family() {
        let text = render(Some(Depths {
            ready: 4,
            ..Depths::default()
        }));
        for family in [
            "tickwork_queue_depth{state=\"ready\"} 4",
            "# TYPE tickwork_fires_total counter",
            "# TYPE tickwork_executions_total counter",
            "tickwork_executions_total{status=\"EXPIRED\"}",
            "# TYPE tickwork_fire_lag_seconds histogram",
            "# TYPE tickwork_tick_pass_seconds histogram",
            "# TYPE tickwork_api_unauthorized_total counter",
            "# TYPE tickwork_api_wrong_keys_throttled_total counter",
        ] {
            assert!(text.contains(family), "{family} missing from {text}");
        }
    }
}

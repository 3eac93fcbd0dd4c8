//! Process metrics, kept and encoded with `prometheus-client`: counters (plain or in
//! labelled families) and fixed-bucket histograms, all atomics, so recording costs a few
//! relaxed additions and never locks.
//!
//! Each process records what it does (the tick: fires and pass times; the worker:
//! executions, lag, request latency, retries, dead letters); the API adds queue depths
//! when it is scraped. A scrape is encoded in the Prometheus text format (0.0.4) or in
//! OpenMetrics 1.0 ([`Format`]), from the same registry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus_client::encoding::{
    prometheus_text, text, EncodeLabelSet, EncodeLabelValue, EncodeMetric, MetricEncoder,
    NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds (seconds) of the latency histograms.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// Upper bounds of the batch-size histogram.
const SIZE_BUCKETS: [f64; 10] = [
    1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0,
];

/// A histogram with fixed buckets in atomics. `prometheus-client`'s own histogram takes a
/// mutex per observation; this one is encoded by the same encoders.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Buckets>);

#[derive(Debug)]
struct Buckets {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last one counts those above every bound.
    counts: Box<[AtomicU64]>,
    /// Sum, in millionths of the unit.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self(Arc::new(Buckets {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }))
    }

    /// Records one value; a negative or NaN value counts as 0.
    pub fn observe(&self, value: f64) {
        let value = value.max(0.0);
        let buckets = &*self.0;
        let i = buckets
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(buckets.bounds.len());
        buckets.counts[i].fetch_add(1, Ordering::Relaxed);
        buckets
            .sum_micros
            .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
    }

    /// Records a duration, in seconds.
    pub fn observe_duration(&self, value: Duration) {
        self.observe(value.as_secs_f64());
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets = &*self.0;
        // The encoders make the counts cumulative; the count is their total, so it equals
        // the `+Inf` bucket even while observations land during the scrape.
        let counts: Vec<(f64, u64)> = buckets
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(buckets.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = counts.iter().map(|(_, n)| n).sum();
        let sum = buckets.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &counts, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// `outcome` of `tickwork_fires_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum FireOutcome {
    queued,
    held,
    skipped_overlap,
    skipped_misfire,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FireLabels {
    outcome: FireOutcome,
}

/// `status` of `tickwork_executions_total`: the final statuses' names in the API.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
enum FinalStatus {
    SUCCEEDED,
    FAILED,
    EXPIRED,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExecutionLabels {
    status: FinalStatus,
}

/// `state` of `tickwork_queue_depth`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum QueueState {
    ready,
    scheduled,
    processing,
    retrying,
    failed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DepthLabels {
    state: QueueState,
}

/// Everything this process counts. The labelled counters are handles into their family,
/// taken once, so recording never looks a label set up.
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
    registry: Registry,
}

/// This process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        // The registry ends every help text with a period and every counter's name with
        // `_total`.
        let mut registry = Registry::default();
        let fires = Family::<FireLabels, Counter>::default();
        let fire = |outcome| fires.get_or_create_owned(&FireLabels { outcome });
        let executions = Family::<ExecutionLabels, Counter>::default();
        let execution = |status| executions.get_or_create_owned(&ExecutionLabels { status });
        let metrics = Self {
            fires_queued: fire(FireOutcome::queued),
            fires_held: fire(FireOutcome::held),
            fires_skipped_overlap: fire(FireOutcome::skipped_overlap),
            fires_skipped_misfire: fire(FireOutcome::skipped_misfire),
            executions_succeeded: execution(FinalStatus::SUCCEEDED),
            executions_failed: execution(FinalStatus::FAILED),
            executions_expired: execution(FinalStatus::EXPIRED),
            retries: Counter::default(),
            reaped: Counter::default(),
            dead_letters: Counter::default(),
            history_deleted: Counter::default(),
            history_partitions_dropped: Counter::default(),
            api_unauthorized: Counter::default(),
            api_wrong_keys_throttled: Counter::default(),
            fire_lag: Histogram::new(&SECONDS_BUCKETS),
            attempt_latency: Histogram::new(&SECONDS_BUCKETS),
            tick_pass: Histogram::new(&SECONDS_BUCKETS),
            tick_batch: Histogram::new(&SIZE_BUCKETS),
            registry: Registry::default(),
        };
        registry.register(
            "tickwork_fires",
            "Fires the tick recorded, by outcome",
            fires,
        );
        registry.register(
            "tickwork_executions",
            "Executions this process finished, by final status (EXPIRED: not started within \
             startingDeadlineSeconds, never sent)",
            executions,
        );
        metrics.register_counters(&mut registry);
        metrics.register_histograms(&mut registry);
        registry.register(
            "tickwork_tick_batch_jobs",
            "Jobs claimed per tick transaction",
            metrics.tick_batch.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// Registers the counters without labels.
    fn register_counters(&self, registry: &mut Registry) {
        for (name, help, counter) in [
            (
                "tickwork_retries",
                "Failed attempts scheduled again",
                &self.retries,
            ),
            (
                "tickwork_reaped",
                "Fires taken back from workers that lost their lease",
                &self.reaped,
            ),
            (
                "tickwork_dead_letters",
                "Fires that ended in the dead-letter list",
                &self.dead_letters,
            ),
            (
                "tickwork_history_deleted",
                "Executions deleted by the retention sweep",
                &self.history_deleted,
            ),
            (
                "tickwork_history_partitions_dropped",
                "History partitions (a UTC day of fires each) dropped past the retention period",
                &self.history_partitions_dropped,
            ),
            (
                "tickwork_api_unauthorized",
                "API requests answered 401: no key, a malformed Authorization header, or a \
                 wrong key",
                &self.api_unauthorized,
            ),
            (
                "tickwork_api_wrong_keys_throttled",
                "API requests answered 429 because their client address sent too many wrong \
                 keys (refused before the key was looked up)",
                &self.api_wrong_keys_throttled,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
    }

    /// Registers the histograms in seconds.
    fn register_histograms(&self, registry: &mut Registry) {
        for (name, help, histogram) in [
            (
                "tickwork_fire_lag",
                "From a fire's scheduled time to its request being sent",
                &self.fire_lag,
            ),
            (
                "tickwork_attempt_duration",
                "HTTP attempt latency",
                &self.attempt_latency,
            ),
            (
                "tickwork_tick_pass",
                "Duration of a tick pass",
                &self.tick_pass,
            ),
        ] {
            registry.register_with_unit(name, help, Unit::Seconds, histogram.clone());
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

impl Depths {
    /// A registry of one gauge family, `tickwork_queue_depth`, read at this scrape.
    fn registry(self) -> Registry {
        let depth = Family::<DepthLabels, Gauge<u64, AtomicU64>>::default();
        for (state, value) in [
            (QueueState::ready, self.ready),
            (QueueState::scheduled, self.scheduled),
            (QueueState::processing, self.processing),
            (QueueState::retrying, self.retrying),
            (QueueState::failed, self.failed),
        ] {
            depth.get_or_create(&DepthLabels { state }).set(value);
        }
        let mut registry = Registry::default();
        registry.register(
            "tickwork_queue_depth",
            "Items in the queue by state; scale workers on state=\"ready\"",
            depth,
        );
        registry
    }
}

/// How a scrape is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4: what scrapers read unless they ask for
    /// more.
    Prometheus,
    /// OpenMetrics 1.0 text: `# UNIT` lines, counter families named without `_total`, and
    /// a closing `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a scrape in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => prometheus_text::CONTENT_TYPE,
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// This process's metrics in the Prometheus text format, with queue depths when given.
pub fn render(depths: Option<Depths>) -> Result<String, std::fmt::Error> {
    render_as(Format::Prometheus, depths)
}

/// This process's metrics in `format`, with queue depths (first) when given.
pub fn render_as(format: Format, depths: Option<Depths>) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(8 * 1024);
    let depths = depths.map(Depths::registry);
    match format {
        Format::Prometheus => {
            if let Some(depths) = &depths {
                prometheus_text::encode(&mut out, depths)?;
            }
            prometheus_text::encode(&mut out, &METRICS.registry)?;
        }
        Format::OpenMetrics => {
            if let Some(depths) = &depths {
                text::encode_registry(&mut out, depths)?;
            }
            text::encode(&mut out, &METRICS.registry)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_encode_cumulative_buckets_with_todays_bounds() {
        let h = Histogram::new(&SECONDS_BUCKETS);
        h.observe(0.003);
        h.observe(0.2);
        h.observe(100.0);
        let mut registry = Registry::default();
        registry.register("x_seconds", "help", h);
        let mut out = String::new();
        prometheus_text::encode(&mut out, &registry).unwrap();
        let buckets: Vec<&str> = out
            .lines()
            .filter(|line| line.starts_with("x_seconds_bucket"))
            .collect();
        assert_eq!(
            buckets,
            [
                "x_seconds_bucket{le=\"0.001\"} 0",
                "x_seconds_bucket{le=\"0.0025\"} 0",
                "x_seconds_bucket{le=\"0.005\"} 1",
                "x_seconds_bucket{le=\"0.01\"} 1",
                "x_seconds_bucket{le=\"0.025\"} 1",
                "x_seconds_bucket{le=\"0.05\"} 1",
                "x_seconds_bucket{le=\"0.1\"} 1",
                "x_seconds_bucket{le=\"0.25\"} 2",
                "x_seconds_bucket{le=\"0.5\"} 2",
                "x_seconds_bucket{le=\"1\"} 2",
                "x_seconds_bucket{le=\"2.5\"} 2",
                "x_seconds_bucket{le=\"5\"} 2",
                "x_seconds_bucket{le=\"10\"} 2",
                "x_seconds_bucket{le=\"60\"} 2",
                "x_seconds_bucket{le=\"+Inf\"} 3",
            ],
            "{out}"
        );
        assert!(out.contains("\nx_seconds_sum 100.203\n"), "{out}");
        assert!(out.contains("\nx_seconds_count 3\n"), "{out}");
    }

    #[test]
    fn a_scrape_names_every_family_with_its_type_and_labels() {
        let text = render(Some(Depths {
            ready: 4,
            ..Depths::default()
        }))
        .unwrap();
        let help = |family: &str, help: &str| format!("# HELP {family} {help}");
        let kind = |family: &str, kind: &str| format!("# TYPE {family} {kind}");
        let mut expected = vec![
            help(
                "tickwork_queue_depth",
                "Items in the queue by state; scale workers on state=\"ready\".",
            ),
            kind("tickwork_queue_depth", "gauge"),
            "tickwork_queue_depth{state=\"ready\"} 4".into(),
            help(
                "tickwork_fires_total",
                "Fires the tick recorded, by outcome.",
            ),
            help(
                "tickwork_executions_total",
                "Executions this process finished, by final status (EXPIRED: not started \
                 within startingDeadlineSeconds, never sent).",
            ),
            help("tickwork_retries_total", "Failed attempts scheduled again."),
            help(
                "tickwork_api_wrong_keys_throttled_total",
                "API requests answered 429 because their client address sent too many wrong \
                 keys (refused before the key was looked up).",
            ),
            help(
                "tickwork_fire_lag_seconds",
                "From a fire's scheduled time to its request being sent.",
            ),
            help(
                "tickwork_tick_batch_jobs",
                "Jobs claimed per tick transaction.",
            ),
        ];
        for state in ["ready", "scheduled", "processing", "retrying", "failed"] {
            expected.push(format!("tickwork_queue_depth{{state=\"{state}\"}} "));
        }
        for outcome in ["queued", "held", "skipped_overlap", "skipped_misfire"] {
            expected.push(format!("tickwork_fires_total{{outcome=\"{outcome}\"}} "));
        }
        for status in ["SUCCEEDED", "FAILED", "EXPIRED"] {
            expected.push(format!("tickwork_executions_total{{status=\"{status}\"}} "));
        }
        for counter in [
            "tickwork_fires_total",
            "tickwork_executions_total",
            "tickwork_retries_total",
            "tickwork_reaped_total",
            "tickwork_dead_letters_total",
            "tickwork_history_deleted_total",
            "tickwork_history_partitions_dropped_total",
            "tickwork_api_unauthorized_total",
            "tickwork_api_wrong_keys_throttled_total",
        ] {
            expected.push(kind(counter, "counter"));
        }
        for counter in [
            "tickwork_retries_total",
            "tickwork_reaped_total",
            "tickwork_dead_letters_total",
            "tickwork_history_deleted_total",
            "tickwork_history_partitions_dropped_total",
            "tickwork_api_unauthorized_total",
            "tickwork_api_wrong_keys_throttled_total",
        ] {
            expected.push(format!("\n{counter} "));
        }
        for (histogram, last_bound) in [
            ("tickwork_fire_lag_seconds", "60"),
            ("tickwork_attempt_duration_seconds", "60"),
            ("tickwork_tick_pass_seconds", "60"),
            ("tickwork_tick_batch_jobs", "50000"),
        ] {
            expected.push(kind(histogram, "histogram"));
            expected.push(format!("{histogram}_bucket{{le=\"{last_bound}\"}} "));
            expected.push(format!("{histogram}_bucket{{le=\"+Inf\"}} "));
            expected.push(format!("\n{histogram}_sum "));
            expected.push(format!("\n{histogram}_count "));
        }
        for line in expected {
            assert!(text.contains(&line), "{line} missing from {text}");
        }
        // Classic text: no OpenMetrics-only lines, and every family once.
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        let mut families: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|line| line.split(' ').next())
            .collect();
        families.sort_unstable();
        assert_eq!(
            families,
            [
                "tickwork_api_unauthorized_total",
                "tickwork_api_wrong_keys_throttled_total",
                "tickwork_attempt_duration_seconds",
                "tickwork_dead_letters_total",
                "tickwork_executions_total",
                "tickwork_fire_lag_seconds",
                "tickwork_fires_total",
                "tickwork_history_deleted_total",
                "tickwork_history_partitions_dropped_total",
                "tickwork_queue_depth",
                "tickwork_reaped_total",
                "tickwork_retries_total",
                "tickwork_tick_batch_jobs",
                "tickwork_tick_pass_seconds",
            ]
        );
    }

    #[test]
    fn without_depths_there_is_no_queue_depth() {
        let text = render(None).unwrap();
        assert!(!text.contains("tickwork_queue_depth"), "{text}");
        assert!(
            text.contains("# TYPE tickwork_fires_total counter"),
            "{text}"
        );
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let text = render_as(Format::OpenMetrics, Some(Depths::default())).unwrap();
        for line in [
            "# TYPE tickwork_queue_depth gauge",
            "# TYPE tickwork_fires counter",
            "tickwork_fires_total{outcome=\"skipped_overlap\"} ",
            "tickwork_executions_total{status=\"SUCCEEDED\"} ",
            "# TYPE tickwork_fire_lag_seconds histogram",
            "# UNIT tickwork_fire_lag_seconds seconds",
            "tickwork_tick_batch_jobs_bucket{le=\"+Inf\"} ",
        ] {
            assert!(text.contains(line), "{line} missing from {text}");
        }
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    }
}

//! What the target received, against what the schedules owed it: fires missed, delivered
//! twice, and their lag.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context;
use chrono::DateTime;
use serde_json::json;
use tickwork::schedule::Schedule;

use crate::args::Overload;
use crate::target;
use crate::workload::Created;

/// The value at fraction `p` of `sorted` (nearest rank); 0 when empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// p50, p90, p99 and max of `sorted` (ms), to 0.1 ms.
pub fn lag_summary(sorted: &[f64]) -> serde_json::Value {
    let round = |v: f64| (v * 10.0).round() / 10.0;
    json!({
        "p50": round(percentile(sorted, 0.50)),
        "p90": round(percentile(sorted, 0.90)),
        "p99": round(percentile(sorted, 0.99)),
        "max": round(sorted.last().copied().unwrap_or(0.0)),
    })
}

/// The first arrival of one execution of the window.
pub struct First {
    pub scheduled_ms: i64,
    pub arrived_ms: i64,
    /// From the fire's time to its arrival.
    pub lag_ms: f64,
}

/// What the target received for the window `[t0_ms, t1_ms)`.
pub struct Deliveries {
    /// Fires the schedules owed the window.
    pub expected: usize,
    /// Executions that reached the target (first arrivals).
    pub firsts: Vec<First>,
    /// Arrivals beyond the first of their execution.
    pub duplicates: usize,
    /// Fires owed that no execution delivered.
    pub missed: usize,
    /// Fires of deactivated jobs at or after their deactivation (recorded ahead of it).
    pub after_drop: usize,
}

/// Expected fires per job (each active until its `until`, or the window's end) against
/// what the target received.
pub fn deliveries(
    created: &[Created],
    until: &HashMap<u128, i64>,
    arrivals: &[target::Arrival],
    t0: DateTime<chrono::Utc>,
    t1: DateTime<chrono::Utc>,
) -> anyhow::Result<Deliveries> {
    let (t0_ms, t1_ms) = (t0.timestamp_millis(), t1.timestamp_millis());
    let until_of = |job: u128| until.get(&job).copied().unwrap_or(t1_ms);
    // Expected fires, from the schedules themselves, per (cron, end of firing).
    let mut groups: HashMap<(&str, i64), usize> = HashMap::new();
    for job in created {
        *groups.entry((job.cron, until_of(job.id))).or_insert(0) += 1;
    }
    let mut expected = 0usize;
    for ((cron, end_ms), jobs) in groups {
        let schedule = Schedule::parse(cron, "UTC").context("bench cron")?;
        let span = ((end_ms - t0_ms) / 1000).max(0) as usize;
        let fires = schedule
            .upcoming(t0 - chrono::Duration::milliseconds(1), span + 1)
            .into_iter()
            .filter(|t| t.timestamp_millis() < end_ms)
            .count();
        expected += fires * jobs;
    }
    let mut first: HashMap<u128, First> = HashMap::with_capacity(arrivals.len());
    let mut fires: HashSet<(u128, i64)> = HashSet::with_capacity(arrivals.len());
    let mut after_drop: HashSet<u128> = HashSet::new();
    let mut received = 0usize;
    for a in arrivals
        .iter()
        .filter(|a| a.scheduled_ms >= t0_ms && a.scheduled_ms < t1_ms)
    {
        received += 1;
        let lag_ms = (a.arrived_us - a.scheduled_ms * 1000) as f64 / 1000.0;
        if first.get(&a.execution).is_none_or(|f| lag_ms < f.lag_ms) {
            first.insert(
                a.execution,
                First {
                    scheduled_ms: a.scheduled_ms,
                    arrived_ms: a.arrived_us / 1000,
                    lag_ms,
                },
            );
        }
        if a.scheduled_ms < until_of(a.job) {
            fires.insert((a.job, a.scheduled_ms));
        } else {
            after_drop.insert(a.execution);
        }
    }
    let firsts: Vec<First> = first.into_values().collect();
    Ok(Deliveries {
        expected,
        duplicates: received - firsts.len(),
        missed: expected.saturating_sub(fires.len()),
        after_drop: after_drop.len(),
        firsts,
    })
}

/// Lag p50 and p99 per minute of the window, by fire time.
pub fn lag_by_minute(firsts: &[First], t0_ms: i64) -> Vec<serde_json::Value> {
    let mut by_minute: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for f in firsts {
        by_minute
            .entry((f.scheduled_ms - t0_ms) / 60_000)
            .or_default()
            .push(f.lag_ms);
    }
    by_minute
        .into_iter()
        .map(|(minute, mut lags)| {
            lags.sort_by(|a, b| a.total_cmp(b));
            json!({
                "minute": minute + 1,
                "p50": (percentile(&lags, 0.50) * 10.0).round() / 10.0,
                "p99": (percentile(&lags, 0.99) * 10.0).round() / 10.0,
            })
        })
        .collect()
}

/// Executions reaching the target per second, per minute of the window, by arrival time
/// (a last, shorter minute divides by its own length); and how many arrived after the
/// window.
pub fn rate_by_minute(firsts: &[First], t0_ms: i64, secs: u64) -> (Vec<serde_json::Value>, usize) {
    let end_ms = t0_ms + secs as i64 * 1000;
    let mut by_minute: BTreeMap<i64, usize> =
        (0..secs.div_ceil(60) as i64).map(|m| (m, 0)).collect();
    let mut after = 0;
    for f in firsts {
        if f.arrived_ms >= end_ms {
            after += 1;
        } else {
            *by_minute
                .entry((f.arrived_ms - t0_ms).max(0) / 60_000)
                .or_default() += 1;
        }
    }
    let rates = by_minute
        .into_iter()
        .map(|(minute, n)| {
            let length = (secs as i64 - minute * 60).clamp(1, 60) as f64;
            json!({
                "minute": minute + 1,
                "executions_per_s": (n as f64 / length * 10.0).round() / 10.0,
            })
        })
        .collect();
    (rates, after)
}

/// The overload workload's two phases, by fire time: fires due, executions delivered for
/// them, and their lag.
pub fn phase_report(firsts: &[First], t0_ms: i64, phases: Overload) -> Vec<serde_json::Value> {
    let drop_ms = t0_ms + phases.secs as i64 * 1000;
    let end_ms = drop_ms + phases.settle_secs as i64 * 1000;
    [
        ("overload", phases.jobs, phases.secs, t0_ms, drop_ms),
        (
            "settle",
            phases.settle_jobs,
            phases.settle_secs,
            drop_ms,
            end_ms,
        ),
    ]
    .into_iter()
    .map(|(name, jobs, secs, from, to)| {
        let mut lags: Vec<f64> = firsts
            .iter()
            .filter(|f| f.scheduled_ms >= from && f.scheduled_ms < to)
            .map(|f| f.lag_ms)
            .collect();
        lags.sort_by(|a, b| a.total_cmp(b));
        json!({
            "phase": name,
            "jobs": jobs,
            "secs": secs,
            "fires_due_per_s": jobs,
            "delivered": lags.len(),
            "delivered_per_s": (lags.len() as f64 / secs as f64 * 10.0).round() / 10.0,
            "lag_ms": lag_summary(&lags),
        })
    })
    .collect()
}

//! The overload workload: more fires each second than the deployment can take, for a
//! while, then fewer; what builds up (executions waiting in PostgreSQL, items in Redis),
//! how long it takes to go once the load drops, and what it costs in memory.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::time::Instant;
use uuid::Uuid;

use crate::procs::memory_mib;
use crate::resp::{info_field, Redis};

/// How often each tickwork process's RSS is read.
const RSS_EVERY: Duration = Duration::from_secs(10);

/// The backlog at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Seconds since the window started.
    pub at_s: f64,
    /// QUEUED executions (including fires recorded ahead of their time).
    pub queued: i64,
    /// QUEUED executions more than a second past their time: the backlog proper (a fire
    /// of the current second may still be waiting for its claim).
    pub queued_late: i64,
    /// Length of the queue's ready list.
    pub ready: i64,
    /// Fires held in Redis for their time.
    pub upcoming: i64,
    /// Items taken by workers and not yet settled.
    pub processing: i64,
    /// `used_memory` of the whole Redis server, in bytes.
    pub redis_used_memory: i64,
}

/// What the sampler saw over the run.
#[derive(Debug, Default)]
pub struct Observed {
    /// One sample a second (fewer when a sample takes longer than that).
    pub samples: Vec<Sample>,
    /// Per process: its name and the RSS (MiB) read every [`RSS_EVERY`].
    pub rss: Vec<(String, Vec<f64>)>,
    /// Samples that could not be taken.
    pub failures: usize,
    /// How long each sample's count in PostgreSQL took, in ms (its cost to the run).
    pub count_ms: Vec<f64>,
}

/// Samples the backlog every `every`, half-way through a second of the window that starts
/// at `start` (on a second of the storage clock), until `until`, on a task of its own.
pub async fn observe(
    db: sqlx::PgPool,
    redis_url: &str,
    prefix: &str,
    pids: Vec<(String, u32)>,
    (start, until): (Instant, Instant),
    every: Duration,
) -> anyhow::Result<tokio::task::JoinHandle<Observed>> {
    let mut redis = Redis::connect(redis_url).await?;
    let keys = ["ready", "upcoming", "processing"].map(|k| format!("{prefix}:{k}"));
    Ok(tokio::spawn(async move {
        let mut observed = Observed {
            rss: pids
                .iter()
                .map(|(name, _)| (name.clone(), Vec::new()))
                .collect(),
            ..Observed::default()
        };
        let mut ticks = tokio::time::interval_at(start + Duration::from_millis(500), every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut next_rss = start;
        loop {
            let now = ticks.tick().await;
            if now >= until {
                break;
            }
            if now >= next_rss {
                for ((_, series), (_, pid)) in observed.rss.iter_mut().zip(&pids) {
                    series.push(memory_mib(*pid, "VmRSS:"));
                }
                next_rss += RSS_EVERY;
            }
            match sample(&db, &mut redis, &keys, (now - start).as_secs_f64()).await {
                Ok((sample, count_ms)) => {
                    observed.samples.push(sample);
                    observed.count_ms.push(count_ms);
                }
                Err(error) => {
                    if observed.failures == 0 {
                        eprintln!("tickwork-bench: a backlog sample failed: {error:#}");
                    }
                    observed.failures += 1;
                }
            }
        }
        observed
    }))
}

async fn sample(
    db: &sqlx::PgPool,
    redis: &mut Redis,
    [ready, upcoming, processing]: &[String; 3],
    at_s: f64,
) -> anyhow::Result<(Sample, f64)> {
    let counting = Instant::now();
    let (queued, queued_late): (i64, i64) = sqlx::query_as(
        "SELECT /* tickwork-bench */ count(*), \
             count(*) FILTER (WHERE scheduled_at < clock_timestamp() - interval '1 second') \
         FROM executions WHERE status = 'QUEUED'",
    )
    .fetch_one(db)
    .await?;
    let count_ms = counting.elapsed().as_secs_f64() * 1000.0;
    let replies = redis
        .query(&[
            &["LLEN", ready],
            &["ZCARD", upcoming],
            &["ZCARD", processing],
            &["INFO", "memory"],
        ])
        .await?;
    let int = |i: usize| replies.get(i).map(|r| r.int()).unwrap_or(0);
    let sample = Sample {
        at_s,
        queued,
        queued_late,
        ready: int(0),
        upcoming: int(1),
        processing: int(2),
        redis_used_memory: replies
            .get(3)
            .and_then(|r| info_field(r.text(), "used_memory"))
            .unwrap_or(0),
    };
    Ok((sample, count_ms))
}

/// How the load was dropped.
#[derive(Debug, Clone, Copy)]
pub struct Dropped {
    /// Seconds from the drop's instant to the last job's deactivation (negative when all
    /// were deactivated before it).
    pub completed_after_s: f64,
    /// Jobs deactivated before the tick had recorded all their fires before the drop
    /// (their unrecorded fires count as missed).
    pub forced: u64,
}

/// Deactivates `jobs` for the drop at `at`: each job as soon as the tick has recorded all
/// its fires before `at` (its `next_run_at` is at or past `at`), so the load offered is
/// exactly their fires before `at`. Called before `at` by more than the tick's look-ahead,
/// it stops them before the tick records fires past `at` ahead of time. After `limit`, the
/// rest at once.
///
/// This is a direct `UPDATE` of the benchmark's own database, not `PATCH /api/v1/jobs/{id}`:
/// a PATCH to `isActive: false` also cancels the job's waiting fires, which would empty the
/// backlog whose draining this workload measures, and thousands of PATCHes would spread the
/// drop over seconds.
pub async fn drop_load(
    db: &sqlx::PgPool,
    jobs: &[Uuid],
    at: DateTime<Utc>,
    limit: Duration,
) -> anyhow::Result<Dropped> {
    const DEACTIVATE: &str =
        "UPDATE /* tickwork-bench */ jobs SET is_active = false, next_run_at = NULL \
         WHERE id = ANY($1) AND is_active AND ($2::timestamptz IS NULL OR next_run_at >= $2) \
         RETURNING id";
    let deadline = Instant::now() + limit;
    let mut left: HashSet<Uuid> = jobs.iter().copied().collect();
    let mut forced = 0;
    while !left.is_empty() {
        let late = Instant::now() > deadline;
        let ids: Vec<Uuid> = left.iter().copied().collect();
        let done: Vec<Uuid> = sqlx::query_scalar(DEACTIVATE)
            .bind(&ids)
            .bind((!late).then_some(at))
            .fetch_all(db)
            .await?;
        for id in &done {
            left.remove(id);
        }
        if late {
            forced = done.len() as u64;
            break;
        }
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(Dropped {
        completed_after_s: since(db, at).await?,
        forced,
    })
}

/// Seconds from `at` to now on the storage clock.
async fn since(db: &sqlx::PgPool, at: DateTime<Utc>) -> anyhow::Result<f64> {
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(db)
        .await?;
    Ok((now - at).num_milliseconds() as f64 / 1000.0)
}

/// Seconds from `from_s` until the backlog (QUEUED and late) fell under `threshold` for good
/// (it stayed under until the last sample); `None` if it was not under it at the end.
pub fn drain_secs(samples: &[Sample], from_s: f64, threshold: i64) -> Option<f64> {
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at_s >= from_s).collect();
    if after.last()?.queued_late >= threshold {
        return None;
    }
    let drained_at = match after.iter().rposition(|s| s.queued_late >= threshold) {
        Some(i) => after[i + 1].at_s,
        None => return Some(0.0),
    };
    Some(((drained_at - from_s) * 10.0).round() / 10.0)
}

/// The report of what the sampler saw.
pub fn report(observed: &Observed, drop_at_s: f64, threshold: i64, dropped: Dropped) -> Value {
    let samples = &observed.samples;
    let peak = |f: fn(&Sample) -> i64| samples.iter().map(f).max().unwrap_or(0);
    // The first sample at the peak.
    let peak_late = samples
        .iter()
        .fold(None::<&Sample>, |best, s| match best {
            Some(b) if b.queued_late >= s.queued_late => Some(b),
            _ => Some(s),
        })
        .copied()
        .unwrap_or_default();
    let mib = |bytes: i64| (bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0;
    let round = |v: f64| (v * 10.0).round() / 10.0;
    json!({
        "drop": {
            "at_s": drop_at_s,
            "completed_after_s": dropped.completed_after_s,
            "forced_jobs": dropped.forced,
        },
        "backlog_peak": {
            "queued": peak(|s| s.queued),
            "queued_late": peak_late.queued_late,
            "queued_late_at_s": round(peak_late.at_s),
            "redis_ready": peak(|s| s.ready),
            "redis_upcoming": peak(|s| s.upcoming),
            "redis_processing": peak(|s| s.processing),
        },
        "drain_threshold_queued_late": threshold,
        "drain_s_after_drop": drain_secs(samples, drop_at_s, threshold),
        "queued_late_at_end": samples.last().map(|s| s.queued_late),
        "redis_used_memory_mib": {
            "start": mib(samples.first().map(|s| s.redis_used_memory).unwrap_or(0)),
            "peak": mib(peak(|s| s.redis_used_memory)),
        },
        "rss_mib_every_10s": observed.rss.iter().map(|(name, series)| json!({
            "process": name,
            "peak": round(series.iter().copied().fold(0.0, f64::max)),
            "last": round(series.last().copied().unwrap_or(0.0)),
            "samples": series.iter().map(|v| round(*v)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "samples_failed": observed.failures,
        "backlog_count_ms": {
            "mean": round(observed.count_ms.iter().sum::<f64>() / observed.count_ms.len().max(1) as f64),
            "max": round(observed.count_ms.iter().copied().fold(0.0, f64::max)),
        },
        "samples": samples.iter().map(|s| json!({
            "t": round(s.at_s),
            "queued": s.queued,
            "queued_late": s.queued_late,
            "ready": s.ready,
            "upcoming": s.upcoming,
            "processing": s.processing,
            "redis_used_memory_mib": mib(s.redis_used_memory),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(at_s: f64, queued_late: i64) -> Sample {
        Sample {
            at_s,
            queued_late,
            ..Sample::default()
        }
    }

    #[test]
    fn drained_once_it_stays_under() {
        let samples = [
            due(9.0, 900),
            due(10.0, 800),
            due(11.0, 10),
            due(12.0, 70),
            due(13.0, 5),
            due(14.0, 0),
        ];
        assert_eq!(drain_secs(&samples, 10.0, 50), Some(3.0));
        assert_eq!(drain_secs(&samples[4..], 10.0, 50), Some(0.0));
        assert_eq!(drain_secs(&samples[..4], 10.0, 50), None);
        assert_eq!(drain_secs(&[], 10.0, 50), None);
    }
}

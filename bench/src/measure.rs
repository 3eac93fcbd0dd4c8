//! One run: the deployment started and its jobs created, a window of whole seconds of the
//! storage clock observed, everything stopped, and the summary printed.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::args::{Args, Overload, Workload};
use crate::deliveries::{deliveries, Deliveries};
use crate::deploy::{deploy, server_pids, wait_healthy, Deployment, Setup};
use crate::overload;
use crate::print::print_summary;
use crate::procs::memory_mib;
use crate::rows::Rows;
use crate::summary::{summary, History};
use crate::target::Target;
use crate::usage::{scrape, statements_from_now, top_statements, Usage};
use crate::workload::{create_jobs, Created};

/// The tick's counter of the history rows it deleted.
const DELETED: &str = "tickwork_history_deleted_total";

/// Deploys on `setup`, measures a window of `--duration` seconds, stops everything and
/// prints the summary; the processes' logs stay in a directory named with `suffix`.
pub async fn measure(args: &Args, setup: &Setup, suffix: &str) -> anyhow::Result<()> {
    let log_dir = std::env::temp_dir().join(format!("tickwork-bench-{suffix}"));
    std::fs::create_dir_all(&log_dir)?;
    let target = Target::start().await?;
    let (rows, mut deployment) = deploy(args, setup, &target, &log_dir).await?;
    let client = reqwest::Client::new();
    let created = prepare(args, &client, &deployment, &target).await?;
    let window = Window::open(&rows, args.duration).await?;
    let observed = observe(args, setup, &rows, &client, &deployment, &created, &window).await?;
    finish(&rows, &mut deployment, window.t1).await?;
    let got = delivered(
        args,
        &created,
        &target,
        &window,
        observed.overload.is_some(),
    )?;
    let history = History::read(&rows, &window).await?;
    let summary = summary(args, setup, &window, &observed, &got, &history, &log_dir);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

/// The window measured: `[t0, t1)` on the storage clock.
pub struct Window {
    pub t0: DateTime<Utc>,
    pub t1: DateTime<Utc>,
    /// When `t0` came, on this process's clock.
    pub started: Instant,
}

impl Window {
    /// The window of `secs` seconds from the next whole second of the storage clock;
    /// returns once it has started.
    async fn open(rows: &Rows, secs: u64) -> anyhow::Result<Self> {
        let now = rows.clock().await?;
        let t0 = DateTime::from_timestamp(now.timestamp() + 1, 0).context("clock out of range")?;
        let t1 = t0 + chrono::Duration::seconds(secs as i64);
        tokio::time::sleep((t0 - now).to_std().unwrap_or_default()).await;
        Ok(Self {
            t0,
            t1,
            started: Instant::now(),
        })
    }
}

/// Waits for the API, creates the jobs and lets them fire for `--warmup` seconds.
async fn prepare(
    args: &Args,
    client: &reqwest::Client,
    deployment: &Deployment,
    target: &Target,
) -> anyhow::Result<Vec<Created>> {
    wait_healthy(client, &deployment.api_url).await?;
    let started = std::time::Instant::now();
    let created = create_jobs(args, client, &deployment.api_url, &target.url).await?;
    eprintln!(
        "created {} jobs in {:.1} s; warming up {} s",
        created.len(),
        started.elapsed().as_secs_f64(),
        args.warmup
    );
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    Ok(created)
}

/// What was read around the window, before the deployment stops.
pub struct Observation {
    /// (name, pid) of every tickwork process.
    pub pids: Vec<(String, u32)>,
    /// The other processes whose CPU is reported ([`server_pids`]).
    pub servers: Vec<(String, Vec<u32>)>,
    pub before: Usage,
    pub after: Usage,
    /// Each process's RSS (MiB) at the end of every minute of the window; empty for the
    /// overload workload, which samples its own every 10 s.
    pub rss_by_minute: Vec<Vec<f64>>,
    pub overload: Option<OverloadRun>,
    /// The tick's deleted history rows at the window's start and end.
    pub deleted: (Option<f64>, Option<f64>),
    /// With `--old-history`: the fires left older than two days at the window's end.
    pub old_history_left: Option<i64>,
    /// With `pg_stat_statements`: the statements that took the most time in the window.
    pub top: Option<Vec<serde_json::Value>>,
}

/// Reads the processes' usage, the tick's deletions and `pg_stat_statements` around the
/// window, and returns at its end: in between, reads each process's RSS every minute, or
/// runs the overload workload's phases.
async fn observe(
    args: &Args,
    setup: &Setup,
    rows: &Rows,
    client: &reqwest::Client,
    deployment: &Deployment,
    created: &[Created],
    window: &Window,
) -> anyhow::Result<Observation> {
    let pids = deployment.pids();
    let servers = server_pids(setup);
    let before = Usage::read(&pids, &servers);
    let statements_conn = statements_from_now(setup).await?;
    let deleted_start = scrape(client, &deployment.tick_metrics, DELETED).await;
    let (rss_by_minute, overload) = if args.workload == Workload::Overload {
        let run = run_overload(args, setup, rows, created, &pids, window).await?;
        (Vec::new(), Some(run))
    } else {
        let end = window.started + Duration::from_secs(args.duration);
        (rss_each_minute(&pids, window.started, end).await, None)
    };
    let deleted_end = scrape(client, &deployment.tick_metrics, DELETED).await;
    let after = Usage::read(&pids, &servers);
    let old_history_left = if args.old_history > 0 {
        Some(rows.older_than_two_days(rows.clock().await?).await?)
    } else {
        None
    };
    let top = top_statements(statements_conn, setup).await?;
    Ok(Observation {
        pids,
        servers,
        before,
        after,
        rss_by_minute,
        overload,
        deleted: (deleted_start, deleted_end),
        old_history_left,
        top,
    })
}

/// Each process's RSS (MiB, to 0.1) at the end of every minute from `start` to `end`, the
/// last minute cut at `end`.
async fn rss_each_minute(pids: &[(String, u32)], start: Instant, end: Instant) -> Vec<Vec<f64>> {
    let mut rss_by_minute = Vec::new();
    let mut minute = start;
    while minute < end {
        minute = (minute + Duration::from_secs(60)).min(end);
        tokio::time::sleep_until(minute).await;
        rss_by_minute.push(
            pids.iter()
                .map(|(_, pid)| (memory_mib(*pid, "VmRSS:") * 10.0).round() / 10.0)
                .collect(),
        );
    }
    rss_by_minute
}

/// What the target received for the window; jobs deactivated after the overload's first
/// phase were expected to fire until then.
fn delivered(
    args: &Args,
    created: &[Created],
    target: &Target,
    window: &Window,
    overloaded: bool,
) -> anyhow::Result<Deliveries> {
    let until: HashMap<u128, i64> = if overloaded {
        let drop_ms = drop_instant(window.t0, args.overload).timestamp_millis();
        created
            .iter()
            .filter(|c| c.index >= args.overload.settle_jobs)
            .map(|c| (c.id, drop_ms))
            .collect()
    } else {
        HashMap::new()
    };
    deliveries(created, &until, &target.arrivals(), window.t0, window.t1)
}

/// What the overload workload observed.
pub struct OverloadRun {
    pub observed: overload::Observed,
    pub dropped: overload::Dropped,
}

/// The overload workload's window: samples the backlog from its start, drops the load after
/// the first phase, and returns at the window's end.
async fn run_overload(
    args: &Args,
    setup: &Setup,
    rows: &Rows,
    created: &[Created],
    pids: &[(String, u32)],
    window: &Window,
) -> anyhow::Result<OverloadRun> {
    let (t0, started) = (window.t0, window.started);
    let (Setup::Servers { prefix, .. }, Rows::Postgres(db)) = (setup, rows) else {
        bail!("--workload overload needs --backend servers");
    };
    let phases = args.overload;
    let end = started + Duration::from_secs(args.duration);
    let sampler = overload::observe(
        db.clone(),
        &args.redis_url,
        prefix,
        pids.to_vec(),
        (started, end),
        Duration::from_secs(args.backlog_every),
    )
    .await
    .context("starting the backlog sampler")?;
    // Jobs leave from before the drop by more than the tick's look-ahead, each once its
    // fires before the drop are recorded: none is recorded ahead past the drop.
    let lead = scheduler_lookahead(args) + Duration::from_secs(2);
    let drop_at = started + Duration::from_secs(phases.secs);
    tokio::time::sleep_until(drop_at.checked_sub(lead).unwrap_or(started).max(started)).await;
    let leaving: Vec<uuid::Uuid> = created
        .iter()
        .filter(|c| c.index >= phases.settle_jobs)
        .map(|c| uuid::Uuid::from_u128(c.id))
        .collect();
    let dropped = overload::drop_load(
        db,
        &leaving,
        drop_instant(t0, phases),
        lead + Duration::from_secs(phases.settle_secs),
    )
    .await
    .context("deactivating jobs after the first phase")?;
    eprintln!(
        "deactivated {} jobs, the last {:+.1} s from the end of the first phase",
        leaving.len(),
        dropped.completed_after_s
    );
    tokio::time::sleep_until(end).await;
    let observed = sampler.await.context("the backlog sampler stopped")?;
    Ok(OverloadRun { observed, dropped })
}

/// The tick's `SCHEDULER_LOOKAHEAD`: as given with `--env`, else tickwork's default (2 s).
fn scheduler_lookahead(args: &Args) -> Duration {
    args.env
        .iter()
        .rev()
        .find(|(k, _)| k == "SCHEDULER_LOOKAHEAD")
        .and_then(|(_, v)| tickwork::config::parse_duration(v))
        .unwrap_or(Duration::from_secs(2))
}

/// The end of the overload workload's first phase.
fn drop_instant(t0: DateTime<Utc>, phases: Overload) -> DateTime<Utc> {
    t0 + chrono::Duration::seconds(phases.secs as i64)
}

/// Stops firing once every fire of the window is recorded (a tick running late may not
/// have recorded the last seconds yet: clearing those jobs now would drop fires the
/// benchmark then counts as missed), while the ticks keep releasing fires recorded ahead
/// and sweeping; lets the window's fires finish, then stops everything.
async fn finish(rows: &Rows, deployment: &mut Deployment, t1: DateTime<Utc>) -> anyhow::Result<()> {
    let settle_deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let unrecorded = rows.stop_firing_from(t1).await?;
        if unrecorded == 0 || Instant::now() > settle_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let open = rows.open_before(t1).await?;
        if open == 0 || Instant::now() > settle_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for tick in &mut deployment.ticks {
        tick.stop(Duration::from_secs(5)).await;
    }
    for worker in &mut deployment.workers {
        worker.stop(Duration::from_secs(10)).await;
    }
    deployment.api.stop(Duration::from_secs(5)).await;
    Ok(())
}

//! The run's summary, one JSON value: what was asked, what was delivered and recorded, and
//! what it cost. Its keys are compared against earlier runs: keep them.

use std::path::Path;

use serde_json::{json, Value};

use crate::args::{Args, Cluster, Workload};
use crate::deliveries::{lag_by_minute, lag_summary, phase_report, rate_by_minute, Deliveries};
use crate::deploy::{Server, Setup};
use crate::measure::{Observation, OverloadRun, Window};
use crate::overload;
use crate::rows::Rows;
use crate::usage::Usage;

/// The window's executions as the history has them.
pub struct History {
    /// Executions recorded for the window's fires.
    recorded: i64,
    succeeded: i64,
    /// Attempt rows written for them.
    attempts: i64,
    /// Executions by final status.
    statuses: serde_json::Map<String, Value>,
}

impl History {
    /// Reads it once the window's fires have finished.
    pub async fn read(rows: &Rows, window: &Window) -> anyhow::Result<Self> {
        let (recorded, succeeded, attempts) = rows.window(window.t0, window.t1).await?;
        let statuses = rows
            .statuses(window.t0, window.t1)
            .await?
            .into_iter()
            .map(|(status, n)| (status, json!(n)))
            .collect();
        Ok(Self {
            recorded,
            succeeded,
            attempts,
            statuses,
        })
    }
}

/// The summary of a run; rates are per second of the window, to 0.1.
pub fn summary(
    args: &Args,
    setup: &Setup,
    window: &Window,
    observed: &Observation,
    got: &Deliveries,
    history: &History,
    log_dir: &Path,
) -> Value {
    let secs = args.duration as f64;
    let per_s = |n: f64| (n / secs * 10.0).round() / 10.0;
    let t0_ms = window.t0.timestamp_millis();
    let (rate_by_minute, after_window) = rate_by_minute(&got.firsts, t0_ms, args.duration);
    let mut lags: Vec<f64> = got.firsts.iter().map(|f| f.lag_ms).collect();
    lags.sort_by(|a, b| a.total_cmp(b));
    let delivered = got.firsts.len();
    let server = match setup {
        Setup::Servers { server, .. } => Some(server),
        Setup::Embedded { .. } => None,
    };
    let overload = (observed.overload.as_ref()).map(|run| overload_report(args, run, got, t0_ms));
    json!({
        "backend": format!("{:?}", args.backend),
        "cluster": server.map(|s| format!("{:?}", s.cluster)),
        "postgres_settings": server.map(|s| s.settings.clone()),
        "workload": format!("{:?}", args.workload),
        "jobs": args.jobs,
        "registered_idle_jobs": if args.workload == Workload::Registered { args.registered } else { 0 },
        "execution_type": args.kind.name(),
        "deadline_s": args.deadline,
        "duration_s": args.duration,
        "workers": args.workers,
        "pool_size": args.pool,
        "ticks": args.ticks,
        "fires_due_per_s": per_s(got.expected as f64),
        "fires_due": got.expected,
        "executions_per_s_at_target": per_s(delivered as f64),
        "executions_per_s_in_history": per_s(history.succeeded as f64),
        "delivered": delivered,
        "delivered_after_window": after_window,
        "succeeded_in_history": history.succeeded,
        "missed_fires": got.missed,
        "duplicate_deliveries": got.duplicates,
        "executions_by_status": history.statuses,
        "lag_ms": lag_summary(&lags),
        "lag_ms_by_minute": lag_by_minute(&got.firsts, t0_ms),
        "executions_per_s_by_minute": rate_by_minute,
        "history_rows_written": history.recorded + history.attempts,
        "retention_s": args.retention,
        "old_history_left": observed.old_history_left,
        "history_deleted_per_s": match observed.deleted {
            (Some(a), Some(b)) if args.retention.is_some() => Some(per_s(b - a)),
            _ => None,
        },
        "overload": overload,
        "top_statements": observed.top,
        "top_statements_note": statements_note(server),
        "processes": processes(observed, secs),
        "logs": log_dir.display().to_string(),
    })
}

/// Why the summary has no top statements, when it has none.
fn statements_note(server: Option<&Server>) -> Option<&'static str> {
    match server {
        Some(Server {
            statements: true, ..
        }) => None,
        Some(Server {
            cluster: Cluster::Own,
            ..
        }) => Some("pg_stat_statements is not installed for this server"),
        Some(_) => Some("only with --cluster own"),
        None => None,
    }
}

/// Per process over the window of `secs` seconds: CPU in cores and, for the tickwork
/// processes, RSS in MiB; then the servers' CPU.
fn processes(observed: &Observation, secs: f64) -> Vec<Value> {
    let Observation { before, after, .. } = observed;
    let cores = |cpu: f64| (cpu / secs * 100.0).round() / 100.0;
    let mib = |rss: f64| (rss * 10.0).round() / 10.0;
    let tickwork = observed.pids.iter().enumerate().map(|(i, (name, _))| {
        json!({
            "process": name,
            "cpu_cores": cores(after.cpu[i] - before.cpu[i]),
            "rss_mib_start": mib(before.rss[i]),
            "rss_mib_end": mib(after.rss[i]),
            "rss_mib_peak": mib(after.rss_peak[i]),
            "rss_mib_by_minute": observed.rss_by_minute.iter().map(|minute| minute[i]).collect::<Vec<_>>(),
        })
    });
    let servers = observed.servers.iter().enumerate().map(|(i, (name, _))| {
        json!({
            "process": name,
            "cpu_cores": cores(Usage::server_delta(before, after, i)),
        })
    });
    tickwork.chain(servers).collect()
}

/// The overload workload's report ([`overload::report`]) with its phases and the fires of
/// the deactivated jobs delivered after the drop.
fn overload_report(args: &Args, run: &OverloadRun, got: &Deliveries, t0_ms: i64) -> Value {
    let threshold = (args.overload.settle_jobs as i64 / 100).max(1);
    let mut report = overload::report(
        &run.observed,
        args.overload.secs as f64,
        threshold,
        run.dropped,
    );
    report["phases"] = json!(phase_report(&got.firsts, t0_ms, args.overload));
    report["fires_of_deactivated_jobs_after_the_drop"] = json!(got.after_drop);
    report
}

//! The command line, as types: its help and its errors come from them; [`Args::check`]
//! refuses the combinations that cannot run.

use std::path::PathBuf;

use anyhow::bail;
use clap::builder::RangedU64ValueParser;
use clap::{Parser, ValueEnum};

use crate::procs;

/// tickwork-bench: measure a tickwork deployment end to end.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tickwork-bench",
    bin_name = "tickwork-bench",
    args_override_self = true
)]
pub struct Args {
    /// What is deployed.
    #[arg(long, value_name = "B", value_enum, default_value_t = Backend::Servers)]
    pub backend: Backend,
    /// Which PostgreSQL server holds the benchmark's database; either way its settings are
    /// read with SHOW and printed.
    #[arg(long, value_name = "C", value_enum, default_value_t = Cluster::Machine)]
    pub cluster: Cluster,
    /// PostgreSQL server binaries for --cluster own (default: the newest
    /// /usr/lib/postgresql/*/bin); run as the postgres user when root.
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// A postgresql.conf setting for --cluster own, over the benchmark's (repeatable).
    #[arg(long, value_name = "K=V", value_parser = key_value)]
    pub pg_set: Vec<(String, String)>,
    /// Firing jobs.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub jobs: usize,
    /// The jobs' schedules, and what else is in the table.
    #[arg(long, value_name = "W", value_enum, default_value_t = Workload::EverySecond)]
    pub workload: Workload,
    /// Idle jobs also in the table (registered workload).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub registered: usize,
    #[command(flatten)]
    pub overload: Overload,
    /// Overload workload: seconds between backlog samples.
    ///
    /// Each sample counts the QUEUED rows, which costs PostgreSQL time when they are many
    /// (the summary says how long the counts took).
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = at_least_one::<u64>())]
    pub backlog_every: u64,
    /// startingDeadlineSeconds of every job created (the running tickwork must accept the
    /// field).
    ///
    /// Fires that expire are not delivered, so they count as missed at the target and
    /// appear by status.
    #[arg(long, value_name = "S")]
    pub deadline: Option<u64>,
    /// The execution type of the jobs created.
    #[arg(
        long = "type",
        value_name = "T",
        value_enum,
        default_value_t = ExecutionKind::AtLeastOnce
    )]
    pub kind: ExecutionKind,
    /// Seconds measured.
    #[arg(long, value_name = "S", default_value_t = 60, value_parser = at_least_one::<u64>())]
    pub duration: u64,
    /// Seconds before measuring.
    #[arg(long, value_name = "S", default_value_t = 5)]
    pub warmup: u64,
    /// Worker processes.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = at_least_one::<usize>())]
    pub workers: usize,
    /// WORKER_POOL_SIZE of each worker (default: not set, tickwork's default).
    #[arg(long, value_name = "N", value_parser = at_least_one::<usize>())]
    pub pool: Option<usize>,
    /// Tick processes.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = at_least_one::<usize>())]
    pub ticks: usize,
    /// DB_MAX_CONNECTIONS of each process (default: not set).
    #[arg(long, value_name = "N", value_parser = at_least_one::<u32>())]
    pub db_connections: Option<u32>,
    /// HISTORY_RETENTION for the tick, in seconds (reports the deletion rate).
    #[arg(long, value_name = "S")]
    pub retention: Option<u64>,
    /// Before the run, N finished fires of three days ago (one day's partition).
    ///
    /// HISTORY_RETENTION is set so that day passes it about a minute after the processes
    /// start, and the report says whether its partition was dropped during the run
    /// (replaces --retention).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub old_history: u64,
    /// Extra environment for the processes (repeatable).
    #[arg(long, value_name = "K=V", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// PostgreSQL admin URL.
    #[arg(
        long,
        value_name = "URL",
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
    /// Redis URL.
    #[arg(
        long,
        value_name = "URL",
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Where tickwork-api, -tick, -worker and tickwork-local are.
    #[arg(long, value_name = "DIR", default_value_os_t = procs::default_bin_dir())]
    pub bin_dir: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Keep the benchmark database (and, with --cluster own, leave the cluster running).
    #[arg(long)]
    pub keep: bool,
}

/// What the benchmark deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// tickwork-api, -tick and -worker over PostgreSQL and Redis.
    Servers,
    /// One tickwork-local over an SQLite file and its in-memory queue (--workers, --ticks,
    /// --database-url and --redis-url do not apply).
    Embedded,
}

/// Which PostgreSQL server holds the benchmark's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cluster {
    /// The server at --database-url, as it is configured.
    Machine,
    /// A cluster of the benchmark's own: initdb in a temporary
    /// directory, configured like a production server for this machine (autovacuum on,
    /// shared_buffers a quarter of the memory up to 4 GB, effective_cache_size half of it,
    /// max_wal_size 8GB, min_wal_size 2GB, checkpoint_timeout 15min, wal_compression on,
    /// max_connections 200, fsync and synchronous_commit on); started on a free port,
    /// stopped and removed at the end unless --keep; with pg_stat_statements, the
    /// statements that took the most time during the window are printed.
    Own,
}

/// The jobs' schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Every job fires every second (* * * * * *).
    EverySecond,
    /// The jobs cycle through six crons, from every second to every minute.
    Mix,
    /// Every second, with --registered idle jobs (one fire a year) also in the table.
    Registered,
    /// More jobs than the deployment can take, then fewer (--overload-jobs,
    /// --settle-jobs): reports the backlog and its draining.
    Overload,
}

/// The `executionType` of the jobs created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutionKind {
    /// Every job AT_LEAST_ONCE.
    AtLeastOnce,
    /// Every job AT_MOST_ONCE.
    AtMostOnce,
    /// Every other job AT_MOST_ONCE.
    Mixed,
}

impl ExecutionKind {
    /// The name on the command line, which the summary reports.
    pub fn name(self) -> &'static str {
        match self {
            ExecutionKind::AtLeastOnce => "at-least-once",
            ExecutionKind::AtMostOnce => "at-most-once",
            ExecutionKind::Mixed => "mixed",
        }
    }
}

/// The phases of the overload workload.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Overload {
    /// Overload workload: jobs on * * * * * * in the first phase, e.g. twice what the
    /// deployment can take (replaces --jobs).
    #[arg(
        id = "overload_jobs",
        long = "overload-jobs",
        value_name = "N",
        default_value_t = 20_000
    )]
    pub jobs: usize,
    /// Overload workload: length of the first phase, in seconds.
    #[arg(
        id = "overload_phase_secs",
        long = "overload-phase-secs",
        value_name = "S",
        default_value_t = 120,
        value_parser = at_least_one::<u64>()
    )]
    pub secs: u64,
    /// Overload workload: jobs left firing after the first phase; the others are
    /// deactivated directly in the database once their fires of the first phase are
    /// recorded, so their backlog still runs.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub settle_jobs: usize,
    /// Overload workload: length of the second phase, in seconds; the window is both
    /// phases (replaces --duration).
    ///
    /// Reports the backlog (QUEUED executions, the Redis ready/upcoming/processing
    /// lengths), its peak, how long after the drop it took to drain (QUEUED over 1 s late
    /// under 1 % of the second phase's fires per second, until the end), each process's
    /// RSS every 10 s, Redis used_memory, and the executions by final status.
    #[arg(long, value_name = "S", default_value_t = 180, value_parser = at_least_one::<u64>())]
    pub settle_secs: u64,
}

impl Args {
    /// Refuses combinations that cannot run; the overload workload's phases set the job
    /// count and the window.
    pub fn check(&mut self) -> anyhow::Result<()> {
        if self.backend == Backend::Embedded && self.cluster == Cluster::Own {
            bail!("--cluster own needs --backend servers");
        }
        if self.workload == Workload::Overload {
            if self.backend == Backend::Embedded {
                bail!(
                    "--workload overload reads the backlog in PostgreSQL and Redis; \
                     use --backend servers"
                );
            }
            if self.overload.settle_jobs > self.overload.jobs {
                bail!(
                    "--settle-jobs ({}) is more than --overload-jobs ({})",
                    self.overload.settle_jobs,
                    self.overload.jobs
                );
            }
            self.jobs = self.overload.jobs;
            self.duration = self.overload.secs + self.overload.settle_secs;
        }
        if self.backend == Backend::Embedded && self.workload == Workload::Registered {
            bail!("--workload registered inserts through PostgreSQL; use --backend servers");
        }
        Ok(())
    }
}

/// A whole number of 1 or more that fits `T` (0 is refused: it would mean no process, no
/// window, no sample).
fn at_least_one<T: TryFrom<u64>>() -> RangedU64ValueParser<T> {
    RangedU64ValueParser::new().range(1..)
}

/// `KEY=VALUE`, split at the first `=`.
fn key_value(pair: &str) -> Result<(String, String), String> {
    let (k, v) = pair
        .split_once('=')
        .ok_or_else(|| format!("{pair:?} is not KEY=VALUE"))?;
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(line: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("tickwork-bench").chain(line.iter().copied()))
    }

    #[test]
    fn the_command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn pairs_accumulate_and_single_values_are_the_last_given() {
        let args = parse(&[
            "--env", "A=1", "--env", "B=2=3", "--jobs", "5", "--jobs", "7",
        ])
        .unwrap();
        assert_eq!(
            args.env,
            [("A".into(), "1".into()), ("B".into(), "2=3".into())]
        );
        assert_eq!(args.jobs, 7);
        assert!(parse(&["--env", "A"]).is_err());
    }

    #[test]
    fn counts_of_processes_and_seconds_start_at_one() {
        for option in [
            "--workers",
            "--pool",
            "--ticks",
            "--duration",
            "--settle-secs",
        ] {
            assert!(parse(&[option, "0"]).is_err(), "{option} 0");
            assert!(parse(&[option, "1"]).is_ok(), "{option} 1");
        }
    }

    #[test]
    fn the_overload_workload_sets_the_jobs_and_the_window() {
        let mut args = parse(&["--workload", "overload", "--overload-phase-secs", "10"]).unwrap();
        args.check().unwrap();
        assert_eq!((args.jobs, args.duration), (20_000, 190));
        let mut args = parse(&["--cluster", "own", "--backend", "embedded"]).unwrap();
        let error = args.check().unwrap_err().to_string();
        assert_eq!(error, "--cluster own needs --backend servers");
    }
}

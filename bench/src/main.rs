//! `tickwork-bench`: starts a tickwork deployment (api, ticks, workers) against PostgreSQL
//! and Redis, or `tickwork-local` on its embedded backend (`--backend embedded`), points
//! jobs at a local target, measures a window of fires end to end, and prints one summary.
//! Everything it starts, it stops; its database (or file) is removed after.
//!
//! The PostgreSQL server is the machine's (`--cluster machine`) or a cluster of the
//! benchmark's own configured like a production server, with `pg_stat_statements`
//! (`--cluster own`, [`cluster`]). `--workload overload` offers more fires than the
//! deployment can take, then fewer, and reports the backlog and its draining ([`overload`]).
//!
//! ```text
//! cargo build --release --workspace
//! ./target/release/tickwork-bench --jobs 1000 --duration 60 --workers 2 --pool 200
//! ./target/release/tickwork-bench --cluster own --workload overload
//! ```

mod cluster;
mod overload;
mod procs;
mod resp;
mod rows;
mod statements;
mod target;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::DateTime;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tickwork::schedule::Schedule;
use tickwork::store::PgStore;

use cluster::OwnCluster;
use procs::{cpu_seconds, memory_mib, pids_named, Proc};
use rows::Rows;
use target::Target;

const USAGE: &str = "tickwork-bench: measure a tickwork deployment end to end

USAGE: tickwork-bench [OPTIONS]

  --backend B           servers (default: tickwork-api, -tick, -worker over PostgreSQL and
                        Redis) | embedded (one tickwork-local over an SQLite file; --workers,
                        --ticks, --database-url and --redis-url do not apply)
  --cluster C           machine (default: the server at --database-url, as it is configured) |
                        own (initdb a cluster of the benchmark's own in a temporary directory,
                        configured like a production server for this machine: autovacuum on,
                        shared_buffers a quarter of the memory up to 4 GB, effective_cache_size
                        half of it, max_wal_size 8GB, min_wal_size 2GB, checkpoint_timeout
                        15min, wal_compression on, max_connections 200, fsync and
                        synchronous_commit on; started on a free port, stopped and removed at
                        the end unless --keep; with pg_stat_statements, the statements that
                        took the most time during the window are printed). Either way the
                        server's settings are read with SHOW and printed
  --pg-bin DIR          PostgreSQL server binaries for --cluster own (default: the newest
                        /usr/lib/postgresql/*/bin); run as the postgres user when root
  --pg-set K=V          a postgresql.conf setting for --cluster own, over the benchmark's
                        (repeatable)
  --jobs N              firing jobs (default 1000)
  --workload W          every-second (default) | mix | registered | overload
  --registered N        idle jobs also in the table (registered workload; default 1000000)
  --overload-jobs N     overload workload: jobs on * * * * * * in the first phase, e.g. twice
                        what the deployment can take (default 20000; replaces --jobs)
  --overload-phase-secs S
                        overload workload: length of the first phase (default 120)
  --settle-jobs N       overload workload: jobs left firing after the first phase (default
                        5000); the others are deactivated directly in the database once their
                        fires of the first phase are recorded, so their backlog still runs
  --settle-secs S       overload workload: length of the second phase (default 180); the window
                        is both phases (replaces --duration). Reports the backlog (QUEUED
                        executions, the Redis ready/upcoming/processing lengths), its peak,
                        how long after the drop it took to drain (QUEUED over 1 s late under
                        1 % of the second phase's fires per second, until the end), each
                        process's RSS every 10 s, Redis used_memory, and the executions by
                        final status
  --backlog-every S     overload workload: seconds between backlog samples (default 1); each
                        counts the QUEUED rows, which costs PostgreSQL time when they are many
                        (the summary says how long the counts took)
  --deadline S          startingDeadlineSeconds of every job created (the running tickwork
                        must accept the field); fires that expire are not delivered, so they
                        count as missed at the target and appear by status
  --type T              at-least-once (default) | at-most-once | mixed
  --duration S          seconds measured (default 60)
  --warmup S            seconds before measuring (default 5)
  --workers N           worker processes (default 2)
  --pool N              WORKER_POOL_SIZE of each (default: not set, tickwork's default)
  --ticks N             tick processes (default 1)
  --db-connections N    DB_MAX_CONNECTIONS of each process (default: not set)
  --retention S         HISTORY_RETENTION for the tick, in seconds (reports the deletion rate)
  --old-history N       before the run, N finished fires of three days ago (one day's
                        partition); HISTORY_RETENTION is set so that day passes it about a
                        minute after the processes start, and the report says whether its
                        partition was dropped during the run (replaces --retention)
  --env K=V             extra environment for the processes (repeatable)
  --database-url URL    PostgreSQL admin URL (default $DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  --redis-url URL       Redis URL (default $REDIS_URL or redis://127.0.0.1:6379)
  --bin-dir DIR         where tickwork-api/-tick/-worker are (default: beside this binary)
  --json                print the summary as JSON
  --keep                keep the benchmark database (and, with --cluster own, leave the
                        cluster running)
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    EverySecond,
    Mix,
    Registered,
    /// More jobs than the deployment can take, then fewer ([`Overload`]).
    Overload,
}

/// Which PostgreSQL server holds the benchmark's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cluster {
    /// The server at `--database-url`, as it is.
    Machine,
    /// A cluster of the benchmark's own, configured like a production server.
    Own,
}

/// The phases of the overload workload.
#[derive(Debug, Clone, Copy)]
struct Overload {
    /// Jobs firing every second in the first phase.
    jobs: usize,
    /// Length of the first phase.
    secs: u64,
    /// Jobs still firing in the second phase.
    settle_jobs: usize,
    /// Length of the second phase.
    settle_secs: u64,
}

/// What the benchmark deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// tickwork-api, -tick and -worker over PostgreSQL and Redis.
    Servers,
    /// One tickwork-local over an SQLite file and its in-memory queue.
    Embedded,
}

#[derive(Debug, Clone)]
struct Args {
    backend: Backend,
    cluster: Cluster,
    pg_bin: Option<PathBuf>,
    pg_set: Vec<(String, String)>,
    jobs: usize,
    workload: Workload,
    registered: usize,
    overload: Overload,
    deadline: Option<u64>,
    backlog_every: u64,
    kind: String,
    duration: u64,
    warmup: u64,
    workers: usize,
    pool: Option<usize>,
    ticks: usize,
    db_connections: Option<u32>,
    retention: Option<u64>,
    old_history: u64,
    env: Vec<(String, String)>,
    database_url: String,
    redis_url: String,
    bin_dir: PathBuf,
    json: bool,
    keep: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        backend: Backend::Servers,
        cluster: Cluster::Machine,
        pg_bin: None,
        pg_set: Vec::new(),
        jobs: 1000,
        workload: Workload::EverySecond,
        registered: 1_000_000,
        overload: Overload {
            jobs: 20_000,
            secs: 120,
            settle_jobs: 5000,
            settle_secs: 180,
        },
        deadline: None,
        backlog_every: 1,
        kind: "at-least-once".into(),
        duration: 60,
        warmup: 5,
        workers: 2,
        pool: None,
        ticks: 1,
        db_connections: None,
        retention: None,
        old_history: 0,
        env: Vec::new(),
        database_url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        redis_url: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        bin_dir: procs::default_bin_dir(),
        json: false,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("{name} needs a value; see --help"))
        };
        let number = |name: &str, raw: String| {
            raw.parse::<u64>()
                .with_context(|| format!("{name} is {raw:?}; expected a whole number"))
        };
        match flag.as_str() {
            "--backend" => {
                args.backend = match value("--backend")?.as_str() {
                    "servers" => Backend::Servers,
                    "embedded" => Backend::Embedded,
                    other => bail!("--backend is {other:?}; expected servers or embedded"),
                }
            }
            "--cluster" => {
                args.cluster = match value("--cluster")?.as_str() {
                    "machine" => Cluster::Machine,
                    "own" => Cluster::Own,
                    other => bail!("--cluster is {other:?}; expected machine or own"),
                }
            }
            "--pg-bin" => args.pg_bin = Some(PathBuf::from(value("--pg-bin")?)),
            "--pg-set" => args.pg_set.push(key_value("--pg-set", value("--pg-set")?)?),
            "--jobs" => args.jobs = number("--jobs", value("--jobs")?)? as usize,
            "--workload" => {
                args.workload = match value("--workload")?.as_str() {
                    "every-second" => Workload::EverySecond,
                    "mix" => Workload::Mix,
                    "registered" => Workload::Registered,
                    "overload" => Workload::Overload,
                    other => {
                        bail!(
                            "--workload is {other:?}; expected every-second, mix, registered \
                             or overload"
                        )
                    }
                }
            }
            "--registered" => {
                args.registered = number("--registered", value("--registered")?)? as usize
            }
            "--overload-jobs" => {
                args.overload.jobs = number("--overload-jobs", value("--overload-jobs")?)? as usize
            }
            "--overload-phase-secs" => {
                args.overload.secs =
                    number("--overload-phase-secs", value("--overload-phase-secs")?)?.max(1)
            }
            "--settle-jobs" => {
                args.overload.settle_jobs =
                    number("--settle-jobs", value("--settle-jobs")?)? as usize
            }
            "--settle-secs" => {
                args.overload.settle_secs = number("--settle-secs", value("--settle-secs")?)?.max(1)
            }
            "--backlog-every" => {
                args.backlog_every = number("--backlog-every", value("--backlog-every")?)?.max(1)
            }
            "--deadline" => args.deadline = Some(number("--deadline", value("--deadline")?)?),
            "--type" => {
                args.kind = value("--type")?;
                if !["at-least-once", "at-most-once", "mixed"].contains(&args.kind.as_str()) {
                    bail!(
                        "--type is {:?}; expected at-least-once, at-most-once or mixed",
                        args.kind
                    );
                }
            }
            "--duration" => args.duration = number("--duration", value("--duration")?)?.max(1),
            "--warmup" => args.warmup = number("--warmup", value("--warmup")?)?,
            "--workers" => args.workers = number("--workers", value("--workers")?)?.max(1) as usize,
            "--pool" => args.pool = Some(number("--pool", value("--pool")?)?.max(1) as usize),
            "--ticks" => args.ticks = number("--ticks", value("--ticks")?)?.max(1) as usize,
            "--db-connections" => {
                args.db_connections =
                    Some(number("--db-connections", value("--db-connections")?)?.max(1) as u32)
            }
            "--retention" => args.retention = Some(number("--retention", value("--retention")?)?),
            "--old-history" => args.old_history = number("--old-history", value("--old-history")?)?,
            "--env" => args.env.push(key_value("--env", value("--env")?)?),
            "--database-url" => args.database_url = value("--database-url")?,
            "--redis-url" => args.redis_url = value("--redis-url")?,
            "--bin-dir" => args.bin_dir = PathBuf::from(value("--bin-dir")?),
            "--json" => args.json = true,
            "--keep" => args.keep = true,
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other:?}; see --help"),
        }
    }
    check_args(&mut args)?;
    Ok(args)
}

fn key_value(flag: &str, pair: String) -> anyhow::Result<(String, String)> {
    let (k, v) = pair
        .split_once('=')
        .with_context(|| format!("{flag} {pair:?} is not KEY=VALUE"))?;
    Ok((k.to_string(), v.to_string()))
}

/// Refuses combinations that cannot run; the overload workload's phases set the job count
/// and the window.
fn check_args(args: &mut Args) -> anyhow::Result<()> {
    if args.backend == Backend::Embedded && args.cluster == Cluster::Own {
        bail!("--cluster own needs --backend servers");
    }
    if args.workload == Workload::Overload {
        if args.backend == Backend::Embedded {
            bail!("--workload overload reads the backlog in PostgreSQL and Redis; use --backend servers");
        }
        if args.overload.settle_jobs > args.overload.jobs {
            bail!(
                "--settle-jobs ({}) is more than --overload-jobs ({})",
                args.overload.settle_jobs,
                args.overload.jobs
            );
        }
        args.jobs = args.overload.jobs;
        args.duration = args.overload.secs + args.overload.settle_secs;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tickwork-bench: cannot start a runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tickwork-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The crons of each workload, cycled over the firing jobs.
fn crons(workload: Workload) -> &'static [&'static str] {
    match workload {
        Workload::EverySecond | Workload::Registered | Workload::Overload => &["* * * * * *"],
        Workload::Mix => &[
            "* * * * * *",
            "*/5 * * * * *",
            "0,15,30,45 * * * * *",
            "*/2 * * * * *",
            "7 * * * * *",
            "* * * * *",
        ],
    }
}

fn execution_type(kind: &str, i: usize) -> &'static str {
    match kind {
        "at-most-once" => "AT_MOST_ONCE",
        "mixed" if i % 2 == 1 => "AT_MOST_ONCE",
        _ => "AT_LEAST_ONCE",
    }
}

/// Where the deployment keeps its jobs and history.
enum Setup {
    /// A PostgreSQL database of the benchmark's own, and a Redis key prefix.
    Servers {
        admin: Box<PgConnectOptions>,
        db_name: String,
        prefix: String,
        server: Server,
    },
    /// An SQLite file of the benchmark's own.
    Embedded { path: PathBuf },
}

/// The PostgreSQL server behind a servers run.
struct Server {
    cluster: Cluster,
    /// `SHOW` of [`cluster::REPORTED`] at the start.
    settings: serde_json::Value,
    /// The own cluster's postmaster: its processes are the PostgreSQL measured.
    postmaster: Option<u32>,
    /// Whether `pg_stat_statements` is loaded (own cluster only).
    statements: bool,
}

async fn run() -> anyhow::Result<()> {
    let mut args = parse_args()?;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let suffix = &suffix[20..];
    if args.backend == Backend::Embedded {
        if args.workload == Workload::Registered {
            bail!("--workload registered inserts through PostgreSQL; use --backend servers");
        }
        let path = std::env::temp_dir().join(format!("tickwork-bench-{suffix}.db"));
        let outcome = measure(&args, &Setup::Embedded { path: path.clone() }, suffix).await;
        if !args.keep {
            for end in ["", "-wal", "-shm", ".lock", ".key"] {
                let mut file = path.as_os_str().to_owned();
                file.push(end);
                let _ = std::fs::remove_file(file);
            }
        }
        return outcome;
    }
    // Declared before the connections to it, so it stops after they close.
    let own = match args.cluster {
        Cluster::Own => Some(
            OwnCluster::start(args.pg_bin.clone(), free_port()?, &args.pg_set, args.keep).await?,
        ),
        Cluster::Machine => None,
    };
    if let Some(own) = &own {
        args.database_url = own.url();
    }
    let db_name = format!("tickwork_bench_{suffix}");
    let prefix = format!("tickwork-bench:{suffix}");
    let admin = PgConnectOptions::from_str(&args.database_url)
        .context("--database-url is not a postgres URL")?;
    let mut admin_conn = admin
        .connect()
        .await
        .context("cannot reach PostgreSQL at --database-url")?;
    let server = Server {
        cluster: args.cluster,
        settings: statements::settings(&mut admin_conn, cluster::REPORTED)
            .await
            .context("reading the server's settings")?,
        postmaster: own.as_ref().and_then(OwnCluster::postmaster_pid),
        statements: own.as_ref().is_some_and(|c| c.statements),
    };
    sqlx::query(&format!("CREATE DATABASE {db_name}"))
        .execute(&mut admin_conn)
        .await?;
    let setup = Setup::Servers {
        admin: Box::new(admin.clone()),
        db_name: db_name.clone(),
        prefix,
        server,
    };
    let outcome = measure(&args, &setup, suffix).await;
    if !args.keep {
        let _ = sqlx::query(&format!("DROP DATABASE {db_name} WITH (FORCE)"))
            .execute(&mut admin_conn)
            .await;
    }
    let _ = admin_conn.close().await;
    outcome
}

struct Deployment {
    api: Proc,
    ticks: Vec<Proc>,
    workers: Vec<Proc>,
    api_url: String,
    /// The first tick's `/metrics`.
    tick_metrics: String,
}

fn database_url(admin: &str, db: &str) -> String {
    let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
    let cut = base[base.find("://").map(|i| i + 3).unwrap_or(0)..]
        .find('/')
        .map(|i| i + base.find("://").map(|j| j + 3).unwrap_or(0))
        .unwrap_or(base.len());
    if query.is_empty() {
        format!("{}/{db}", &base[..cut])
    } else {
        format!("{}/{db}?{query}", &base[..cut])
    }
}

/// A port nothing listens on now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Settings every process of the deployment gets.
fn common_env(args: &Args, port: u16) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("LOG_LEVEL".into(), "warn".into()),
        // The benchmark's target is on this machine.
        ("TARGET_ALLOW_CIDRS".into(), "127.0.0.0/8".into()),
        // The benchmark measures the scheduler; its API calls are the setup.
        ("AUTH_DISABLED".into(), "true".into()),
        ("RATE_LIMIT_PER_SECOND".into(), "0".into()),
        (
            "ENCRYPTION_KEY".into(),
            tickwork::secrets::Keyring::generate_key(),
        ),
        ("SERVER_HOST".into(), "127.0.0.1".into()),
        ("SERVER_PORT".into(), port.to_string()),
    ];
    // Tuning only when asked for: without these flags every process runs on its defaults.
    let tuning = [
        ("WORKER_POOL_SIZE", args.pool.map(|n| n.to_string())),
        (
            "DB_MAX_CONNECTIONS",
            args.db_connections.map(|n| n.to_string()),
        ),
        ("HISTORY_RETENTION", args.retention.map(|s| s.to_string())),
    ];
    env.extend(
        tuning
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
    );
    env.extend(args.env.iter().cloned());
    env
}

/// One `tickwork-local` on the embedded file at `path`.
fn start_embedded(
    args: &Args,
    path: &std::path::Path,
    log_dir: &std::path::Path,
) -> anyhow::Result<Deployment> {
    let (port, metrics_port) = (free_port()?, free_port()?);
    let mut env = common_env(args, port);
    env.push(("TICKWORK_DB".into(), path.display().to_string()));
    env.push(("METRICS_PORT".into(), metrics_port.to_string()));
    let local = Proc::spawn(
        &args.bin_dir,
        "tickwork-local",
        "local".into(),
        &env,
        log_dir,
    )?;
    Ok(Deployment {
        api: local,
        ticks: Vec::new(),
        workers: Vec::new(),
        // /metrics is served on METRICS_PORT only, never on the API's port.
        tick_metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
        api_url: format!("http://127.0.0.1:{port}"),
    })
}

/// The api, the ticks and the workers over PostgreSQL and Redis.
fn start(
    args: &Args,
    db_url: &str,
    prefix: &str,
    log_dir: &std::path::Path,
) -> anyhow::Result<Deployment> {
    let port = free_port()?;
    let mut env = common_env(args, port);
    env.extend([
        ("DATABASE_URL".into(), db_url.into()),
        ("REDIS_URL".into(), args.redis_url.clone()),
        ("REDIS_KEY_PREFIX".into(), prefix.into()),
        ("MIGRATE_ON_START".into(), "false".into()),
    ]);
    let api = Proc::spawn(&args.bin_dir, "tickwork-api", "api".into(), &env, log_dir)?;
    let metrics_port = free_port()?;
    let ticks = (0..args.ticks)
        .map(|i| {
            let mut tick_env = env.clone();
            if i == 0 {
                tick_env.push(("METRICS_PORT".into(), metrics_port.to_string()));
            }
            Proc::spawn(
                &args.bin_dir,
                "tickwork-tick",
                format!("tick-{}", i + 1),
                &tick_env,
                log_dir,
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let workers = (0..args.workers)
        .map(|i| {
            Proc::spawn(
                &args.bin_dir,
                "tickwork-worker",
                format!("worker-{}", i + 1),
                &env,
                log_dir,
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Deployment {
        api,
        ticks,
        workers,
        api_url: format!("http://127.0.0.1:{port}"),
        tick_metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
    })
}

async fn wait_healthy(client: &reqwest::Client, api_url: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{api_url}/health")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the API did not become healthy at {api_url}")
}

/// A job the benchmark created.
struct Created {
    /// Its place in the creation order (`bench {index}`).
    index: usize,
    id: u128,
    cron: &'static str,
}

/// The field `--deadline` sets.
const DEADLINE_FIELD: &str = "startingDeadlineSeconds";

async fn create_jobs(
    args: &Args,
    client: &reqwest::Client,
    api_url: &str,
    target: &str,
) -> anyhow::Result<Vec<Created>> {
    let crons = crons(args.workload);
    futures_util::stream::iter(0..args.jobs)
        .map(|i| {
            let mut body = json!({
                "name": format!("bench {i}"),
                "cronExpression": crons[i % crons.len()],
                "httpUrl": format!("{target}/fire"),
                "executionType": execution_type(&args.kind, i),
                "timeoutSeconds": 30,
            });
            if let Some(deadline) = args.deadline {
                body[DEADLINE_FIELD] = json!(deadline);
            }
            async move {
                let response = client
                    .post(format!("{api_url}/api/v1/jobs"))
                    .json(&body)
                    .send()
                    .await?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if status != 201 {
                    refused(status, &text)?;
                }
                let created: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("creating a job answered {text:?}"))?;
                let id = created["id"]
                    .as_str()
                    .and_then(|id| uuid::Uuid::parse_str(id).ok())
                    .with_context(|| format!("creating a job answered no id: {text}"))?;
                Ok(Created {
                    index: i,
                    id: id.as_u128(),
                    cron: crons[i % crons.len()],
                })
            }
        })
        .buffer_unordered(32)
        .try_collect()
        .await
}

/// The error for a job creation answered with `status`: a clear one when the API does not
/// know `startingDeadlineSeconds` yet.
fn refused(status: reqwest::StatusCode, body: &str) -> anyhow::Result<()> {
    let field = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|b| b["error"]["field"].as_str().map(str::to_string));
    if status == 422 && field.as_deref() == Some(DEADLINE_FIELD) {
        bail!(
            "--deadline: the running tickwork-api does not support {DEADLINE_FIELD} yet \
             (creating a job answered 422: {body})"
        );
    }
    bail!("creating a job answered {status}: {body}")
}

async fn insert_idle_jobs(pool: &sqlx::PgPool, count: usize, target: &str) -> anyhow::Result<()> {
    // Idle jobs fire once a year: the tick must not pay for them.
    let chunk = 100_000;
    let mut done = 0;
    while done < count {
        let n = chunk.min(count - done);
        sqlx::query(
            "INSERT INTO jobs (id, name, description, cron_expression, timezone, http_method, \
             http_url, http_headers, execution_type, max_retries, timeout_seconds, is_active, \
             next_run_at, created_at, updated_at) \
             SELECT gen_random_uuid(), 'idle ' || g, '', '0 0 0 1 1 *', 'UTC', 'POST', $1, '{}', \
             'AT_LEAST_ONCE', 3, 30, true, date_trunc('year', now()) + interval '1 year', now(), now() \
             FROM generate_series(1, $2) g",
        )
        .bind(format!("{target}/idle"))
        .bind(n as i64)
        .execute(pool)
        .await?;
        done += n;
    }
    sqlx::query("ANALYZE jobs").execute(pool).await?;
    Ok(())
}

/// Reads one counter from a Prometheus text endpoint.
async fn scrape(client: &reqwest::Client, url: &str, name: &str) -> Option<f64> {
    let text = client.get(url).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// p50, p90, p99 and max of `sorted` (ms), to 0.1 ms.
fn lag_summary(sorted: &[f64]) -> serde_json::Value {
    let round = |v: f64| (v * 10.0).round() / 10.0;
    json!({
        "p50": round(percentile(sorted, 0.50)),
        "p90": round(percentile(sorted, 0.90)),
        "p99": round(percentile(sorted, 0.99)),
        "max": round(sorted.last().copied().unwrap_or(0.0)),
    })
}

/// Puts `count` finished fires into the day three days ago (its partition), in statements
/// of a million; returns a `HISTORY_RETENTION`, in seconds, that this day passes about a
/// minute from now.
async fn insert_old_history(pool: &sqlx::PgPool, count: u64) -> anyhow::Result<u64> {
    let started = std::time::Instant::now();
    let (day, passes_in): (chrono::NaiveDate, f64) = sqlx::query_as(
        "SELECT (now() AT TIME ZONE 'UTC')::date - 3, \
         extract(epoch FROM now() - ((now() AT TIME ZONE 'UTC')::date - 2)::timestamp \
             AT TIME ZONE 'UTC')::float8",
    )
    .fetch_one(pool)
    .await?;
    sqlx::query("SELECT tickwork_history_partition($1)")
        .bind(day)
        .execute(pool)
        .await?;
    let mut left = count;
    while left > 0 {
        let n = left.min(1_000_000);
        sqlx::query(
            "INSERT INTO executions (id, job_id, scheduled_at, status, attempt, queued_at, \
                 started_at, finished_at, duration_ms, http_status) \
             SELECT gen_random_uuid(), gen_random_uuid(), t, 'SUCCEEDED', 1, t, t, t, 3, 200 \
             FROM (SELECT $1::date + random() * interval '1 day' AS t \
                   FROM generate_series(1, $2)) AS f",
        )
        .bind(day)
        .bind(i64::try_from(n)?)
        .execute(pool)
        .await?;
        left -= n;
    }
    sqlx::raw_sql("VACUUM ANALYZE executions")
        .execute(pool)
        .await?;
    let retention = (passes_in + started.elapsed().as_secs_f64() + 60.0) as u64;
    eprintln!(
        "inserted {count} finished fires on {day} in {:.1} s; HISTORY_RETENTION={retention}",
        started.elapsed().as_secs_f64()
    );
    Ok(retention)
}

/// Starts the deployment on its store (migrated, with idle jobs for the registered
/// workload) and returns a pool on that store beside it.
async fn deploy(
    args: &Args,
    setup: &Setup,
    target: &Target,
    log_dir: &std::path::Path,
) -> anyhow::Result<(Rows, Deployment)> {
    Ok(match setup {
        Setup::Servers {
            admin,
            db_name,
            prefix,
            ..
        } => {
            let store = PgStore::connect_lazy(admin.as_ref().clone().database(db_name), 5);
            store
                .migrate()
                .await
                .context("migrating the benchmark database")?;
            let db = store.pool().clone();
            if args.workload == Workload::Registered {
                let started = std::time::Instant::now();
                insert_idle_jobs(&db, args.registered, &target.url).await?;
                eprintln!(
                    "inserted {} idle jobs in {:.1} s",
                    args.registered,
                    started.elapsed().as_secs_f64()
                );
            }
            let mut args = args.clone();
            if args.old_history > 0 {
                args.retention = Some(insert_old_history(&db, args.old_history).await?);
            }
            let db_url = database_url(&args.database_url, db_name);
            let deployment = start(&args, &db_url, prefix, log_dir)?;
            (Rows::Postgres(db), deployment)
        }
        Setup::Embedded { path } => {
            let deployment = start_embedded(args, path, log_dir)?;
            (
                Rows::Sqlite(sqlx::SqlitePool::connect_lazy_with(
                    sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(path)
                        .busy_timeout(Duration::from_secs(30)),
                )),
                deployment,
            )
        }
    })
}

impl Deployment {
    /// (name, pid) of every tickwork process.
    fn pids(&self) -> Vec<(String, u32)> {
        let mut pids = vec![(self.api.name.clone(), self.api.pid())];
        pids.extend(self.ticks.iter().map(|p| (p.name.clone(), p.pid())));
        pids.extend(self.workers.iter().map(|p| (p.name.clone(), p.pid())));
        pids
    }
}

/// The other processes whose CPU is reported: PostgreSQL (the own cluster's, or every
/// `postgres` on the machine), Redis, and this benchmark with its target.
fn server_pids(setup: &Setup) -> Vec<(String, Vec<u32>)> {
    let postgres = match setup {
        Setup::Servers {
            server: Server {
                postmaster: Some(pid),
                ..
            },
            ..
        } => ("postgres (own)".into(), procs::with_children(*pid)),
        _ => ("postgres (all)".into(), pids_named("postgres")),
    };
    vec![
        postgres,
        ("redis-server".into(), pids_named("redis-server")),
        ("bench + target".into(), vec![std::process::id()]),
    ]
}

/// CPU seconds and memory of the processes at one instant.
struct Usage {
    cpu: Vec<f64>,
    /// Per server, per pid: CPU seconds, `None` once the process is gone.
    server_cpu: Vec<Vec<Option<f64>>>,
    rss: Vec<f64>,
    rss_peak: Vec<f64>,
}

impl Usage {
    /// CPU seconds server `i` used between `before` and `after`, over its processes alive
    /// at both (a backend that exited during the window takes its time with it).
    fn server_delta(before: &Usage, after: &Usage, i: usize) -> f64 {
        before.server_cpu[i]
            .iter()
            .zip(&after.server_cpu[i])
            .filter_map(|(a, b)| Some(b.as_ref()? - a.as_ref()?))
            .sum()
    }

    fn read(pids: &[(String, u32)], servers: &[(String, Vec<u32>)]) -> Self {
        Self {
            cpu: pids.iter().map(|(_, pid)| cpu_seconds(*pid)).collect(),
            server_cpu: servers
                .iter()
                .map(|(_, ps)| {
                    ps.iter()
                        .map(|p| alive(*p).then(|| cpu_seconds(*p)))
                        .collect()
                })
                .collect(),
            rss: pids
                .iter()
                .map(|(_, pid)| memory_mib(*pid, "VmRSS:"))
                .collect(),
            rss_peak: pids
                .iter()
                .map(|(_, pid)| memory_mib(*pid, "VmHWM:"))
                .collect(),
        }
    }
}

/// Whether process `pid` exists.
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A connection to the admin database with `pg_stat_statements` reset at the window's
/// start, when the server has it loaded.
async fn statements_from_now(setup: &Setup) -> anyhow::Result<Option<sqlx::PgConnection>> {
    let Setup::Servers {
        admin,
        server: Server {
            statements: true, ..
        },
        ..
    } = setup
    else {
        return Ok(None);
    };
    let mut conn = admin.connect().await?;
    statements::reset(&mut conn)
        .await
        .context("resetting pg_stat_statements")?;
    Ok(Some(conn))
}

/// The statements of the benchmark's database that took the most time since the reset.
async fn top_statements(
    conn: Option<sqlx::PgConnection>,
    setup: &Setup,
) -> anyhow::Result<Option<Vec<serde_json::Value>>> {
    let (Some(mut conn), Setup::Servers { db_name, .. }) = (conn, setup) else {
        return Ok(None);
    };
    let top = statements::top(&mut conn, db_name)
        .await
        .context("reading pg_stat_statements")?;
    let _ = conn.close().await;
    Ok(Some(top))
}

/// What the overload workload observed.
struct OverloadRun {
    observed: overload::Observed,
    dropped: overload::Dropped,
}

/// The overload workload's window: samples the backlog from `started` (the window's start,
/// `t0` on the storage clock), drops the load after the first phase, and returns at the
/// window's end.
async fn run_overload(
    args: &Args,
    setup: &Setup,
    rows: &Rows,
    created: &[Created],
    pids: &[(String, u32)],
    t0: DateTime<chrono::Utc>,
    started: tokio::time::Instant,
) -> anyhow::Result<OverloadRun> {
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
fn drop_instant(t0: DateTime<chrono::Utc>, phases: Overload) -> DateTime<chrono::Utc> {
    t0 + chrono::Duration::seconds(phases.secs as i64)
}

/// Stops firing once every fire of the window is recorded (a tick running late may not
/// have recorded the last seconds yet: clearing those jobs now would drop fires the
/// benchmark then counts as missed), while the ticks keep releasing fires recorded ahead
/// and sweeping; lets the window's fires finish, then stops everything.
async fn finish(
    rows: &Rows,
    deployment: &mut Deployment,
    t1: DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let settle_deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let unrecorded = rows.stop_firing_from(t1).await?;
        if unrecorded == 0 || tokio::time::Instant::now() > settle_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let open = rows.open_before(t1).await?;
        if open == 0 || tokio::time::Instant::now() > settle_deadline {
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

/// The first arrival of one execution of the window.
struct First {
    scheduled_ms: i64,
    arrived_ms: i64,
    lag_ms: f64,
}

/// What the target received for the window `[t0_ms, t1_ms)`.
struct Deliveries {
    expected: usize,
    /// Executions that reached the target (first arrivals).
    firsts: Vec<First>,
    duplicates: usize,
    missed: usize,
    /// Fires of deactivated jobs at or after their deactivation (recorded ahead of it).
    after_drop: usize,
}

/// Expected fires per job (each active until its `until`, or the window's end) against
/// what the target received.
fn deliveries(
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
fn lag_by_minute(firsts: &[First], t0_ms: i64) -> Vec<serde_json::Value> {
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
fn rate_by_minute(firsts: &[First], t0_ms: i64, secs: u64) -> (Vec<serde_json::Value>, usize) {
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
fn phase_report(firsts: &[First], t0_ms: i64, phases: Overload) -> Vec<serde_json::Value> {
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

async fn measure(args: &Args, setup: &Setup, suffix: &str) -> anyhow::Result<()> {
    let log_dir = std::env::temp_dir().join(format!("tickwork-bench-{suffix}"));
    std::fs::create_dir_all(&log_dir)?;
    let target = Target::start().await?;
    let (rows, mut deployment) = deploy(args, setup, &target, &log_dir).await?;
    let client = reqwest::Client::new();
    wait_healthy(&client, &deployment.api_url).await?;
    let started = std::time::Instant::now();
    let created = create_jobs(args, &client, &deployment.api_url, &target.url).await?;
    eprintln!(
        "created {} jobs in {:.1} s; warming up {} s",
        created.len(),
        started.elapsed().as_secs_f64(),
        args.warmup
    );
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;

    // The window: whole seconds of the database clock.
    let now = rows.clock().await?;
    let t0 = DateTime::from_timestamp(now.timestamp() + 1, 0).context("clock out of range")?;
    let t1 = t0 + chrono::Duration::seconds(args.duration as i64);
    tokio::time::sleep((t0 - now).to_std().unwrap_or_default()).await;
    let window_start = tokio::time::Instant::now();

    let pids = deployment.pids();
    let servers = server_pids(setup);
    let before = Usage::read(&pids, &servers);
    let statements_conn = statements_from_now(setup).await?;
    let deleted_start = scrape(
        &client,
        &deployment.tick_metrics,
        "tickwork_history_deleted_total",
    )
    .await;
    // Each process's RSS at the end of every minute of the window (the overload workload
    // samples its own, every 10 s).
    let mut rss_by_minute: Vec<Vec<f64>> = Vec::new();
    let overloaded = if args.workload == Workload::Overload {
        Some(run_overload(args, setup, &rows, &created, &pids, t0, window_start).await?)
    } else {
        let end = window_start + Duration::from_secs(args.duration);
        let mut minute = window_start;
        while minute < end {
            minute = (minute + Duration::from_secs(60)).min(end);
            tokio::time::sleep_until(minute).await;
            rss_by_minute.push(
                pids.iter()
                    .map(|(_, pid)| (memory_mib(*pid, "VmRSS:") * 10.0).round() / 10.0)
                    .collect(),
            );
        }
        None
    };
    let deleted_end = scrape(
        &client,
        &deployment.tick_metrics,
        "tickwork_history_deleted_total",
    )
    .await;
    let after = Usage::read(&pids, &servers);
    let old_history_left = if args.old_history > 0 {
        Some(rows.older_than_two_days(rows.clock().await?).await?)
    } else {
        None
    };
    let top = top_statements(statements_conn, setup).await?;
    finish(&rows, &mut deployment, t1).await?;

    // Jobs deactivated after the overload's first phase were expected to fire until then.
    let until: HashMap<u128, i64> = match overloaded {
        Some(_) => created
            .iter()
            .filter(|c| c.index >= args.overload.settle_jobs)
            .map(|c| (c.id, drop_instant(t0, args.overload).timestamp_millis()))
            .collect(),
        None => HashMap::new(),
    };
    let got = deliveries(&created, &until, &target.arrivals(), t0, t1)?;
    let t0_ms = t0.timestamp_millis();
    let (rate_by_minute, after_window) = rate_by_minute(&got.firsts, t0_ms, args.duration);
    let mut lags: Vec<f64> = got.firsts.iter().map(|f| f.lag_ms).collect();
    lags.sort_by(|a, b| a.total_cmp(b));
    let delivered = got.firsts.len();

    let (recorded, succeeded, attempts) = rows.window(t0, t1).await?;
    let statuses: serde_json::Map<String, serde_json::Value> = rows
        .statuses(t0, t1)
        .await?
        .into_iter()
        .map(|(status, n)| (status, json!(n)))
        .collect();

    let secs = args.duration as f64;
    let processes: Vec<serde_json::Value> = pids
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            json!({
                "process": name,
                "cpu_cores": ((after.cpu[i] - before.cpu[i]) / secs * 100.0).round() / 100.0,
                "rss_mib_start": (before.rss[i] * 10.0).round() / 10.0,
                "rss_mib_end": (after.rss[i] * 10.0).round() / 10.0,
                "rss_mib_peak": (after.rss_peak[i] * 10.0).round() / 10.0,
                "rss_mib_by_minute": rss_by_minute.iter().map(|minute| minute[i]).collect::<Vec<_>>(),
            })
        })
        .chain(servers.iter().enumerate().map(|(i, (name, _))| {
            json!({
                "process": name,
                "cpu_cores": (Usage::server_delta(&before, &after, i) / secs * 100.0).round() / 100.0,
            })
        }))
        .collect();
    let server = match setup {
        Setup::Servers { server, .. } => Some(server),
        Setup::Embedded { .. } => None,
    };
    let overload = overloaded.map(|run| {
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
    });
    let summary = json!({
        "backend": format!("{:?}", args.backend),
        "cluster": server.map(|s| format!("{:?}", s.cluster)),
        "postgres_settings": server.map(|s| s.settings.clone()),
        "workload": format!("{:?}", args.workload),
        "jobs": args.jobs,
        "registered_idle_jobs": if args.workload == Workload::Registered { args.registered } else { 0 },
        "execution_type": args.kind,
        "deadline_s": args.deadline,
        "duration_s": args.duration,
        "workers": args.workers,
        "pool_size": args.pool,
        "ticks": args.ticks,
        "fires_due_per_s": (got.expected as f64 / secs * 10.0).round() / 10.0,
        "fires_due": got.expected,
        "executions_per_s_at_target": (delivered as f64 / secs * 10.0).round() / 10.0,
        "executions_per_s_in_history": (succeeded as f64 / secs * 10.0).round() / 10.0,
        "delivered": delivered,
        "delivered_after_window": after_window,
        "succeeded_in_history": succeeded,
        "missed_fires": got.missed,
        "duplicate_deliveries": got.duplicates,
        "executions_by_status": statuses,
        "lag_ms": lag_summary(&lags),
        "lag_ms_by_minute": lag_by_minute(&got.firsts, t0_ms),
        "executions_per_s_by_minute": rate_by_minute,
        "history_rows_written": recorded + attempts,
        "retention_s": args.retention,
        "old_history_left": old_history_left,
        "history_deleted_per_s": match (deleted_start, deleted_end) {
            (Some(a), Some(b)) if args.retention.is_some() => Some(((b - a) / secs * 10.0).round() / 10.0),
            _ => None,
        },
        "overload": overload,
        "top_statements": top,
        "top_statements_note": match server {
            Some(Server { statements: true, .. }) => None,
            Some(Server { cluster: Cluster::Own, .. }) => Some("pg_stat_statements is not installed for this server"),
            Some(_) => Some("only with --cluster own"),
            None => None,
        },
        "processes": processes,
        "logs": log_dir.display().to_string(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn print_summary(s: &serde_json::Value) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    println!(
        "{} | workload {} | {} jobs ({}) | {} idle | {} s | {} worker(s) x pool {} | {} tick(s)",
        text(&s["backend"]),
        text(&s["workload"]),
        s["jobs"],
        text(&s["execution_type"]),
        s["registered_idle_jobs"],
        s["duration_s"],
        s["workers"],
        s["pool_size"],
        s["ticks"]
    );
    print_postgres(s);
    if !s["deadline_s"].is_null() {
        println!("startingDeadlineSeconds {}", s["deadline_s"]);
    }
    println!("fires due/s            {}", s["fires_due_per_s"]);
    println!("executions/s (target)  {}", s["executions_per_s_at_target"]);
    println!(
        "executions/s (history) {}",
        s["executions_per_s_in_history"]
    );
    println!(
        "lag ms                 p50 {}  p90 {}  p99 {}  max {}",
        s["lag_ms"]["p50"], s["lag_ms"]["p90"], s["lag_ms"]["p99"], s["lag_ms"]["max"]
    );
    let overload = !s["overload"].is_null();
    let by_minute = |key: &str, line: &dyn Fn(&serde_json::Value) -> String| {
        s[key]
            .as_array()
            .filter(|m| m.len() > 1 || overload)
            .map(|m| m.iter().map(line).collect::<Vec<_>>().join("  "))
    };
    if let Some(line) = by_minute("lag_ms_by_minute", &|m| {
        format!("{}: {}/{}", m["minute"], m["p50"], m["p99"])
    }) {
        println!("lag ms by minute p50/p99  {line}");
    }
    if let Some(line) = by_minute("executions_per_s_by_minute", &|m| {
        format!("{}: {}", m["minute"], m["executions_per_s"])
    }) {
        println!("executions/s by minute (target)  {line}");
    }
    println!("missed fires           {}", s["missed_fires"]);
    println!("duplicate deliveries   {}", s["duplicate_deliveries"]);
    println!("delivered after window {}", s["delivered_after_window"]);
    if let Some(statuses) = s["executions_by_status"].as_object() {
        let line: Vec<String> = statuses.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("executions by status   {}", line.join("  "));
    }
    println!("history rows written   {}", s["history_rows_written"]);
    if !s["old_history_left"].is_null() {
        println!(
            "old history left       {} fires (the day past retention; 0: its partition was dropped)",
            s["old_history_left"]
        );
    }
    if !s["history_deleted_per_s"].is_null() {
        println!(
            "history deleted/s      {} (retention {} s)",
            s["history_deleted_per_s"], s["retention_s"]
        );
    }
    if overload {
        print_overload(&s["overload"]);
    }
    println!("process                cpu (cores)  rss MiB start/end/peak");
    if let Some(processes) = s["processes"].as_array() {
        for p in processes {
            let rss = if p.get("rss_mib_peak").is_some() {
                format!(
                    "{}/{}/{}",
                    p["rss_mib_start"], p["rss_mib_end"], p["rss_mib_peak"]
                )
            } else {
                String::new()
            };
            println!(
                "  {:<20} {:<12} {}",
                text(&p["process"]),
                p["cpu_cores"].to_string(),
                rss
            );
        }
        // Over more than one minute, whether memory is flat: each process's RSS by minute.
        for p in processes {
            if let Some(series) = p["rss_mib_by_minute"].as_array().filter(|m| m.len() > 1) {
                let line: Vec<String> = series
                    .iter()
                    .enumerate()
                    .map(|(i, mib)| format!("{}: {mib}", i + 1))
                    .collect();
                println!(
                    "  {:<20} rss MiB by minute  {}",
                    text(&p["process"]),
                    line.join("  ")
                );
            }
        }
    }
    print_statements(s);
    println!("logs                   {}", text(&s["logs"]));
}

/// The server's settings, on as few lines as fit.
fn print_postgres(s: &serde_json::Value) {
    let Some(settings) = s["postgres_settings"].as_object() else {
        return;
    };
    println!(
        "postgres               cluster {}",
        s["cluster"].as_str().unwrap_or("")
    );
    let pairs: Vec<String> = settings
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
        .collect();
    let mut line = String::new();
    for pair in pairs {
        if !line.is_empty() && line.len() + pair.len() > 90 {
            println!("  {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&pair);
    }
    if !line.is_empty() {
        println!("  {line}");
    }
}

fn print_overload(o: &serde_json::Value) {
    if let Some(phases) = o["phases"].as_array() {
        for p in phases {
            println!(
                "phase {:<9} {} jobs x {} s: delivered {}/s, lag ms p50 {} p99 {} max {}",
                p["phase"].as_str().unwrap_or(""),
                p["jobs"],
                p["secs"],
                p["delivered_per_s"],
                p["lag_ms"]["p50"],
                p["lag_ms"]["p99"],
                p["lag_ms"]["max"]
            );
        }
    }
    let drop = &o["drop"];
    println!(
        "load dropped at        {} s (last job deactivated at {:+.1} s from it; {} forced)",
        drop["at_s"],
        drop["completed_after_s"].as_f64().unwrap_or(0.0),
        drop["forced_jobs"]
    );
    let peak = &o["backlog_peak"];
    println!(
        "backlog peak           QUEUED {} (over 1 s late {} at {} s)  redis ready {} upcoming {} processing {}",
        peak["queued"],
        peak["queued_late"],
        peak["queued_late_at_s"],
        peak["redis_ready"],
        peak["redis_upcoming"],
        peak["redis_processing"]
    );
    match o["drain_s_after_drop"].as_f64() {
        Some(secs) => println!(
            "drained                {secs} s after the drop (QUEUED over 1 s late < {})",
            o["drain_threshold_queued_late"]
        ),
        None => println!(
            "drained                not by the window's end (QUEUED over 1 s late: {}, threshold {})",
            o["queued_late_at_end"], o["drain_threshold_queued_late"]
        ),
    }
    println!(
        "redis used_memory MiB  start {}  peak {}",
        o["redis_used_memory_mib"]["start"], o["redis_used_memory_mib"]["peak"]
    );
    if let Some(series) = o["rss_mib_every_10s"].as_array() {
        let line: Vec<String> = series
            .iter()
            .map(|p| {
                format!(
                    "{} {}/{}",
                    p["process"].as_str().unwrap_or(""),
                    p["peak"],
                    p["last"]
                )
            })
            .collect();
        println!("rss MiB peak/last      {}", line.join("  "));
    }
    println!(
        "deactivated jobs' fires after the drop {}",
        o["fires_of_deactivated_jobs_after_the_drop"]
    );
    println!(
        "backlog count ms       mean {}  max {}",
        o["backlog_count_ms"]["mean"], o["backlog_count_ms"]["max"]
    );
    if o["samples_failed"].as_u64().unwrap_or(0) > 0 {
        println!("backlog samples failed {}", o["samples_failed"]);
    }
}

fn print_statements(s: &serde_json::Value) {
    if let Some(note) = s["top_statements_note"].as_str() {
        println!("top statements         ({note})");
        return;
    }
    let Some(top) = s["top_statements"].as_array() else {
        return;
    };
    println!("top statements in the window");
    println!(
        "  {:>10} {:>9} {:>8} {:>9} {:>5}  query",
        "calls", "total ms", "mean ms", "rows", "share"
    );
    for t in top {
        println!(
            "  {:>10} {:>9} {:>8} {:>9} {:>5}  {}",
            t["calls"].to_string(),
            t["total_ms"].to_string(),
            t["mean_ms"].to_string(),
            t["rows"].to_string(),
            t["share"].to_string(),
            t["query"].as_str().unwrap_or("")
        );
    }
}

//! `tickwork-bench`: starts a tickwork deployment (api, ticks, workers) against PostgreSQL
//! and Redis, or `tickwork-local` on its embedded backend (`--backend embedded`), points
//! jobs at a local target, measures a window of fires end to end, and prints one summary.
//! Everything it starts, it stops; its database (or file) is removed after.
//!
//! ```text
//! cargo build --release --workspace
//! ./target/release/tickwork-bench --jobs 1000 --duration 60 --workers 2 --pool 200
//! ```

mod procs;
mod rows;
mod target;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::DateTime;
use futures_util::StreamExt;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tickwork::schedule::Schedule;
use tickwork::store::PgStore;

use procs::{cpu_seconds, memory_mib, pids_named, Proc};
use rows::Rows;
use target::Target;

const USAGE: &str = "tickwork-bench: measure a tickwork deployment end to end

USAGE: tickwork-bench [OPTIONS]

  --backend B           servers (default: tickwork-api, -tick, -worker over PostgreSQL and
                        Redis) | embedded (one tickwork-local over an SQLite file; --workers,
                        --ticks, --database-url and --redis-url do not apply)
  --jobs N              firing jobs (default 1000)
  --workload W          every-second (default) | mix | registered
  --registered N        idle jobs also in the table (registered workload; default 1000000)
  --type T              at-least-once (default) | at-most-once | mixed
  --duration S          seconds measured (default 60)
  --warmup S            seconds before measuring (default 5)
  --workers N           worker processes (default 2)
  --pool N              WORKER_POOL_SIZE of each (default: not set, tickwork's default)
  --ticks N             tick processes (default 1)
  --db-connections N    DB_MAX_CONNECTIONS of each process (default: not set)
  --retention S         HISTORY_RETENTION for the tick, in seconds (reports the deletion rate)
  --env K=V             extra environment for the processes (repeatable)
  --database-url URL    PostgreSQL admin URL (default $DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  --redis-url URL       Redis URL (default $REDIS_URL or redis://127.0.0.1:6379)
  --bin-dir DIR         where tickwork-api/-tick/-worker are (default: beside this binary)
  --json                print the summary as JSON
  --keep                keep the benchmark database
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    EverySecond,
    Mix,
    Registered,
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
    jobs: usize,
    workload: Workload,
    registered: usize,
    kind: String,
    duration: u64,
    warmup: u64,
    workers: usize,
    pool: Option<usize>,
    ticks: usize,
    db_connections: Option<u32>,
    retention: Option<u64>,
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
        jobs: 1000,
        workload: Workload::EverySecond,
        registered: 1_000_000,
        kind: "at-least-once".into(),
        duration: 60,
        warmup: 5,
        workers: 2,
        pool: None,
        ticks: 1,
        db_connections: None,
        retention: None,
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
            "--jobs" => args.jobs = number("--jobs", value("--jobs")?)? as usize,
            "--workload" => {
                args.workload = match value("--workload")?.as_str() {
                    "every-second" => Workload::EverySecond,
                    "mix" => Workload::Mix,
                    "registered" => Workload::Registered,
                    other => {
                        bail!("--workload is {other:?}; expected every-second, mix or registered")
                    }
                }
            }
            "--registered" => {
                args.registered = number("--registered", value("--registered")?)? as usize
            }
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
            "--env" => {
                let pair = value("--env")?;
                let (k, v) = pair
                    .split_once('=')
                    .with_context(|| format!("--env {pair:?} is not KEY=VALUE"))?;
                args.env.push((k.to_string(), v.to_string()));
            }
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
    Ok(args)
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
        Workload::EverySecond | Workload::Registered => &["* * * * * *"],
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
    },
    /// An SQLite file of the benchmark's own.
    Embedded { path: PathBuf },
}

async fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
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
    let db_name = format!("tickwork_bench_{suffix}");
    let prefix = format!("tickwork-bench:{suffix}");
    let admin = PgConnectOptions::from_str(&args.database_url)
        .context("--database-url is not a postgres URL")?;
    let mut admin_conn = admin
        .connect()
        .await
        .context("cannot reach PostgreSQL at --database-url")?;
    sqlx::query(&format!("CREATE DATABASE {db_name}"))
        .execute(&mut admin_conn)
        .await?;
    let setup = Setup::Servers {
        admin: Box::new(admin.clone()),
        db_name: db_name.clone(),
        prefix,
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

async fn create_jobs(
    args: &Args,
    client: &reqwest::Client,
    api_url: &str,
    target: &str,
) -> anyhow::Result<Vec<String>> {
    let crons = crons(args.workload);
    let results: Vec<anyhow::Result<String>> = futures_util::stream::iter(0..args.jobs)
        .map(|i| {
            let body = json!({
                "name": format!("bench {i}"),
                "cronExpression": crons[i % crons.len()],
                "httpUrl": format!("{target}/fire"),
                "executionType": execution_type(&args.kind, i),
                "timeoutSeconds": 30,
            });
            async move {
                let response = client
                    .post(format!("{api_url}/api/v1/jobs"))
                    .json(&body)
                    .send()
                    .await?;
                if response.status() != 201 {
                    bail!(
                        "creating a job answered {}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    );
                }
                Ok(crons[i % crons.len()].to_string())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
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

async fn measure(args: &Args, setup: &Setup, suffix: &str) -> anyhow::Result<()> {
    let log_dir = std::env::temp_dir().join(format!("tickwork-bench-{suffix}"));
    std::fs::create_dir_all(&log_dir)?;
    let target = Target::start().await?;
    let (rows, mut deployment) = match setup {
        Setup::Servers {
            admin,
            db_name,
            prefix,
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
            let db_url = database_url(&args.database_url, db_name);
            let deployment = start(args, &db_url, prefix, &log_dir)?;
            (Rows::Postgres(db), deployment)
        }
        Setup::Embedded { path } => {
            let deployment = start_embedded(args, path, &log_dir)?;
            (
                Rows::Sqlite(sqlx::SqlitePool::connect_lazy_with(
                    sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(path)
                        .busy_timeout(Duration::from_secs(30)),
                )),
                deployment,
            )
        }
    };
    let client = reqwest::Client::new();
    wait_healthy(&client, &deployment.api_url).await?;
    let started = std::time::Instant::now();
    let job_crons = create_jobs(args, &client, &deployment.api_url, &target.url).await?;
    eprintln!(
        "created {} jobs in {:.1} s; warming up {} s",
        job_crons.len(),
        started.elapsed().as_secs_f64(),
        args.warmup
    );
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;

    // The window: whole seconds of the database clock.
    let now = rows.clock().await?;
    let t0 = DateTime::from_timestamp(now.timestamp() + 1, 0).context("clock out of range")?;
    let t1 = t0 + chrono::Duration::seconds(args.duration as i64);
    tokio::time::sleep((t0 - now).to_std().unwrap_or_default()).await;

    let mut pids: Vec<(String, u32)> = vec![(deployment.api.name.clone(), deployment.api.pid())];
    pids.extend(deployment.ticks.iter().map(|p| (p.name.clone(), p.pid())));
    pids.extend(deployment.workers.iter().map(|p| (p.name.clone(), p.pid())));
    let servers: Vec<(String, Vec<u32>)> = vec![
        ("postgres (all)".into(), pids_named("postgres")),
        ("redis-server".into(), pids_named("redis-server")),
        ("bench + target".into(), vec![std::process::id()]),
    ];
    let cpu_start: Vec<f64> = pids.iter().map(|(_, pid)| cpu_seconds(*pid)).collect();
    let server_cpu_start: Vec<f64> = servers
        .iter()
        .map(|(_, ps)| ps.iter().map(|p| cpu_seconds(*p)).sum())
        .collect();
    let rss_start: Vec<f64> = pids
        .iter()
        .map(|(_, pid)| memory_mib(*pid, "VmRSS:"))
        .collect();
    let deleted_start = scrape(
        &client,
        &deployment.tick_metrics,
        "tickwork_history_deleted_total",
    )
    .await;

    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let deleted_end = scrape(
        &client,
        &deployment.tick_metrics,
        "tickwork_history_deleted_total",
    )
    .await;

    let cpu_end: Vec<f64> = pids.iter().map(|(_, pid)| cpu_seconds(*pid)).collect();
    let server_cpu_end: Vec<f64> = servers
        .iter()
        .map(|(_, ps)| ps.iter().map(|p| cpu_seconds(*p)).sum())
        .collect();
    let rss_end: Vec<f64> = pids
        .iter()
        .map(|(_, pid)| memory_mib(*pid, "VmRSS:"))
        .collect();
    let rss_peak: Vec<f64> = pids
        .iter()
        .map(|(_, pid)| memory_mib(*pid, "VmHWM:"))
        .collect();

    // Stop firing once every fire of the window is recorded (a tick running late may not
    // have recorded the last seconds yet: clearing those jobs now would drop fires the
    // benchmark then counts as missed), while the ticks keep releasing fires recorded
    // ahead and sweeping; let the window's fires finish, then stop everything.
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

    // Expected fires in the window, from the schedules themselves.
    let mut per_cron: HashMap<&str, usize> = HashMap::new();
    for cron in &job_crons {
        *per_cron.entry(cron.as_str()).or_insert(0) += 1;
    }
    let mut expected = 0usize;
    for (cron, jobs) in &per_cron {
        let schedule = Schedule::parse(cron, "UTC").context("bench cron")?;
        let fires = schedule
            .upcoming(
                t0 - chrono::Duration::milliseconds(1),
                (args.duration as usize) + 1,
            )
            .into_iter()
            .filter(|t| *t < t1)
            .count();
        expected += fires * jobs;
    }

    let (t0_ms, t1_ms) = (t0.timestamp_millis(), t1.timestamp_millis());
    let arrivals: Vec<_> = target
        .arrivals()
        .into_iter()
        .filter(|a| a.scheduled_ms >= t0_ms && a.scheduled_ms < t1_ms)
        .collect();
    // Per execution: the lag of its first arrival, and the minute of the window it is in.
    let mut first: HashMap<u128, (i64, i64)> = HashMap::with_capacity(arrivals.len());
    let mut fires: HashSet<(u128, i64)> = HashSet::with_capacity(arrivals.len());
    for a in &arrivals {
        let lag_us = a.arrived_us - a.scheduled_ms * 1000;
        let minute = (a.scheduled_ms - t0_ms) / 60_000;
        first
            .entry(a.execution)
            .and_modify(|l| l.0 = l.0.min(lag_us))
            .or_insert((lag_us, minute));
        fires.insert((a.job, a.scheduled_ms));
    }
    let mut by_minute: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
    for (lag_us, minute) in first.values() {
        by_minute
            .entry(*minute)
            .or_default()
            .push(*lag_us as f64 / 1000.0);
    }
    let lag_by_minute: Vec<serde_json::Value> = by_minute
        .into_iter()
        .map(|(minute, mut lags)| {
            lags.sort_by(|a, b| a.total_cmp(b));
            json!({
                "minute": minute + 1,
                "p50": (percentile(&lags, 0.50) * 10.0).round() / 10.0,
                "p99": (percentile(&lags, 0.99) * 10.0).round() / 10.0,
            })
        })
        .collect();
    let delivered = first.len();
    let duplicates = arrivals.len() - delivered;
    let missed = expected.saturating_sub(fires.len());
    let mut lags: Vec<f64> = first.values().map(|(us, _)| *us as f64 / 1000.0).collect();
    lags.sort_by(|a, b| a.total_cmp(b));

    let (recorded, succeeded, attempts) = rows.window(t0, t1).await?;

    let secs = args.duration as f64;
    let processes: Vec<serde_json::Value> = pids
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            json!({
                "process": name,
                "cpu_cores": ((cpu_end[i] - cpu_start[i]) / secs * 100.0).round() / 100.0,
                "rss_mib_start": (rss_start[i] * 10.0).round() / 10.0,
                "rss_mib_end": (rss_end[i] * 10.0).round() / 10.0,
                "rss_mib_peak": (rss_peak[i] * 10.0).round() / 10.0,
            })
        })
        .chain(servers.iter().enumerate().map(|(i, (name, _))| {
            json!({
                "process": name,
                "cpu_cores": ((server_cpu_end[i] - server_cpu_start[i]) / secs * 100.0).round() / 100.0,
            })
        }))
        .collect();
    let summary = json!({
        "backend": format!("{:?}", args.backend),
        "workload": format!("{:?}", args.workload),
        "jobs": args.jobs,
        "registered_idle_jobs": if args.workload == Workload::Registered { args.registered } else { 0 },
        "execution_type": args.kind,
        "duration_s": args.duration,
        "workers": args.workers,
        "pool_size": args.pool,
        "ticks": args.ticks,
        "fires_due_per_s": (expected as f64 / secs * 10.0).round() / 10.0,
        "fires_due": expected,
        "executions_per_s_at_target": (delivered as f64 / secs * 10.0).round() / 10.0,
        "executions_per_s_in_history": (succeeded as f64 / secs * 10.0).round() / 10.0,
        "delivered": delivered,
        "succeeded_in_history": succeeded,
        "missed_fires": missed,
        "duplicate_deliveries": duplicates,
        "lag_ms": {
            "p50": (percentile(&lags, 0.50) * 10.0).round() / 10.0,
            "p90": (percentile(&lags, 0.90) * 10.0).round() / 10.0,
            "p99": (percentile(&lags, 0.99) * 10.0).round() / 10.0,
            "max": (lags.last().copied().unwrap_or(0.0) * 10.0).round() / 10.0,
        },
        "lag_ms_by_minute": lag_by_minute,
        "history_rows_written": recorded + attempts,
        "retention_s": args.retention,
        "history_deleted_per_s": match (deleted_start, deleted_end) {
            (Some(a), Some(b)) if args.retention.is_some() => Some(((b - a) / secs * 10.0).round() / 10.0),
            _ => None,
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
    println!(
        "{} | workload {} | {} jobs ({}) | {} idle | {} s | {} worker(s) x pool {} | {} tick(s)",
        s["backend"].as_str().unwrap_or(""),
        s["workload"].as_str().unwrap_or(""),
        s["jobs"],
        s["execution_type"].as_str().unwrap_or(""),
        s["registered_idle_jobs"],
        s["duration_s"],
        s["workers"],
        s["pool_size"],
        s["ticks"]
    );
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
    if let Some(minutes) = s["lag_ms_by_minute"].as_array().filter(|m| m.len() > 1) {
        let line: Vec<String> = minutes
            .iter()
            .map(|m| format!("{}: {}/{}", m["minute"], m["p50"], m["p99"]))
            .collect();
        println!("lag ms by minute p50/p99  {}", line.join("  "));
    }
    println!("missed fires           {}", s["missed_fires"]);
    println!("duplicate deliveries   {}", s["duplicate_deliveries"]);
    println!("history rows written   {}", s["history_rows_written"]);
    if !s["history_deleted_per_s"].is_null() {
        println!(
            "history deleted/s      {} (retention {} s)",
            s["history_deleted_per_s"], s["retention_s"]
        );
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
                p["process"].as_str().unwrap_or(""),
                p["cpu_cores"].to_string(),
                rss
            );
        }
    }
    println!(
        "logs                   {}",
        s["logs"].as_str().unwrap_or("")
    );
}

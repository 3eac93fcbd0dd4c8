//! What the benchmark runs against: its store ([`Setup`]) and the tickwork processes it
//! starts on it ([`Deployment`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::postgres::PgConnectOptions;
use tickwork::store::PgStore;

use crate::args::{Args, Cluster, Workload};
use crate::procs::{self, pids_named, Proc};
use crate::rows::Rows;
use crate::target::Target;
use crate::workload::{insert_idle_jobs, insert_old_history};

/// Where the deployment keeps its jobs and history.
pub enum Setup {
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
pub struct Server {
    pub cluster: Cluster,
    /// `SHOW` of [`crate::cluster::REPORTED`] at the start.
    pub settings: serde_json::Value,
    /// The own cluster's postmaster: its processes are the PostgreSQL measured.
    pub postmaster: Option<u32>,
    /// Whether `pg_stat_statements` is loaded (own cluster only).
    pub statements: bool,
}

/// The tickwork processes of a run (with the embedded backend, `tickwork-local` alone as
/// the api).
pub struct Deployment {
    pub api: Proc,
    pub ticks: Vec<Proc>,
    pub workers: Vec<Proc>,
    pub api_url: String,
    /// The first tick's `/metrics`.
    pub tick_metrics: String,
}

/// The URL of database `db` on the server of the admin URL `admin`, with its parameters.
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
pub fn free_port() -> anyhow::Result<u16> {
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
fn start_embedded(args: &Args, path: &Path, log_dir: &Path) -> anyhow::Result<Deployment> {
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
fn start(args: &Args, db_url: &str, prefix: &str, log_dir: &Path) -> anyhow::Result<Deployment> {
    let port = free_port()?;
    let mut env = common_env(args, port);
    env.extend([
        ("DATABASE_URL".into(), db_url.into()),
        ("REDIS_URL".into(), args.redis_url.clone()),
        ("REDIS_KEY_PREFIX".into(), prefix.into()),
        ("MIGRATE_ON_START".into(), "false".into()),
    ]);
    let spawn = |binary: &str, name: String, env: &[(String, String)]| {
        Proc::spawn(&args.bin_dir, binary, name, env, log_dir)
    };
    let api = spawn("tickwork-api", "api".into(), &env)?;
    let metrics_port = free_port()?;
    let ticks = (0..args.ticks)
        .map(|i| {
            let mut tick_env = env.clone();
            if i == 0 {
                tick_env.push(("METRICS_PORT".into(), metrics_port.to_string()));
            }
            spawn("tickwork-tick", format!("tick-{}", i + 1), &tick_env)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let workers = (0..args.workers)
        .map(|i| spawn("tickwork-worker", format!("worker-{}", i + 1), &env))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Deployment {
        api,
        ticks,
        workers,
        api_url: format!("http://127.0.0.1:{port}"),
        tick_metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
    })
}

/// Waits for the api's `/health` to answer, for 10 s at the most.
pub async fn wait_healthy(client: &reqwest::Client, api_url: &str) -> anyhow::Result<()> {
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

/// Starts the deployment on its store (migrated, with idle jobs for the registered
/// workload) and returns a pool on that store beside it.
pub async fn deploy(
    args: &Args,
    setup: &Setup,
    target: &Target,
    log_dir: &Path,
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
    pub fn pids(&self) -> Vec<(String, u32)> {
        let mut pids = vec![(self.api.name.clone(), self.api.pid())];
        pids.extend(self.ticks.iter().map(|p| (p.name.clone(), p.pid())));
        pids.extend(self.workers.iter().map(|p| (p.name.clone(), p.pid())));
        pids
    }
}

/// The other processes whose CPU is reported: PostgreSQL (the own cluster's, or every
/// `postgres` on the machine), Redis, and this benchmark with its target.
pub fn server_pids(setup: &Setup) -> Vec<(String, Vec<u32>)> {
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

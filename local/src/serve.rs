//! `tickwork-local serve`: the API, the tick and a worker pool in one process, over the
//! same store and queue, stopping together on Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tickwork::api;
use tickwork::config::Settings;
use tickwork::queue::{MemoryQueue, Queue};
use tickwork::secrets::Keyring;
use tickwork::startup::{app_state, database_target, shutdown_signal, Runner, Services};
use tickwork::store::{SqliteStore, Store};
use tickwork::tick::{self, TickSettings};
use tickwork::worker::{Worker, WorkerSettings};
use tokio::sync::watch;

use crate::args::Args;

/// Where jobs, history and work live.
enum Backend {
    /// PostgreSQL and Redis, exactly as the three functions use them.
    Servers,
    /// An SQLite file and an in-memory queue.
    Embedded(PathBuf),
}

impl Backend {
    /// Servers when any of their variables is set; otherwise the embedded file from
    /// `--db`, `TICKWORK_DB` or `./tickwork.db`.
    fn choose(args: &Args) -> Result<Self, String> {
        args.only(&["db"], 1)?;
        let configured = ["DATABASE_URL", "DB_HOST", "REDIS_URL", "REDIS_HOST"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        if configured {
            if args.flag("db") {
                return Err(
                    "--db names the embedded database, but DATABASE_URL/DB_HOST or \
                     REDIS_URL/REDIS_HOST is set, which selects PostgreSQL and Redis; \
                     unset them or drop --db"
                        .into(),
                );
            }
            return Ok(Backend::Servers);
        }
        let path = args
            .value("db")
            .map(str::to_string)
            .or_else(|| std::env::var("TICKWORK_DB").ok().filter(|p| !p.is_empty()))
            .unwrap_or_else(|| DEFAULT_DB.to_string());
        Ok(Backend::Embedded(PathBuf::from(path)))
    }
}

/// The key that seals credentials in an embedded database when `ENCRYPTION_KEY` is not
/// set: `FILE.key` beside it, made on first start (readable by this user only).
fn embedded_keyring(db: &Path) -> anyhow::Result<Arc<Keyring>> {
    let mut path = db.as_os_str().to_owned();
    path.push(".key");
    let path = PathBuf::from(path);
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keyring::generate_key();
            let mut file = std::fs::OpenOptions::new();
            file.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
            std::io::Write::write_all(&mut file.open(&path)?, key.as_bytes())
                .with_context(|| format!("cannot write the key file {}", path.display()))?;
            key
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the key file {}", path.display()))
        }
    };
    let keyring = Keyring::new(&key, &[])
        .with_context(|| format!("the key file {} does not hold a key", path.display()))?;
    Ok(Arc::new(keyring))
}

/// The embedded database file when neither `--db` nor `TICKWORK_DB` names one.
pub const DEFAULT_DB: &str = "tickwork.db";

/// Checks the command line of `serve` before anything starts.
pub fn check(args: &Args) -> Result<(), String> {
    Backend::choose(args).map(|_| ())
}

/// Runs until Ctrl-C or SIGTERM, then lets each part stop in turn.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let backend = Backend::choose(args).map_err(anyhow::Error::msg)?;
    let settings = Settings::from_env()?;
    tickwork::telemetry::init(&settings.log_level, settings.log_format)?;
    let keyring = match (&backend, tickwork::startup::keyring(&settings)?) {
        (_, Some(keyring)) => keyring,
        (Backend::Servers, None) => tickwork::startup::require_keyring(&settings)?,
        (Backend::Embedded(path), None) => embedded_keyring(path)?,
    };
    let (store, queue): (Arc<dyn Store>, Arc<dyn Queue>) = match &backend {
        Backend::Servers => {
            let services = Services::start(&settings).await?;
            println!(
                "tickwork-local: backend PostgreSQL at {} and Redis (key prefix {:?})",
                database_target(&settings),
                settings.redis.key_prefix
            );
            (services.store, services.queue)
        }
        Backend::Embedded(path) => {
            let store = SqliteStore::open(path)
                .await
                .with_context(|| format!("cannot use the embedded database {}", path.display()))?;
            store.migrate().await.with_context(|| {
                format!("cannot migrate the embedded database {}", path.display())
            })?;
            println!(
                "tickwork-local: backend embedded: jobs and history in the SQLite file {}, \
                 work queue in memory (one process at a time; set DATABASE_URL and REDIS_URL \
                 to use PostgreSQL and Redis)",
                path.display()
            );
            (Arc::new(store), Arc::new(MemoryQueue::new()))
        }
    };
    let address = format!("{}:{}", settings.server_host, settings.server_port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("failed to listen on {address} (SERVER_HOST, SERVER_PORT)"))?;
    let reachable = match settings.server_host.as_str() {
        "0.0.0.0" | "::" => format!("127.0.0.1:{}", settings.server_port),
        _ => address.clone(),
    };
    println!("tickwork-local: API on http://{address} (try: curl http://{reachable}/health)");
    println!(
        "tickwork-local: outbound calls may reach loopback and private addresses (development use)"
    );
    if tickwork::startup::auth(&settings, Runner::Local) == tickwork::api::Auth::Disabled {
        println!(
            "tickwork-local: API keys are off (development use; AUTH_DISABLED=false and \
             API_ADMIN_KEY turn them on)"
        );
    }

    // One Ctrl-C stops all three parts.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    // For development: targets on this machine and the local network are allowed.
    let state = app_state(
        &settings,
        store.clone(),
        queue.clone(),
        keyring.clone(),
        Runner::Local,
    );
    tickwork::startup::spawn_metrics_server(&settings, Some(state.clone())).await?;
    let targets = state.targets.clone();
    let api = tokio::spawn(api::serve(listener, state, settings.connections, stopped()));

    let (tick_store, tick_queue) = (store.clone(), queue.clone());
    let tick_settings = TickSettings::from(&settings);
    let tick_stop = stopped();
    let tick = tokio::spawn(async move {
        tick::run(
            tick_store.as_ref(),
            tick_queue.as_ref(),
            tick_settings,
            tick_stop,
        )
        .await
    });

    let worker_settings = WorkerSettings {
        targets,
        keyring: Some(keyring),
        ..tickwork::startup::worker_settings(&settings)
    };
    let worker =
        Worker::new(store, queue, worker_settings).context("failed to build the worker")?;
    let worker = tokio::spawn(Arc::new(worker).run(stopped()));

    let (api, tick, worker) = tokio::join!(api, tick, worker);
    api.context("the API task failed")?
        .context("the API server failed")?;
    let tick = tick.context("the tick task failed")?;
    let worker = worker.context("the worker task failed")?;
    tracing::info!(?tick, ?worker, "tickwork-local stopped");
    Ok(())
}

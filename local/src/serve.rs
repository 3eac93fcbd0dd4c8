//! `tickwork-local serve`: the API, the tick and a worker pool in one process, over the
//! same store and queue, stopping together on Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use tickwork::api;
use tickwork::config::Settings;
use tickwork::startup::{app_state, database_target, shutdown_signal, Backend, Runner};
use tickwork::tick::{self, TickSettings};
use tickwork::worker::{Worker, WorkerSettings};
use tokio::sync::watch;

use crate::args::ServeArgs;

/// The backend `serve` runs on, from `--db` and the environment.
pub fn backend(args: &ServeArgs) -> Result<Backend, String> {
    let db = args
        .db
        .as_ref()
        .map(|path| path.to_string_lossy().into_owned());
    Backend::choose(db.as_deref())
}

/// Runs until Ctrl-C or SIGTERM, then lets each part stop in turn.
pub async fn run(backend: Backend) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    tickwork::telemetry::init(&settings.log.level, settings.log.format)?;
    let (store, queue, keyring) = backend.open(&settings).await?;
    let listener = announce(&backend, &settings).await?;

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
    let api = tokio::spawn(api::serve(
        listener,
        state,
        settings.api.connections,
        stopped(),
    ));

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

/// Says which backend serves and where the API will listen, and binds its port.
async fn announce(
    backend: &Backend,
    settings: &Settings,
) -> anyhow::Result<tokio::net::TcpListener> {
    match &backend {
        Backend::Servers => println!(
            "tickwork-local: backend PostgreSQL at {} and Redis (key prefix {:?})",
            database_target(settings),
            settings.redis.key_prefix
        ),
        Backend::Embedded(path) => println!(
            "tickwork-local: backend embedded: jobs and history in the SQLite file {}, \
             work queue in memory (one process at a time; set DATABASE_URL and REDIS_URL \
             to use PostgreSQL and Redis)",
            path.display()
        ),
    }
    let address = format!("{}:{}", settings.api.host, settings.api.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("failed to listen on {address} (SERVER_HOST, SERVER_PORT)"))?;
    let reachable = match settings.api.host.as_str() {
        "0.0.0.0" | "::" => format!("127.0.0.1:{}", settings.api.port),
        _ => address.clone(),
    };
    println!("tickwork-local: dashboard on http://{reachable}/ui");
    println!("tickwork-local: API on http://{address} (try: curl http://{reachable}/health)");
    println!(
        "tickwork-local: outbound calls may reach loopback and private addresses (development use)"
    );
    if tickwork::startup::auth(settings, Runner::Local) == tickwork::api::Auth::Disabled {
        println!(
            "tickwork-local: API keys are off (development use; AUTH_DISABLED=false and \
             API_ADMIN_KEY turn them on)"
        );
    }
    Ok(listener)
}

//! `tickwork-local serve`: the API, the tick and a worker pool in one process, over the
//! same store and queue, stopping together on Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use tickwork::api::{self, AppState};
use tickwork::config::Settings;
use tickwork::startup::{database_target, shutdown_signal, Services};
use tickwork::tick::{self, TickSettings};
use tickwork::worker::{Worker, WorkerSettings};
use tokio::sync::watch;

/// Runs until Ctrl-C or SIGTERM, then lets each part stop in turn.
pub async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    tickwork::telemetry::init(&settings.log_level, settings.log_format)?;
    let configured = ["DATABASE_URL", "DB_HOST", "REDIS_URL", "REDIS_HOST"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if !configured {
        anyhow::bail!(
            "set DATABASE_URL and REDIS_URL (or the DB_* and REDIS_* variables), e.g. \
             postgres://postgres@127.0.0.1:5432/tickwork and redis://127.0.0.1:6379: the \
             embedded backend (SQLite, no servers) is not built yet"
        );
    }
    let services = Services::start(&settings).await?;
    let address = format!("{}:{}", settings.server_host, settings.server_port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("failed to listen on {address} (SERVER_HOST, SERVER_PORT)"))?;
    println!(
        "tickwork-local: backend PostgreSQL at {} and Redis (key prefix {:?})",
        database_target(&settings),
        settings.redis.key_prefix
    );
    println!("tickwork-local: API on http://{address} (try: curl http://{address}/health)");
    println!(
        "tickwork-local: outbound calls may reach loopback and private addresses (development use)"
    );

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

    let state = AppState {
        store: services.store.clone(),
        queue: services.queue.clone(),
    };
    let api = tokio::spawn(api::serve(listener, state, stopped()));

    let tick_services = services.clone();
    let tick_settings = TickSettings::from(&settings);
    let tick_stop = stopped();
    let tick = tokio::spawn(async move {
        tick::run(
            tick_services.store.as_ref(),
            tick_services.queue.as_ref(),
            tick_settings,
            tick_stop,
        )
        .await
    });

    let worker = Worker::new(
        services.store,
        services.queue,
        WorkerSettings::from(&settings),
    )
    .context("failed to build the worker")?;
    let worker = tokio::spawn(Arc::new(worker).run(stopped()));

    let (api, tick, worker) = tokio::join!(api, tick, worker);
    api.context("the API task failed")?
        .context("the API server failed")?;
    let tick = tick.context("the tick task failed")?;
    let worker = worker.context("the worker task failed")?;
    tracing::info!(?tick, ?worker, "tickwork-local stopped");
    Ok(())
}

//! `tickwork-worker`: drain the queue, call targets, record outcomes; as a long-lived
//! process or, when started by AWS Lambda, within each invocation's budget.

use std::sync::Arc;

use anyhow::Context;
use std::process::ExitCode;

use tickwork::config::Settings;
use tickwork::startup::{shutdown_signal, Services};
use tickwork::telemetry::error_chain;
use tickwork::worker::Worker;

// glibc's malloc took a fifth of the worker's time in a burst of requests and let its RSS
// creep up over long runs; with mimalloc RSS stays level (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tickwork-worker: {}", error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    tickwork::telemetry::init(&settings.log.level, settings.log.format)?;
    tickwork::startup::require_keyring(&settings)?;
    let services = Services::start(&settings).await?;
    let worker_settings = tickwork::startup::worker_settings(&settings);
    let queue = services.queue.clone();
    let worker = Worker::new(services.store, services.queue, worker_settings.clone())
        .context("failed to build the worker")?;
    if settings.lambda.detected {
        return tickwork::lambda::serve_worker(Arc::new(worker), queue, settings)
            .await
            .map_err(anyhow::Error::from_boxed);
    }
    tickwork::startup::spawn_metrics_server(&settings, None).await?;
    tracing::info!(?worker_settings, environment = %settings.environment, "tickwork-worker started");
    Arc::new(worker).run(shutdown_signal()).await;
    Ok(())
}

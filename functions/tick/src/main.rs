//! `tickwork-tick`: every second, claim due jobs and queue their fires; as a long-lived
//! process or, when started by AWS Lambda, for the length of each invocation.

use std::process::ExitCode;

use tickwork::config::Settings;
use tickwork::startup::{shutdown_signal, Services};
use tickwork::telemetry::error_chain;
use tickwork::tick::{self, TickSettings};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tickwork-tick: {}", error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    tickwork::telemetry::init(&settings.log.level, settings.log.format)?;
    let services = Services::start(&settings).await?;
    if settings.lambda.detected {
        return tickwork::lambda::serve_tick(services, settings)
            .await
            .map_err(anyhow::Error::from_boxed);
    }
    tickwork::startup::spawn_metrics_server(&settings, None).await?;
    let tick_settings = TickSettings::from(&settings);
    tracing::info!(?tick_settings, environment = %settings.environment, "tickwork-tick started");
    let run = tick::run(
        services.store.as_ref(),
        services.queue.as_ref(),
        tick_settings,
        shutdown_signal(),
    )
    .await;
    tracing::info!(?run, "tickwork-tick stopped");
    Ok(())
}

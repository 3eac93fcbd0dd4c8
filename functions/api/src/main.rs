//! `tickwork-api`: the HTTP API, as a long-lived server or, when started by AWS Lambda,
//! behind API Gateway.
//!
//! `tickwork-api migrate` applies pending migrations, converts an unpartitioned history to
//! time partitions (online, resumable), and exits.

use anyhow::Context;
use std::process::ExitCode;

use tickwork::api::{self, Auth};
use tickwork::config::Settings;
use tickwork::startup::{app_state, shutdown_signal, Runner, Services};
use tickwork::telemetry::error_chain;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tickwork-api: {}", error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    tickwork::telemetry::init(&settings.log.level, settings.log.format)?;

    match std::env::args().nth(1).as_deref() {
        Some("migrate") => {
            let services = Services::start(&Settings {
                migrate_on_start: false,
                ..settings.clone()
            })
            .await?;
            services.migrate(&settings).await?;
            tracing::info!("migrations applied");
            // An unpartitioned history is converted online, step by step, to the end.
            let conversion = services.convert_history(&settings, None).await?;
            tracing::info!(step = %conversion.step, detail = %conversion.detail, "the history is in time partitions");
            return Ok(());
        }
        Some(other) => {
            anyhow::bail!("unknown command {other:?}; expected no argument (serve) or `migrate`")
        }
        None => {}
    }

    let keyring = tickwork::startup::require_keyring(&settings)?;
    let services = Services::start(&settings).await?;
    if settings.lambda.detected {
        return tickwork::lambda::serve_api(services, &settings)
            .await
            .map_err(anyhow::Error::from_boxed);
    }
    let address = format!("{}:{}", settings.api.host, settings.api.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("failed to listen on {address} (SERVER_HOST, SERVER_PORT)"))?;
    tracing::info!(%address, environment = %settings.environment, "tickwork-api listening");
    let state = app_state(
        &settings,
        services.store,
        services.queue,
        keyring,
        Runner::Function,
    );
    announce(&state.auth);
    tickwork::startup::spawn_metrics_server(&settings, Some(state.clone())).await?;
    api::serve(listener, state, settings.api.connections, shutdown_signal())
        .await
        .context("the API server failed")
}

/// Says loudly that keys are off, and when no operator key is set.
fn announce(auth: &Auth) {
    match auth {
        Auth::Disabled => tracing::warn!(
            "AUTH_DISABLED=true: anyone who reaches this API can create, read and delete \
             every job; never run it like this where others can reach it"
        ),
        Auth::Keys {
            operator_hash: None,
        } => tracing::info!(
            "API_ADMIN_KEY is not set: only API keys already stored can call the API"
        ),
        Auth::Keys { .. } => {}
    }
}

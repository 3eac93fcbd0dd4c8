//! `tickwork-api`: the HTTP API, as a long-lived server or, when started by AWS Lambda,
//! behind API Gateway.
//!
//! `tickwork-api migrate` applies pending migrations, converts an unpartitioned history to
//! time partitions (online, resumable), and exits.

use anyhow::Context;
use std::process::ExitCode;

use tickwork::api::{self, AppState};
use tickwork::config::Settings;
use tickwork::startup::{shutdown_signal, Services};
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
    tickwork::telemetry::init(&settings.log_level, settings.log_format)?;

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

    let keyring = settings.require_keyring()?;
    let services = Services::start(&settings).await?;
    if tickwork::lambda::detected() {
        return tickwork::lambda::serve_api(services, &settings)
            .await
            .map_err(anyhow::Error::from_boxed);
    }
    let address = format!("{}:{}", settings.server_host, settings.server_port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("failed to listen on {address} (SERVER_HOST, SERVER_PORT)"))?;
    tracing::info!(%address, environment = %settings.environment, "tickwork-api listening");
    let state = AppState {
        store: services.store,
        queue: services.queue,
        targets: settings.targets.clone(),
        keyring,
        auth: auth(&settings),
        rate_limit: settings.rate_limit,
        key_failures: api::KeyFailures::new(
            settings.wrong_key_limit,
            settings.trusted_proxies.clone(),
        ),
    };
    tickwork::startup::spawn_metrics_server(&settings, Some(state.clone())).await?;
    api::serve(listener, state, settings.connections, shutdown_signal())
        .await
        .context("the API server failed")
}

/// Keys required unless `AUTH_DISABLED=true`, which is said loudly.
fn auth(settings: &Settings) -> tickwork::api::Auth {
    let auth = settings.auth(false);
    match &auth {
        tickwork::api::Auth::Disabled => tracing::warn!(
            "AUTH_DISABLED=true: anyone who reaches this API can create, read and delete \
             every job; never run it like this where others can reach it"
        ),
        tickwork::api::Auth::Keys {
            operator_hash: None,
        } => tracing::info!(
            "API_ADMIN_KEY is not set: only API keys already stored can call the API"
        ),
        tickwork::api::Auth::Keys { .. } => {}
    }
    auth
}

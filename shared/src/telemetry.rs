//! Tracing setup: one subscriber per process, JSON or text by configuration.

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, LogFormat};

/// Installs the global subscriber. `level` is a tracing filter (`info`,
/// `tickwork=debug,info`, ...); `RUST_LOG`, when set, takes precedence.
///
/// Calling it twice is harmless: the second call leaves the first subscriber in place.
pub fn init(level: &str, format: LogFormat) -> Result<(), ConfigError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(rust_log) if !rust_log.trim().is_empty() => EnvFilter::try_new(rust_log)
            .map_err(|e| ConfigError::new("RUST_LOG", format!("is not a valid log filter: {e}")))?,
        _ => EnvFilter::try_new(level).map_err(|e| {
            ConfigError::new(
                "LOG_LEVEL",
                format!(
                    "is {level:?}, not a valid log filter (try debug, info, warn or error): {e}"
                ),
            )
        })?,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .flatten_event(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    Ok(())
}

/// An error and its causes, joined with ": ", for one log field or message. A cause whose
/// text the chain already holds (some errors print their source themselves) is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

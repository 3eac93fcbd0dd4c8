//! Settings, read once from the environment at start.
//!
//! A missing or malformed value stops the process with a message naming the variable.
//! Secrets are wrapped so they never reach a log line.

mod cidr;
mod env;
mod sections;

use std::fmt;
use std::time::Duration;

pub use cidr::Cidr;
pub use env::parse_duration;
pub use sections::{
    ApiSettings, ConnectionSettings, DatabaseSettings, DeliverySettings, LambdaSettings,
    RedisSettings, SchedulingSettings,
};

use env::Env;

/// The longest `SCHEDULER_LOOKAHEAD`: no fire is recorded further ahead of its time.
pub const MAX_LOOKAHEAD: Duration = Duration::from_secs(10);

/// A setting that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable} {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with it, and what would be accepted.
    pub message: String,
}

impl ConfigError {
    /// An error about `variable`; `message` continues the sentence after its name.
    pub fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

/// A value that must not be printed: passwords and URLs that may hold them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for terminals.
    Text,
}

/// A rate limit: a bucket of `burst` tokens refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per second (at least 1).
    pub per_second: u32,
    /// Most tokens the bucket holds (requests allowed at once after a quiet spell).
    pub burst: u32,
}

/// The keys credentials are sealed with, each checked to be 32 bytes in base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionKeys {
    /// `ENCRYPTION_KEY`: seals every new value.
    pub current: Secret,
    /// `ENCRYPTION_PREVIOUS_KEYS`: open values sealed before a key change.
    pub previous: Vec<Secret>,
}

/// Where log lines go and how much is said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `LOG_LEVEL`: a tracing filter such as `info` or `tickwork=debug,info`.
    pub level: String,
    /// `LOG_FORMAT`: `json` or `text` (default: json on AWS Lambda, text elsewhere).
    pub format: LogFormat,
}

/// Everything the binaries read from the environment, by section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the truth lives.
    pub database: DatabaseSettings,
    /// Where the work is carried.
    pub redis: RedisSettings,
    /// The API's address, keys and limits.
    pub api: ApiSettings,
    /// The tick's passes.
    pub scheduling: SchedulingSettings,
    /// The worker's requests.
    pub delivery: DeliverySettings,
    /// AWS Lambda's invocations.
    pub lambda: LambdaSettings,
    /// `ENCRYPTION_KEY` (and `ENCRYPTION_PREVIOUS_KEYS`, comma-separated, for values sealed
    /// before a key rotation): seals credentials and signing secrets at rest. The API and
    /// the worker need it (`startup::require_keyring`).
    pub secrets: Option<EncryptionKeys>,
    /// Log lines.
    pub log: LogSettings,
    /// `METRICS_PORT`: where the tick and worker serve `/metrics` (unset: not served; the
    /// API serves it on its own port).
    pub metrics_port: Option<u16>,
    /// `MIGRATE_ON_START`: apply pending migrations when a binary starts (default: true,
    /// false on AWS Lambda, where a cold start must not migrate).
    pub migrate_on_start: bool,
    /// `ENVIRONMENT`: free text such as `development` or `production`, logged at start.
    pub environment: String,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, which returns a variable's value if it is set.
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let lambda = LambdaSettings::read(&env)?;
        let default_format = if lambda.detected { "json" } else { "text" };
        Ok(Self {
            database: DatabaseSettings::read(&env)?,
            redis: RedisSettings::read(&env)?,
            api: ApiSettings::read(&env)?,
            scheduling: SchedulingSettings::read(&env)?,
            delivery: DeliverySettings::read(&env)?,
            secrets: env.encryption_keys()?,
            log: LogSettings {
                level: env.string_or("LOG_LEVEL", "info"),
                format: match env
                    .one_of("LOG_FORMAT", default_format, &["json", "text"])?
                    .as_str()
                {
                    "json" => LogFormat::Json,
                    _ => LogFormat::Text,
                },
            },
            metrics_port: match env.string("METRICS_PORT") {
                None => None,
                Some(_) => Some(env.port("METRICS_PORT", 0)?),
            },
            migrate_on_start: env.boolean("MIGRATE_ON_START", !lambda.detected)?,
            environment: env.string_or("ENVIRONMENT", "development"),
            lambda,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.api.port, 8080);
        assert_eq!(s.api.host, "0.0.0.0");
        assert_eq!(s.delivery.pool_size, 10_000);
        assert_eq!(s.delivery.http_timeout, Duration::from_secs(90));
        assert_eq!(s.scheduling.poll_interval, Duration::from_secs(1));
        assert_eq!(s.scheduling.misfire_threshold, Duration::from_secs(60));
        assert_eq!(s.delivery.retry_backoff_base, Duration::from_secs(1));
        assert_eq!(s.delivery.retry_backoff_max, Duration::from_secs(300));
        assert!(s.migrate_on_start);
        assert_eq!(s.redis.key_prefix, "tickwork");
        assert_eq!(s.log.format, LogFormat::Text);
        assert!(!s.lambda.detected);
        assert_eq!(s.lambda.intake_budget, Duration::from_secs(90));
    }

    #[test]
    fn on_lambda_migrations_are_off_and_logs_are_json_unless_asked_otherwise() {
        let s = settings(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")]).unwrap();
        assert!(s.lambda.detected);
        assert!(!s.migrate_on_start);
        assert_eq!(s.log.format, LogFormat::Json);
        let s = settings(&[
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("MIGRATE_ON_START", "true"),
            ("LOG_FORMAT", "text"),
        ])
        .unwrap();
        assert!(s.migrate_on_start);
        assert_eq!(s.log.format, LogFormat::Text);
    }

    #[test]
    fn the_encryption_key_is_optional_to_read_and_named_when_malformed() {
        let s = settings(&[]).unwrap();
        assert!(s.secrets.is_none());
        let err = settings(&[("ENCRYPTION_KEY", "c2hvcnQ=")]).unwrap_err();
        assert_eq!(err.variable, "ENCRYPTION_KEY");
        assert!(err.to_string().contains("openssl rand -base64 32"), "{err}");
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let keyed = settings(&[("ENCRYPTION_KEY", key)]).unwrap();
        assert!(keyed.secrets.is_some());
        assert!(!format!("{keyed:?}").contains(key), "the key never prints");
        let err = settings(&[
            ("ENCRYPTION_KEY", key),
            ("ENCRYPTION_PREVIOUS_KEYS", "nope"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "ENCRYPTION_PREVIOUS_KEYS");
        assert!(
            err.to_string()
                .starts_with("ENCRYPTION_PREVIOUS_KEYS is not a key"),
            "{err}"
        );
    }

    #[test]
    fn auth_is_read_and_a_short_operator_key_is_refused() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            (s.api.auth_disabled, s.api.admin_key.is_none()),
            (None, true)
        );
        let s = settings(&[("AUTH_DISABLED", "true")]).unwrap();
        assert_eq!(s.api.auth_disabled, Some(true));
        let err = settings(&[("API_ADMIN_KEY", "short")]).unwrap_err();
        assert_eq!(err.variable, "API_ADMIN_KEY");
        let key = "tw_0123456789abcdefghijklmnopqrstuvwxyz";
        let s = settings(&[("API_ADMIN_KEY", key)]).unwrap();
        assert!(!format!("{s:?}").contains(key), "the key never prints");
        assert_eq!(s.api.admin_key.as_ref().map(Secret::expose), Some(key));
    }

    #[test]
    fn rate_limits_default_to_five_hundred_a_second_per_key_and_zero_turns_them_off() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            s.api.rate_limit,
            Some(RateLimit {
                per_second: 500,
                burst: 1000
            })
        );
        assert_eq!(
            settings(&[("RATE_LIMIT_PER_SECOND", "0")])
                .unwrap()
                .api
                .rate_limit,
            None
        );
        let err = settings(&[("RATE_LIMIT_BURST", "0")]).unwrap_err();
        assert_eq!(err.variable, "RATE_LIMIT_BURST");
    }

    #[test]
    fn the_lambda_fallback_is_the_functions_own_unless_set() {
        assert_eq!(settings(&[]).unwrap().lambda.fallback_timeout, None);
        let s = settings(&[("LAMBDA_FALLBACK_TIMEOUT", "20s")]).unwrap();
        assert_eq!(s.lambda.fallback_timeout, Some(Duration::from_secs(20)));
        let err = settings(&[("LAMBDA_FALLBACK_TIMEOUT", "0")]).unwrap_err();
        assert_eq!(err.variable, "LAMBDA_FALLBACK_TIMEOUT");
    }

    #[test]
    fn wrong_keys_are_limited_by_default_and_the_edge_settings_read_their_variables() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            s.api.wrong_key_limit,
            Some(RateLimit {
                per_second: 1,
                burst: 20
            })
        );
        assert!(s.api.trusted_proxies.is_empty());
        assert_eq!(s.api.connections, ConnectionSettings::default());
        let s = settings(&[
            ("WRONG_KEY_LIMIT_PER_SECOND", "0"),
            ("TRUSTED_PROXY_CIDRS", "10.0.0.0/8, 192.0.2.1"),
            ("API_HEAD_TIMEOUT", "2s"),
            ("API_MAX_CONNECTIONS", "100"),
        ])
        .unwrap();
        assert_eq!(s.api.wrong_key_limit, None);
        assert_eq!(s.api.trusted_proxies.len(), 2);
        assert_eq!(s.api.connections.head_timeout, Duration::from_secs(2));
        assert_eq!(s.api.connections.max_connections, Some(100));
        for (name, value) in [
            ("TRUSTED_PROXY_CIDRS", "10.0.0.0/33"),
            ("API_BODY_TIMEOUT", "0"),
            ("WRONG_KEY_LIMIT_BURST", "0"),
        ] {
            assert_eq!(settings(&[(name, value)]).unwrap_err().variable, name);
        }
    }

    #[test]
    fn nothing_is_allowed_past_the_guard_by_default_and_the_allow_list_names_its_variable() {
        let s = settings(&[]).unwrap();
        assert!(s.delivery.target_allow.is_empty());
        let s = settings(&[("TARGET_ALLOW_CIDRS", "127.0.0.0/8, 10.1.0.0/16,")]).unwrap();
        assert_eq!(s.delivery.target_allow.len(), 2);
        let err = settings(&[("TARGET_ALLOW_CIDRS", "10.0.0.0/8,intranet")]).unwrap_err();
        assert_eq!(err.variable, "TARGET_ALLOW_CIDRS");
        assert!(err.to_string().contains("\"intranet\""), "{err}");
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let err = settings(&[("SERVER_PORT", "80a")]).unwrap_err();
        assert_eq!(err.variable, "SERVER_PORT");
        assert!(
            err.to_string().starts_with("SERVER_PORT is \"80a\""),
            "{err}"
        );
        let err = settings(&[("WORKER_POOL_SIZE", "0")]).unwrap_err();
        assert_eq!(err.variable, "WORKER_POOL_SIZE");
        let err = settings(&[("LOG_FORMAT", "xml")]).unwrap_err();
        assert_eq!(err.variable, "LOG_FORMAT");
        let err = settings(&[("MISFIRE_THRESHOLD", "soon")]).unwrap_err();
        assert_eq!(err.variable, "MISFIRE_THRESHOLD");
        let err = settings(&[("MIGRATE_ON_START", "maybe")]).unwrap_err();
        assert_eq!(err.variable, "MIGRATE_ON_START");
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1w"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn secrets_never_print() {
        let s = settings(&[
            ("DB_PASSWORD", "hunter2"),
            ("DATABASE_URL", "postgres://u:hunter2@h/db"),
        ])
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}

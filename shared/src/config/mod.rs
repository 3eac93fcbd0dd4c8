//! Settings, read once from the environment at start.
//!
//! A missing or malformed value stops the process with a message naming the variable.
//! Secrets are wrapped so they never reach a log line.

mod cidr;

use std::fmt;
use std::time::Duration;

pub use cidr::Cidr;

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

/// How to reach PostgreSQL: `DATABASE_URL`, or else the `DB_*` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`; when set it overrides every part below.
    pub url: Option<Secret>,
    /// `DB_HOST`
    pub host: String,
    /// `DB_PORT`
    pub port: u16,
    /// `DB_USER`
    pub user: String,
    /// `DB_PASSWORD`
    pub password: Secret,
    /// `DB_NAME`
    pub name: String,
    /// `DB_SSLMODE`: disable, allow, prefer, require, verify-ca or verify-full.
    pub sslmode: String,
    /// Most connections each process keeps open (`DB_MAX_CONNECTIONS`).
    pub max_connections: u32,
}

/// How to reach Redis: `REDIS_URL`, or else the `REDIS_*` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `REDIS_URL`; when set it overrides every part below.
    pub url: Option<Secret>,
    /// `REDIS_HOST`
    pub host: String,
    /// `REDIS_PORT`
    pub port: u16,
    /// `REDIS_PASSWORD`; empty means none.
    pub password: Secret,
    /// `REDIS_DB`
    pub db: i64,
    /// `REDIS_KEY_PREFIX`: every key tickwork writes starts with it and a colon.
    pub key_prefix: String,
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

/// A key as `variable` gives it, if it is 32 bytes in base64.
fn encryption_key(variable: &'static str, raw: &str) -> Result<Secret, ConfigError> {
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(raw.trim()) {
        Ok(bytes) if bytes.len() == 32 => Ok(Secret::new(raw.trim())),
        _ => Err(ConfigError::new(
            variable,
            "is not a key: expected 32 random bytes in base64 (openssl rand -base64 32)",
        )),
    }
}

/// How long a server waits for a client and how many it serves at once: the API's port
/// and the `/metrics` port. On AWS Lambda, API Gateway holds the connections and these do
/// not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `API_HEAD_TIMEOUT` (default 10 s): how long a connection may take to send a
    /// request's line and headers, counted from when it opens or its previous answer was
    /// sent; it is therefore also how long an idle keep-alive connection stays open.
    pub head_timeout: Duration,
    /// `API_BODY_TIMEOUT` (default 30 s): how long a request's whole body may take to
    /// arrive once its headers have (408 after it).
    pub body_timeout: Duration,
    /// `API_MAX_CONNECTIONS`: connections served at once; further ones wait in the
    /// listen queue. Unset (or 0): the open-file limit less 64 kept for the database,
    /// Redis and logs.
    pub max_connections: Option<usize>,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: None,
        }
    }
}

/// Everything the three functions read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the truth lives.
    pub database: DatabaseSettings,
    /// Where the work is carried.
    pub redis: RedisSettings,
    /// `SERVER_HOST`: address the API binds.
    pub server_host: String,
    /// `SERVER_PORT`: port the API binds.
    pub server_port: u16,
    /// How long the API (and `/metrics`) waits for clients, and how many it serves at once.
    pub connections: ConnectionSettings,
    /// `WORKER_POOL_SIZE`: most requests one worker process has in flight at once (a
    /// ceiling, not a size to tune: a request in flight costs memory, not a thread).
    pub worker_pool_size: usize,
    /// `WORKER_HTTP_TIMEOUT`: ceiling on any request, whatever the job asks.
    pub worker_http_timeout: Duration,
    /// `LOG_LEVEL`: a tracing filter such as `info` or `tickwork=debug,info`.
    pub log_level: String,
    /// `LOG_FORMAT`: `json` or `text`.
    pub log_format: LogFormat,
    /// `RETRY_BACKOFF_BASE`: ceiling of the first retry's delay; it doubles per retry.
    pub retry_backoff_base: Duration,
    /// `RETRY_BACKOFF_MAX`: the longest delay between attempts.
    pub retry_backoff_max: Duration,
    /// `LEASE_DURATION`: how long a claimed fire belongs to its worker without renewal.
    pub lease_duration: Duration,
    /// `CRASH_LIMIT`: lost leases after which an AT_LEAST_ONCE fire is FAILED.
    pub crash_limit: u32,
    /// `SHUTDOWN_GRACE`: how long a stopping worker lets running requests finish.
    pub shutdown_grace: Duration,
    /// `SCHEDULER_POLL_INTERVAL`: time between tick passes.
    pub scheduler_poll_interval: Duration,
    /// `SCHEDULER_LOOKAHEAD`: how far ahead fires are recorded and queued, to be released
    /// at their exact second; 0 turns look-ahead off.
    pub scheduler_lookahead: Duration,
    /// `SCHEDULER_RELEASE_LEAD`: how long before its second a fire recorded ahead is
    /// handed to workers, which send it at the exact time; 0 releases on the second.
    pub scheduler_release_lead: Duration,
    /// `MISFIRE_THRESHOLD`: a fire later than this is a misfire (the tick was down).
    pub misfire_threshold: Duration,
    /// `HISTORY_RETENTION`: finished executions older than this are deleted by the tick;
    /// `0` keeps them forever.
    pub history_retention: Option<Duration>,
    /// `METRICS_PORT`: where the tick and worker serve `/metrics` (unset: not served; the
    /// API serves it on its own port).
    pub metrics_port: Option<u16>,
    /// `ENCRYPTION_KEY` (and `ENCRYPTION_PREVIOUS_KEYS`, comma-separated, for values sealed
    /// before a key rotation): seals credentials and signing secrets at rest. The API and
    /// the worker need it (`startup::require_keyring`).
    pub encryption_keys: Option<EncryptionKeys>,
    /// `AUTH_DISABLED`: `true` lets anyone call the API as the operator (development only;
    /// said loudly at start). `None` when unset: the three functions require keys,
    /// `tickwork-local` does not.
    pub auth_disabled: Option<bool>,
    /// `API_ADMIN_KEY`: the operator key (at least 32 characters): works in the tenant
    /// `default`, makes and revokes every tenant's keys, reads the whole queue's statistics.
    pub api_admin_key: Option<Secret>,
    /// `RATE_LIMIT_PER_SECOND` (default 500; 0 turns limits off) and `RATE_LIMIT_BURST`
    /// (default 1000): requests each tenant's API key may make, kept in the queue so every
    /// API instance shares the count. The operator key is not limited.
    pub rate_limit: Option<RateLimit>,
    /// `WRONG_KEY_LIMIT_PER_SECOND` (default 1; 0 turns it off) and `WRONG_KEY_LIMIT_BURST`
    /// (default 20): wrong API keys one client address may send, counted in each API
    /// process; past them, 429 before the key is looked up.
    pub wrong_key_limit: Option<RateLimit>,
    /// `TRUSTED_PROXY_CIDRS`: proxies in front of the API whose `X-Forwarded-For` is
    /// believed when the API tells clients apart (none by default).
    pub trusted_proxies: Vec<Cidr>,
    /// `TARGET_ALLOW_CIDRS`: ranges job targets may reach in spite of the outbound guard,
    /// which refuses loopback, private, link-local and reserved addresses (comma-separated,
    /// e.g. `10.20.0.0/16,127.0.0.1`; none by default).
    pub target_allow: Vec<Cidr>,
    /// `MIGRATE_ON_START`: apply pending migrations when a binary starts (default: true,
    /// false on AWS Lambda, where a cold start must not migrate).
    pub migrate_on_start: bool,
    /// `WORKER_INTAKE_BUDGET`: on AWS Lambda, how long one worker invocation takes new work.
    pub worker_intake_budget: Duration,
    /// `LAMBDA_FALLBACK_TIMEOUT`: how long an invocation may run when the runtime gives no
    /// deadline in the future (the `cargo lambda watch` emulator). Unset: the function's
    /// timeout in `template.yaml` (tick 70 s, worker 190 s).
    pub lambda_fallback_timeout: Option<Duration>,
    /// Whether the process runs on AWS Lambda (`AWS_LAMBDA_RUNTIME_API` is set).
    pub on_lambda: bool,
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
        let on_lambda = env.string("AWS_LAMBDA_RUNTIME_API").is_some();
        Ok(Self {
            database: DatabaseSettings {
                url: env.string("DATABASE_URL").map(Secret::new),
                host: env.string_or("DB_HOST", "localhost"),
                port: env.port("DB_PORT", 5432)?,
                user: env.string_or("DB_USER", "postgres"),
                password: Secret::new(env.string_or("DB_PASSWORD", "")),
                name: env.string_or("DB_NAME", "tickwork"),
                sslmode: env.one_of(
                    "DB_SSLMODE",
                    "prefer",
                    &[
                        "disable",
                        "allow",
                        "prefer",
                        "require",
                        "verify-ca",
                        "verify-full",
                    ],
                )?,
                max_connections: env.number("DB_MAX_CONNECTIONS", 10, 1, 1000)? as u32,
            },
            redis: RedisSettings {
                url: env.string("REDIS_URL").map(Secret::new),
                host: env.string_or("REDIS_HOST", "localhost"),
                port: env.port("REDIS_PORT", 6379)?,
                password: Secret::new(env.string_or("REDIS_PASSWORD", "")),
                db: env.number("REDIS_DB", 0, 0, 1 << 20)? as i64,
                key_prefix: env.key_prefix("REDIS_KEY_PREFIX", "tickwork")?,
            },
            server_host: env.string_or("SERVER_HOST", "0.0.0.0"),
            server_port: env.port("SERVER_PORT", 8080)?,
            connections: ConnectionSettings {
                head_timeout: env.duration(
                    "API_HEAD_TIMEOUT",
                    ConnectionSettings::default().head_timeout,
                    Duration::from_millis(100),
                    Duration::from_secs(3600),
                )?,
                body_timeout: env.duration(
                    "API_BODY_TIMEOUT",
                    ConnectionSettings::default().body_timeout,
                    Duration::from_millis(100),
                    Duration::from_secs(3600),
                )?,
                max_connections: match env.number("API_MAX_CONNECTIONS", 0, 0, 1_000_000)? {
                    0 => None,
                    n => Some(n as usize),
                },
            },
            worker_pool_size: env.number("WORKER_POOL_SIZE", 10_000, 1, 100_000)? as usize,
            worker_http_timeout: env.duration(
                "WORKER_HTTP_TIMEOUT",
                Duration::from_secs(90),
                Duration::from_secs(1),
                Duration::from_secs(900),
            )?,
            retry_backoff_base: env.duration(
                "RETRY_BACKOFF_BASE",
                Duration::from_secs(1),
                Duration::from_millis(10),
                Duration::from_secs(3600),
            )?,
            retry_backoff_max: env.duration(
                "RETRY_BACKOFF_MAX",
                Duration::from_secs(300),
                Duration::from_millis(10),
                Duration::from_secs(86_400),
            )?,
            lease_duration: env.duration(
                "LEASE_DURATION",
                Duration::from_secs(15),
                Duration::from_secs(1),
                Duration::from_secs(600),
            )?,
            crash_limit: env.number("CRASH_LIMIT", 3, 1, 1000)? as u32,
            shutdown_grace: env.duration(
                "SHUTDOWN_GRACE",
                Duration::from_secs(95),
                Duration::ZERO,
                Duration::from_secs(3600),
            )?,
            log_level: env.string_or("LOG_LEVEL", "info"),
            log_format: match env
                .one_of(
                    "LOG_FORMAT",
                    if on_lambda { "json" } else { "text" },
                    &["json", "text"],
                )?
                .as_str()
            {
                "json" => LogFormat::Json,
                _ => LogFormat::Text,
            },
            scheduler_poll_interval: env.duration(
                "SCHEDULER_POLL_INTERVAL",
                Duration::from_secs(1),
                Duration::from_millis(100),
                Duration::from_secs(60),
            )?,
            scheduler_lookahead: env.duration(
                "SCHEDULER_LOOKAHEAD",
                Duration::from_secs(2),
                Duration::ZERO,
                MAX_LOOKAHEAD,
            )?,
            scheduler_release_lead: env.duration(
                "SCHEDULER_RELEASE_LEAD",
                Duration::from_millis(500),
                Duration::ZERO,
                Duration::from_millis(500),
            )?,
            misfire_threshold: env.duration(
                "MISFIRE_THRESHOLD",
                Duration::from_secs(60),
                Duration::from_secs(1),
                Duration::from_secs(86_400),
            )?,
            history_retention: Some(env.duration(
                "HISTORY_RETENTION",
                Duration::from_secs(7 * 86_400),
                Duration::ZERO,
                Duration::from_secs(3650 * 86_400),
            )?)
            .filter(|d| !d.is_zero()),
            metrics_port: match env.string("METRICS_PORT") {
                None => None,
                Some(_) => Some(env.port("METRICS_PORT", 0)?),
            },
            target_allow: env.cidrs("TARGET_ALLOW_CIDRS")?,
            encryption_keys: env.encryption_keys()?,
            rate_limit: match env.number("RATE_LIMIT_PER_SECOND", 500, 0, 100_000)? {
                0 => None,
                per_second => Some(RateLimit {
                    per_second: u32::try_from(per_second).unwrap_or(u32::MAX),
                    burst: u32::try_from(env.number("RATE_LIMIT_BURST", 1000, 1, 1_000_000)?)
                        .unwrap_or(u32::MAX),
                }),
            },
            wrong_key_limit: match env.number("WRONG_KEY_LIMIT_PER_SECOND", 1, 0, 100_000)? {
                0 => None,
                per_second => Some(RateLimit {
                    per_second: u32::try_from(per_second).unwrap_or(u32::MAX),
                    burst: u32::try_from(env.number("WRONG_KEY_LIMIT_BURST", 20, 1, 1_000_000)?)
                        .unwrap_or(u32::MAX),
                }),
            },
            trusted_proxies: env.cidrs("TRUSTED_PROXY_CIDRS")?,
            auth_disabled: match env.string("AUTH_DISABLED") {
                None => None,
                Some(_) => Some(env.boolean("AUTH_DISABLED", false)?),
            },
            api_admin_key: match env.string("API_ADMIN_KEY") {
                Some(key) if key.trim().len() < 32 => {
                    return Err(ConfigError::new(
                        "API_ADMIN_KEY",
                        "is shorter than 32 characters; use a long random value (e.g. \
                         tw_ and the output of openssl rand -base64 32)",
                    ))
                }
                other => other.map(|key| Secret::new(key.trim())),
            },
            migrate_on_start: env.boolean("MIGRATE_ON_START", !on_lambda)?,
            worker_intake_budget: env.duration(
                "WORKER_INTAKE_BUDGET",
                Duration::from_secs(90),
                Duration::from_secs(1),
                Duration::from_secs(900),
            )?,
            lambda_fallback_timeout: match env.string("LAMBDA_FALLBACK_TIMEOUT") {
                None => None,
                Some(_) => Some(env.duration(
                    "LAMBDA_FALLBACK_TIMEOUT",
                    Duration::from_secs(60),
                    Duration::from_secs(1),
                    Duration::from_secs(900),
                )?),
            },
            on_lambda,
            environment: env.string_or("ENVIRONMENT", "development"),
        })
    }
}

/// Typed reads of environment variables, each error naming the variable.
struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn string(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn string_or(&self, name: &str, default: &str) -> String {
        self.string(name).unwrap_or_else(|| default.to_string())
    }

    fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default);
        };
        match raw.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError::new(
                name,
                format!("is {raw:?}; expected a whole number from {min} to {max}"),
            )),
        }
    }

    fn port(&self, name: &'static str, default: u16) -> Result<u16, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default);
        };
        raw.trim().parse::<u16>().map_err(|_| {
            ConfigError::new(
                name,
                format!("is {raw:?}; expected a port number from 0 to 65535"),
            )
        })
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new(
                name,
                format!("is {raw:?}; expected true or false"),
            )),
        }
    }

    fn one_of(
        &self,
        name: &'static str,
        default: &str,
        allowed: &[&str],
    ) -> Result<String, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default.to_string());
        };
        let value = raw.trim().to_ascii_lowercase();
        if allowed.contains(&value.as_str()) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                name,
                format!("is {raw:?}; expected one of {}", allowed.join(", ")),
            ))
        }
    }

    fn duration(
        &self,
        name: &'static str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default);
        };
        match parse_duration(&raw) {
            Some(d) if d >= min && d <= max => Ok(d),
            Some(_) => Err(ConfigError::new(
                name,
                format!("is {raw:?}; expected a duration from {min:?} to {max:?}"),
            )),
            None => Err(ConfigError::new(
                name,
                format!("is {raw:?}; expected a duration such as 90, 90s, 500ms, 5m, 1h or 7d (a bare number is seconds)"),
            )),
        }
    }

    fn encryption_keys(&self) -> Result<Option<EncryptionKeys>, ConfigError> {
        let Some(current) = self.string("ENCRYPTION_KEY") else {
            return Ok(None);
        };
        let previous = self.string("ENCRYPTION_PREVIOUS_KEYS").unwrap_or_default();
        Ok(Some(EncryptionKeys {
            current: encryption_key("ENCRYPTION_KEY", &current)?,
            previous: previous
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| encryption_key("ENCRYPTION_PREVIOUS_KEYS", k))
                .collect::<Result<_, _>>()?,
        }))
    }

    fn cidrs(&self, name: &'static str) -> Result<Vec<Cidr>, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(Vec::new());
        };
        raw.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| part.parse().map_err(|e: String| ConfigError::new(name, e)))
            .collect()
    }

    fn key_prefix(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.string_or(name, default);
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::new(
                name,
                format!("is {value:?}; it must not contain whitespace"),
            ));
        }
        Ok(value)
    }
}

/// Parses `90`, `90s`, `500ms`, `5m`, `1h` or `7d`.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(86_400).map(Duration::from_secs),
        _ => None,
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
        assert_eq!(s.server_port, 8080);
        assert_eq!(s.server_host, "0.0.0.0");
        assert_eq!(s.worker_pool_size, 10_000);
        assert_eq!(s.worker_http_timeout, Duration::from_secs(90));
        assert_eq!(s.scheduler_poll_interval, Duration::from_secs(1));
        assert_eq!(s.misfire_threshold, Duration::from_secs(60));
        assert_eq!(s.retry_backoff_base, Duration::from_secs(1));
        assert_eq!(s.retry_backoff_max, Duration::from_secs(300));
        assert!(s.migrate_on_start);
        assert_eq!(s.redis.key_prefix, "tickwork");
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(!s.on_lambda);
        assert_eq!(s.worker_intake_budget, Duration::from_secs(90));
    }

    #[test]
    fn on_lambda_migrations_are_off_and_logs_are_json_unless_asked_otherwise() {
        let s = settings(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")]).unwrap();
        assert!(s.on_lambda);
        assert!(!s.migrate_on_start);
        assert_eq!(s.log_format, LogFormat::Json);
        let s = settings(&[
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("MIGRATE_ON_START", "true"),
            ("LOG_FORMAT", "text"),
        ])
        .unwrap();
        assert!(s.migrate_on_start);
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn the_encryption_key_is_optional_to_read_and_named_when_malformed() {
        let s = settings(&[]).unwrap();
        assert!(s.encryption_keys.is_none());
        let err = settings(&[("ENCRYPTION_KEY", "c2hvcnQ=")]).unwrap_err();
        assert_eq!(err.variable, "ENCRYPTION_KEY");
        assert!(err.to_string().contains("openssl rand -base64 32"), "{err}");
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let keyed = settings(&[("ENCRYPTION_KEY", key)]).unwrap();
        assert!(keyed.encryption_keys.is_some());
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
        assert_eq!((s.auth_disabled, s.api_admin_key.is_none()), (None, true));
        let s = settings(&[("AUTH_DISABLED", "true")]).unwrap();
        assert_eq!(s.auth_disabled, Some(true));
        let err = settings(&[("API_ADMIN_KEY", "short")]).unwrap_err();
        assert_eq!(err.variable, "API_ADMIN_KEY");
        let key = "tw_0123456789abcdefghijklmnopqrstuvwxyz";
        let s = settings(&[("API_ADMIN_KEY", key)]).unwrap();
        assert!(!format!("{s:?}").contains(key), "the key never prints");
        assert_eq!(s.api_admin_key.as_ref().map(Secret::expose), Some(key));
    }

    #[test]
    fn rate_limits_default_to_five_hundred_a_second_per_key_and_zero_turns_them_off() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            s.rate_limit,
            Some(RateLimit {
                per_second: 500,
                burst: 1000
            })
        );
        assert_eq!(
            settings(&[("RATE_LIMIT_PER_SECOND", "0")])
                .unwrap()
                .rate_limit,
            None
        );
        let err = settings(&[("RATE_LIMIT_BURST", "0")]).unwrap_err();
        assert_eq!(err.variable, "RATE_LIMIT_BURST");
    }

    #[test]
    fn the_lambda_fallback_is_the_functions_own_unless_set() {
        assert_eq!(settings(&[]).unwrap().lambda_fallback_timeout, None);
        let s = settings(&[("LAMBDA_FALLBACK_TIMEOUT", "20s")]).unwrap();
        assert_eq!(s.lambda_fallback_timeout, Some(Duration::from_secs(20)));
        let err = settings(&[("LAMBDA_FALLBACK_TIMEOUT", "0")]).unwrap_err();
        assert_eq!(err.variable, "LAMBDA_FALLBACK_TIMEOUT");
    }

    #[test]
    fn wrong_keys_are_limited_by_default_and_the_edge_settings_read_their_variables() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            s.wrong_key_limit,
            Some(RateLimit {
                per_second: 1,
                burst: 20
            })
        );
        assert!(s.trusted_proxies.is_empty());
        assert_eq!(s.connections, ConnectionSettings::default());
        let s = settings(&[
            ("WRONG_KEY_LIMIT_PER_SECOND", "0"),
            ("TRUSTED_PROXY_CIDRS", "10.0.0.0/8, 192.0.2.1"),
            ("API_HEAD_TIMEOUT", "2s"),
            ("API_MAX_CONNECTIONS", "100"),
        ])
        .unwrap();
        assert_eq!(s.wrong_key_limit, None);
        assert_eq!(s.trusted_proxies.len(), 2);
        assert_eq!(s.connections.head_timeout, Duration::from_secs(2));
        assert_eq!(s.connections.max_connections, Some(100));
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
        assert!(s.target_allow.is_empty());
        let s = settings(&[("TARGET_ALLOW_CIDRS", "127.0.0.0/8, 10.1.0.0/16,")]).unwrap();
        assert_eq!(s.target_allow.len(), 2);
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

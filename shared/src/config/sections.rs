//! The sections of [`Settings`](super::Settings), each read by its own short function.

use std::time::Duration;

use super::env::Env;
use super::{Cidr, ConfigError, RateLimit, Secret, MAX_LOOKAHEAD};

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

impl DatabaseSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Env<'_, F>,
    ) -> Result<Self, ConfigError> {
        const SSL_MODES: [&str; 6] = [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ];
        Ok(Self {
            url: env.string("DATABASE_URL").map(Secret::new),
            host: env.string_or("DB_HOST", "localhost"),
            port: env.port("DB_PORT", 5432)?,
            user: env.string_or("DB_USER", "postgres"),
            password: Secret::new(env.string_or("DB_PASSWORD", "")),
            name: env.string_or("DB_NAME", "tickwork"),
            sslmode: env.one_of("DB_SSLMODE", "prefer", &SSL_MODES)?,
            max_connections: env.number("DB_MAX_CONNECTIONS", 10, 1, 1000)? as u32,
        })
    }
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

impl RedisSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Env<'_, F>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            url: env.string("REDIS_URL").map(Secret::new),
            host: env.string_or("REDIS_HOST", "localhost"),
            port: env.port("REDIS_PORT", 6379)?,
            password: Secret::new(env.string_or("REDIS_PASSWORD", "")),
            db: env.number("REDIS_DB", 0, 0, 1 << 20)? as i64,
            key_prefix: env.key_prefix("REDIS_KEY_PREFIX", "tickwork")?,
        })
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

impl ConnectionSettings {
    fn read<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let (shortest, longest) = (Duration::from_millis(100), Duration::from_secs(3600));
        Ok(Self {
            head_timeout: env.duration(
                "API_HEAD_TIMEOUT",
                defaults.head_timeout,
                shortest,
                longest,
            )?,
            body_timeout: env.duration(
                "API_BODY_TIMEOUT",
                defaults.body_timeout,
                shortest,
                longest,
            )?,
            max_connections: match env.number("API_MAX_CONNECTIONS", 0, 0, 1_000_000)? {
                0 => None,
                n => Some(n as usize),
            },
        })
    }
}

/// The API: where it listens, who may call it and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// `SERVER_HOST`: address the API binds.
    pub host: String,
    /// `SERVER_PORT`: port the API binds.
    pub port: u16,
    /// How long the API (and `/metrics`) waits for clients, and how many it serves at once.
    pub connections: ConnectionSettings,
    /// `AUTH_DISABLED`: `true` lets anyone call the API as the operator (development only;
    /// said loudly at start). `None` when unset: the three functions require keys,
    /// `tickwork-local` does not.
    pub auth_disabled: Option<bool>,
    /// `API_ADMIN_KEY`: the operator key (at least 32 characters): works in the tenant
    /// `default`, makes and revokes every tenant's keys, reads the whole queue's statistics.
    pub admin_key: Option<Secret>,
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
}

impl ApiSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Env<'_, F>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            host: env.string_or("SERVER_HOST", "0.0.0.0"),
            port: env.port("SERVER_PORT", 8080)?,
            connections: ConnectionSettings::read(env)?,
            auth_disabled: match env.string("AUTH_DISABLED") {
                None => None,
                Some(_) => Some(env.boolean("AUTH_DISABLED", false)?),
            },
            admin_key: admin_key(env.string("API_ADMIN_KEY"))?,
            rate_limit: env
                .rate_limit(("RATE_LIMIT_PER_SECOND", 500), ("RATE_LIMIT_BURST", 1000))?,
            wrong_key_limit: env.rate_limit(
                ("WRONG_KEY_LIMIT_PER_SECOND", 1),
                ("WRONG_KEY_LIMIT_BURST", 20),
            )?,
            trusted_proxies: env.cidrs("TRUSTED_PROXY_CIDRS")?,
        })
    }
}

/// `API_ADMIN_KEY`, refused when it is too short to be secret.
fn admin_key(raw: Option<String>) -> Result<Option<Secret>, ConfigError> {
    match raw {
        Some(key) if key.trim().len() < 32 => Err(ConfigError::new(
            "API_ADMIN_KEY",
            "is shorter than 32 characters; use a long random value (e.g. \
             tw_ and the output of openssl rand -base64 32)",
        )),
        other => Ok(other.map(|key| Secret::new(key.trim()))),
    }
}

/// The tick: how often it passes and how far ahead it records fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulingSettings {
    /// `SCHEDULER_POLL_INTERVAL`: time between tick passes.
    pub poll_interval: Duration,
    /// `SCHEDULER_LOOKAHEAD`: how far ahead fires are recorded and queued, to be released
    /// at their exact second; 0 turns look-ahead off.
    pub lookahead: Duration,
    /// `SCHEDULER_RELEASE_LEAD`: how long before its second a fire recorded ahead is
    /// handed to workers, which send it at the exact time; 0 releases on the second.
    pub release_lead: Duration,
    /// `MISFIRE_THRESHOLD`: a fire later than this is a misfire (the tick was down).
    pub misfire_threshold: Duration,
    /// `HISTORY_RETENTION`: finished executions older than this are deleted by the tick;
    /// `0` keeps them forever.
    pub history_retention: Option<Duration>,
}

impl SchedulingSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Env<'_, F>,
    ) -> Result<Self, ConfigError> {
        let secs = Duration::from_secs;
        Ok(Self {
            poll_interval: env.duration(
                "SCHEDULER_POLL_INTERVAL",
                secs(1),
                Duration::from_millis(100),
                secs(60),
            )?,
            lookahead: env.duration(
                "SCHEDULER_LOOKAHEAD",
                secs(2),
                Duration::ZERO,
                MAX_LOOKAHEAD,
            )?,
            release_lead: env.duration(
                "SCHEDULER_RELEASE_LEAD",
                Duration::from_millis(500),
                Duration::ZERO,
                Duration::from_millis(500),
            )?,
            misfire_threshold: env.duration(
                "MISFIRE_THRESHOLD",
                secs(60),
                secs(1),
                secs(86_400),
            )?,
            history_retention: Some(env.duration(
                "HISTORY_RETENTION",
                secs(7 * 86_400),
                Duration::ZERO,
                secs(3650 * 86_400),
            )?)
            .filter(|d| !d.is_zero()),
        })
    }
}

/// The worker: how many requests it keeps in flight, how it retries, where targets may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// `WORKER_POOL_SIZE`: most requests one worker process has in flight at once (a
    /// ceiling, not a size to tune: a request in flight costs memory, not a thread).
    pub pool_size: usize,
    /// `WORKER_HTTP_TIMEOUT`: ceiling on any request, whatever the job asks.
    pub http_timeout: Duration,
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
    /// `TARGET_ALLOW_CIDRS`: ranges job targets may reach in spite of the outbound guard,
    /// which refuses loopback, private, link-local and reserved addresses (comma-separated,
    /// e.g. `10.20.0.0/16,127.0.0.1`; none by default).
    pub target_allow: Vec<Cidr>,
}

impl DeliverySettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Env<'_, F>,
    ) -> Result<Self, ConfigError> {
        let (secs, ms) = (Duration::from_secs, Duration::from_millis);
        Ok(Self {
            pool_size: env.number("WORKER_POOL_SIZE", 10_000, 1, 100_000)? as usize,
            http_timeout: env.duration("WORKER_HTTP_TIMEOUT", secs(90), secs(1), secs(900))?,
            retry_backoff_base: env.duration("RETRY_BACKOFF_BASE", secs(1), ms(10), secs(3600))?,
            retry_backoff_max: env.duration(
                "RETRY_BACKOFF_MAX",
                secs(300),
                ms(10),
                secs(86_400),
            )?,
            lease_duration: env.duration("LEASE_DURATION", secs(15), secs(1), secs(600))?,
            crash_limit: env.number("CRASH_LIMIT", 3, 1, 1000)? as u32,
            shutdown_grace: env.duration("SHUTDOWN_GRACE", secs(95), Duration::ZERO, secs(3600))?,
            target_allow: env.cidrs("TARGET_ALLOW_CIDRS")?,
        })
    }
}

/// AWS Lambda: whether the process runs there, and the budgets of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaSettings {
    /// Whether the process runs on AWS Lambda (`AWS_LAMBDA_RUNTIME_API` is set).
    pub detected: bool,
    /// `WORKER_INTAKE_BUDGET`: on AWS Lambda, how long one worker invocation takes new work.
    pub intake_budget: Duration,
    /// `LAMBDA_FALLBACK_TIMEOUT`: how long an invocation may run when the runtime gives no
    /// deadline in the future (the `cargo lambda watch` emulator). Unset: the function's
    /// timeout in `template.yaml` (tick 70 s, worker 190 s).
    pub fallback_timeout: Option<Duration>,
}

impl LambdaSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Env<'_, F>,
    ) -> Result<Self, ConfigError> {
        let secs = Duration::from_secs;
        Ok(Self {
            detected: env.string("AWS_LAMBDA_RUNTIME_API").is_some(),
            intake_budget: env.duration("WORKER_INTAKE_BUDGET", secs(90), secs(1), secs(900))?,
            fallback_timeout: env.optional_duration(
                "LAMBDA_FALLBACK_TIMEOUT",
                secs(1),
                secs(900),
            )?,
        })
    }
}

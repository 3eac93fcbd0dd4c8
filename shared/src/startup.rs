//! Wiring shared by the binaries, and the one place things are built from [`Settings`]:
//! the store and queue clients, the keyring, auth, the outbound guard and the API's state;
//! migrations; the shutdown signal.

#[cfg(feature = "embedded")]
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::api::{AppState, Auth, KeyFailures};
use crate::config::{ConfigError, Secret, Settings};
use crate::maintenance::MaintenanceSettings;
use crate::outbound::TargetPolicy;
#[cfg(feature = "embedded")]
use crate::queue::MemoryQueue;
use crate::queue::Queue;
use crate::queue::{redis_connection_info, QueueError, RedisQueue};
use crate::secrets::Keyring;
#[cfg(feature = "embedded")]
use crate::store::SqliteStore;
use crate::store::Store;
use crate::store::{connect_options, Conversion, PgStore, StoreError};
use crate::tick::TickSettings;
use crate::worker::{RetryPolicy, WorkerSettings};

/// Why a binary could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Migrations could not be applied (is PostgreSQL reachable at the configured address?).
    #[error("could not migrate the database at {target}")]
    Migrate {
        /// Where the database was expected (no password).
        target: String,
        /// The failure.
        #[source]
        source: StoreError,
    },
    /// The Redis client could not be made.
    #[error("could not set up the Redis client")]
    Queue(#[from] QueueError),
    /// The embedded database could not be opened or migrated.
    #[cfg(feature = "embedded")]
    #[error("cannot use the embedded database {}", path.display())]
    Embedded {
        /// The SQLite file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: StoreError,
    },
    /// The embedded database's key file could not be read or written.
    #[cfg(feature = "embedded")]
    #[error("cannot use the key file {}", path.display())]
    KeyFile {
        /// The file beside the database.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The embedded database's key file does not hold a key.
    #[cfg(feature = "embedded")]
    #[error("the key file {} does not hold a key", path.display())]
    NotAKey {
        /// The file beside the database.
        path: PathBuf,
    },
    /// A port could not be bound (in use? `METRICS_PORT`, `SERVER_PORT`).
    #[error("could not listen on {address}")]
    Listen {
        /// The address.
        address: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

/// The store and queue a process works with, built once and shared.
#[derive(Clone)]
pub struct Services {
    /// PostgreSQL.
    pub store: Arc<PgStore>,
    /// Redis.
    pub queue: Arc<RedisQueue>,
}

impl Services {
    /// Builds both clients (connections are made on first use) and, when
    /// `MIGRATE_ON_START` is true, applies pending migrations.
    pub async fn start(settings: &Settings) -> Result<Self, StartupError> {
        let store = PgStore::connect_lazy(
            connect_options(&settings.database)?,
            settings.database.max_connections,
        );
        let queue = RedisQueue::connect_lazy(
            redis_connection_info(&settings.redis)?,
            &settings.redis.key_prefix,
        )?;
        let services = Self {
            store: Arc::new(store),
            queue: Arc::new(queue),
        };
        if settings.migrate_on_start {
            services.migrate(settings).await?;
            match services.store.history_partitioned().await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    "the history is not in time partitions yet: run `tickwork-api migrate` \
                     (or the tick function with {{\"action\":\"migrate\"}}) to convert it \
                     online; until then retention deletes rows"
                ),
                Err(error) => {
                    tracing::warn!(error = %crate::telemetry::error_chain(&error), "cannot read the history's layout")
                }
            }
        }
        Ok(services)
    }

    /// Converts an unpartitioned history to time partitions, online and resumably, until it
    /// is done or `deadline` passes (see [`PgStore::convert_history`]).
    pub async fn convert_history(
        &self,
        settings: &Settings,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Conversion, StartupError> {
        self.store
            .convert_history(deadline)
            .await
            .map_err(|source| StartupError::Migrate {
                target: database_target(settings),
                source,
            })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self, settings: &Settings) -> Result<(), StartupError> {
        self.store
            .migrate()
            .await
            .map_err(|source| StartupError::Migrate {
                target: database_target(settings),
                source,
            })
    }
}

/// Where the database is, for messages: host, port and name, never the password.
pub fn database_target(settings: &Settings) -> String {
    match connect_options(&settings.database) {
        Ok(options) => format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        ),
        Err(_) => "an unparseable address".to_string(),
    }
}

impl From<&Settings> for TickSettings {
    fn from(settings: &Settings) -> Self {
        Self {
            misfire_threshold: settings.scheduling.misfire_threshold,
            poll_interval: settings.scheduling.poll_interval,
            lookahead: settings.scheduling.lookahead,
            release_lead: settings.scheduling.release_lead,
            maintenance: MaintenanceSettings::from(settings),
            ..TickSettings::default()
        }
    }
}

impl From<&Settings> for MaintenanceSettings {
    fn from(settings: &Settings) -> Self {
        Self {
            retention: settings.scheduling.history_retention,
            ..MaintenanceSettings::default()
        }
    }
}

/// Sockets and files a worker keeps for itself besides its requests in flight (database and
/// Redis connections, the metrics listener, logs).
const FILES_KEPT: u64 = 256;

/// A worker's settings, sized for this process: the open-file limit is raised to its hard
/// limit (each request in flight holds a socket), and `WORKER_POOL_SIZE` is lowered, with
/// a warning, if the limit cannot hold that many requests.
pub fn worker_settings(settings: &Settings) -> WorkerSettings {
    let mut worker = WorkerSettings::from(settings);
    if let Some(limit) = crate::os::raise_open_file_limit() {
        let fits = usize::try_from(limit.saturating_sub(FILES_KEPT))
            .unwrap_or(usize::MAX)
            .max(1);
        if worker.pool_size > fits {
            tracing::warn!(
                pool_size = worker.pool_size,
                open_file_limit = limit,
                using = fits,
                "WORKER_POOL_SIZE is more than the open-file limit allows; raise the limit (ulimit -n) to use it"
            );
            worker.pool_size = fits;
        }
    }
    worker
}

impl From<&Settings> for WorkerSettings {
    fn from(settings: &Settings) -> Self {
        Self {
            pool_size: settings.delivery.pool_size,
            http_timeout: settings.delivery.http_timeout,
            retry: RetryPolicy {
                base: settings.delivery.retry_backoff_base,
                max: settings
                    .delivery
                    .retry_backoff_max
                    .max(settings.delivery.retry_backoff_base),
            },
            lease: settings.delivery.lease_duration,
            crash_limit: settings.delivery.crash_limit,
            shutdown_grace: settings.delivery.shutdown_grace,
            maintenance: MaintenanceSettings::from(settings),
            targets: target_policy(settings),
            // Malformed keys were refused when the settings were read.
            keyring: keyring(settings).ok().flatten(),
            ..WorkerSettings::default()
        }
    }
}

/// The keyring the settings' keys make, if `ENCRYPTION_KEY` is set.
pub fn keyring(settings: &Settings) -> Result<Option<Arc<Keyring>>, ConfigError> {
    let Some(keys) = &settings.secrets else {
        return Ok(None);
    };
    let previous: Vec<&str> = keys.previous.iter().map(Secret::expose).collect();
    Keyring::new(keys.current.expose(), &previous)
        .map(|ring| Some(Arc::new(ring)))
        .map_err(|error| match error {
            crate::secrets::SecretError::BadKey(name) => ConfigError::new(
                name,
                "is not a key: expected 32 random bytes in base64 (openssl rand -base64 32)",
            ),
            other => ConfigError::new("ENCRYPTION_KEY", other.to_string()),
        })
}

/// The keyring, or an error naming `ENCRYPTION_KEY` and how to make one: the API and the
/// worker refuse to start without it.
pub fn require_keyring(settings: &Settings) -> Result<Arc<Keyring>, ConfigError> {
    keyring(settings)?.ok_or_else(|| {
        ConfigError::new(
            "ENCRYPTION_KEY",
            "is not set; the API and the worker seal credentials and signing secrets with it. \
             Make one with `openssl rand -base64 32` and give the same value to every api and \
             worker",
        )
    })
}

/// Where jobs, history and work live (`tickwork-local`; feature `embedded`).
#[cfg(feature = "embedded")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL and Redis, exactly as the three functions use them.
    Servers,
    /// An SQLite file and an in-memory queue (`tickwork-local`, one process).
    Embedded(PathBuf),
}

/// The embedded database file when neither `--db` nor `TICKWORK_DB` names one.
#[cfg(feature = "embedded")]
pub const DEFAULT_DB: &str = "tickwork.db";

#[cfg(feature = "embedded")]
impl Backend {
    /// Servers when any of their variables is set (`DATABASE_URL`, `DB_HOST`, `REDIS_URL`,
    /// `REDIS_HOST`); otherwise the embedded file `db` (`--db`), `TICKWORK_DB` or
    /// [`DEFAULT_DB`].
    pub fn choose(db: Option<&str>) -> Result<Self, String> {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if ["DATABASE_URL", "DB_HOST", "REDIS_URL", "REDIS_HOST"]
            .iter()
            .any(|name| set(name))
        {
            if db.is_some() {
                return Err(
                    "--db names the embedded database, but DATABASE_URL/DB_HOST or \
                     REDIS_URL/REDIS_HOST is set, which selects PostgreSQL and Redis; \
                     unset them or drop --db"
                        .into(),
                );
            }
            return Ok(Backend::Servers);
        }
        let path = db
            .map(str::to_string)
            .or_else(|| std::env::var("TICKWORK_DB").ok().filter(|p| !p.is_empty()))
            .unwrap_or_else(|| DEFAULT_DB.to_string());
        Ok(Backend::Embedded(PathBuf::from(path)))
    }

    /// The store, the queue and the keyring: `ENCRYPTION_KEY` when set; otherwise required
    /// on servers, and on the embedded backend the key in `FILE.key` beside the database,
    /// made on first start.
    pub async fn open(
        &self,
        settings: &Settings,
    ) -> Result<(Arc<dyn Store>, Arc<dyn Queue>, Arc<Keyring>), StartupError> {
        let keyring = match (self, keyring(settings)?) {
            (_, Some(keyring)) => keyring,
            (Backend::Servers, None) => require_keyring(settings)?,
            (Backend::Embedded(path), None) => embedded_keyring(path)?,
        };
        match self {
            Backend::Servers => {
                let services = Services::start(settings).await?;
                Ok((services.store, services.queue, keyring))
            }
            Backend::Embedded(path) => {
                let failed = |source| StartupError::Embedded {
                    path: path.clone(),
                    source,
                };
                let store = SqliteStore::open(path).await.map_err(failed)?;
                store.migrate().await.map_err(failed)?;
                Ok((Arc::new(store), Arc::new(MemoryQueue::new()), keyring))
            }
        }
    }
}

/// The key that seals credentials in an embedded database when `ENCRYPTION_KEY` is not
/// set: `FILE.key` beside it, made on first start (readable by this user only).
#[cfg(feature = "embedded")]
fn embedded_keyring(db: &Path) -> Result<Arc<Keyring>, StartupError> {
    let mut path = db.as_os_str().to_owned();
    path.push(".key");
    let path = PathBuf::from(path);
    let failed = |source| StartupError::KeyFile {
        path: path.clone(),
        source,
    };
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keyring::generate_key();
            let mut file = std::fs::OpenOptions::new();
            file.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
            std::io::Write::write_all(&mut file.open(&path).map_err(failed)?, key.as_bytes())
                .map_err(failed)?;
            key
        }
        Err(e) => return Err(failed(e)),
    };
    let keyring =
        Keyring::new(&key, &[]).map_err(|_| StartupError::NotAKey { path: path.clone() })?;
    Ok(Arc::new(keyring))
}

/// The outbound guard, with the ranges `TARGET_ALLOW_CIDRS` opens.
pub fn target_policy(settings: &Settings) -> TargetPolicy {
    TargetPolicy::guarded(settings.delivery.target_allow.clone())
}

/// Which program serves the API: the defaults differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// `tickwork-api`, on a server or on AWS Lambda: keys required unless
    /// `AUTH_DISABLED=true`; targets guarded (`TARGET_ALLOW_CIDRS`).
    Function,
    /// `tickwork-local serve`, for development: keys off unless `AUTH_DISABLED=false`;
    /// targets on this machine and the local network allowed.
    Local,
}

/// How the API recognises callers: keys (with `API_ADMIN_KEY` as the operator key) unless
/// `AUTH_DISABLED` says otherwise or, unset, the runner's default does.
pub fn auth(settings: &Settings, runner: Runner) -> Auth {
    if settings
        .api
        .auth_disabled
        .unwrap_or(runner == Runner::Local)
    {
        Auth::Disabled
    } else {
        Auth::keys(settings.api.admin_key.as_ref().map(Secret::expose))
    }
}

/// The API's state, the one place it is put together: the store and queue, the keyring,
/// and what the settings say of callers and targets.
pub fn app_state(
    settings: &Settings,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    keyring: Arc<Keyring>,
    runner: Runner,
) -> AppState {
    AppState {
        store,
        queue,
        targets: match runner {
            Runner::Function => target_policy(settings),
            Runner::Local => TargetPolicy::open(),
        },
        keyring,
        auth: auth(settings, runner),
        rate_limit: settings.api.rate_limit,
        key_failures: KeyFailures::new(
            settings.api.wrong_key_limit,
            settings.api.trusted_proxies.clone(),
        ),
    }
}

/// Serves `/metrics` on `SERVER_HOST:METRICS_PORT` in the background when `METRICS_PORT` is
/// set; with the API's state it includes the queue depths. `/metrics` is never served on
/// the public API port.
pub async fn spawn_metrics_server(
    settings: &Settings,
    state: Option<crate::api::AppState>,
) -> Result<(), StartupError> {
    let Some(port) = settings.metrics_port else {
        return Ok(());
    };
    let address = format!("{}:{port}", settings.api.host);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|source| StartupError::Listen {
            address: address.clone(),
            source,
        })?;
    tracing::info!(%address, "serving /metrics");
    tokio::spawn(crate::api::serve_metrics(
        listener,
        state,
        settings.api.connections,
        std::future::pending(),
    ));
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
        .unwrap()
    }

    #[test]
    fn the_keyring_is_made_from_the_keys_and_required_by_name() {
        let err = require_keyring(&settings(&[])).unwrap_err();
        assert_eq!(err.variable, "ENCRYPTION_KEY");
        assert!(err.to_string().contains("openssl rand -base64 32"), "{err}");
        let key = Keyring::generate_key();
        let ring = require_keyring(&settings(&[("ENCRYPTION_KEY", &key)])).unwrap();
        assert_eq!(ring.key_id(), Keyring::new(&key, &[]).unwrap().key_id());
    }

    #[test]
    fn keys_are_on_for_the_functions_and_off_for_local_unless_auth_disabled_says() {
        let none = Auth::Keys {
            operator_hash: None,
        };
        assert_eq!(auth(&settings(&[]), Runner::Function), none);
        assert_eq!(auth(&settings(&[]), Runner::Local), Auth::Disabled);
        let on = settings(&[("AUTH_DISABLED", "false")]);
        assert_eq!(auth(&on, Runner::Local), none);
        let off = settings(&[("AUTH_DISABLED", "true")]);
        assert_eq!(auth(&off, Runner::Function), Auth::Disabled);
        let key = "tw_0123456789abcdefghijklmnopqrstuvwxyz";
        assert!(matches!(
            auth(&settings(&[("API_ADMIN_KEY", key)]), Runner::Function),
            Auth::Keys {
                operator_hash: Some(_)
            }
        ));
    }
}

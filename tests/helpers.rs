//! `spawn_app()`: a tickwork API on a free port over its own PostgreSQL database and its
//! own Redis key prefix (or, with `spawn_embedded_app()`, over an SQLite file of its own
//! and an in-memory queue), a local HTTP target that logs what it receives, and one method
//! per endpoint and pass, so tests read like the behaviour they check.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{ConnectOptions, PgPool, SqlitePool};
use tickwork::api::{self, AppState};
use tickwork::config::{ConnectionSettings, Settings};
use tickwork::outbound::TargetPolicy;
use tickwork::queue::{MemoryQueue, Queue, RedisQueue};
use tickwork::secrets::Keyring;
use tickwork::startup::{app_state, Runner};
use tickwork::store::{PgStore, SqliteStore, Store};
use tickwork::tick::{self, TickOutcome, TickSettings};
use tickwork::worker::{RetryPolicy, Worker, WorkerPass, WorkerSettings};
use uuid::Uuid;

/// Where the test services are: from `DATABASE_URL` and `REDIS_URL`, or from containers
/// started once per run with the `testcontainers` feature.
pub struct Services {
    /// A PostgreSQL URL whose user may create databases.
    pub database_url: String,
    /// A Redis URL.
    pub redis_url: String,
}

#[cfg(not(feature = "testcontainers"))]
pub fn services() -> Services {
    let hint = "the integration tests need PostgreSQL and Redis: set DATABASE_URL \
        (e.g. postgres://postgres@127.0.0.1:5432/postgres, a user that may create databases) \
        and REDIS_URL (e.g. redis://127.0.0.1:6379), or run with `--features testcontainers` \
        where Docker runs";
    let database_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| panic!("DATABASE_URL is not set; {hint}"));
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| panic!("REDIS_URL is not set; {hint}"));
    Services {
        database_url,
        redis_url,
    }
}

#[cfg(feature = "testcontainers")]
pub fn services() -> Services {
    use std::sync::OnceLock;
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::redis::Redis;
    use testcontainers_modules::testcontainers::runners::SyncRunner;
    use testcontainers_modules::testcontainers::Container;

    static CONTAINERS: OnceLock<(Container<Postgres>, Container<Redis>)> = OnceLock::new();
    let (pg, redis) = CONTAINERS.get_or_init(|| {
        let pg = Postgres::default()
            .start()
            .expect("could not start a PostgreSQL container; is Docker running?");
        let redis = Redis::default()
            .start()
            .expect("could not start a Redis container; is Docker running?");
        (pg, redis)
    });
    let pg_port = pg
        .get_host_port_ipv4(5432)
        .expect("PostgreSQL container has no mapped port");
    let redis_port = redis
        .get_host_port_ipv4(6379)
        .expect("Redis container has no mapped port");
    Services {
        database_url: format!("postgres://postgres:postgres@127.0.0.1:{pg_port}/postgres"),
        redis_url: format!("redis://127.0.0.1:{redis_port}"),
    }
}

pub use crate::target::Target;

/// Which store and queue a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL and Redis, as the three functions use them.
    Servers,
    /// The embedded SQLite file and in-memory queue of `tickwork-local`.
    Embedded,
}

/// Generates, for each listed test `async fn NAME(app: TestApp)`, one `#[tokio::test]` on
/// PostgreSQL and Redis (`…::on_servers::NAME`) and one on the embedded backend
/// (`…::on_embedded::NAME`): the conformance suite.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_servers {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::helpers::spawn_app().await).await
                }
            )*
        }
        mod on_embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::helpers::spawn_embedded_app().await).await
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// The rows behind the API, for what it does not show.
#[derive(Clone)]
pub enum Rows {
    /// The test's own PostgreSQL database.
    Postgres(PgPool),
    /// A writable pool on the test's embedded file.
    Sqlite(SqlitePool),
}

impl Rows {
    /// A `SELECT count(*) ...` (any single integer) with no parameters.
    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Rows::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Rows::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Makes a job due at `at`.
    pub async fn set_next_run(&self, job_id: Uuid, at: DateTime<Utc>) {
        let sql = "UPDATE jobs SET next_run_at = $1 WHERE id = $2";
        match self {
            Rows::Postgres(pool) => sqlx::query(sql)
                .bind(at)
                .bind(job_id)
                .execute(pool)
                .await
                .map(|_| ()),
            Rows::Sqlite(pool) => sqlx::query(sql)
                .bind(at)
                .bind(job_id)
                .execute(pool)
                .await
                .map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// The PostgreSQL and Redis handles of a test on the servers.
pub struct ServerParts {
    /// A pool on the test's own database, for looking at rows.
    pub db: PgPool,
    /// URL of the test's own database, for processes.
    pub database_url: String,
    /// URL of Redis, for processes.
    pub redis_url: String,
    /// A Redis connection, for looking at keys.
    pub redis: redis::aio::ConnectionManager,
    /// This test's key prefix.
    pub key_prefix: String,
}

/// A running API plus direct handles on the store, queue, tick and worker.
pub struct TestApp {
    /// Base URL of the API.
    pub address: String,
    /// Client for API calls.
    pub client: reqwest::Client,
    /// Which backend this test runs on.
    pub backend: Backend,
    /// The store the API uses.
    pub store: Arc<dyn Store>,
    /// The queue the API uses.
    pub queue: Arc<dyn Queue>,
    /// The rows behind the store.
    pub rows: Rows,
    /// PostgreSQL and Redis handles (`None` on the embedded backend).
    servers: Option<ServerParts>,
    /// The embedded database file, removed when the test ends.
    embedded_file: Option<std::path::PathBuf>,
    /// The `ENCRYPTION_KEY` the app seals with (processes a test starts get it too).
    pub encryption_key: String,
    /// The keyring made from it.
    pub keyring: Arc<Keyring>,
    /// The local HTTP target.
    pub target: Target,
    /// Tick tuning used by `run_tick_once`.
    pub tick_settings: TickSettings,
    /// A worker over the same store and queue.
    pub worker: Arc<Worker>,
}

/// Starts everything for one test, on the shared PostgreSQL and Redis.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(services()).await
}

/// Starts everything for one test on the given servers.
pub async fn spawn_app_on(services: Services) -> TestApp {
    let admin = PgConnectOptions::from_str(&services.database_url)
        .expect("DATABASE_URL is not a valid postgres URL");
    let db_name = format!("tickwork_test_{}", Uuid::now_v7().simple());
    let mut conn = admin
        .connect()
        .await
        .expect("could not connect to PostgreSQL at DATABASE_URL; is it running?");
    sqlx::query(&format!("CREATE DATABASE {db_name}"))
        .execute(&mut conn)
        .await
        .expect("could not create the test database");
    let options = admin.clone().database(&db_name);
    let database_url = with_database(&services.database_url, &db_name);
    let store = Arc::new(PgStore::connect_lazy(options, 10));
    store.migrate().await.expect("migrations failed");
    let db = store.pool().clone();

    let key_prefix = format!("tickwork-test:{}", Uuid::now_v7().simple());
    let redis_info = redis::IntoConnectionInfo::into_connection_info(services.redis_url.as_str())
        .expect("REDIS_URL is not a valid redis URL");
    let queue = Arc::new(
        RedisQueue::connect_lazy(redis_info.clone(), &key_prefix).expect("redis client failed"),
    );
    let redis = redis::Client::open(redis_info)
        .expect("redis client failed")
        .get_connection_manager()
        .await
        .expect("could not connect to Redis at REDIS_URL; is it running?");
    let servers = ServerParts {
        db: db.clone(),
        database_url,
        redis_url: services.redis_url.clone(),
        redis,
        key_prefix,
    };
    let mut app = assemble(Backend::Servers, store, queue, Rows::Postgres(db)).await;
    app.servers = Some(servers);
    app
}

/// Starts everything for one test on the embedded backend: an SQLite file of its own and
/// an in-memory queue.
pub async fn spawn_embedded_app() -> TestApp {
    let path = std::env::temp_dir().join(format!("tickwork-test-{}.db", Uuid::now_v7().simple()));
    let store = Arc::new(
        SqliteStore::open(&path)
            .await
            .expect("could not open the embedded database"),
    );
    store.migrate().await.expect("embedded migrations failed");
    let rows = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .busy_timeout(std::time::Duration::from_secs(10)),
        )
        .await
        .expect("could not open the embedded database for looking at rows");
    let queue = Arc::new(MemoryQueue::new());
    let mut app = assemble(Backend::Embedded, store, queue, Rows::Sqlite(rows)).await;
    app.embedded_file = Some(path);
    app
}

/// The API on a free port, a worker and a target over `store` and `queue`.
async fn assemble(
    backend: Backend,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    rows: Rows,
) -> TestApp {
    let encryption_key = Keyring::generate_key();
    let keyring = Arc::new(Keyring::new(&encryption_key, &[]).expect("a fresh key"));
    let state = test_state(store.clone(), queue.clone(), keyring.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("could not bind the API");
    let address = format!("http://{}", listener.local_addr().expect("no API address"));
    tokio::spawn(api::serve(
        listener,
        state,
        ConnectionSettings::default(),
        std::future::pending(),
    ));

    let worker = Arc::new(
        Worker::new(
            store.clone(),
            queue.clone(),
            WorkerSettings {
                http_timeout: std::time::Duration::from_secs(10),
                // Short backoff: tests move time forward by passing `now`, never by sleeping.
                retry: RetryPolicy {
                    base: std::time::Duration::from_millis(100),
                    max: std::time::Duration::from_secs(10),
                },
                targets: loopback_allowed(),
                keyring: Some(keyring.clone()),
                ..WorkerSettings::default()
            },
        )
        .expect("worker failed to build"),
    );

    TestApp {
        address,
        client: reqwest::Client::new(),
        backend,
        store,
        queue,
        rows,
        servers: None,
        embedded_file: None,
        encryption_key,
        keyring,
        target: Target::spawn().await,
        tick_settings: TickSettings::default(),
        worker,
    }
}

/// Serves an API over `state` on a free port; returns its address.
pub async fn serve_api(state: AppState) -> String {
    serve_api_with(state, ConnectionSettings::default()).await
}

/// As [`serve_api`], with connection settings of the test's own.
pub async fn serve_api_with(state: AppState, settings: ConnectionSettings) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("could not bind an API");
    let address = format!("http://{}", listener.local_addr().expect("no API address"));
    tokio::spawn(api::serve(
        listener,
        state,
        settings,
        std::future::pending(),
    ));
    address
}

/// The API state of a test app, put together by `startup::app_state` as `tickwork-api` does,
/// with the settings a test wants: targets on this machine allowed (the guard otherwise
/// on), no keys, no rate limits.
fn test_state(store: Arc<dyn Store>, queue: Arc<dyn Queue>, keyring: Arc<Keyring>) -> AppState {
    let settings = Settings::from_lookup(|name| {
        let value = match name {
            "TARGET_ALLOW_CIDRS" => "127.0.0.0/8",
            "AUTH_DISABLED" => "true",
            "RATE_LIMIT_PER_SECOND" | "WRONG_KEY_LIMIT_PER_SECOND" => "0",
            _ => return None,
        };
        Some(value.to_string())
    })
    .expect("the test settings are valid");
    app_state(&settings, store, queue, keyring, Runner::Function)
}

/// The guard as the functions run it, with loopback opened for the local target (as
/// `TARGET_ALLOW_CIDRS=127.0.0.0/8` does).
pub fn loopback_allowed() -> TargetPolicy {
    TargetPolicy::guarded(vec!["127.0.0.0/8".parse().expect("a range")])
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(path) = &self.embedded_file {
            for suffix in ["", "-wal", "-shm", ".lock", ".key"] {
                let mut file = path.as_os_str().to_owned();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

impl TestApp {
    /// The embedded database file, on the embedded backend.
    pub fn embedded_path(&self) -> Option<&std::path::Path> {
        self.embedded_file.as_deref()
    }

    /// The API state this app serves: its store, queue and keyring, loopback targets
    /// allowed, no keys, no rate limit. Tests change fields for an API of their own.
    pub fn state(&self) -> AppState {
        test_state(self.store.clone(), self.queue.clone(), self.keyring.clone())
    }

    /// The PostgreSQL and Redis handles; for tests that run on the servers only.
    pub fn servers(&self) -> &ServerParts {
        self.servers
            .as_ref()
            .expect("this test runs on PostgreSQL and Redis (spawn_app), not the embedded backend")
    }

    /// A valid job body pointed at the target, with `overrides` merged in.
    pub fn job_body(&self, overrides: Value) -> Value {
        let mut body = json!({
            "name": "test job",
            "cronExpression": "*/2 * * * * *",
            "httpUrl": format!("{}/hook", self.target.url),
        });
        if let (Some(base), Value::Object(extra)) = (body.as_object_mut(), overrides) {
            base.extend(extra);
        }
        body
    }

    /// `POST /api/v1/jobs` with a JSON body.
    pub async fn post_job(&self, body: &Value) -> reqwest::Response {
        self.post_raw(&body.to_string()).await
    }

    /// `POST /api/v1/jobs` with any bytes.
    pub async fn post_raw(&self, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/jobs", self.address))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("API request failed")
    }

    /// Creates a job (body merged over [`TestApp::job_body`]) and returns its JSON.
    pub async fn create_job(&self, overrides: Value) -> Value {
        let response = self.post_job(&self.job_body(overrides)).await;
        assert_eq!(response.status(), 201, "job creation failed");
        response.json().await.expect("job JSON")
    }

    /// `GET` on an API path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("API request failed")
    }

    /// `GET /api/v1/jobs/{id}/history` as JSON executions.
    pub async fn history(&self, job_id: &str) -> Vec<Value> {
        let response = self.get(&format!("/api/v1/jobs/{job_id}/history")).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("history JSON");
        body["executions"]
            .as_array()
            .cloned()
            .expect("executions array")
    }

    /// One tick pass at `now`.
    pub async fn run_tick_once(&self, now: DateTime<Utc>) -> TickOutcome {
        tick::run_tick_once(
            now,
            self.store.as_ref(),
            self.queue.as_ref(),
            &self.tick_settings,
        )
        .await
        .expect("tick pass failed")
    }

    /// One sweep at `now`, scanning from the beginning.
    pub async fn sweep(&self, now: DateTime<Utc>) -> usize {
        tickwork::maintenance::sweep_once(
            now,
            self.store.as_ref(),
            self.queue.as_ref(),
            &self.tick_settings.maintenance,
            &tickwork::maintenance::SweepFloor::default(),
        )
        .await
        .expect("sweep failed")
    }

    /// Moves retries due at `now` back to the ready list.
    pub async fn promote(&self, now: DateTime<Utc>) -> usize {
        tickwork::maintenance::promote_due(
            now,
            self.store.as_ref(),
            self.queue.as_ref(),
            &self.tick_settings.maintenance,
        )
        .await
        .expect("promotion failed")
    }

    /// `PATCH /api/v1/jobs/{id}` with a JSON body.
    pub async fn patch_job(&self, id: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(format!("{}/api/v1/jobs/{id}", self.address))
            .body(body.to_string())
            .send()
            .await
            .expect("API request failed")
    }

    /// `DELETE /api/v1/jobs/{id}`.
    pub async fn delete_job(&self, id: &str) -> reqwest::Response {
        self.client
            .delete(format!("{}/api/v1/jobs/{id}", self.address))
            .send()
            .await
            .expect("API request failed")
    }

    /// `GET` on an API path, as JSON, asserting 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON body")
    }

    /// Runs worker passes until the queue has nothing ready; returns the totals.
    pub async fn drain_queue(&self) -> WorkerPass {
        let mut total = WorkerPass::default();
        loop {
            let pass = self.worker.run_once(100).await.expect("worker pass failed");
            if pass.taken == 0 && self.queue.stats().await.expect("stats").ready == 0 {
                return total;
            }
            total.taken += pass.taken;
            total.dropped += pass.dropped;
            total.succeeded += pass.succeeded;
            total.failed += pass.failed;
            total.retrying += pass.retrying;
            total.unsettled += pass.unsettled;
        }
    }

    /// Rows in `jobs`.
    pub async fn job_rows(&self) -> i64 {
        self.rows.count("SELECT count(*) FROM jobs").await
    }

    /// Rows in `executions`.
    pub async fn execution_rows(&self) -> i64 {
        self.rows.count("SELECT count(*) FROM executions").await
    }

    /// Executions not yet final (QUEUED, RUNNING, RETRYING).
    pub async fn unfinished(&self) -> i64 {
        self.rows
            .count(
                "SELECT count(*) FROM executions WHERE status IN ('QUEUED', 'RUNNING', 'RETRYING')",
            )
            .await
    }

    /// Waits until every execution is final, up to `limit`; true if they all are.
    pub async fn wait_until_settled(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.unfinished().await == 0 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    }

    /// The storage clock.
    pub async fn clock(&self) -> DateTime<Utc> {
        self.store.clock().await.expect("clock")
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[authority_end..]
        .find('/')
        .map(|i| i + authority_end)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..path_start])
}

/// Parses an API time.
pub fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("time is a string"))
        .expect("time is RFC 3339")
        .with_timezone(&Utc)
}

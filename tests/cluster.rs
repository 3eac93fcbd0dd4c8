//! Real processes and servers of a test's own: the tick and worker binaries, a PostgreSQL
//! cluster made with `initdb` on a free port, a `redis-server` on a free port. Tests that
//! kill, stop, restart or flush something use these, so they never disturb other tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::helpers::{Services, TestApp};

/// A port nothing listens on now, below the kernel's ephemeral range (from 32768), so that
/// the outgoing connections of tests running meanwhile cannot take it before the process
/// it is for binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Spread over the range by process, then counted up: tests in one process never get
    // the same port.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 6000) as u16;
    for _ in 0..12_000 {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        let port = 20_000 + offset;
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000")
}

fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("tickwork-test-logs");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Which binary to run.
#[derive(Debug, Clone, Copy)]
pub enum Binary {
    /// `tickwork-api`
    Api,
    /// `tickwork-tick`
    Tick,
    /// `tickwork-worker`
    Worker,
    /// `tickwork-local` (serve)
    Local,
}

/// A running tickwork process; killed when dropped.
pub struct Process {
    child: Child,
    /// Where its output goes.
    pub log: PathBuf,
}

impl Process {
    /// Starts `binary` against the app's database, Redis and key prefix, with `env` on top.
    pub fn spawn(app: &TestApp, binary: Binary, env: &[(&str, &str)]) -> Self {
        Self::spawn_without(app, binary, env, &[])
    }

    /// As [`Process::spawn`], with the variables named in `unset` left out altogether.
    pub fn spawn_without(
        app: &TestApp,
        binary: Binary,
        env: &[(&str, &str)],
        unset: &[&str],
    ) -> Self {
        Self::start(app, binary, env, unset, None)
    }

    /// As [`Process::spawn`], under an open-file limit of `files` (soft and hard, so the
    /// process cannot raise it).
    pub fn spawn_with_file_limit(
        app: &TestApp,
        binary: Binary,
        env: &[(&str, &str)],
        files: u32,
    ) -> Self {
        Self::start(app, binary, env, &[], Some(files))
    }

    fn start(
        app: &TestApp,
        binary: Binary,
        env: &[(&str, &str)],
        unset: &[&str],
        files: Option<u32>,
    ) -> Self {
        let (path, name) = match binary {
            Binary::Api => (env!("CARGO_BIN_EXE_tickwork-test-api"), "api"),
            Binary::Tick => (env!("CARGO_BIN_EXE_tickwork-test-tick"), "tick"),
            Binary::Worker => (env!("CARGO_BIN_EXE_tickwork-test-worker"), "worker"),
            Binary::Local => (env!("CARGO_BIN_EXE_tickwork-test-local"), "local"),
        };
        let log = log_dir().join(format!(
            "{}-{name}-{}.log",
            app.servers().key_prefix.replace(':', "-"),
            uuid::Uuid::now_v7().simple()
        ));
        let out = std::fs::File::create(&log).expect("cannot create a process log");
        let err = out.try_clone().expect("cannot share the process log");
        let mut command = match files {
            None => Command::new(path),
            Some(files) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {files} && exec \"$0\""))
                    .arg(path);
                shell
            }
        };
        command
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .env("DATABASE_URL", &app.servers().database_url)
            .env("REDIS_URL", &app.servers().redis_url)
            .env("REDIS_KEY_PREFIX", &app.servers().key_prefix)
            .env("MIGRATE_ON_START", "false")
            .env("TARGET_ALLOW_CIDRS", "127.0.0.0/8")
            .env("ENCRYPTION_KEY", &app.encryption_key)
            .env("LOG_LEVEL", "info")
            .env("SERVER_PORT", free_port().to_string())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in env {
            command.env(k, v);
        }
        for name in unset {
            command.env_remove(name);
        }
        let child = command.spawn().expect("cannot start a tickwork process");
        Self { child, log }
    }

    /// Starts `tickwork-local serve` on the embedded backend at `db` (no server variables
    /// set), with `env` on top.
    pub fn embedded(db: &Path, env: &[(&str, &str)]) -> Self {
        let log = log_dir().join(format!(
            "embedded-local-{}.log",
            uuid::Uuid::now_v7().simple()
        ));
        let out = std::fs::File::create(&log).expect("cannot create a process log");
        let err = out.try_clone().expect("cannot share the process log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tickwork-test-local"));
        for name in [
            "RUST_LOG",
            "RUST_BACKTRACE",
            "DATABASE_URL",
            "DB_HOST",
            "REDIS_URL",
            "REDIS_HOST",
        ] {
            command.env_remove(name);
        }
        command
            .env("TICKWORK_DB", db)
            .env("LOG_LEVEL", "info")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("cannot start tickwork-local");
        Self { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`KILL`, `TERM`, `STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// True while it has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// kill -9, and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for it to exit on its own, up to `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it logged.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when this process is root (initdb and
/// the server refuse to run as root).
fn pg_tool(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let tool = bin.join(tool);
    let mut command = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&tool);
        c
    } else {
        Command::new(&tool)
    };
    command
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()))
}

/// A PostgreSQL cluster of the test's own.
pub struct OwnPostgres {
    bin: PathBuf,
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl OwnPostgres {
    /// `initdb` in a fresh directory, then start on a free port.
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries not found under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("no initdb under /usr/lib/postgresql/*/bin");
        let dir =
            std::env::temp_dir().join(format!("tickwork-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("cannot create the cluster directory");
        if running_as_root() {
            let _ = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&dir)
                .status();
        }
        let data = dir.join("data");
        let out = pg_tool(
            &bin,
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
        };
        cluster.start_again();
        cluster
    }

    /// The admin URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start_again(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let out = pg_tool(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (`-m immediate`: like a crash; no clean shutdown).
    pub fn stop(&self) {
        let data = self.dir.join("data");
        let out = pg_tool(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Services pointing at this cluster and at `redis_url`.
    pub fn services(&self, redis_url: &str) -> Services {
        Services {
            database_url: self.url(),
            redis_url: redis_url.to_string(),
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = pg_tool(
            &self.bin,
            "pg_ctl",
            &["-D", &data.to_string_lossy(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `redis-server` of the test's own, with no persistence.
pub struct OwnRedis {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl OwnRedis {
    /// Starts it on a free port and waits until it answers.
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server; is it installed?");
        let server = Self { child, port };
        for _ in 0..100 {
            if server.cli(&["PING"]).contains("PONG") {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {port} did not answer");
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs a command with redis-cli and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every execution checked against what the target received.
#[derive(Debug)]
pub struct Reconciliation {
    /// (execution id, execution type, status) for every execution.
    pub rows: Vec<(String, String, String)>,
    /// Requests the target received, per execution id.
    pub requests: HashMap<String, usize>,
}

impl Reconciliation {
    /// Reads every execution and the target's log.
    pub async fn read(app: &TestApp) -> Self {
        let rows: Vec<(uuid::Uuid, String, String)> = sqlx::query_as(
            "SELECT e.id, j.execution_type, e.status FROM executions e JOIN jobs j ON j.id = e.job_id",
        )
        .fetch_all(&app.servers().db)
        .await
        .expect("read executions");
        Self {
            rows: rows
                .into_iter()
                .map(|(id, kind, status)| (id.to_string(), kind, status))
                .collect(),
            requests: app.target.requests_per_execution(),
        }
    }

    fn requests(&self, id: &str) -> usize {
        self.requests.get(id).copied().unwrap_or(0)
    }

    /// AT_LEAST_ONCE fires that did not end SUCCEEDED with at least one request.
    pub fn lost(&self) -> Vec<&(String, String, String)> {
        self.rows
            .iter()
            .filter(|(id, kind, status)| {
                kind == "AT_LEAST_ONCE" && (status != "SUCCEEDED" || self.requests(id) == 0)
            })
            .collect()
    }

    /// AT_MOST_ONCE fires the target received more than once.
    pub fn duplicated(&self) -> Vec<&(String, String, String)> {
        self.rows
            .iter()
            .filter(|(id, kind, _)| kind == "AT_MOST_ONCE" && self.requests(id) > 1)
            .collect()
    }

    /// No AT_LEAST_ONCE fire lost, no AT_MOST_ONCE fire delivered twice.
    pub fn assert_promises_kept(&self) {
        assert!(self.lost().is_empty(), "lost: {:?}", self.lost());
        assert!(
            self.duplicated().is_empty(),
            "delivered twice: {:?}",
            self.duplicated()
        );
    }

    /// Fires of `kind` in `status`.
    pub fn count(&self, kind: &str, status: &str) -> usize {
        self.rows
            .iter()
            .filter(|(_, k, s)| k == kind && s == status)
            .count()
    }

    /// Asserts that every SUCCEEDED fire reached the target exactly once, that every other
    /// fire is in one of the `unsent` statuses and never reached it, and that no request
    /// names a fire the history lacks.
    pub fn assert_each_success_sent_once(&self, unsent: &[&str]) {
        for (id, kind, status) in &self.rows {
            let sent = self.requests(id);
            if status == "SUCCEEDED" {
                assert_eq!(sent, 1, "{kind} fire {id} SUCCEEDED with {sent} requests");
            } else {
                assert!(
                    unsent.contains(&status.as_str()),
                    "{kind} fire {id} ended {status}, which this test does not expect"
                );
                assert_eq!(
                    sent, 0,
                    "{kind} fire {id} is {status} but was sent {sent} times"
                );
            }
        }
        assert_eq!(
            self.unknown_requests(),
            0,
            "requests for fires the history lacks"
        );
    }

    /// Requests that name no execution in the store (must be none).
    pub fn unknown_requests(&self) -> usize {
        let known: std::collections::HashSet<&str> =
            self.rows.iter().map(|(id, _, _)| id.as_str()).collect();
        self.requests
            .iter()
            .filter(|(id, _)| !known.contains(id.as_str()))
            .map(|(_, n)| n)
            .sum()
    }
}

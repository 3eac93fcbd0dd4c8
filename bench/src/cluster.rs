//! A PostgreSQL cluster of the benchmark's own (`--cluster own`): `initdb` in a temporary
//! directory, configured like a production server for this machine (autovacuum on, memory
//! and WAL sized for it, durability kept), started on a free port, and stopped and removed
//! at the end unless `--keep`. With `pg_stat_statements` loaded when it is installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context};
use sqlx::{ConnectOptions, Connection};

/// Settings read back with `SHOW` at the start of every run and printed in its summary.
pub const REPORTED: &[&str] = &[
    "server_version",
    "autovacuum",
    "shared_buffers",
    "effective_cache_size",
    "maintenance_work_mem",
    "max_wal_size",
    "min_wal_size",
    "checkpoint_timeout",
    "wal_compression",
    "max_connections",
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "shared_preload_libraries",
];

/// Largest `shared_buffers` chosen on its own (a quarter of the memory, up to this).
const SHARED_BUFFERS_CAP_MIB: u64 = 4096;

/// A running cluster of the benchmark's own.
pub struct OwnCluster {
    bin: PathBuf,
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Whether `pg_stat_statements` is loaded (and created in the `postgres` database).
    pub statements: bool,
    keep: bool,
    /// Whether `pg_ctl start` succeeded (there is a server to stop).
    started: bool,
}

impl OwnCluster {
    /// Creates, configures and starts a cluster with the server binaries in `bin` (the
    /// newest under /usr/lib/postgresql when `None`); `extra` settings come last, so they
    /// win over the benchmark's.
    pub async fn start(
        bin: Option<PathBuf>,
        port: u16,
        extra: &[(String, String)],
        keep: bool,
    ) -> anyhow::Result<Self> {
        let bin = match bin {
            Some(bin) => bin,
            None => newest_server_bin()?,
        };
        if !bin.join("initdb").exists() {
            bail!(
                "no initdb in {}; --pg-bin names the server binaries",
                bin.display()
            );
        }
        let statements = match statements_installed(&bin) {
            Ok(()) => true,
            Err(missing) => {
                eprintln!(
                    "pg_stat_statements is not installed for the server in {} ({missing:#}); \
                     continuing without statement statistics",
                    bin.display()
                );
                false
            }
        };
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        let dir = std::env::temp_dir().join(format!("tickwork-bench-pg-{}", &suffix[20..]));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // From here on, dropping the value stops and removes what was made.
        let mut cluster = Self {
            bin,
            dir,
            port,
            statements,
            keep,
            started: false,
        };
        cluster.init()?;
        let mut settings = production_settings(memory_mib()?, &cluster.dir, port, statements);
        settings.extend(extra.iter().cloned());
        cluster.configure(&settings)?;
        cluster.run_pg_ctl(&[
            "-l",
            &cluster.dir.join("server.log").to_string_lossy(),
            "-w",
            "-t",
            "120",
            "start",
        ])?;
        cluster.started = true;
        if statements {
            cluster.create_statements_extension().await?;
        }
        eprintln!(
            "started an own PostgreSQL cluster at {} (data in {})",
            cluster.url(),
            cluster.dir.display()
        );
        Ok(cluster)
    }

    /// Its admin URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The postmaster's pid, from `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&self) -> anyhow::Result<()> {
        if crate::procs::running_as_root() {
            // initdb and the server refuse to run as root; they run as `postgres`.
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(&self.dir))
            .context("handing the cluster directory to the postgres user")?;
        }
        let data = self.data();
        run(pg_command(&self.bin, "initdb").args([
            "-D",
            &data.to_string_lossy(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]))
        .context("initdb")?;
        Ok(())
    }

    /// Appends `settings` to `postgresql.conf` (later lines win).
    fn configure(&self, settings: &[(String, String)]) -> anyhow::Result<()> {
        use std::io::Write;
        let path = self.data().join("postgresql.conf");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        writeln!(file, "\n# tickwork-bench --cluster own")?;
        for (name, value) in settings {
            writeln!(file, "{name} = '{}'", value.replace('\'', "''"))?;
        }
        Ok(())
    }

    fn run_pg_ctl(&self, args: &[&str]) -> anyhow::Result<Output> {
        let data = self.data();
        run(pg_command(&self.bin, "pg_ctl")
            .args(["-D", &data.to_string_lossy()])
            .args(args))
        .with_context(|| format!("pg_ctl {}", args.last().copied().unwrap_or("")))
    }

    async fn create_statements_extension(&self) -> anyhow::Result<()> {
        let mut conn = sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database("postgres")
            .connect()
            .await
            .context("connecting to the own cluster")?;
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&mut conn)
            .await
            .context("creating the pg_stat_statements extension")?;
        let _ = conn.close().await;
        Ok(())
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        if self.keep {
            eprintln!(
                "kept the own PostgreSQL cluster running at {}; stop and remove it with: \
                 {}pg_ctl -D {} -m fast stop && rm -rf {}",
                self.url(),
                if crate::procs::running_as_root() {
                    format!("runuser -u postgres -- {}/", self.bin.display())
                } else {
                    format!("{}/", self.bin.display())
                },
                self.data().display(),
                self.dir.display()
            );
            return;
        }
        // Its data goes away with it: no checkpoint needed.
        if self.started {
            if let Err(error) = self.run_pg_ctl(&["-m", "immediate", "-w", "stop"]) {
                eprintln!("tickwork-bench: stopping the own cluster: {error:#}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Settings of a production server for a machine with `memory_mib` of memory, serving on
/// `port` with its socket in `dir`.
fn production_settings(
    memory_mib: u64,
    dir: &Path,
    port: u16,
    statements: bool,
) -> Vec<(String, String)> {
    let shared_buffers = (memory_mib / 4).min(SHARED_BUFFERS_CAP_MIB);
    let mut settings: Vec<(&str, String)> = vec![
        ("listen_addresses", "127.0.0.1".into()),
        ("port", port.to_string()),
        ("unix_socket_directories", dir.display().to_string()),
        ("max_connections", "200".into()),
        ("shared_buffers", format!("{shared_buffers}MB")),
        ("effective_cache_size", format!("{}MB", memory_mib / 2)),
        ("maintenance_work_mem", "512MB".into()),
        ("autovacuum", "on".into()),
        // Durability as in production.
        ("fsync", "on".into()),
        ("synchronous_commit", "on".into()),
        ("full_page_writes", "on".into()),
        ("wal_compression", "on".into()),
        ("max_wal_size", "8GB".into()),
        // WAL segments recycled rather than created (and zero-filled) on the commit path.
        ("min_wal_size", "2GB".into()),
        ("checkpoint_timeout", "15min".into()),
        ("checkpoint_completion_target", "0.9".into()),
    ];
    if statements {
        settings.push(("shared_preload_libraries", "pg_stat_statements".into()));
        settings.push(("pg_stat_statements.track", "top".into()));
    }
    settings
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// This machine's memory in MiB, from `/proc/meminfo`.
fn memory_mib() -> anyhow::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .context("no MemTotal in /proc/meminfo")
}

/// The newest `/usr/lib/postgresql/*/bin` holding `initdb`.
fn newest_server_bin() -> anyhow::Result<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .context("no PostgreSQL server binaries under /usr/lib/postgresql; pass --pg-bin")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .max_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        })
        .context("no initdb under /usr/lib/postgresql/*/bin; pass --pg-bin")
}

/// Ok when the server in `bin` has `pg_stat_statements` (its control file and library).
fn statements_installed(bin: &Path) -> anyhow::Result<()> {
    let dir = |flag: &str| -> anyhow::Result<PathBuf> {
        let out = run(Command::new(bin.join("pg_config")).arg(flag))?;
        Ok(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    };
    let control = dir("--sharedir")?.join("extension/pg_stat_statements.control");
    let library = dir("--pkglibdir")?.join("pg_stat_statements.so");
    for file in [control, library] {
        if !file.exists() {
            bail!("no {}", file.display());
        }
    }
    Ok(())
}

/// A server tool, run as `postgres` when this process is root.
fn pg_command(bin: &Path, tool: &str) -> Command {
    let tool = bin.join(tool);
    if crate::procs::running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(tool);
        command
    } else {
        Command::new(tool)
    }
}

/// Runs `command` to its end; an error names it and holds what it printed.
fn run(command: &mut Command) -> anyhow::Result<Output> {
    let out = command
        .output()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}{}",
            command.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(out)
}

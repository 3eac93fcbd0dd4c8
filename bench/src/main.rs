//! `tickwork-bench`: starts a tickwork deployment (api, ticks, workers) against PostgreSQL
//! and Redis, or `tickwork-local` on its embedded backend (`--backend embedded`), points
//! jobs at a local target, measures a window of fires end to end, and prints one summary.
//! Everything it starts, it stops; its database (or file) is removed after.
//!
//! The PostgreSQL server is the machine's (`--cluster machine`) or a cluster of the
//! benchmark's own configured like a production server, with `pg_stat_statements`
//! (`--cluster own`, [`cluster`]). `--workload overload` offers more fires than the
//! deployment can take, then fewer, and reports the backlog and its draining ([`overload`]).
//!
//! ```text
//! cargo build --release --workspace
//! ./target/release/tickwork-bench --jobs 1000 --duration 60 --workers 2 --pool 200
//! ./target/release/tickwork-bench --cluster own --workload overload
//! ./target/release/tickwork-bench --help
//! ```

mod args;
mod cluster;
mod deliveries;
mod deploy;
mod measure;
mod overload;
mod print;
mod procs;
mod resp;
mod rows;
mod statements;
mod summary;
mod target;
mod usage;
mod workload;

use std::str::FromStr;

use anyhow::Context;
use clap::Parser;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use args::{Args, Backend, Cluster};
use cluster::OwnCluster;
use deploy::{free_port, Server, Setup};
use measure::measure;

/// Exits 0 after a run, 1 when it fails, 2 on a bad command line (clap's error).
fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tickwork-bench: cannot start a runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tickwork-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Checks the arguments, then runs on a store named with a fresh suffix.
async fn run(mut args: Args) -> anyhow::Result<()> {
    args.check()?;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let suffix = &suffix[20..];
    match args.backend {
        Backend::Embedded => run_embedded(&args, suffix).await,
        Backend::Servers => run_servers(args, suffix).await,
    }
}

/// A run on an SQLite file in the temporary directory, removed after unless `--keep`.
async fn run_embedded(args: &Args, suffix: &str) -> anyhow::Result<()> {
    let path = std::env::temp_dir().join(format!("tickwork-bench-{suffix}.db"));
    let outcome = measure(args, &Setup::Embedded { path: path.clone() }, suffix).await;
    if !args.keep {
        for end in ["", "-wal", "-shm", ".lock", ".key"] {
            let mut file = path.as_os_str().to_owned();
            file.push(end);
            let _ = std::fs::remove_file(file);
        }
    }
    outcome
}

/// A run on a database of its own on the PostgreSQL server (the machine's, or a cluster
/// started for it), dropped after unless `--keep`.
async fn run_servers(mut args: Args, suffix: &str) -> anyhow::Result<()> {
    // Declared before the connections to it, so it stops after they close.
    let own = match args.cluster {
        Cluster::Own => Some(
            OwnCluster::start(args.pg_bin.clone(), free_port()?, &args.pg_set, args.keep).await?,
        ),
        Cluster::Machine => None,
    };
    if let Some(own) = &own {
        args.database_url = own.url();
    }
    let db_name = format!("tickwork_bench_{suffix}");
    let prefix = format!("tickwork-bench:{suffix}");
    let admin = PgConnectOptions::from_str(&args.database_url)
        .context("--database-url is not a postgres URL")?;
    let mut admin_conn = admin
        .connect()
        .await
        .context("cannot reach PostgreSQL at --database-url")?;
    let server = Server {
        cluster: args.cluster,
        settings: statements::settings(&mut admin_conn, cluster::REPORTED)
            .await
            .context("reading the server's settings")?,
        postmaster: own.as_ref().and_then(OwnCluster::postmaster_pid),
        statements: own.as_ref().is_some_and(|c| c.statements),
    };
    sqlx::query(&format!("CREATE DATABASE {db_name}"))
        .execute(&mut admin_conn)
        .await?;
    let setup = Setup::Servers {
        admin: Box::new(admin.clone()),
        db_name: db_name.clone(),
        prefix,
        server,
    };
    let outcome = measure(&args, &setup, suffix).await;
    if !args.keep {
        let _ = sqlx::query(&format!("DROP DATABASE {db_name} WITH (FORCE)"))
            .execute(&mut admin_conn)
            .await;
    }
    let _ = admin_conn.close().await;
    outcome
}

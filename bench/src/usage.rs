//! What the window costs: CPU and memory of the processes, `pg_stat_statements`, and the
//! tick's counters.

use anyhow::Context;
use sqlx::{ConnectOptions, Connection};

use crate::deploy::{Server, Setup};
use crate::procs::{cpu_seconds, memory_mib};
use crate::statements;

/// Reads one counter from a Prometheus text endpoint.
pub async fn scrape(client: &reqwest::Client, url: &str, name: &str) -> Option<f64> {
    let text = client.get(url).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// CPU seconds and memory of the processes at one instant.
pub struct Usage {
    /// Per tickwork process: CPU seconds.
    pub cpu: Vec<f64>,
    /// Per server, per pid: CPU seconds, `None` once the process is gone.
    pub server_cpu: Vec<Vec<Option<f64>>>,
    /// Per tickwork process: resident memory, MiB.
    pub rss: Vec<f64>,
    /// Per tickwork process: peak resident memory so far, MiB.
    pub rss_peak: Vec<f64>,
}

impl Usage {
    /// CPU seconds server `i` used between `before` and `after`, over its processes alive
    /// at both (a backend that exited during the window takes its time with it).
    pub fn server_delta(before: &Usage, after: &Usage, i: usize) -> f64 {
        before.server_cpu[i]
            .iter()
            .zip(&after.server_cpu[i])
            .filter_map(|(a, b)| Some(b.as_ref()? - a.as_ref()?))
            .sum()
    }

    /// Reads it for the tickwork processes `pids` (CPU and memory) and for each server's
    /// processes (CPU only).
    pub fn read(pids: &[(String, u32)], servers: &[(String, Vec<u32>)]) -> Self {
        Self {
            cpu: pids.iter().map(|(_, pid)| cpu_seconds(*pid)).collect(),
            server_cpu: servers
                .iter()
                .map(|(_, ps)| {
                    ps.iter()
                        .map(|p| alive(*p).then(|| cpu_seconds(*p)))
                        .collect()
                })
                .collect(),
            rss: pids
                .iter()
                .map(|(_, pid)| memory_mib(*pid, "VmRSS:"))
                .collect(),
            rss_peak: pids
                .iter()
                .map(|(_, pid)| memory_mib(*pid, "VmHWM:"))
                .collect(),
        }
    }
}

/// Whether process `pid` exists.
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A connection to the admin database with `pg_stat_statements` reset at the window's
/// start, when the server has it loaded.
pub async fn statements_from_now(setup: &Setup) -> anyhow::Result<Option<sqlx::PgConnection>> {
    let Setup::Servers {
        admin,
        server: Server {
            statements: true, ..
        },
        ..
    } = setup
    else {
        return Ok(None);
    };
    let mut conn = admin.connect().await?;
    statements::reset(&mut conn)
        .await
        .context("resetting pg_stat_statements")?;
    Ok(Some(conn))
}

/// The statements of the benchmark's database that took the most time since the reset.
pub async fn top_statements(
    conn: Option<sqlx::PgConnection>,
    setup: &Setup,
) -> anyhow::Result<Option<Vec<serde_json::Value>>> {
    let (Some(mut conn), Setup::Servers { db_name, .. }) = (conn, setup) else {
        return Ok(None);
    };
    let top = statements::top(&mut conn, db_name)
        .await
        .context("reading pg_stat_statements")?;
    let _ = conn.close().await;
    Ok(Some(top))
}

//! What the benchmark reads from the PostgreSQL server itself: the settings it runs with,
//! and, on a cluster of its own, the statements that took the most time during the window
//! (`pg_stat_statements`).

use serde_json::{json, Value};
use sqlx::PgConnection;

/// How many statements the summary lists.
const TOP: i64 = 10;

/// Longest query text printed.
const QUERY_CHARS: usize = 120;

/// `SHOW` of each of `names`, in order (a setting this server lacks reads as null).
pub async fn settings(conn: &mut PgConnection, names: &[&str]) -> anyhow::Result<Value> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT n, current_setting(n, true) FROM unnest($1::text[]) AS n")
            .bind(&names)
            .fetch_all(conn)
            .await?;
    Ok(Value::Object(
        rows.into_iter()
            .map(|(name, value)| (name, value.map(Value::String).unwrap_or(Value::Null)))
            .collect(),
    ))
}

/// Forgets the statistics gathered so far, for every database.
pub async fn reset(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(conn)
        .await?;
    Ok(())
}

/// The statements run in database `db` since the last reset that took the most execution
/// time: calls, total and mean ms, rows, share of the database's total, shortened text.
pub async fn top(conn: &mut PgConnection, db: &str) -> anyhow::Result<Vec<Value>> {
    let rows: Vec<(i64, f64, f64, i64, Option<f64>, String)> = sqlx::query_as(
        "SELECT calls, total_exec_time, mean_exec_time, rows, \
             total_exec_time / NULLIF(sum(total_exec_time) OVER (), 0), query \
         FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) \
         ORDER BY total_exec_time DESC LIMIT $2",
    )
    .bind(db)
    .bind(TOP)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(calls, total, mean, rows, share, query)| {
            json!({
                "calls": calls,
                "total_ms": (total * 10.0).round() / 10.0,
                "mean_ms": (mean * 1000.0).round() / 1000.0,
                "rows": rows,
                "share": (share.unwrap_or(0.0) * 1000.0).round() / 1000.0,
                "query": shorten(&query),
            })
        })
        .collect())
}

/// `query` on one line, cut to [`QUERY_CHARS`].
fn shorten(query: &str) -> String {
    let line = query.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(QUERY_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

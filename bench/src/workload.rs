//! The jobs the benchmark offers: their crons and execution types, created through the
//! API; and the rows put straight into the database before the run (idle jobs, old
//! history).

use anyhow::{bail, Context};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;

use crate::args::{Args, ExecutionKind, Workload};

/// The crons of each workload, cycled over the firing jobs.
fn crons(workload: Workload) -> &'static [&'static str] {
    match workload {
        Workload::EverySecond | Workload::Registered | Workload::Overload => &["* * * * * *"],
        Workload::Mix => &[
            "* * * * * *",
            "*/5 * * * * *",
            "0,15,30,45 * * * * *",
            "*/2 * * * * *",
            "7 * * * * *",
            "* * * * *",
        ],
    }
}

/// The `executionType` of the `i`-th job created.
fn execution_type(kind: ExecutionKind, i: usize) -> &'static str {
    match kind {
        ExecutionKind::AtMostOnce => "AT_MOST_ONCE",
        ExecutionKind::Mixed if i % 2 == 1 => "AT_MOST_ONCE",
        _ => "AT_LEAST_ONCE",
    }
}

/// A job the benchmark created.
pub struct Created {
    /// Its place in the creation order (`bench {index}`).
    pub index: usize,
    pub id: u128,
    pub cron: &'static str,
}

/// The field `--deadline` sets.
const DEADLINE_FIELD: &str = "startingDeadlineSeconds";

/// Creates the `--jobs` firing jobs through the API, 32 at a time, pointed at `target`.
pub async fn create_jobs(
    args: &Args,
    client: &reqwest::Client,
    api_url: &str,
    target: &str,
) -> anyhow::Result<Vec<Created>> {
    let crons = crons(args.workload);
    futures_util::stream::iter(0..args.jobs)
        .map(|i| {
            let mut body = json!({
                "name": format!("bench {i}"),
                "cronExpression": crons[i % crons.len()],
                "httpUrl": format!("{target}/fire"),
                "executionType": execution_type(args.kind, i),
                "timeoutSeconds": 30,
            });
            if let Some(deadline) = args.deadline {
                body[DEADLINE_FIELD] = json!(deadline);
            }
            async move {
                let response = client
                    .post(format!("{api_url}/api/v1/jobs"))
                    .json(&body)
                    .send()
                    .await?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if status != 201 {
                    refused(status, &text)?;
                }
                let created: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("creating a job answered {text:?}"))?;
                let id = created["id"]
                    .as_str()
                    .and_then(|id| uuid::Uuid::parse_str(id).ok())
                    .with_context(|| format!("creating a job answered no id: {text}"))?;
                Ok(Created {
                    index: i,
                    id: id.as_u128(),
                    cron: crons[i % crons.len()],
                })
            }
        })
        .buffer_unordered(32)
        .try_collect()
        .await
}

/// The error for a job creation answered with `status`: a clear one when the API does not
/// know `startingDeadlineSeconds` yet.
fn refused(status: reqwest::StatusCode, body: &str) -> anyhow::Result<()> {
    let field = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|b| b["error"]["field"].as_str().map(str::to_string));
    if status == 422 && field.as_deref() == Some(DEADLINE_FIELD) {
        bail!(
            "--deadline: the running tickwork-api does not support {DEADLINE_FIELD} yet \
             (creating a job answered 422: {body})"
        );
    }
    bail!("creating a job answered {status}: {body}")
}

/// Inserts `count` jobs that fire once a year, in statements of 100,000.
pub async fn insert_idle_jobs(
    pool: &sqlx::PgPool,
    count: usize,
    target: &str,
) -> anyhow::Result<()> {
    // Idle jobs fire once a year: the tick must not pay for them.
    let chunk = 100_000;
    let mut done = 0;
    while done < count {
        let n = chunk.min(count - done);
        sqlx::query(
            "INSERT INTO jobs (id, name, description, cron_expression, timezone, http_method, \
             http_url, http_headers, execution_type, max_retries, timeout_seconds, is_active, \
             next_run_at, created_at, updated_at) \
             SELECT gen_random_uuid(), 'idle ' || g, '', '0 0 0 1 1 *', 'UTC', 'POST', $1, '{}', \
             'AT_LEAST_ONCE', 3, 30, true, date_trunc('year', now()) + interval '1 year', now(), now() \
             FROM generate_series(1, $2) g",
        )
        .bind(format!("{target}/idle"))
        .bind(n as i64)
        .execute(pool)
        .await?;
        done += n;
    }
    sqlx::query("ANALYZE jobs").execute(pool).await?;
    Ok(())
}

/// Puts `count` finished fires into the day three days ago (its partition), in statements
/// of a million; returns a `HISTORY_RETENTION`, in seconds, that this day passes about a
/// minute from now.
pub async fn insert_old_history(pool: &sqlx::PgPool, count: u64) -> anyhow::Result<u64> {
    let started = std::time::Instant::now();
    let (day, passes_in): (chrono::NaiveDate, f64) = sqlx::query_as(
        "SELECT (now() AT TIME ZONE 'UTC')::date - 3, \
         extract(epoch FROM now() - ((now() AT TIME ZONE 'UTC')::date - 2)::timestamp \
             AT TIME ZONE 'UTC')::float8",
    )
    .fetch_one(pool)
    .await?;
    sqlx::query("SELECT tickwork_history_partition($1)")
        .bind(day)
        .execute(pool)
        .await?;
    let mut left = count;
    while left > 0 {
        let n = left.min(1_000_000);
        sqlx::query(
            "INSERT INTO executions (id, job_id, scheduled_at, status, attempt, queued_at, \
                 started_at, finished_at, duration_ms, http_status) \
             SELECT gen_random_uuid(), gen_random_uuid(), t, 'SUCCEEDED', 1, t, t, t, 3, 200 \
             FROM (SELECT $1::date + random() * interval '1 day' AS t \
                   FROM generate_series(1, $2)) AS f",
        )
        .bind(day)
        .bind(i64::try_from(n)?)
        .execute(pool)
        .await?;
        left -= n;
    }
    sqlx::raw_sql("VACUUM ANALYZE executions")
        .execute(pool)
        .await?;
    let retention = (passes_in + started.elapsed().as_secs_f64() + 60.0) as u64;
    eprintln!(
        "inserted {count} finished fires on {day} in {:.1} s; HISTORY_RETENTION={retention}",
        started.elapsed().as_secs_f64()
    );
    Ok(retention)
}

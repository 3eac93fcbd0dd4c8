//! The PostgreSQL history in time partitions: fires go to the partition of their UTC day and
//! are found by id in it alone; retention drops a past day only when every fire in it is
//! final and none was put back from the dead letters within the retention period; and a
//! history written by an earlier version is converted online, while fires go on.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Executor};
use tickwork::model::{ExecutionStatus, Outcome};
use tickwork::store::{named_time, Deliveries, History, Jobs, KeptPartition, PgStore};
use uuid::Uuid;

use crate::helpers::{services, spawn_app, TestApp};

/// The partition (table) a row of `table` with this id lives in.
async fn partition_of(db: &PgPool, table: &str, id_column: &str, id: Uuid) -> Option<String> {
    sqlx::query_scalar(&format!(
        "SELECT tableoid::regclass::text FROM {table} WHERE {id_column} = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
    .unwrap()
}

fn day_name(table: &str, day: NaiveDate) -> String {
    format!("{table}_p{}", day.format("%Y%m%d"))
}

/// Creates a job that never comes due by itself and triggers it: the fire, as the API shows it.
async fn fire_once(app: &TestApp) -> serde_json::Value {
    let job = app
        .create_job(json!({"cronExpression": "0 0 0 1 1 *", "maxRetries": 0}))
        .await;
    let fired = app
        .client
        .post(format!(
            "{}/api/v1/jobs/{}/trigger",
            app.address,
            job["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(fired.status(), 202);
    fired.json().await.unwrap()
}

#[tokio::test]
async fn a_fire_lives_in_the_partition_of_its_day_and_a_lookup_by_id_reads_that_one_alone() {
    let app = spawn_app().await;
    let db = &app.servers().db;
    app.target.respond_with(500);
    let execution = fire_once(&app).await;
    let id = Uuid::parse_str(execution["id"].as_str().unwrap()).unwrap();
    let scheduled_at = crate::helpers::time(&execution["scheduledAt"]);
    assert_eq!(
        named_time(id),
        Some(scheduled_at),
        "the id names the fire's time"
    );
    assert_eq!(app.drain_queue().await.failed, 1);

    let day = scheduled_at.date_naive();
    assert_eq!(
        partition_of(db, "executions", "id", id).await.as_deref(),
        Some(day_name("executions", day).as_str())
    );
    assert_eq!(
        partition_of(db, "attempts", "execution_id", id)
            .await
            .as_deref(),
        Some(day_name("attempts", day).as_str()),
        "a fire's attempts live in the same day's partition"
    );
    // The store's lookups by id name the day: PostgreSQL reads that partition alone.
    let from = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN SELECT * FROM executions WHERE id = '{id}' \
         AND scheduled_at >= '{}' AND scheduled_at < '{}'",
        from.to_rfc3339(),
        (from + TimeDelta::days(1)).to_rfc3339()
    ))
    .fetch_all(db)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains(&day_name("executions", day)), "{plan}");
    assert_eq!(plan.matches(" on executions_").count(), 1, "{plan}");
    // And the API finds it, with its attempt.
    let read = app.execution(&id.to_string()).await;
    assert_eq!(read["status"], "FAILED");
    assert_eq!(app.store.attempt_list(&[id]).await.unwrap().len(), 1);
}

/// Columns a claim changes: no index of the history may name one, or the claim cannot be a
/// HOT update.
const CLAIMED_COLUMNS: [&str; 4] = ["status", "attempt", "started_at", "worker_id"];

#[tokio::test]
async fn a_claim_is_a_hot_update_no_index_of_the_history_names_a_column_it_changes() {
    let app = spawn_app().await;
    let db = &app.servers().db;
    let execution = fire_once(&app).await;
    let partition = day_name(
        "executions",
        crate::helpers::time(&execution["scheduledAt"]).date_naive(),
    );

    // The partitioned table's indexes and the day's: keys, expressions and predicates.
    let definitions: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index \
         WHERE indrelid IN ('executions'::regclass, $1::regclass)",
    )
    .bind(&partition)
    .fetch_all(db)
    .await
    .unwrap();
    assert!(definitions.len() >= 12, "{definitions:?}");
    for definition in &definitions {
        let names: Vec<&str> = definition
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        for column in CLAIMED_COLUMNS {
            assert!(!names.contains(&column), "{definition} names {column}");
        }
    }
    let options: Option<Vec<String>> =
        sqlx::query_scalar("SELECT reloptions FROM pg_class WHERE relname = $1")
            .bind(&partition)
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(options, Some(vec!["fillfactor=90".to_string()]));

    // The worker claims and sends the fire: PostgreSQL counts the claim as a HOT update
    // (the outcome, which ends the fire, leaves the index of unfinished fires: not HOT).
    assert_eq!(app.drain_queue().await.succeeded, 1);
    let mut counts: (i64, i64) = (0, 0);
    for _ in 0..100 {
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(db)
            .await
            .unwrap();
        counts = sqlx::query_as(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = $1",
        )
        .bind(&partition)
        .fetch_one(db)
        .await
        .unwrap();
        if counts.0 >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        counts,
        (2, 1),
        "(updates, HOT updates) of the fire's partition"
    );
}

/// Puts one fire, with one attempt, directly into the partition of `at`'s day.
async fn fire_on(db: &PgPool, job: Uuid, at: DateTime<Utc>, status: &str) -> Uuid {
    sqlx::query("SELECT tickwork_history_partition($1)")
        .bind(at.date_naive())
        .execute(db)
        .await
        .unwrap();
    let id = tickwork::store::fire_id(at);
    let finished = !["QUEUED", "RUNNING", "RETRYING"].contains(&status);
    let error = ["FAILED", "ABANDONED", "EXPIRED"]
        .contains(&status)
        .then_some("target responded 500");
    sqlx::query(
        "INSERT INTO executions (id, job_id, scheduled_at, status, attempt, queued_at, \
         started_at, finished_at, error) VALUES ($1, $2, $3, $4, 1, $3, $3, $5, $6)",
    )
    .bind(id)
    .bind(job)
    .bind(at)
    .bind(status)
    .bind(finished.then_some(at))
    .bind(error)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO attempts (execution_id, scheduled_at, attempt, started_at, finished_at, \
         duration_ms) VALUES ($1, $2, 1, $2, $2, 5)",
    )
    .bind(id)
    .bind(at)
    .execute(db)
    .await
    .unwrap();
    id
}

async fn table_exists(db: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn retention_drops_a_past_day_whose_fires_are_all_final_and_keeps_days_with_unfinished_or_requeued_fires(
) {
    let app = spawn_app().await;
    let db = &app.servers().db;
    let job = Uuid::now_v7();
    let now = app.clock().await;
    let days_ago = |n: i64| now - TimeDelta::days(n);
    // Ten days ago: everything final. Nine: one fire still QUEUED. Eight: a dead letter put
    // back yesterday (and failed again). Six: final, but within a week's retention.
    fire_on(db, job, days_ago(10), "SUCCEEDED").await;
    fire_on(db, job, days_ago(10) + TimeDelta::seconds(1), "FAILED").await;
    fire_on(db, job, days_ago(9), "SUCCEEDED").await;
    fire_on(db, job, days_ago(9) + TimeDelta::seconds(1), "QUEUED").await;
    let requeued = fire_on(db, job, days_ago(8), "FAILED").await;
    sqlx::query("UPDATE executions SET requeued_at = $2 WHERE id = $1")
        .bind(requeued)
        .bind(days_ago(1))
        .execute(db)
        .await
        .unwrap();
    fire_on(db, job, days_ago(6), "SUCCEEDED").await;

    let store = app.store.as_ref();
    let kept = store.history_keep(None).await.unwrap();
    assert!(
        kept.dropped.is_empty(),
        "without retention nothing is dropped"
    );

    let week_ago = now - TimeDelta::days(7);
    let kept = store.history_keep(Some(week_ago)).await.unwrap();
    let name = |n: i64| day_name("executions", days_ago(n).date_naive());
    assert_eq!(kept.dropped, [name(10)]);
    assert_eq!(
        kept.kept,
        [
            KeptPartition {
                name: name(9),
                unfinished: 1,
                requeued: 0
            },
            KeptPartition {
                name: name(8),
                unfinished: 0,
                requeued: 1
            },
        ]
    );
    assert!(!table_exists(db, &name(10)).await);
    assert!(
        !table_exists(db, &day_name("attempts", days_ago(10).date_naive())).await,
        "a day's attempts go with it"
    );
    for n in [9, 8, 6] {
        assert!(table_exists(db, &name(n)).await, "day -{n} is kept");
    }
    // The coming days have their partitions.
    for ahead in 0..=2 {
        let day = (now + TimeDelta::days(ahead)).date_naive();
        assert!(table_exists(db, &day_name("executions", day)).await);
    }
    // Once the QUEUED fire is final, its day goes too.
    sqlx::query(
        "UPDATE executions SET status = 'CANCELLED', finished_at = now() WHERE status = 'QUEUED'",
    )
    .execute(db)
    .await
    .unwrap();
    let kept = store.history_keep(Some(week_ago)).await.unwrap();
    assert_eq!(kept.dropped, [name(9)]);
}

/// The migrations up to (not including) the one that partitions the history.
fn migrations_before_partitions() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("../migrations");
    let before: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 20261130000016)
        .cloned()
        .collect();
    migrator.migrations = Cow::Owned(before);
    migrator
}

/// A database of its own, on the shared server.
async fn own_database() -> (PgPool, PgConnectOptions) {
    let services = services();
    let admin = PgConnectOptions::from_str(&services.database_url).unwrap();
    let name = format!("tickwork_test_{}", Uuid::now_v7().simple());
    let mut conn = admin.connect().await.unwrap();
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let options = admin.database(&name);
    let pool = PgPool::connect_with(options.clone()).await.unwrap();
    (pool, options)
}

/// Index names of `table`.
async fn indexes_of(db: &PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = $1::regclass ORDER BY 1",
    )
    .bind(table)
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_history_written_by_an_earlier_version_is_converted_online_while_fires_go_on() {
    let (db, options) = own_database().await;
    migrations_before_partitions().run(&db).await.unwrap();
    // History as the earlier version wrote it: ids made when the row was written (not the
    // fire's time), attempts without their fire's time; finished, failed and waiting fires.
    let job = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO jobs (id, name, cron_expression, http_method, http_url, execution_type, \
         max_retries, timeout_seconds, created_at, updated_at) \
         VALUES ($1, 'legacy', '0 0 0 1 1 *', 'POST', 'http://127.0.0.1:9/', 'AT_LEAST_ONCE', \
         0, 5, now(), now())",
    )
    .bind(job)
    .execute(&db)
    .await
    .unwrap();
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&db)
        .await
        .unwrap();
    let mut legacy = Vec::new();
    for (i, status) in ["SUCCEEDED", "FAILED", "QUEUED"].iter().enumerate() {
        let id = Uuid::now_v7();
        // Caught up three hours late: the id is hours after its fire.
        let at = now - TimeDelta::hours(3) + TimeDelta::seconds(i as i64);
        // As earlier versions wrote them: a final fire has finished, a failed one says why.
        sqlx::query(
            "INSERT INTO executions (id, job_id, scheduled_at, status, attempt, queued_at, \
                 finished_at, error) \
             VALUES ($1, $2, $3, $4, 1, $3, CASE WHEN $4 <> 'QUEUED' THEN $3 END, \
                 CASE WHEN $4 = 'FAILED' THEN 'target responded 500' END)",
        )
        .bind(id)
        .bind(job)
        .bind(at)
        .bind(*status)
        .execute(&db)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO attempts (execution_id, attempt, started_at, finished_at, duration_ms) \
             VALUES ($1, 1, $2, $2, 5)",
        )
        .bind(id)
        .bind(at)
        .execute(&db)
        .await
        .unwrap();
        legacy.push(id);
    }

    // And a bulk of finished ones, so the conversion takes several batches.
    sqlx::query(
        "WITH made AS ( \
             INSERT INTO executions (id, job_id, scheduled_at, status, attempt, queued_at, \
                 finished_at, error) \
             SELECT gen_random_uuid(), $1, $2 - i * interval '1 second', 'FAILED', 1, $2, $2, \
                 'target responded 500' \
             FROM generate_series(1, 25000) AS i RETURNING id, scheduled_at) \
         INSERT INTO attempts (execution_id, attempt, started_at, finished_at, duration_ms) \
         SELECT id, 1, scheduled_at, scheduled_at, 5 FROM made",
    )
    .bind(job)
    .bind(now - TimeDelta::hours(4))
    .execute(&db)
    .await
    .unwrap();

    // The new version starts: its migration leaves the tables as they are.
    let store = Arc::new(PgStore::connect_lazy(options, 5));
    store.migrate().await.unwrap();
    assert!(!store.history_partitioned().await.unwrap());
    let before_swap = indexes_of(&db, "executions").await;
    for id in &legacy {
        assert!(
            store.execution_get(*id).await.unwrap().is_some(),
            "{id} is found"
        );
    }

    // Fires go on (recorded, claimed, finished, read back) all through the conversion.
    let worker = store
        .worker_register(Duration::from_secs(60))
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            let mut done = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let fire = store
                    .job_trigger(job)
                    .await
                    .unwrap()
                    .expect("the job exists");
                let claimed = store.execution_start(&[fire.id], worker).await.unwrap();
                assert_eq!(claimed.deliveries.len(), 1, "the fire is claimed");
                let recorded = store
                    .execution_record_outcomes(&[Outcome {
                        execution_id: fire.id,
                        job_id: job,
                        tenant: "default".into(),
                        scheduled_at: fire.scheduled_at,
                        attempt: 1,
                        status: ExecutionStatus::Failed,
                        retry_in: None,
                        response_body: None,
                        duration_ms: 3,
                        http_status: Some(500),
                        error: None,
                        sent_at: chrono::Utc::now(),
                    }])
                    .await
                    .unwrap();
                assert_eq!(recorded.len(), 1, "its outcome is recorded");
                let read = store.execution_get(fire.id).await.unwrap().unwrap();
                assert_eq!(read.status, ExecutionStatus::Failed);
                assert_eq!(store.attempt_list(&[fire.id]).await.unwrap().len(), 1);
                done += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            done
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let conversion = store.convert_history(None).await.unwrap();
    assert!(conversion.done, "{conversion:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let fires = traffic
        .await
        .expect("no statement failed during the conversion");
    assert!(fires > 2, "fires went on: {fires}");

    assert!(store.history_partitioned().await.unwrap());
    // The existing table is the first partition, with the keys it had (renamed; its key
    // now the one with the partition key the conversion built) and the requeue and state
    // indexes it built: attaching it built none. Its indexes on status are gone.
    let after_swap = indexes_of(&db, "executions_legacy").await;
    let status_indexes = [
        "executions_dead_idx",
        "executions_held_idx",
        "executions_queued_idx",
        "executions_retrying_idx",
        "executions_running_by_worker_idx",
    ];
    let mut expected: Vec<String> = before_swap
        .iter()
        .filter(|name| !status_indexes.contains(&name.as_str()))
        .map(|name| name.replacen("executions_", "executions_legacy_", 1))
        .chain(
            [
                "requeued",
                "unfinished",
                "failed",
                "held_by_time",
                "retry_due",
            ]
            .map(|index| format!("executions_legacy_{index}_idx")),
        )
        .collect();
    expected.sort();
    assert_eq!(after_swap, expected);
    let cutoff: DateTime<Utc> = sqlx::query_scalar("SELECT legacy_before FROM history_layout")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(cutoff > now + TimeDelta::hours(6));
    // Every fire is still found by id, with its attempts, through the partitioned tables.
    for id in &legacy {
        let read = store.execution_get(*id).await.unwrap().expect("found");
        assert_eq!(
            partition_of(&db, "executions", "id", *id).await.as_deref(),
            Some("executions_legacy")
        );
        assert_eq!(store.attempt_list(&[read.id]).await.unwrap().len(), 1);
    }
    let unfilled: i64 =
        sqlx::query_scalar("SELECT count(*) FROM attempts WHERE scheduled_at IS NULL")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(unfilled, 0);
    // Fires due after the cutoff go to partitions of their own days.
    let later = fire_on(&db, job, cutoff + TimeDelta::hours(1), "SUCCEEDED").await;
    assert_eq!(
        partition_of(&db, "executions", "id", later)
            .await
            .as_deref(),
        Some(day_name("executions", cutoff.date_naive()).as_str())
    );
    // Run again, there is nothing to do.
    assert!(store.convert_history(None).await.unwrap().done);
}

impl TestApp {
    async fn execution(&self, id: &str) -> serde_json::Value {
        let response = self
            .client
            .get(format!("{}/api/v1/executions/{id}", self.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

//! A busy system keeps its promises: workers fed more than they can send, with a small
//! database pool that claims, outcomes and the reaper compete for, deliver every fire once.
//! A second delivery is allowed after a crash (AT_LEAST_ONCE), never as the normal
//! behaviour of a saturated system.

use std::time::Duration;

use serde_json::json;

use crate::cluster::{Binary, Process};
use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_workers_with_a_busy_database_pool_deliver_every_fire_once() {
    let app = spawn_app().await;
    let url = format!("{}/sleep/100", app.target.url);
    for _ in 0..150 {
        app.create_job(json!({"cronExpression": "* * * * * *", "httpUrl": url}))
            .await;
    }
    // Five requests in flight per worker at 100 ms each: about 100 fires a second between
    // the two, against 150 due every second. Two database connections each, for claims,
    // outcomes and the reaper; a short lease, so a hold that depended on winning one of
    // those connections in time would run out.
    let env = [
        ("WORKER_POOL_SIZE", "5"),
        ("DB_MAX_CONNECTIONS", "2"),
        ("LEASE_DURATION", "3s"),
    ];
    let tick = Process::spawn(&app, Binary::Tick, &[]);
    let workers = [
        Process::spawn(&app, Binary::Worker, &env),
        Process::spawn(&app, Binary::Worker, &env),
    ];
    let mut most_waiting = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stats = app.queue.stats().await.unwrap();
        most_waiting = most_waiting.max(stats.ready);
    }
    sqlx::query("UPDATE jobs SET next_run_at = NULL")
        .execute(&app.servers().db)
        .await
        .unwrap();
    assert!(
        app.wait_until_settled(Duration::from_secs(120)).await,
        "the backlog did not drain"
    );
    drop(tick);

    assert!(
        most_waiting > 200,
        "the workers were never saturated (at most {most_waiting} fires waited)"
    );
    let per_execution = app.target.requests_per_execution();
    let twice: Vec<_> = per_execution.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let (rows, succeeded, crashes): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'SUCCEEDED'), \
         COALESCE(sum(crashes), 0)::bigint FROM executions",
    )
    .fetch_one(&app.servers().db)
    .await
    .unwrap();
    assert_eq!(succeeded, rows, "every fire succeeded");
    assert_eq!(crashes, 0, "no lease ran out while every process was alive");
    assert_eq!(
        per_execution.len() as i64,
        rows,
        "every fire recorded reached the target"
    );
    for worker in &workers {
        let log = worker.output();
        assert!(
            !log.contains("lease lost") && !log.contains("lapsed"),
            "a worker lost its lease: {log}"
        );
    }
    println!(
        "saturated: {rows} fires, up to {most_waiting} waiting at once, each delivered once, 0 crashes"
    );
}

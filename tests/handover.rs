//! Stopping and standing in: a tick told to stop hands over what it recorded ahead, and
//! workers move due fires on their own while no tick runs.

use std::time::Duration;

use serde_json::json;

use crate::cluster::{Binary, Process};
use crate::helpers::{spawn_app, TestApp};

/// Fires recorded for a time after `at`.
async fn fires_after(app: &TestApp, at: chrono::DateTime<chrono::Utc>) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM executions WHERE scheduled_at > $1")
        .bind(at)
        .fetch_one(&app.servers().db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_stopped_with_sigterm_releases_what_it_recorded_ahead_at_its_time() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.create_job(json!({"cronExpression": "* * * * * *"}))
            .await;
    }
    // The default look-ahead (2 s): each pass records fires up to two seconds ahead.
    let mut tick = Process::spawn(&app, Binary::Tick, &[]);
    let recorded_ahead = || async { fires_after(&app, app.clock().await).await };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while recorded_ahead().await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tick recorded nothing ahead"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tick.signal("TERM");
    let status = tick
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("the tick did not exit");
    assert!(status.success(), "exit status {status:?}");
    let stopped = app.clock().await;
    let furthest: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT max(scheduled_at) FROM executions")
            .fetch_one(&app.servers().db)
            .await
            .unwrap();
    // Released as a running tick releases them: the release lead (500 ms) before their time.
    assert!(
        furthest - stopped <= chrono::Duration::milliseconds(500),
        "the tick exited at {stopped}, before the last fire it recorded ({furthest}) was due"
    );

    // No worker and no other tick runs: every recorded fire must already be ready.
    let queued = app
        .rows
        .count("SELECT count(*) FROM executions WHERE status = 'QUEUED'")
        .await;
    let stats = app.queue.stats().await.unwrap();
    assert!(queued > 0);
    assert_eq!(
        (stats.ready, stats.scheduled),
        (queued as u64, 0),
        "fires recorded ahead were left waiting for another process"
    );
    assert!(tick
        .output()
        .contains("releasing the fires it recorded ahead"));
    println!("tick SIGTERM: {queued} fires recorded, all released by {stopped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fires_recorded_ahead_are_delivered_by_workers_after_their_tick_dies() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.create_job(json!({"cronExpression": "* * * * * *"}))
            .await;
    }
    let mut tick = Process::spawn(&app, Binary::Tick, &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = app.clock().await;
        let ahead = fires_after(&app, now + chrono::Duration::milliseconds(500)).await;
        if ahead > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing recorded ahead"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Killed: no hand-over. The fires it recorded ahead wait in the upcoming set.
    tick.kill9();
    sqlx::query("UPDATE jobs SET next_run_at = NULL")
        .execute(&app.servers().db)
        .await
        .unwrap();
    let recorded = app.rows.count("SELECT count(*) FROM executions").await;
    let worker = Process::spawn(&app, Binary::Worker, &[]);
    assert!(
        app.wait_until_settled(Duration::from_secs(30)).await,
        "fires recorded ahead were never delivered"
    );
    assert_eq!(
        app.rows
            .count("SELECT count(*) FROM executions WHERE status = 'SUCCEEDED'")
            .await,
        recorded
    );
    assert_eq!(app.target.received().len() as i64, recorded);
    assert!(
        !worker.output().contains("re-pushed queued executions"),
        "the fires waited for the sweeper instead of being released at their time"
    );
    println!("tick killed: {recorded} fires recorded ahead, delivered by a worker alone");
}

//! Retries with backoff, dead letters, every attempt kept, and what deactivating a job
//! does to fires in flight. Time moves by passing `now`; nothing sleeps.

use chrono::{Duration, DurationRound};
use redis::AsyncCommands;
use serde_json::{json, Value};

use crate::helpers::{on_both_backends, time, Backend, TestApp};

/// Creates a job, fires it once (due by the storage clock, not ahead of it), and returns
/// (job id, execution id).
async fn fire(app: &TestApp, overrides: Value) -> (String, String) {
    let job = app.create_job(overrides).await;
    let now = app.clock().await;
    let second = now.duration_trunc(Duration::seconds(1)).unwrap();
    let job_id = uuid::Uuid::parse_str(job["id"].as_str().unwrap()).unwrap();
    app.rows.set_next_run(job_id, second).await;
    assert_eq!(app.run_tick_once(now).await.fired, 1);
    let id = job["id"].as_str().unwrap().to_string();
    let history = app.history(&id).await;
    (id, history[0]["id"].as_str().unwrap().to_string())
}

/// Drains, then promotes retries as if `ahead` had passed, until nothing is left to run.
async fn run_to_the_end(app: &TestApp, ahead: Duration) {
    for _ in 0..30 {
        app.drain_queue().await;
        let promoted = app.promote(app.clock().await + ahead).await;
        if promoted == 0 && app.queue.stats().await.unwrap().ready == 0 {
            return;
        }
    }
    panic!("still running after 30 rounds");
}

async fn execution(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/v1/executions/{id}")).await
}

async fn a_target_failing_twice_then_succeeding_gets_three_attempts_and_succeeds(app: TestApp) {
    app.target.script(&[(503, None), (500, None)]);
    let (job_id, execution_id) = fire(&app, json!({"maxRetries": 3})).await;

    let first = app.drain_queue().await;
    assert_eq!(first.retrying, 1);
    let waiting = execution(&app, &execution_id).await;
    assert_eq!(waiting["status"], "RETRYING");
    assert!(waiting["nextAttemptAt"].is_string());
    assert_eq!(app.queue.stats().await.unwrap().scheduled, 1);

    run_to_the_end(&app, Duration::seconds(60)).await;

    let attempts: Vec<_> = app
        .target
        .received()
        .iter()
        .map(|r| r.header("x-tickwork-attempt").unwrap().to_string())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    let keys: Vec<_> = app
        .target
        .received()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert!(
        keys.iter().all(|k| *k == execution_id),
        "one key for every attempt"
    );

    let done = execution(&app, &execution_id).await;
    assert_eq!(done["status"], "SUCCEEDED");
    assert_eq!(done["attempt"], 3);
    let recorded: Vec<_> = done["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["attempt"].as_i64().unwrap(),
                a["httpStatus"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(recorded, [(1, 503), (2, 500), (3, 200)]);
    assert_eq!(done["attempts"][0]["responseBody"], "answer 503");
    let history = app.history(&job_id).await;
    assert_eq!(history[0]["attempts"].as_array().unwrap().len(), 3);
}

async fn a_target_that_always_fails_ends_failed_after_max_retries_in_the_dead_letter_list(
    app: TestApp,
) {
    app.target.respond_with(500);
    let (_, execution_id) = fire(&app, json!({"maxRetries": 2})).await;
    run_to_the_end(&app, Duration::seconds(60)).await;

    assert_eq!(app.target.received().len(), 3, "maxRetries + 1 attempts");
    let done = execution(&app, &execution_id).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["attempts"].as_array().unwrap().len(), 3);
    if app.backend == Backend::Servers {
        let servers = app.servers();
        let mut redis = servers.redis.clone();
        let dead: Vec<String> = redis
            .lrange(format!("{}:failed", servers.key_prefix), 0, -1)
            .await
            .unwrap();
        assert_eq!(dead, [execution_id]);
    }
    let stats = app.get_json("/queue/stats").await;
    assert_eq!(stats["queue_stats"]["failed"], 1);
    assert_eq!(stats["queue_stats"]["retrying"], 0);
}

async fn a_404_fails_at_once_without_retries(app: TestApp) {
    app.target.respond_with(404);
    let (_, execution_id) = fire(&app, json!({"maxRetries": 5})).await;
    run_to_the_end(&app, Duration::seconds(60)).await;
    assert_eq!(app.target.received().len(), 1);
    let done = execution(&app, &execution_id).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["httpStatus"], 404);
}

async fn retry_after_is_respected(app: TestApp) {
    app.target.script(&[(429, Some("3"))]);
    let (_, execution_id) = fire(&app, json!({})).await;
    app.drain_queue().await;

    let waiting = execution(&app, &execution_id).await;
    assert_eq!(waiting["status"], "RETRYING");
    let failed_at = time(&waiting["attempts"][0]["finishedAt"]);
    let due = time(&waiting["nextAttemptAt"]);
    let wait = due - failed_at;
    assert!(
        wait >= Duration::milliseconds(2_900) && wait <= Duration::milliseconds(3_100),
        "waited {wait}"
    );
    assert_eq!(
        app.promote(due - Duration::milliseconds(200)).await,
        0,
        "not yet"
    );
    assert_eq!(app.promote(due).await, 1);
    app.drain_queue().await;
    assert_eq!(execution(&app, &execution_id).await["status"], "SUCCEEDED");
    assert_eq!(app.target.received().len(), 2);
}

async fn an_at_most_once_fire_that_fails_is_sent_once_and_never_retried(app: TestApp) {
    app.target.respond_with(503);
    let (_, execution_id) = fire(
        &app,
        json!({"executionType": "AT_MOST_ONCE", "maxRetries": 5}),
    )
    .await;
    run_to_the_end(&app, Duration::seconds(60)).await;
    assert_eq!(app.target.received().len(), 1);
    assert_eq!(execution(&app, &execution_id).await["status"], "FAILED");
}

async fn deleting_a_job_cancels_its_queued_fire_which_is_never_sent(app: TestApp) {
    let (job_id, execution_id) = fire(&app, json!({})).await;
    assert_eq!(app.delete_job(&job_id).await.status(), 204);
    let pass = app.drain_queue().await;
    assert_eq!((pass.taken, pass.dropped), (1, 1));
    assert!(app.target.received().is_empty());
    let cancelled = execution(&app, &execution_id).await;
    assert_eq!(cancelled["status"], "CANCELLED");
    assert!(cancelled["finishedAt"].is_string());
}

async fn deactivating_a_job_cancels_a_fire_waiting_to_be_retried(app: TestApp) {
    app.target.respond_with(500);
    let (job_id, execution_id) = fire(&app, json!({})).await;
    app.drain_queue().await;
    assert_eq!(execution(&app, &execution_id).await["status"], "RETRYING");

    let response = app.patch_job(&job_id, &json!({"isActive": false})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(execution(&app, &execution_id).await["status"], "CANCELLED");
    assert_eq!(
        app.promote(app.clock().await + Duration::minutes(10)).await,
        0
    );
    app.drain_queue().await;
    assert_eq!(
        app.target.received().len(),
        1,
        "no attempt after the cancel"
    );
}

async fn a_running_fire_finishes_when_its_job_is_deleted_meanwhile(app: TestApp) {
    let (job_id, execution_id) = fire(&app, json!({})).await;
    let taken = app.worker.take(10).await.unwrap();
    assert_eq!(taken.deliveries.len(), 1);
    assert_eq!(app.delete_job(&job_id).await.status(), 204);
    for delivery in taken.deliveries {
        app.worker.execute(delivery).await;
    }
    assert_eq!(app.target.received().len(), 1);
    assert_eq!(execution(&app, &execution_id).await["status"], "SUCCEEDED");
}

async fn a_retry_whose_scheduled_item_was_lost_is_found_by_the_sweeper(app: TestApp) {
    app.target.script(&[(500, None)]);
    let (_, execution_id) = fire(&app, json!({})).await;
    app.drain_queue().await;
    let due = time(&execution(&app, &execution_id).await["nextAttemptAt"]);
    // Lose the scheduled item, as a Redis restart without persistence would.
    let far = due + Duration::days(1);
    assert_eq!(app.queue.take_due(far, 100).await.unwrap().len(), 1);
    assert_eq!(app.promote(due + Duration::seconds(1)).await, 0);
    assert_eq!(app.sweep(due + Duration::seconds(10)).await, 1);
    app.drain_queue().await;
    assert_eq!(execution(&app, &execution_id).await["status"], "SUCCEEDED");
    assert_eq!(app.target.received().len(), 2);
}

on_both_backends!(
    a_target_failing_twice_then_succeeding_gets_three_attempts_and_succeeds,
    a_target_that_always_fails_ends_failed_after_max_retries_in_the_dead_letter_list,
    a_404_fails_at_once_without_retries,
    retry_after_is_respected,
    an_at_most_once_fire_that_fails_is_sent_once_and_never_retried,
    deleting_a_job_cancels_its_queued_fire_which_is_never_sent,
    deactivating_a_job_cancels_a_fire_waiting_to_be_retried,
    a_running_fire_finishes_when_its_job_is_deleted_meanwhile,
    a_retry_whose_scheduled_item_was_lost_is_found_by_the_sweeper,
);

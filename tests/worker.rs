//! Delivery: the request a target receives, how outcomes are recorded (a retried write
//! whose first try committed included), and what happens to duplicate deliveries.

use std::sync::Arc;

use chrono::{DateTime, DurationRound, Utc};
use serde_json::{json, Value};
use tickwork::model::{ExecutionStatus, Outcome};
use tickwork::worker::{Recorder, RecorderSettings, Written};

use crate::forwarding::{Failure, Forwarding};
use crate::helpers::{on_both_backends, time, TestApp};

/// Creates a job, fires it once at its first fire time, and returns (job, fire time).
async fn fire_once(app: &TestApp, overrides: Value) -> (Value, DateTime<Utc>) {
    let job = app.create_job(overrides).await;
    let due = time(&job["nextRunAt"]);
    let pass = app.run_tick_once(due).await;
    assert_eq!(pass.fired, 1);
    (job, due)
}

async fn a_fire_reaches_the_target_once_with_every_tickwork_header_and_history_shows_it(
    app: TestApp,
) {
    let (job, due) = fire_once(&app, json!({})).await;
    let job_id = job["id"].as_str().unwrap();

    let pass = app.drain_queue().await;
    assert_eq!((pass.taken, pass.succeeded), (1, 1));

    let received = app.target.received();
    assert_eq!(received.len(), 1, "called exactly once");
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri.path(), "/hook");
    let history = app.history(job_id).await;
    assert_eq!(history.len(), 1);
    let execution = &history[0];
    let execution_id = execution["id"].as_str().unwrap();
    assert_eq!(request.header("idempotency-key"), Some(execution_id));
    assert_eq!(
        request.header("x-tickwork-execution-id"),
        Some(execution_id)
    );
    assert_eq!(request.header("x-tickwork-job-id"), Some(job_id));
    assert_eq!(request.header("x-tickwork-attempt"), Some("1"));
    assert_eq!(
        request.header("x-tickwork-scheduled-at").unwrap(),
        due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );

    assert_eq!(execution["status"], "SUCCEEDED");
    assert_eq!(execution["attempt"], 1);
    assert_eq!(execution["httpStatus"], 200);
    assert_eq!(execution["error"], Value::Null);
    assert_eq!(time(&execution["scheduledAt"]), due);
    assert!(time(&execution["startedAt"]) <= time(&execution["finishedAt"]));
    assert!(execution["durationMs"].as_i64().unwrap() >= 0);
    // The attempt that succeeded is written once, in the execution row, and read as an
    // attempt like any other.
    assert_eq!(
        app.rows.count("SELECT count(*) FROM attempts").await,
        0,
        "a successful last attempt has no attempt row of its own"
    );
    let attempts = execution["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{execution}");
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["httpStatus"], 200);
    assert_eq!(attempts[0]["startedAt"], execution["startedAt"]);
    assert_eq!(attempts[0]["finishedAt"], execution["finishedAt"]);

    let job: Value = app
        .get(&format!("/api/v1/jobs/{job_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["lastStatus"], "SUCCEEDED");
    assert_eq!(job["lastRunAt"], execution["startedAt"]);

    let stats = app.queue.stats().await.unwrap();
    assert_eq!(
        (stats.ready, stats.processing, stats.completed, stats.failed),
        (0, 0, 1, 0)
    );
}

async fn the_jobs_method_headers_and_body_are_sent_as_given(app: TestApp) {
    fire_once(
        &app,
        json!({
            "httpMethod": "PUT",
            "httpUrl": format!("{}/things/7?verbose=1", app.target.url),
            "httpHeaders": {"Authorization": "Bearer abc", "X-Team": "payments"},
            "httpBody": "{\"report\":\"daily\"}"
        }),
    )
    .await;
    app.drain_queue().await;
    let received = app.target.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.uri.to_string(), "/things/7?verbose=1");
    assert_eq!(r.header("authorization"), Some("Bearer abc"));
    assert_eq!(r.header("x-team"), Some("payments"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, "{\"report\":\"daily\"}");
}

async fn a_failing_target_is_recorded_failed_with_its_status(app: TestApp) {
    app.target.respond_with(500);
    let (job, _) = fire_once(&app, json!({"maxRetries": 0})).await;
    let pass = app.drain_queue().await;
    assert_eq!(pass.failed, 1);
    assert_eq!(app.target.received().len(), 1);
    let history = app.history(job["id"].as_str().unwrap()).await;
    assert_eq!(history[0]["status"], "FAILED");
    assert_eq!(history[0]["httpStatus"], 500);
    assert!(history[0]["error"].as_str().unwrap().contains("500"));
    let stats = app.queue.stats().await.unwrap();
    assert_eq!((stats.processing, stats.failed), (0, 1));
}

async fn an_answer_that_is_not_text_is_recorded_with_its_bytes_replaced(app: TestApp) {
    let url = format!("{}/binary", app.target.url);
    let (job, _) = fire_once(&app, json!({"httpUrl": url})).await;
    let pass = app.drain_queue().await;
    assert_eq!(pass.succeeded, 1);
    let history = app.history(job["id"].as_str().unwrap()).await;
    assert_eq!(history[0]["status"], "SUCCEEDED");
    // NUL (which PostgreSQL text cannot hold) and invalid UTF-8 both read as U+FFFD.
    assert_eq!(
        history[0]["attempts"][0]["responseBody"],
        "\u{FFFD}\u{FFFD}ok\u{FFFD}"
    );
}

async fn an_unreachable_target_is_recorded_failed_with_the_connection_error(app: TestApp) {
    // A port nothing listens on: bind one, then free it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (job, _) = fire_once(
        &app,
        json!({"httpUrl": format!("http://127.0.0.1:{port}/x"), "maxRetries": 0}),
    )
    .await;
    app.drain_queue().await;
    let history = app.history(job["id"].as_str().unwrap()).await;
    assert_eq!(history[0]["status"], "FAILED");
    assert_eq!(history[0]["httpStatus"], Value::Null);
    let error = history[0]["error"].as_str().unwrap();
    assert!(error.contains("could not connect"), "{error}");
}

async fn two_deliveries_of_one_execution_make_one_request(app: TestApp) {
    let (job, _) = fire_once(&app, json!({})).await;
    let history = app.history(job["id"].as_str().unwrap()).await;
    let id = history[0]["id"].as_str().unwrap().to_string();
    // Deliver the id twice more, bypassing the queue's de-duplication, as a re-push racing
    // a worker would; then let two workers race for the copies.
    let id = uuid::Uuid::parse_str(&id).unwrap();
    app.queue.repush(&[id]).await.unwrap();
    app.queue.repush(&[id]).await.unwrap();
    let (a, b) = tokio::join!(app.worker.run_once(2), app.worker.run_once(2));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.taken + b.taken, 3);
    assert_eq!(a.succeeded + b.succeeded, 1);
    assert_eq!(a.dropped + b.dropped, 2);
    assert_eq!(app.target.received().len(), 1, "one request for one fire");
    assert_eq!(app.queue.stats().await.unwrap().processing, 0);
}

async fn a_finished_execution_pushed_again_is_dropped_without_a_request(app: TestApp) {
    let (job, _) = fire_once(&app, json!({})).await;
    app.drain_queue().await;
    let history = app.history(job["id"].as_str().unwrap()).await;
    let id: uuid::Uuid = history[0]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(app.queue.push(&[id]).await.unwrap(), 1);
    let pass = app.drain_queue().await;
    assert_eq!((pass.taken, pass.dropped, pass.succeeded), (1, 1, 0));
    assert_eq!(app.target.received().len(), 1);
}

async fn an_outcome_for_another_attempt_is_refused(app: TestApp) {
    let (job, _) = fire_once(&app, json!({})).await;
    let history = app.history(job["id"].as_str().unwrap()).await;
    let id: uuid::Uuid = history[0]["id"].as_str().unwrap().parse().unwrap();
    let taken = app.worker.take(10).await.unwrap();
    assert_eq!(taken.deliveries.len(), 1);
    let stale = Outcome {
        execution_id: id,
        job_id: taken.deliveries[0].job_id,
        tenant: taken.deliveries[0].tenant.clone(),
        scheduled_at: taken.deliveries[0].scheduled_at,
        attempt: taken.deliveries[0].attempt + 1,
        status: ExecutionStatus::Succeeded,
        retry_in: None,
        response_body: None,
        duration_ms: 1,
        http_status: Some(200),
        error: None,
        sent_at: chrono::Utc::now(),
    };
    assert!(app
        .store
        .execution_record_outcomes(&[stale])
        .await
        .unwrap()
        .is_empty());
    let history = app.history(job["id"].as_str().unwrap()).await;
    assert_eq!(history[0]["status"], "RUNNING");
}

async fn a_retried_outcome_write_refused_after_its_first_try_committed_is_read_back_as_recorded(
    app: TestApp,
) {
    // Two fires of two jobs, both claimed (RUNNING).
    let now = app.clock().await;
    let second = now.duration_trunc(chrono::Duration::seconds(1)).unwrap();
    for _ in 0..2 {
        let job = app.create_job(json!({})).await;
        let id = uuid::Uuid::parse_str(job["id"].as_str().unwrap()).unwrap();
        app.rows.set_next_run(id, second).await;
    }
    assert_eq!(app.run_tick_once(now).await.fired, 2);
    let taken = app.worker.take(10).await.unwrap();
    assert_eq!(taken.deliveries.len(), 2);
    let (first, second) = (&taken.deliveries[0], &taken.deliveries[1]);
    let outcome = |delivery: &tickwork::model::Delivery, attempt: i32| Outcome {
        execution_id: delivery.execution_id,
        job_id: delivery.job_id,
        tenant: delivery.tenant.clone(),
        scheduled_at: delivery.scheduled_at,
        attempt,
        status: ExecutionStatus::Succeeded,
        retry_in: None,
        response_body: None,
        duration_ms: 5,
        http_status: Some(200),
        error: None,
        sent_at: chrono::Utc::now(),
    };
    // The real store, except that the first write commits and then its answer is lost:
    // the recorder tries again, and the store refuses the second try (the fire is no
    // longer RUNNING).
    let store = Arc::new(Forwarding::new(app.store.clone()));
    store.fail_record_outcomes(&[Failure::AnswerLost]);
    let recorder = Recorder::start(
        store.clone(),
        app.queue.clone(),
        RecorderSettings {
            max_batch: 10,
            linger: std::time::Duration::from_millis(1),
            patience: std::time::Duration::from_secs(30),
        },
    );
    let written = recorder.record(outcome(first, first.attempt)).await;
    assert_eq!(store.record_calls(), 2, "the write was tried again");
    match written {
        Written::Recorded(recorded) => {
            assert_eq!(recorded.execution_id, first.execution_id);
            assert_eq!(recorded.status, ExecutionStatus::Succeeded);
        }
        other => panic!("the committed outcome was reported {other:?}"),
    }
    let execution = app
        .get_json(&format!("/api/v1/executions/{}", first.execution_id))
        .await;
    assert_eq!(execution["status"], "SUCCEEDED");
    assert_eq!(execution["attempts"].as_array().unwrap().len(), 1);

    // A retried write refused because the fire is another attempt's (nothing committed
    // before) stays refused: the read-back keeps only what this attempt wrote.
    store.fail_record_outcomes(&[Failure::NotWritten]);
    let stale = recorder.record(outcome(second, second.attempt + 1)).await;
    assert_eq!(store.record_calls(), 4, "the write was tried again");
    assert_eq!(stale, Written::Refused);
    let execution = app
        .get_json(&format!("/api/v1/executions/{}", second.execution_id))
        .await;
    assert_eq!(execution["status"], "RUNNING");

    let stats = app.queue.stats().await.unwrap();
    assert_eq!(
        (stats.processing, stats.completed),
        (0, 1),
        "the recorded item completed, the refused one dropped"
    );
}

on_both_backends!(
    a_fire_reaches_the_target_once_with_every_tickwork_header_and_history_shows_it,
    the_jobs_method_headers_and_body_are_sent_as_given,
    a_failing_target_is_recorded_failed_with_its_status,
    an_answer_that_is_not_text_is_recorded_with_its_bytes_replaced,
    an_unreachable_target_is_recorded_failed_with_the_connection_error,
    two_deliveries_of_one_execution_make_one_request,
    a_finished_execution_pushed_again_is_dropped_without_a_request,
    an_outcome_for_another_attempt_is_refused,
    a_retried_outcome_write_refused_after_its_first_try_committed_is_read_back_as_recorded,
);

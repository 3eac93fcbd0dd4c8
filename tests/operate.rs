//! Operator controls on both backends: run now, pause and resume, dead letters and
//! putting them back, and the schedule preview.

use serde_json::{json, Value};

use chrono::DurationRound;

use crate::helpers::{on_both_backends, time, Rows, TestApp};

/// A job that will not fire by itself for months.
async fn quiet_job(app: &TestApp, overrides: Value) -> String {
    let mut body = json!({"cronExpression": "0 0 0 1 1 *"});
    if let (Some(base), Value::Object(extra)) = (body.as_object_mut(), overrides) {
        base.extend(extra);
    }
    let job = app.create_job(body).await;
    job["id"].as_str().unwrap().to_string()
}

async fn post(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .send()
        .await
        .expect("API request failed")
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

/// Triggers a job and returns the queued execution's JSON.
async fn trigger(app: &TestApp, job_id: &str) -> Value {
    let response = post(app, &format!("/api/v1/jobs/{job_id}/trigger")).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let execution: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/executions/{}", execution["id"].as_str().unwrap())
    );
    execution
}

async fn trigger_runs_a_job_now_once_as_a_manual_fire(app: TestApp) {
    let job_id = quiet_job(&app, json!({})).await;
    let before = app.clock().await;
    let execution = trigger(&app, &job_id).await;
    assert_eq!(execution["kind"], "MANUAL");
    assert_eq!(execution["status"], "QUEUED");
    let due = time(&execution["scheduledAt"]);
    assert!(due >= before - chrono::Duration::milliseconds(1) && due <= app.clock().await);

    assert_eq!(app.drain_queue().await.succeeded, 1);
    let received = app.target.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].execution_id(),
        execution["id"].as_str().unwrap()
    );
    let history = app.history(&job_id).await;
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0]["status"].as_str(), history[0]["kind"].as_str()),
        (Some("SUCCEEDED"), Some("MANUAL"))
    );

    // Unknown and deleted jobs: nothing recorded.
    let rows = app.execution_rows().await;
    let (status, code) = error_code(
        post(
            &app,
            &format!("/api/v1/jobs/{}/trigger", uuid::Uuid::now_v7()),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert_eq!(app.delete_job(&job_id).await.status(), 204);
    let (status, code) =
        error_code(post(&app, &format!("/api/v1/jobs/{job_id}/trigger")).await).await;
    assert_eq!((status, code.as_str()), (409, "job_deleted"));
    assert_eq!(app.execution_rows().await, rows);
}

async fn pause_and_resume_stop_and_restart_the_schedule(app: TestApp) {
    let job = app
        .create_job(json!({"cronExpression": "*/5 * * * * *"}))
        .await;
    let id = job["id"].as_str().unwrap();
    let paused: Value = post(&app, &format!("/api/v1/jobs/{id}/pause"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paused["isActive"], false);
    assert!(paused["nextRunAt"].is_null());
    let resumed: Value = post(&app, &format!("/api/v1/jobs/{id}/resume"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["isActive"], true);
    assert!(time(&resumed["nextRunAt"]) > app.clock().await - chrono::Duration::seconds(1));
    let (status, _) = error_code(post(&app, "/api/v1/jobs/nope/pause").await).await;
    assert_eq!(status, 404);
}

async fn a_failed_fire_is_listed_and_requeued_as_the_same_execution_with_new_attempts(
    app: TestApp,
) {
    let job_id = quiet_job(&app, json!({"maxRetries": 0})).await;
    let other = quiet_job(&app, json!({"maxRetries": 0})).await;
    app.target.respond_with(500);
    let failed = trigger(&app, &job_id).await;
    trigger(&app, &other).await;
    app.drain_queue().await;
    let id = failed["id"].as_str().unwrap();

    let page = app
        .get_json(&format!("/api/v1/dead-letters?jobId={job_id}"))
        .await;
    let listed = page["executions"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0]["id"].as_str(), listed[0]["status"].as_str()),
        (Some(id), Some("FAILED"))
    );
    assert_eq!(listed[0]["attempts"].as_array().unwrap().len(), 1);
    let all = app.get_json("/api/v1/dead-letters?limit=1").await;
    assert_eq!(all["executions"].as_array().unwrap().len(), 1);
    let cursor = all["nextCursor"].as_str().expect("a second page");
    let rest = app
        .get_json(&format!("/api/v1/dead-letters?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(rest["executions"].as_array().unwrap().len(), 1);
    assert_ne!(rest["executions"][0]["id"], all["executions"][0]["id"]);
    assert_eq!(
        rest["nextCursor"],
        Value::Null,
        "two dead letters, two pages of one"
    );

    app.target.respond_with(200);
    let response = post(&app, &format!("/api/v1/dead-letters/{id}/requeue")).await;
    assert_eq!(response.status(), 202);
    let requeued: Value = response.json().await.unwrap();
    assert_eq!(
        (requeued["id"].as_str(), requeued["status"].as_str()),
        (Some(id), Some("QUEUED"))
    );
    assert_eq!(
        requeued["attempts"].as_array().unwrap().len(),
        1,
        "the answer shows the attempts made so far"
    );
    assert_eq!(app.drain_queue().await.succeeded, 1);
    let done = app.get_json(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(done["status"], "SUCCEEDED");
    let numbers: Vec<i64> = done["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        [1, 2],
        "the first attempt is kept, the new one follows it"
    );

    let (status, code) =
        error_code(post(&app, &format!("/api/v1/dead-letters/{id}/requeue")).await).await;
    assert_eq!((status, code.as_str()), (409, "not_dead_letter"));
    let (status, _) = error_code(
        post(
            &app,
            &format!("/api/v1/dead-letters/{}/requeue", uuid::Uuid::now_v7()),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    let (status, code) = error_code(
        post(
            &app,
            &format!("/api/v1/dead-letters/{id}/requeue?force=maybe"),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_query"));
}

async fn an_at_most_once_dead_letter_is_sent_again_only_with_force(app: TestApp) {
    let job_id = quiet_job(&app, json!({"executionType": "AT_MOST_ONCE"})).await;
    app.target.respond_with(503);
    let failed = trigger(&app, &job_id).await;
    app.drain_queue().await;
    let id = failed["id"].as_str().unwrap();
    assert_eq!(app.target.received().len(), 1);

    let (status, code) =
        error_code(post(&app, &format!("/api/v1/dead-letters/{id}/requeue")).await).await;
    assert_eq!((status, code.as_str()), (409, "at_most_once"));
    assert_eq!(
        app.get_json(&format!("/api/v1/executions/{id}")).await["status"],
        "FAILED"
    );
    app.drain_queue().await;
    assert_eq!(app.target.received().len(), 1, "refused means not sent");

    app.target.respond_with(200);
    let response = post(
        &app,
        &format!("/api/v1/dead-letters/{id}/requeue?force=true"),
    )
    .await;
    assert_eq!(response.status(), 202);
    app.drain_queue().await;
    assert_eq!(app.target.received().len(), 2);
    assert_eq!(
        app.get_json(&format!("/api/v1/executions/{id}")).await["status"],
        "SUCCEEDED"
    );
}

async fn the_schedule_preview_needs_no_job_and_names_the_bad_parameter(app: TestApp) {
    let preview = app
        .get_json(
            "/api/v1/schedule/preview?cron=*/15%20*%20*%20*%20*%20*&timezone=Europe/Paris&count=3",
        )
        .await;
    let runs: Vec<_> = preview["nextRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(time)
        .collect();
    assert_eq!(runs.len(), 3);
    assert_eq!((runs[1] - runs[0]).num_seconds(), 15);
    assert_eq!(preview["timezone"], "Europe/Paris");
    assert_eq!(preview["description"], "every 15 seconds, Europe/Paris");
    assert_eq!(app.job_rows().await, 0);

    for (query, field) in [
        ("cron=61%20*%20*%20*%20*%20*", "cron"),
        (
            "cron=*%20*%20*%20*%20*%20*&timezone=Mars/Olympus",
            "timezone",
        ),
        ("timezone=UTC", "cron"),
        ("cron=*%20*%20*%20*%20*%20*&count=0", "count"),
        ("cron=*%20*%20*%20*%20*%20*&when=now", "when"),
        // Never fires (30 February), as creating a job with it is refused.
        ("cron=0%200%200%2030%202%20*", "cron"),
    ] {
        let response = app.get(&format!("/api/v1/schedule/preview?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_query", "{query}");
        assert_eq!(body["error"]["field"], field, "{query}");
    }
}

/// Every second, listing each value of its first two fields: valid, over the length a
/// request may submit, and within the items a field may list.
fn every_second_listed() -> String {
    let all: Vec<String> = (0..60).map(|n| n.to_string()).collect();
    format!("{} {} * * * *", all.join(","), all.join(","))
}

async fn cron_expressions_are_capped_where_requests_come_in_and_a_longer_stored_one_keeps_firing(
    app: TestApp,
) {
    let long = every_second_listed();
    assert!(long.len() > tickwork::schedule::MAX_SUBMITTED_LENGTH);
    let huge = format!("{} * * * * *", vec!["1"; 250_000].join(","));
    let too_many = format!("{} * * * * *", vec!["1"; 61].join(","));
    for (cron, says) in [
        (huge.as_str(), "at most 256"),
        (long.as_str(), "at most 256"),
        (too_many.as_str(), "field 1 lists 61"),
    ] {
        let response = app
            .post_job(&app.job_body(json!({"cronExpression": cron})))
            .await;
        assert_eq!(response.status(), 422, "{says}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["field"], "cronExpression", "{says}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
        assert!(
            message.len() < 300,
            "the answer does not echo the expression"
        );
    }
    let response = app
        .get(&format!(
            "/api/v1/schedule/preview?cron={}",
            long.replace(' ', "%20").replace(',', "%2C")
        ))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "cron");
    assert_eq!(app.job_rows().await, 0, "nothing stored");

    // A job stored with a longer expression (before the limit) keeps firing.
    let id = quiet_job(&app, json!({})).await;
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let sql = "UPDATE jobs SET cron_expression = $1 WHERE id = $2";
    match &app.rows {
        Rows::Postgres(pool) => sqlx::query(sql)
            .bind(&long)
            .bind(uuid)
            .execute(pool)
            .await
            .map(|_| ()),
        Rows::Sqlite(pool) => sqlx::query(sql)
            .bind(&long)
            .bind(uuid)
            .execute(pool)
            .await
            .map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let due = app
        .clock()
        .await
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap();
    app.rows.set_next_run(uuid, due).await;
    let pass = app.run_tick_once(due).await;
    assert_eq!(pass.fired, 1, "{pass:?}");
    assert_eq!(app.drain_queue().await.succeeded, 1);
    let job = app.get_json(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(job["cronExpression"], long.as_str());
    assert_eq!(
        time(&job["nextRunAt"]),
        due + chrono::Duration::seconds(1),
        "it fires every second"
    );
}

on_both_backends!(
    cron_expressions_are_capped_where_requests_come_in_and_a_longer_stored_one_keeps_firing,
    trigger_runs_a_job_now_once_as_a_manual_fire,
    pause_and_resume_stop_and_restart_the_schedule,
    a_failed_fire_is_listed_and_requeued_as_the_same_execution_with_new_attempts,
    an_at_most_once_dead_letter_is_sent_again_only_with_force,
    the_schedule_preview_needs_no_job_and_names_the_bad_parameter,
);

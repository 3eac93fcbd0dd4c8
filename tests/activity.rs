//! The per-minute rollups behind `GET /api/v1/activity`, and the jobs list's `status=` and
//! `sort=`, on both backends.

use serde_json::{json, Value};

use crate::helpers::{on_both_backends, time, TestApp};

/// Fires a job that succeeds and one whose target fails, and records both.
async fn one_success_and_one_failure(app: &TestApp) -> (Value, Value) {
    let fine = app.create_job(json!({"name": "fine job"})).await;
    let failing = app
        .create_job(json!({
            "name": "failing job",
            "maxRetries": 0,
            "httpUrl": format!("{}/flaky", app.target.url),
        }))
        .await;
    let due = time(&fine["nextRunAt"]).max(time(&failing["nextRunAt"]));
    for job in [&fine, &failing] {
        let id = job["id"].as_str().unwrap().parse().unwrap();
        app.rows.set_next_run(id, due).await;
    }
    assert_eq!(app.run_tick_once(due).await.fired, 2);
    let pass = app.drain_queue().await;
    assert_eq!((pass.succeeded, pass.failed), (1, 1));
    app.worker.write_rollups().await;
    (fine, failing)
}

async fn activity_counts_what_the_workers_recorded_per_minute(app: TestApp) {
    let forgotten = tickwork::maintenance::forget_old_rollups(app.store.as_ref())
        .await
        .unwrap();
    assert_eq!(forgotten, 0);
    let quiet = app.get_json("/api/v1/activity").await;
    assert_eq!(quiet["totals"]["fires"], 0);
    assert_eq!(quiet["totals"]["latencyP50Ms"], Value::Null);

    one_success_and_one_failure(&app).await;
    let hour = app.get_json("/api/v1/activity").await;
    assert_eq!(hour["window"], "hour");
    assert_eq!(hour["stepSeconds"], 60);
    let points = hour["points"].as_array().unwrap();
    assert_eq!(points.len(), 60);
    let totals = &hour["totals"];
    assert_eq!(
        (&totals["fires"], &totals["succeeded"], &totals["failed"]),
        (&json!(2), &json!(1), &json!(1))
    );
    assert!(totals["latencyP95Ms"].as_f64().unwrap() >= 0.0);
    assert!(totals["latenessP50Ms"].as_f64().is_some());
    let counted: u64 = points.iter().map(|p| p["fires"].as_u64().unwrap()).sum();
    assert_eq!(counted, 2, "the fires are in the hour's points");

    // Writing again adds nothing: the tally was emptied by the first write.
    app.worker.write_rollups().await;
    let day = app.get_json("/api/v1/activity?window=day").await;
    assert_eq!(day["points"].as_array().unwrap().len(), 96);
    assert_eq!(day["stepSeconds"], 900);
    assert_eq!(day["totals"]["fires"], 2);

    let bad = app.get("/api/v1/activity?window=week").await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["field"], "window");
    assert_eq!(
        body["error"]["message"],
        "window is \"week\"; expected one of hour, day"
    );
}

async fn the_jobs_list_filters_on_the_latest_outcome(app: TestApp) {
    let (fine, failing) = one_success_and_one_failure(&app).await;
    let _never_fired = app.create_job(json!({"name": "quiet job"})).await;
    let names = |page: &Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap().to_string())
            .collect()
    };
    let failed = app.get_json("/api/v1/jobs?status=FAILED").await;
    assert_eq!(names(&failed), [failing["name"].as_str().unwrap()]);
    let succeeded = app.get_json("/api/v1/jobs?status=SUCCEEDED").await;
    assert_eq!(names(&succeeded), [fine["name"].as_str().unwrap()]);
    assert!(names(&app.get_json("/api/v1/jobs?status=RETRYING").await).is_empty());

    let bad = app.get("/api/v1/jobs?status=QUEUED").await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["field"], "status");
    assert_eq!(
        body["error"]["message"],
        "status is \"QUEUED\"; expected one of SUCCEEDED, FAILED, RETRYING"
    );
}

async fn the_jobs_list_sorts_by_name_with_stable_cursors_and_by_next_run(app: TestApp) {
    for name in ["delta", "alpha", "charlie", "bravo", "echo"] {
        app.create_job(json!({"name": name})).await;
    }
    let mut seen = Vec::new();
    let mut address = "/api/v1/jobs?sort=name&limit=2".to_string();
    loop {
        let page = app.get_json(&address).await;
        for job in page["jobs"].as_array().unwrap() {
            seen.push(job["name"].as_str().unwrap().to_string());
        }
        // A job made between pages sorts before the cursor and does not shift the rest.
        if seen.len() == 2 {
            app.create_job(json!({"name": "aardvark"})).await;
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => address = format!("/api/v1/jobs?sort=name&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["alpha", "bravo", "charlie", "delta", "echo"]);

    let soonest = app.get_json("/api/v1/jobs?sort=nextRun&limit=2").await;
    assert_eq!(soonest["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(soonest["nextCursor"], Value::Null, "nextRun has one page");
    let first = time(&soonest["jobs"][0]["nextRunAt"]);
    let second = time(&soonest["jobs"][1]["nextRunAt"]);
    assert!(first <= second);

    let newest = app.get_json("/api/v1/jobs?limit=1").await;
    let cursor = newest["nextCursor"].as_str().unwrap();
    for address in [
        format!("/api/v1/jobs?sort=name&cursor={cursor}"),
        format!("/api/v1/jobs?sort=nextRun&cursor={cursor}"),
    ] {
        let refused = app.get(&address).await;
        assert_eq!(refused.status(), 400, "{address}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["field"], "cursor");
    }
    let bad = app.get("/api/v1/jobs?sort=size").await;
    let body: Value = bad.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "sort is \"size\"; expected one of newest, name, nextRun"
    );
}

on_both_backends!(
    activity_counts_what_the_workers_recorded_per_minute,
    the_jobs_list_filters_on_the_latest_outcome,
    the_jobs_list_sorts_by_name_with_stable_cursors_and_by_next_run,
);

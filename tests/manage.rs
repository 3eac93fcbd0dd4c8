//! Managing jobs: PATCH, soft DELETE, reactivation, list filters, the schedule preview,
//! execution lookup and queue stats.

use chrono::Duration;
use serde_json::{json, Value};

use crate::helpers::{on_both_backends, time, TestApp};

async fn patching_the_schedule_moves_next_run_at_and_leaves_other_fields(app: TestApp) {
    let job = app
        .create_job(json!({"cronExpression": "0 0 0 1 1 *", "description": "yearly"}))
        .await;
    let id = job["id"].as_str().unwrap();
    let response = app
        .patch_job(
            id,
            &json!({"cronExpression": "*/5 * * * * *", "name": "renamed"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["cronExpression"], "*/5 * * * * *");
    assert_eq!(patched["name"], "renamed");
    assert_eq!(patched["description"], "yearly");
    let next = time(&patched["nextRunAt"]);
    assert!(next < time(&job["nextRunAt"]));
    assert!(next - app.clock().await <= Duration::seconds(5));
    assert_eq!(chrono::Timelike::second(&next) % 5, 0);
    assert!(time(&patched["updatedAt"]) > time(&job["updatedAt"]));
    assert_eq!(app.get_json(&format!("/api/v1/jobs/{id}")).await, patched);
}

async fn patching_the_time_zone_recomputes_next_run_at(app: TestApp) {
    let job = app
        .create_job(json!({"cronExpression": "0 0 12 * * *"}))
        .await;
    let id = job["id"].as_str().unwrap();
    let patched: Value = app
        .patch_job(id, &json!({"timezone": "Asia/Tokyo"}))
        .await
        .json()
        .await
        .unwrap();
    // Noon in Tokyo (UTC+9) is 03:00 UTC.
    assert!(patched["nextRunAt"]
        .as_str()
        .unwrap()
        .ends_with("T03:00:00.000Z"));
}

async fn a_bad_patch_is_refused_naming_the_field_and_changes_nothing(app: TestApp) {
    let job = app.create_job(json!({})).await;
    let id = job["id"].as_str().unwrap();
    for (body, status, field) in [
        (
            json!({"cronExpression": "* * * *"}),
            422,
            Some("cronExpression"),
        ),
        (
            json!({"cronExpression": "0 0 0 30 2 *"}),
            422,
            Some("cronExpression"),
        ),
        (json!({"timezone": "Nowhere/Land"}), 422, Some("timezone")),
        (json!({"maxRetries": 50}), 422, Some("maxRetries")),
        (json!({"name": null}), 422, Some("name")),
        (json!({"httpMethod": "FETCH"}), 422, Some("httpMethod")),
        (json!({"id": "x"}), 422, Some("id")),
        (json!(["not", "an", "object"]), 400, None),
    ] {
        let response = app.patch_job(id, &body).await;
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["field"], json!(field), "{body}");
    }
    let mut unchanged = job.clone();
    unchanged.as_object_mut().unwrap().remove("signingSecret");
    assert_eq!(app.get_json(&format!("/api/v1/jobs/{id}")).await, unchanged);
    let response = app
        .patch_job(&uuid::Uuid::now_v7().to_string(), &json!({"name": "x"}))
        .await;
    assert_eq!(response.status(), 404);
}

async fn a_deleted_job_stops_firing_stays_readable_and_leaves_the_list(app: TestApp) {
    let job = app
        .create_job(json!({"cronExpression": "* * * * * *"}))
        .await;
    let id = job["id"].as_str().unwrap();
    let due = time(&job["nextRunAt"]);
    assert_eq!(app.delete_job(id).await.status(), 204);
    assert_eq!(
        app.delete_job(id).await.status(),
        204,
        "deleting twice is fine"
    );
    assert_eq!(app.run_tick_once(due + Duration::seconds(3)).await.fired, 0);

    let deleted = app.get_json(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(deleted["isActive"], false);
    assert!(deleted["deletedAt"].is_string());
    assert_eq!(deleted["nextRunAt"], Value::Null);
    let _ = app.get_json(&format!("/api/v1/jobs/{id}/history")).await;

    let listed = app.get_json("/api/v1/jobs").await;
    assert!(listed["jobs"].as_array().unwrap().is_empty());
    let all = app.get_json("/api/v1/jobs?includeDeleted=true").await;
    assert_eq!(all["jobs"][0]["id"], id);
    assert_eq!(
        app.delete_job(&uuid::Uuid::now_v7().to_string())
            .await
            .status(),
        404
    );
}

async fn reactivating_a_deleted_job_clears_deleted_at_and_resumes_firing(app: TestApp) {
    let job = app
        .create_job(json!({"cronExpression": "*/2 * * * * *"}))
        .await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(app.delete_job(id).await.status(), 204);
    let response = app.patch_job(id, &json!({"isActive": true})).await;
    assert_eq!(response.status(), 200);
    let back: Value = response.json().await.unwrap();
    assert_eq!(back["isActive"], true);
    assert_eq!(back["deletedAt"], Value::Null);
    let due = time(&back["nextRunAt"]);
    assert_eq!(app.run_tick_once(due).await.fired, 1);
    app.drain_queue().await;
    assert_eq!(app.target.received().len(), 1);
}

async fn lists_filter_by_is_active(app: TestApp) {
    let active = app.create_job(json!({"name": "on"})).await;
    let paused = app
        .create_job(json!({"name": "off", "isActive": false}))
        .await;
    let on = app.get_json("/api/v1/jobs?isActive=true").await;
    assert_eq!(on["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(on["jobs"][0]["id"], active["id"]);
    let off = app.get_json("/api/v1/jobs?isActive=false").await;
    assert_eq!(off["jobs"][0]["id"], paused["id"]);
    let response = app.get("/api/v1/jobs?isActive=maybe").await;
    assert_eq!(response.status(), 400);
}

async fn the_schedule_lists_the_next_fire_times_from_now(app: TestApp) {
    let job = app
        .create_job(json!({"cronExpression": "0 30 9 * * MON-FRI", "timezone": "America/New_York"}))
        .await;
    let id = job["id"].as_str().unwrap();
    let schedule = app.get_json(&format!("/api/v1/jobs/{id}/schedule")).await;
    assert_eq!(schedule["cronExpression"], "0 30 9 * * MON-FRI");
    assert_eq!(schedule["timezone"], "America/New_York");
    let runs: Vec<_> = schedule["nextRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(time)
        .collect();
    assert_eq!(runs.len(), 10);
    assert!(runs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(runs[0], time(&job["nextRunAt"]));
    for run in &runs {
        let local = run.with_timezone(&chrono_tz::America::New_York);
        assert_eq!(local.format("%H:%M:%S").to_string(), "09:30:00");
        assert!(!matches!(
            chrono::Datelike::weekday(&local),
            chrono::Weekday::Sat | chrono::Weekday::Sun
        ));
    }
    let three = app
        .get_json(&format!("/api/v1/jobs/{id}/schedule?count=3"))
        .await;
    assert_eq!(three["nextRuns"].as_array().unwrap().len(), 3);
    assert_eq!(
        three["description"],
        "at 09:30, on Monday through Friday, America/New_York"
    );
    for bad in ["count=0", "count=1001", "count=x"] {
        let response = app.get(&format!("/api/v1/jobs/{id}/schedule?{bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

async fn queue_stats_count_every_structure(app: TestApp) {
    let stats = app.get_json("/queue/stats").await;
    assert_eq!(
        stats,
        json!({"queue_stats": {"ready": 0, "scheduled": 0, "processing": 0, "retrying": 0, "completed": 0, "failed": 0}})
    );
    let job = app.create_job(json!({})).await;
    app.run_tick_once(time(&job["nextRunAt"])).await;
    let stats = app.get_json("/queue/stats").await;
    assert_eq!(stats["queue_stats"]["ready"], 1);
    app.drain_queue().await;
    let stats = app.get_json("/queue/stats").await;
    assert_eq!(stats["queue_stats"]["ready"], 0);
    assert_eq!(stats["queue_stats"]["completed"], 1);
}

async fn unknown_executions_are_404(app: TestApp) {
    for id in [uuid::Uuid::now_v7().to_string(), "nope".to_string()] {
        let response = app.get(&format!("/api/v1/executions/{id}")).await;
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
}

async fn a_list_page_ends_at_its_byte_budget_and_its_cursor_leads_to_the_rest(app: TestApp) {
    // 80 jobs of 64 KiB bodies: about 5 MiB, more than one page's budget (4 MiB).
    let body = "x".repeat(64 * 1024);
    let mut made = std::collections::HashSet::new();
    for n in 0..80 {
        let job = app
            .create_job(json!({"name": format!("big {n}"), "httpBody": body}))
            .await;
        made.insert(job["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let path = match &cursor {
            None => "/api/v1/jobs?limit=500".to_string(),
            Some(c) => format!("/api/v1/jobs?limit=500&cursor={c}"),
        };
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200);
        let bytes = response.bytes().await.unwrap();
        let page: Value = serde_json::from_slice(&bytes).unwrap();
        let jobs = page["jobs"].as_array().unwrap();
        pages.push((jobs.len(), bytes.len()));
        seen.extend(jobs.iter().map(|j| j["id"].as_str().unwrap().to_string()));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert!(pages.len() >= 2, "one page of 80 big jobs: {pages:?}");
    assert!(pages[0].0 < 80, "the first page holds all 80: {pages:?}");
    for (_, bytes) in &pages {
        assert!(
            *bytes < 4 * 1024 * 1024 + 128 * 1024,
            "a page of {bytes} bytes"
        );
    }
    assert_eq!(seen.len(), 80, "each job once: {pages:?}");
    assert_eq!(
        seen.iter()
            .cloned()
            .collect::<std::collections::HashSet<_>>(),
        made
    );
}

on_both_backends!(
    a_list_page_ends_at_its_byte_budget_and_its_cursor_leads_to_the_rest,
    patching_the_schedule_moves_next_run_at_and_leaves_other_fields,
    patching_the_time_zone_recomputes_next_run_at,
    a_bad_patch_is_refused_naming_the_field_and_changes_nothing,
    a_deleted_job_stops_firing_stays_readable_and_leaves_the_list,
    reactivating_a_deleted_job_clears_deleted_at_and_resumes_firing,
    lists_filter_by_is_active,
    the_schedule_lists_the_next_fire_times_from_now,
    queue_stats_count_every_structure,
    unknown_executions_are_404,
);

//! Bounded lateness (`startingDeadlineSeconds`): the field through the API; a first attempt
//! claimed past its deadline ends EXPIRED and is never sent, on both backends, while a fire
//! within it, a retry, a fire taken back from a worker and a catch-up fire are sent; the
//! expiry pass ends a backlog without any claim; an EXPIRED fire is a dead letter that a
//! requeue sends. And a worker with one slot against a slow target, as real processes: no
//! request arrives later than its deadline allows.
//!
//! Time moves by setting a fire's `scheduled_at` and `queued_at` back in the test's own
//! database (the claim and the pass read the storage clock, as they must).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::{json, Value};
use tickwork::maintenance::{expire_overdue, release_held, MaintenanceSettings};
use uuid::Uuid;

use crate::cluster::{Binary, Process};
use crate::helpers::{on_both_backends, spawn_app, time, Backend, Rows, TestApp};

/// A job that will not fire by itself for months; returns its id.
async fn quiet_job(app: &TestApp, overrides: Value) -> String {
    let mut body = json!({"cronExpression": "0 0 0 1 1 *"});
    if let (Some(base), Value::Object(extra)) = (body.as_object_mut(), overrides) {
        base.extend(extra);
    }
    app.create_job(body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The longest these tests move a fire's time back ([`age`], [`set_times`]), and a margin.
const LONGEST_AGE: TimeDelta = TimeDelta::minutes(11);

/// A fire is found by the UTC day its id names (its partition in PostgreSQL), and these
/// tests move fires' times back: so no fire is made within [`LONGEST_AGE`] after midnight
/// (UTC), where moving it back would cross into the day before. Waits that out if needed.
async fn clear_of_midnight(app: &TestApp) {
    let now = app.clock().await;
    let midnight = now.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    if now - midnight < LONGEST_AGE {
        let wait = (midnight + LONGEST_AGE - now).to_std().unwrap();
        tokio::time::sleep(wait).await;
    }
}

/// Records a MANUAL fire of `job_id` (QUEUED, due now); returns the execution id.
async fn trigger(app: &TestApp, job_id: &str) -> String {
    clear_of_midnight(app).await;
    let response = app
        .client
        .post(format!("{}/api/v1/jobs/{job_id}/trigger", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let execution: Value = response.json().await.unwrap();
    execution["id"].as_str().unwrap().to_string()
}

/// Sets a fire's scheduled time and the time it was queued, in the test's own database.
async fn set_times(app: &TestApp, id: &str, scheduled_at: DateTime<Utc>, queued_at: DateTime<Utc>) {
    let id = Uuid::parse_str(id).unwrap();
    let sql = "UPDATE executions SET scheduled_at = $1, queued_at = $2 WHERE id = $3";
    let changed = match &app.rows {
        Rows::Postgres(pool) => sqlx::query(sql)
            .bind(scheduled_at)
            .bind(queued_at)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        Rows::Sqlite(pool) => sqlx::query(sql)
            .bind(scheduled_at)
            .bind(queued_at)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(changed, 1);
    assert_eq!(
        tickwork::store::named_time(id).map(|t| t.date_naive()),
        Some(scheduled_at.date_naive()),
        "a fire's time stays in the UTC day its id names"
    );
}

/// Every fire's (id, scheduled_at, queued_at).
async fn fire_times(app: &TestApp) -> Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)> {
    let sql = "SELECT id, scheduled_at, queued_at FROM executions";
    match &app.rows {
        Rows::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        Rows::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Moves a fire's scheduled time and queued time `by` into the past.
async fn age(app: &TestApp, id: &str, by: TimeDelta) {
    let (_, scheduled_at, queued_at) = fire_times(app)
        .await
        .into_iter()
        .find(|(fire, _, _)| fire.to_string() == id)
        .expect("the fire is recorded");
    set_times(app, id, scheduled_at - by, queued_at - by).await;
}

async fn execution(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/v1/executions/{id}")).await
}

fn sent(app: &TestApp, id: &str) -> usize {
    app.target
        .received()
        .iter()
        .filter(|r| r.execution_id() == id)
        .count()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

async fn starting_deadline_seconds_is_set_shown_patched_cleared_and_checked_naming_the_field(
    app: TestApp,
) {
    let none = app.create_job(json!({})).await;
    assert_eq!(none["startingDeadlineSeconds"], Value::Null, "no default");
    let job = app.create_job(json!({"startingDeadlineSeconds": 30})).await;
    assert_eq!(job["startingDeadlineSeconds"], 30);
    let id = job["id"].as_str().unwrap();
    let read = app.get_json(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(read["startingDeadlineSeconds"], 30);
    let listed = app.get_json("/api/v1/jobs").await;
    let shown: HashMap<&str, &Value> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["id"].as_str().unwrap(), &j["startingDeadlineSeconds"]))
        .collect();
    assert_eq!(shown[id], &json!(30));
    assert_eq!(shown[none["id"].as_str().unwrap()], &Value::Null);
    let explicit_null = app
        .create_job(json!({"startingDeadlineSeconds": null}))
        .await;
    assert_eq!(explicit_null["startingDeadlineSeconds"], Value::Null);

    // A patch sets it, leaves it alone when it is not named, and clears it with null.
    let patched: Value = app
        .patch_job(id, &json!({"startingDeadlineSeconds": 86400}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["startingDeadlineSeconds"], 86400);
    let renamed: Value = app
        .patch_job(id, &json!({"name": "renamed"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["startingDeadlineSeconds"], 86400);
    let cleared = app
        .patch_job(id, &json!({"startingDeadlineSeconds": null}))
        .await;
    assert_eq!(cleared.status(), 200);
    let cleared: Value = cleared.json().await.unwrap();
    assert_eq!(cleared["startingDeadlineSeconds"], Value::Null);
    assert_eq!(
        app.get_json(&format!("/api/v1/jobs/{id}")).await["startingDeadlineSeconds"],
        Value::Null
    );

    let jobs = app.job_rows().await;
    for bad in [
        json!(0),
        json!(-5),
        json!(86401),
        json!("30"),
        json!(2.5),
        json!(true),
    ] {
        let body = app.job_body(json!({"startingDeadlineSeconds": bad}));
        let (status, error) = error_of(app.post_job(&body).await).await;
        assert_eq!(status, 422, "create {bad}");
        assert_eq!(error["field"], "startingDeadlineSeconds", "create {bad}");
        assert_eq!(error["code"], "invalid_field", "create {bad}");
        let message = error["message"].as_str().unwrap();
        assert!(message.starts_with("startingDeadlineSeconds"), "{message}");
        assert!(
            message.contains("1 to 86400") || message.contains("whole number"),
            "says what is accepted: {message}"
        );
        let (status, error) = error_of(
            app.patch_job(id, &json!({"startingDeadlineSeconds": bad}))
                .await,
        )
        .await;
        assert_eq!(status, 422, "patch {bad}");
        assert_eq!(error["field"], "startingDeadlineSeconds", "patch {bad}");
    }
    assert_eq!(app.job_rows().await, jobs, "nothing stored");
    assert_eq!(
        app.get_json(&format!("/api/v1/jobs/{id}")).await["startingDeadlineSeconds"],
        Value::Null,
        "nothing changed"
    );
}

async fn a_first_attempt_claimed_past_its_deadline_expires_unsent_and_one_within_it_is_sent(
    app: TestApp,
) {
    let short = quiet_job(&app, json!({"startingDeadlineSeconds": 3})).await;
    let long = quiet_job(&app, json!({"startingDeadlineSeconds": 60})).await;
    let unbounded = quiet_job(&app, json!({})).await;
    let late = trigger(&app, &short).await;
    let within = trigger(&app, &long).await;
    let waited = trigger(&app, &unbounded).await;
    // Ten seconds late, by the storage clock: past three seconds, within sixty.
    for id in [&late, &within, &waited] {
        age(&app, id, TimeDelta::seconds(10)).await;
    }
    // A fire due now, of the three-second job, is within its deadline.
    let on_time = trigger(&app, &short).await;

    let pass = app.drain_queue().await;
    assert_eq!(pass.succeeded, 3, "{pass:?}");
    let expired = execution(&app, &late).await;
    assert_eq!(expired["status"], "EXPIRED");
    assert_eq!(sent(&app, &late), 0, "an expired fire is never sent");
    assert_eq!(expired["attempt"], 0, "no attempt was made");
    assert_eq!(expired["startedAt"], Value::Null);
    assert!(time(&expired["finishedAt"]) <= app.clock().await);
    assert_eq!(
        expired["error"],
        "not started within startingDeadlineSeconds (3 s) of its time; not sent"
    );
    assert!(expired["attempts"].as_array().unwrap().is_empty());
    for id in [&within, &waited, &on_time] {
        assert_eq!(execution(&app, id).await["status"], "SUCCEEDED", "{id}");
        assert_eq!(sent(&app, id), 1, "{id}");
    }
    // Its queue item went to the dead-letter list, not to "processing".
    let stats = app.queue.stats().await.unwrap();
    assert_eq!((stats.failed, stats.processing), (1, 0));
}

async fn a_retry_past_the_deadline_is_still_sent(app: TestApp) {
    let job = quiet_job(&app, json!({"startingDeadlineSeconds": 5, "maxRetries": 2})).await;
    app.target.script(&[(503, None)]);
    let id = trigger(&app, &job).await;
    assert_eq!(app.drain_queue().await.retrying, 1);
    assert_eq!(execution(&app, &id).await["status"], "RETRYING");
    assert_eq!(
        app.promote(app.clock().await + TimeDelta::minutes(1)).await,
        1
    );
    // Long past its deadline when the retry comes round: it already started once.
    age(&app, &id, TimeDelta::minutes(10)).await;
    assert_eq!(app.drain_queue().await.succeeded, 1);
    let done = execution(&app, &id).await;
    assert_eq!(
        (done["status"].as_str(), done["attempt"].as_i64()),
        (Some("SUCCEEDED"), Some(2))
    );
    assert_eq!(sent(&app, &id), 2);
}

async fn fires_taken_back_from_a_dead_or_stopping_worker_are_exempt(app: TestApp) {
    let job = quiet_job(&app, json!({"startingDeadlineSeconds": 5})).await;
    let reaped = trigger(&app, &job).await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let handed_back = trigger(&app, &job).await;
    let store = app.store.as_ref();
    let ids: Vec<Uuid> = [&reaped, &handed_back]
        .iter()
        .map(|id| Uuid::parse_str(id).unwrap())
        .collect();

    // One worker's lease runs out with the first fire; another stops holding the second.
    let dying = store
        .worker_register(Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(
        store
            .execution_start(&ids[..1], dying)
            .await
            .unwrap()
            .deliveries
            .len(),
        1
    );
    let stopping = store
        .worker_register(Duration::from_secs(30))
        .await
        .unwrap();
    let held = store.execution_start(&ids[1..], stopping).await.unwrap();
    assert_eq!(held.deliveries.len(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let back = store.execution_reap_expired(3, 100).await.unwrap();
    assert_eq!(back.len(), 1);
    let unfinished = tickwork::store::Unfinished {
        execution_id: ids[1],
        attempt: held.deliveries[0].attempt,
        execution_type: held.deliveries[0].execution_type,
    };
    assert_eq!(
        store
            .execution_hand_back(&[unfinished])
            .await
            .unwrap()
            .len(),
        1
    );

    // Both back in QUEUED, long past the deadline: they already started once.
    for id in [&reaped, &handed_back] {
        assert_eq!(execution(&app, id).await["status"], "QUEUED");
        age(&app, id, TimeDelta::minutes(10)).await;
    }
    app.queue.push(&ids).await.unwrap();
    let expired = expire_overdue(store, app.queue.as_ref(), &MaintenanceSettings::default())
        .await
        .unwrap();
    assert_eq!(expired, 0, "the pass leaves them alone too");
    assert_eq!(app.drain_queue().await.succeeded, 2);
    for id in [&reaped, &handed_back] {
        let done = execution(&app, id).await;
        assert_eq!(
            (done["status"].as_str(), done["attempt"].as_i64()),
            (Some("SUCCEEDED"), Some(2))
        );
        assert_eq!(sent(&app, id), 1, "sent by the second attempt only");
    }
}

async fn a_catch_up_fire_recorded_late_by_the_misfire_policy_is_not_expired_at_birth(app: TestApp) {
    let job = app
        .create_job(json!({
            "cronExpression": "*/10 * * * * *",
            "misfirePolicy": "FIRE_ALL",
            "startingDeadlineSeconds": 30,
        }))
        .await;
    let id = job["id"].as_str().unwrap();
    // As if no tick had run for five minutes: the fires it makes up are minutes old, but
    // each gets its whole deadline from the moment it is recorded.
    let now = app.clock().await;
    let missed_since = (now - TimeDelta::minutes(5))
        .duration_trunc(TimeDelta::seconds(10))
        .unwrap();
    app.rows
        .set_next_run(Uuid::parse_str(id).unwrap(), missed_since)
        .await;
    app.run_tick_once(now).await;
    // (A fire recorded ahead of its time, if the pass made one, is not due yet.)
    let due: Vec<DateTime<Utc>> = fire_times(&app)
        .await
        .iter()
        .map(|(_, scheduled_at, _)| *scheduled_at)
        .filter(|scheduled_at| *scheduled_at <= now)
        .collect();
    assert!(due.len() >= 30, "{due:?}");
    let oldest = due.iter().min().unwrap();
    assert!(
        *oldest < now - TimeDelta::minutes(4),
        "minutes-old fires were recorded"
    );

    let drained = app.drain_queue().await;
    assert_eq!(drained.succeeded, due.len(), "{drained:?}");
    assert_eq!(app.target.received().len(), due.len());
    let history = app.history(id).await;
    assert!(
        history
            .iter()
            .filter(|e| time(&e["scheduledAt"]) <= now)
            .all(|e| e["status"] == "SUCCEEDED"),
        "{history:?}"
    );
}

async fn the_expiry_pass_ends_a_backlog_in_batches_without_a_claim(app: TestApp) {
    let mut expiring = Vec::new();
    for _ in 0..25 {
        let job = quiet_job(&app, json!({"startingDeadlineSeconds": 1})).await;
        expiring.push(trigger(&app, &job).await);
    }
    let unbounded = quiet_job(&app, json!({})).await;
    let waiting = trigger(&app, &unbounded).await;
    let generous = quiet_job(&app, json!({"startingDeadlineSeconds": 3600})).await;
    let within = trigger(&app, &generous).await;
    for id in expiring.iter().chain([&waiting, &within]) {
        age(&app, id, TimeDelta::minutes(1)).await;
    }
    // Five of them as the tick records fires while the queue's window is full: held in the
    // store (they are in the ready list too here, which changes nothing below).
    for id in &expiring[20..] {
        let id = Uuid::parse_str(id).unwrap();
        let sql = "UPDATE executions SET held = true WHERE id = $1";
        match &app.rows {
            Rows::Postgres(pool) => sqlx::query(sql).bind(id).execute(pool).await.map(|_| ()),
            Rows::Sqlite(pool) => sqlx::query(sql).bind(id).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    // One statement ends at most a batch: those in the queue oldest queued first, then the
    // held ones oldest first.
    let first = app.store.execution_expire_overdue(10).await.unwrap();
    assert_eq!(first.len(), 10);
    // The pass goes on, batch after batch, until a batch comes back short.
    let settings = MaintenanceSettings {
        expire_batch: 10,
        ..MaintenanceSettings::default()
    };
    let rest = expire_overdue(app.store.as_ref(), app.queue.as_ref(), &settings)
        .await
        .unwrap();
    assert_eq!(rest, 15);
    assert_eq!(
        expire_overdue(app.store.as_ref(), app.queue.as_ref(), &settings)
            .await
            .unwrap(),
        0
    );
    for id in &expiring {
        let fire = execution(&app, id).await;
        assert_eq!(fire["status"], "EXPIRED", "{id}");
        assert_eq!(fire["attempt"], 0);
    }
    assert_eq!(execution(&app, &waiting).await["status"], "QUEUED");
    assert_eq!(execution(&app, &within).await["status"], "QUEUED");
    assert!(app.target.received().is_empty(), "no claim, nothing sent");
    // The pass's own batches went to the dead-letter list (the first statement was the
    // store's alone).
    assert_eq!(app.queue.stats().await.unwrap().failed, 15);

    // Their ready items are dropped when taken: only the two left QUEUED are sent.
    let pass = app.drain_queue().await;
    assert_eq!((pass.succeeded, pass.dropped), (2, 25), "{pass:?}");
    assert_eq!(app.target.received().len(), 2);
}

async fn held_fires_past_their_deadline_are_never_sent_and_end_at_their_release_on_postgresql(
    app: TestApp,
) {
    let job = quiet_job(&app, json!({"startingDeadlineSeconds": 1})).await;
    let late = trigger(&app, &job).await;
    let unbounded = quiet_job(&app, json!({})).await;
    let waiting = trigger(&app, &unbounded).await;
    // Both a minute old and held, as the tick records fires while the queue's window is
    // full (they are in the ready list too here, which changes nothing below).
    for id in [&late, &waiting] {
        age(&app, id, TimeDelta::minutes(1)).await;
        let sql = "UPDATE executions SET held = true WHERE id = $1";
        let id = Uuid::parse_str(id).unwrap();
        match &app.rows {
            Rows::Postgres(pool) => sqlx::query(sql).bind(id).execute(pool).await.map(|_| ()),
            Rows::Sqlite(pool) => sqlx::query(sql).bind(id).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let settings = MaintenanceSettings::default();
    let pushed = release_held(
        app.clock().await,
        app.store.as_ref(),
        app.queue.as_ref(),
        &settings,
    )
    .await
    .unwrap();
    if app.backend == Backend::Servers {
        // The late one ends at its release, a dead letter, and only the other is pushed.
        assert_eq!(pushed, 1);
        assert_eq!(execution(&app, &late).await["status"], "EXPIRED");
        assert_eq!(app.queue.stats().await.unwrap().failed, 1);
    } else {
        // The embedded backend pushes both; the claim expires the late one.
        assert_eq!(pushed, 2);
    }
    assert!(!app.store.execution_any_held().await.unwrap());
    app.drain_queue().await;
    let late_fire = execution(&app, &late).await;
    assert_eq!(late_fire["status"], "EXPIRED");
    assert_eq!(late_fire["attempt"], 0);
    assert_eq!(execution(&app, &waiting).await["status"], "SUCCEEDED");
    assert_eq!((sent(&app, &late), sent(&app, &waiting)), (0, 1));
}

async fn an_expired_fire_is_a_dead_letter_counted_and_requeued_without_force_then_sent(
    app: TestApp,
) {
    let job = quiet_job(
        &app,
        json!({"executionType": "AT_MOST_ONCE", "startingDeadlineSeconds": 5}),
    )
    .await;
    let id = trigger(&app, &job).await;
    age(&app, &id, TimeDelta::seconds(30)).await;
    app.drain_queue().await;
    assert_eq!(execution(&app, &id).await["status"], "EXPIRED");

    let page = app
        .get_json(&format!("/api/v1/dead-letters?jobId={job}"))
        .await;
    let listed = page["executions"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0]["id"].as_str(), listed[0]["status"].as_str()),
        (Some(id.as_str()), Some("EXPIRED"))
    );
    let counts = app.store.tenant_counts("default").await.unwrap();
    assert_eq!((counts.dead, counts.queued), (1, 0));
    let stats = app.get_json("/queue/stats").await;
    assert_eq!(stats["queue_stats"]["failed"], 1);

    // Never sent, so no force even though it is AT_MOST_ONCE; its deadline counts from the
    // requeue, not from its scheduled time half a minute ago.
    let response = app
        .client
        .post(format!("{}/api/v1/dead-letters/{id}/requeue", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let requeued: Value = response.json().await.unwrap();
    assert_eq!(requeued["status"], "QUEUED");
    assert_eq!(requeued["error"], Value::Null);
    assert_eq!(app.drain_queue().await.succeeded, 1);
    let done = execution(&app, &id).await;
    assert_eq!(
        (done["status"].as_str(), done["attempt"].as_i64()),
        (Some("SUCCEEDED"), Some(1))
    );
    assert_eq!(sent(&app, &id), 1);
}

async fn a_requeued_expired_fire_that_waits_past_its_deadline_again_expires_again(app: TestApp) {
    let job = quiet_job(&app, json!({"startingDeadlineSeconds": 5})).await;
    let id = trigger(&app, &job).await;
    age(&app, &id, TimeDelta::seconds(30)).await;
    app.drain_queue().await;
    assert_eq!(execution(&app, &id).await["status"], "EXPIRED");
    let requeued = app
        .client
        .post(format!("{}/api/v1/dead-letters/{id}/requeue", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(requeued.status(), 202);
    // The requeue starts a new round: its first attempt is held to the deadline again.
    age(&app, &id, TimeDelta::seconds(30)).await;
    app.drain_queue().await;
    assert_eq!(execution(&app, &id).await["status"], "EXPIRED");
    assert_eq!(sent(&app, &id), 0);
}

async fn an_expired_fire_does_not_hide_a_running_one_from_the_overlap_check(app: TestApp) {
    let job = quiet_job(
        &app,
        json!({"concurrencyPolicy": "FORBID", "startingDeadlineSeconds": 5}),
    )
    .await;
    let running = trigger(&app, &job).await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let late = trigger(&app, &job).await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let next = trigger(&app, &job).await;
    let store = app.store.as_ref();
    let worker = store
        .worker_register(Duration::from_secs(30))
        .await
        .unwrap();
    let uuid = |id: &str| Uuid::parse_str(id).unwrap();
    assert_eq!(
        store
            .execution_start(&[uuid(&running)], worker)
            .await
            .unwrap()
            .deliveries
            .len(),
        1
    );
    // The middle fire waited past its deadline; the last is on time.
    let now = app.clock().await;
    set_times(
        &app,
        &running,
        now - TimeDelta::seconds(60),
        now - TimeDelta::seconds(60),
    )
    .await;
    set_times(
        &app,
        &late,
        now - TimeDelta::seconds(30),
        now - TimeDelta::seconds(30),
    )
    .await;
    let claimed = store.execution_start(&[uuid(&late)], worker).await.unwrap();
    assert_eq!(claimed.expired, [uuid(&late)]);
    // The fire before it never ran, so it does not stand for the ones before it: the first
    // is still RUNNING, and the last is skipped under FORBID.
    let claimed = store.execution_start(&[uuid(&next)], worker).await.unwrap();
    assert!(claimed.deliveries.is_empty());
    assert_eq!(claimed.skipped, [uuid(&next)]);
    assert_eq!(execution(&app, &next).await["status"], "SKIPPED");
}

on_both_backends!(
    starting_deadline_seconds_is_set_shown_patched_cleared_and_checked_naming_the_field,
    a_first_attempt_claimed_past_its_deadline_expires_unsent_and_one_within_it_is_sent,
    a_retry_past_the_deadline_is_still_sent,
    fires_taken_back_from_a_dead_or_stopping_worker_are_exempt,
    a_catch_up_fire_recorded_late_by_the_misfire_policy_is_not_expired_at_birth,
    the_expiry_pass_ends_a_backlog_in_batches_without_a_claim,
    held_fires_past_their_deadline_are_never_sent_and_end_at_their_release_on_postgresql,
    an_expired_fire_is_a_dead_letter_counted_and_requeued_without_force_then_sent,
    a_requeued_expired_fire_that_waits_past_its_deadline_again_expires_again,
    an_expired_fire_does_not_hide_a_running_one_from_the_overlap_check,
);

/// The deadline of the fault test, in seconds.
const DEADLINE: i64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_worker_sends_no_fire_after_its_starting_deadline() {
    let app = spawn_app().await;
    // One request at a time, 400 ms each: 2.5 fires a second against 8 due every second.
    // Without a deadline the backlog, and each fire's lateness, would grow by seconds every
    // second (about 25 s late by the end).
    let url = format!("{}/sleep/400", app.target.url);
    for _ in 0..8 {
        app.create_job(json!({
            "cronExpression": "* * * * * *",
            "httpUrl": url,
            "startingDeadlineSeconds": DEADLINE,
        }))
        .await;
    }
    let tick = Process::spawn(&app, Binary::Tick, &[]);
    let worker = Process::spawn(&app, Binary::Worker, &[("WORKER_POOL_SIZE", "1")]);
    tokio::time::sleep(Duration::from_secs(12)).await;
    sqlx::query("UPDATE jobs SET next_run_at = NULL")
        .execute(&app.servers().db)
        .await
        .unwrap();
    // What is still QUEUED expires (the pass runs every second) or is sent in time.
    assert!(
        app.wait_until_settled(Duration::from_secs(30)).await,
        "fires were left unfinished"
    );
    drop(tick);
    drop(worker);

    type Row = (Uuid, String, DateTime<Utc>, DateTime<Utc>, i32);
    let rows: Vec<Row> =
        sqlx::query_as("SELECT id, status, scheduled_at, queued_at, attempt FROM executions")
            .fetch_all(&app.servers().db)
            .await
            .unwrap();
    let by_id: HashMap<String, _> = rows
        .iter()
        .map(|(id, status, scheduled_at, queued_at, attempt)| {
            (
                id.to_string(),
                (status.as_str(), *scheduled_at, *queued_at, *attempt),
            )
        })
        .collect();
    let expired = rows.iter().filter(|r| r.1 == "EXPIRED").count();
    let succeeded = rows.iter().filter(|r| r.1 == "SUCCEEDED").count();
    assert_eq!(
        expired + succeeded,
        rows.len(),
        "every fire was sent or expired: {:?}",
        rows.iter()
            .filter(|r| r.1 != "EXPIRED" && r.1 != "SUCCEEDED")
            .collect::<Vec<_>>()
    );
    assert!(expired > 0, "the worker was never overloaded");
    assert!(succeeded > 0, "nothing was sent at all");

    let received = app.target.received();
    let per_execution = app.target.requests_per_execution();
    let twice: Vec<_> = per_execution.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(
        per_execution.len(),
        succeeded,
        "each SUCCEEDED fire was sent, once"
    );
    // The bound: a worker claims a first attempt only while the database clock is within
    // the deadline, counted from the later of the scheduled and queued times, and with
    // one slot it holds that slot before it claims, so it sends what it claimed at once.
    // What follows the check is the claim's commit, a task started and a loopback
    // connection: milliseconds, and on a busy two-core machine running other tests still
    // well under a second. A second of margin is far below the tens of seconds a fire
    // would be late without the check, so a request sent from an unchecked claim shows.
    let margin = TimeDelta::seconds(1);
    let mut latest = TimeDelta::zero();
    for request in &received {
        let id = request.execution_id();
        let (status, scheduled_at, queued_at, attempt) = by_id
            .get(&id)
            .copied()
            .unwrap_or_else(|| panic!("a request names {id}, which the history lacks"));
        assert_eq!((status, attempt), ("SUCCEEDED", 1), "{id}");
        assert_eq!(request.scheduled_at(), scheduled_at);
        let clock_start = scheduled_at.max(queued_at);
        let late = request.arrived - clock_start;
        latest = latest.max(late);
        assert!(
            late <= TimeDelta::seconds(DEADLINE) + margin,
            "{id} arrived {late} after its clock started (scheduled {scheduled_at}, queued {queued_at})"
        );
    }
    println!(
        "overloaded: {} fires, {succeeded} sent once each (latest {} ms after its time), {expired} expired unsent",
        rows.len(),
        latest.num_milliseconds()
    );
}

//! The tick pass and the sweeper, driven with a chosen `now`; no sleeping. And the tick
//! loop, for a few seconds, over a storage clock set apart from the host's.

use chrono::{DateTime, Duration, DurationRound, Timelike, Utc};
use serde_json::json;
use tickwork::store::{DueJob, Store};
use tickwork::tick::{plan_fires, TickSettings};

use crate::forwarding::Forwarding;
use crate::helpers::{on_both_backends, time, Backend, TestApp};

async fn a_due_job_fires_once_and_its_next_run_moves_on(app: TestApp) {
    let job = app
        .create_job(json!({"cronExpression": "*/2 * * * * *"}))
        .await;
    let due = time(&job["nextRunAt"]);

    let early = app.run_tick_once(due - Duration::milliseconds(1)).await;
    assert_eq!(early.fired, 0, "nothing fires before its time");

    let pass = app.run_tick_once(due).await;
    assert_eq!((pass.jobs, pass.fired, pass.pushed), (1, 1, 1));
    let again = app.run_tick_once(due).await;
    assert_eq!(
        again.fired, 0,
        "a second pass at the same instant fires nothing"
    );

    let id = job["id"].as_str().unwrap();
    let job: serde_json::Value = app
        .get(&format!("/api/v1/jobs/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(time(&job["nextRunAt"]), due + Duration::seconds(2));
    let history = app.history(id).await;
    assert_eq!(history.len(), 1);
    assert_eq!(time(&history[0]["scheduledAt"]), due);
    assert_eq!(history[0]["status"], "QUEUED");
    assert_eq!(app.queue.stats().await.unwrap().ready, 1);
}

async fn a_job_a_few_seconds_late_fires_every_missed_second_late(app: TestApp) {
    let job = app
        .create_job(json!({"cronExpression": "* * * * * *"}))
        .await;
    let due = time(&job["nextRunAt"]);
    let pass = app.run_tick_once(due + Duration::milliseconds(5_400)).await;
    assert_eq!(pass.fired, 6);
    let mut scheduled: Vec<_> = app
        .history(job["id"].as_str().unwrap())
        .await
        .iter()
        .map(|e| time(&e["scheduledAt"]))
        .collect();
    scheduled.sort();
    let expected: Vec<_> = (0..6).map(|s| due + Duration::seconds(s)).collect();
    assert_eq!(scheduled, expected);
}

async fn a_fire_later_than_the_misfire_threshold_fires_once_at_the_latest_missed_time(
    app: TestApp,
) {
    let job = app
        .create_job(json!({"cronExpression": "*/10 * * * * *"}))
        .await;
    let due = time(&job["nextRunAt"]);
    let now = due + Duration::minutes(5) + Duration::seconds(3);
    let pass = app.run_tick_once(now).await;
    assert_eq!(pass.fired, 1);
    let id = job["id"].as_str().unwrap();
    let history = app.history(id).await;
    assert_eq!(time(&history[0]["scheduledAt"]), due + Duration::minutes(5));
    let job: serde_json::Value = app
        .get(&format!("/api/v1/jobs/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        time(&job["nextRunAt"]),
        due + Duration::minutes(5) + Duration::seconds(10)
    );
}

async fn inactive_jobs_have_no_next_run_and_never_fire(app: TestApp) {
    let job = app.create_job(json!({"isActive": false})).await;
    assert_eq!(job["nextRunAt"], serde_json::Value::Null);
    let pass = app
        .run_tick_once(app.clock().await + Duration::days(1))
        .await;
    assert_eq!(pass.fired, 0);
    assert_eq!(app.execution_rows().await, 0);
}

async fn a_pass_claims_batches_that_double_while_full_until_no_job_is_due(mut app: TestApp) {
    app.tick_settings.batch_size = 3;
    let mut latest = app.clock().await;
    for _ in 0..10 {
        let job = app
            .create_job(json!({"cronExpression": "* * * * * *"}))
            .await;
        latest = latest.max(time(&job["nextRunAt"]));
    }
    let pass = app.run_tick_once(latest).await;
    assert_eq!(pass.jobs, 10);
    // Three (full, so the next doubles), six (full again), the last one of twelve, and the
    // empty one that ends the pass.
    assert_eq!(pass.batches, 4, "{pass:?}");
    assert_eq!(app.queue.stats().await.unwrap().ready as usize, pass.fired);
}

async fn past_the_ready_window_fires_are_held_in_the_store_and_released_oldest_first(
    mut app: TestApp,
) {
    app.tick_settings.batch_size = 4;
    app.tick_settings.maintenance.ready_window = 6;
    // Every job due at the same whole second, however long creating them took (a second
    // already past, so the worker sends without waiting for it).
    let latest = app
        .clock()
        .await
        .duration_trunc(Duration::seconds(1))
        .unwrap()
        - Duration::seconds(5);
    for _ in 0..10 {
        let job = app
            .create_job(json!({"cronExpression": "* * * * * *"}))
            .await;
        let id = uuid::Uuid::parse_str(job["id"].as_str().unwrap()).unwrap();
        app.rows.set_next_run(id, latest).await;
    }
    // The first batch (4) leaves room for 2: the second batch pushes its first two fires
    // and holds the rest; every fire of the next pass is held while older ones wait (new
    // fires never pass held ones).
    let first = app.run_tick_once(latest).await;
    assert_eq!(
        (first.fired, first.pushed, first.held),
        (10, 6, 4),
        "{first:?}"
    );
    let second = app.run_tick_once(latest + Duration::seconds(1)).await;
    assert_eq!(
        (second.fired, second.pushed, second.held),
        (10, 0, 10),
        "{second:?}"
    );
    let stats = app.queue.stats().await.unwrap();
    assert_eq!(
        stats.ready + stats.scheduled,
        6,
        "the queue holds the window only"
    );
    let held = app
        .rows
        .count("SELECT count(*) FROM executions WHERE held AND status = 'QUEUED'")
        .await;
    assert_eq!(held, 14);

    // Nothing is released while the window is full; each drained window makes room for the
    // oldest held fires, until every fire has been delivered once.
    let settings = app.tick_settings.maintenance;
    let now = latest + Duration::seconds(1);
    let release = || {
        tickwork::maintenance::release_held(now, app.store.as_ref(), app.queue.as_ref(), &settings)
    };
    assert_eq!(release().await.unwrap(), 0, "the window is full");
    let scheduled_at = |r: &crate::target::Received| {
        time(&json!(r.header("x-tickwork-scheduled-at").unwrap_or("")))
    };
    let mut delivered = 0;
    let mut latest_sent = None;
    for round in 0.. {
        assert!(round < 20, "the held fires never drained");
        let seen = app.target.received().len();
        let pass = app.worker.run_once(100).await.unwrap();
        delivered += pass.succeeded;
        // Held fires are released oldest first: nothing sent in this round is older than
        // what an earlier round sent.
        let sent = app.target.received();
        let round_times: Vec<_> = sent[seen..].iter().map(scheduled_at).collect();
        if let (Some(before), Some(oldest)) = (latest_sent, round_times.iter().min()) {
            assert!(*oldest >= before, "a later fire passed an earlier one");
        }
        latest_sent = round_times.iter().max().copied().or(latest_sent);
        let released = release().await.unwrap();
        assert!(released <= 6, "released past the window: {released}");
        if pass.taken == 0 && released == 0 {
            break;
        }
    }
    assert_eq!(delivered, 20);
    assert_eq!(app.target.received().len(), 20, "each fire sent once");
    let per_fire = app.target.requests_per_execution();
    assert!(per_fire.values().all(|n| *n == 1));
    assert!(!app.store.execution_any_held().await.unwrap());
}

async fn concurrent_ticks_record_exactly_one_execution_per_fire(app: TestApp) {
    // Twenty jobs, all due at the same second.
    let start = app
        .clock()
        .await
        .duration_trunc(Duration::seconds(1))
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let job = app
            .create_job(json!({"cronExpression": "* * * * * *"}))
            .await;
        let id = job["id"].as_str().unwrap().to_string();
        app.rows.set_next_run(id.parse().unwrap(), start).await;
        ids.push(id);
    }
    // Three ticks over the same three seconds, at slightly different instants: between
    // them they fire each job once a second, and push each fire once.
    for second in 0..3 {
        let now = start + Duration::seconds(second);
        let (a, b, c) = tokio::join!(
            app.run_tick_once(now),
            app.run_tick_once(now + Duration::milliseconds(1)),
            app.run_tick_once(now + Duration::milliseconds(2)),
        );
        assert_eq!(
            (a.fired + b.fired + c.fired, a.pushed + b.pushed + c.pushed),
            (20, 20),
            "second {second}: {a:?} {b:?} {c:?}"
        );
    }
    assert_eq!(app.queue.stats().await.unwrap().ready, 60);

    // Delivered: each job at each of the three seconds, once.
    let pass = app.drain_queue().await;
    assert_eq!((pass.succeeded, pass.dropped), (60, 0));
    let per_fire = app.target.requests_per_fire();
    let mut expected = std::collections::HashMap::new();
    for id in &ids {
        for second in 0..3 {
            expected.insert((id.clone(), start + Duration::seconds(second)), 1);
        }
    }
    assert_eq!(per_fire, expected);
}

async fn a_crash_between_commit_and_push_is_delivered_by_the_sweeper(app: TestApp) {
    let job = app
        .create_job(json!({"cronExpression": "*/2 * * * * *"}))
        .await;
    let due = time(&job["nextRunAt"]);
    // Commit the fire without pushing it, as a tick killed right after its commit would.
    let planner = |j: &DueJob| plan_fires(j, due, due, std::time::Duration::from_secs(60));
    let batch = app
        .store
        .job_fire_due(due, due, 100, &planner, u64::MAX)
        .await
        .unwrap();
    assert_eq!(batch.executions.len(), 1);
    assert_eq!(app.queue.stats().await.unwrap().ready, 0);

    assert_eq!(
        app.sweep(due + Duration::seconds(1)).await,
        0,
        "too young to sweep"
    );
    assert_eq!(app.sweep(due + Duration::seconds(10)).await, 1);
    assert_eq!(
        app.sweep(due + Duration::seconds(11)).await,
        0,
        "already queued"
    );

    let pass = app.drain_queue().await;
    assert_eq!(pass.succeeded, 1);
    let received = app.target.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("x-tickwork-execution-id").unwrap(),
        batch.executions[0].0.to_string()
    );
}

async fn pushing_the_same_execution_twice_leaves_one_item(app: TestApp) {
    let id = uuid::Uuid::now_v7();
    assert_eq!(app.queue.push(&[id, id]).await.unwrap(), 1);
    assert_eq!(app.queue.push(&[id]).await.unwrap(), 0);
    assert_eq!(app.queue.stats().await.unwrap().ready, 1);
}

async fn fires_ahead_of_time_wait_in_the_upcoming_set_until_their_second(mut app: TestApp) {
    app.tick_settings.lookahead = std::time::Duration::from_secs(1);
    let job = app
        .create_job(json!({"cronExpression": "* * * * * *"}))
        .await;
    let due = time(&job["nextRunAt"]);
    let early = due - Duration::milliseconds(500);
    let pass = app.run_tick_once(early).await;
    assert_eq!((pass.fired, pass.ahead, pass.pushed), (1, 1, 0));
    let stats = app.queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.scheduled), (0, 1));
    // Neither the sweeper nor a worker sends it before its time.
    assert_eq!(app.sweep(early + Duration::milliseconds(400)).await, 0);
    assert_eq!(app.drain_queue().await.taken, 0);
    assert_eq!(
        tickwork::maintenance::release_upcoming(
            early + Duration::milliseconds(499),
            app.queue.as_ref()
        )
        .await
        .unwrap(),
        0
    );
    assert_eq!(
        tickwork::maintenance::release_upcoming(due, app.queue.as_ref())
            .await
            .unwrap(),
        1
    );
    assert_eq!(app.drain_queue().await.succeeded, 1);
    let received = app.target.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("x-tickwork-scheduled-at").unwrap(),
        due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
}

async fn a_fire_recorded_ahead_is_forgotten_when_its_job_is_paused_or_rescheduled(
    mut app: TestApp,
) {
    app.tick_settings.lookahead = std::time::Duration::from_secs(1);
    for change in [
        json!({"isActive": false}),
        json!({"cronExpression": "0 0 0 1 1 *"}),
    ] {
        // Due three to four seconds from now, so the change below surely comes before it
        // by the storage clock, however slow the machine.
        let second = (app.clock().await + Duration::seconds(3)).second();
        let job = app
            .create_job(json!({"cronExpression": format!("{second} * * * * *")}))
            .await;
        let id = job["id"].as_str().unwrap();
        let due = time(&job["nextRunAt"]);
        app.run_tick_once(due - Duration::milliseconds(500)).await;
        assert_eq!(app.history(id).await.len(), 1);
        assert_eq!(app.patch_job(id, &change).await.status(), 200);
        // It never came due, so it leaves no trace.
        assert!(app.history(id).await.is_empty(), "after {change}");
        tickwork::maintenance::release_upcoming(due, app.queue.as_ref())
            .await
            .unwrap();
        app.drain_queue().await;
    }
    assert!(app.target.received().is_empty());
}

async fn pausing_and_resuming_within_the_look_ahead_loses_no_fire(mut app: TestApp) {
    app.tick_settings.lookahead = std::time::Duration::from_secs(2);
    let job = app
        .create_job(json!({"cronExpression": "* * * * * *"}))
        .await;
    let id = job["id"].as_str().unwrap();
    let due = time(&job["nextRunAt"]);
    let pass = app.run_tick_once(due - Duration::milliseconds(500)).await;
    assert_eq!(pass.ahead, 2, "two fires recorded ahead");
    assert_eq!(
        app.patch_job(id, &json!({"isActive": false}))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.patch_job(id, &json!({"isActive": true})).await.status(),
        200
    );
    let resumed: serde_json::Value = app.get_json(&format!("/api/v1/jobs/{id}")).await;
    let next = time(&resumed["nextRunAt"]);
    let pass = app.run_tick_once(next - Duration::milliseconds(500)).await;
    // Two seconds ahead of `next - 500 ms`: `next` and the second after.
    assert_eq!(
        (pass.fired, pass.ahead),
        (2, 2),
        "the resumed job's fires are recorded again: {pass:?}"
    );
    // (A fire that came due while the job was paused stays in the history, CANCELLED.)
    let mut scheduled: Vec<_> = app
        .history(id)
        .await
        .iter()
        .map(|e| time(&e["scheduledAt"]))
        .filter(|at| *at >= next)
        .collect();
    scheduled.sort();
    assert_eq!(scheduled, [next, next + Duration::seconds(1)]);
}

async fn forbid_with_look_ahead_skips_nothing_when_fires_do_not_overlap(mut app: TestApp) {
    app.tick_settings.lookahead = std::time::Duration::from_secs(2);
    let job = app
        .create_job(json!({"cronExpression": "* * * * * *", "concurrencyPolicy": "FORBID"}))
        .await;
    let id = job["id"].as_str().unwrap();
    let first = time(&job["nextRunAt"]);
    for second in 0..4 {
        let at = first + Duration::seconds(second);
        app.run_tick_once(at - Duration::milliseconds(500)).await;
        tickwork::maintenance::release_upcoming(at, app.queue.as_ref())
            .await
            .unwrap();
        app.drain_queue().await;
    }
    let statuses: Vec<String> = app
        .history(id)
        .await
        .iter()
        .filter(|e| time(&e["scheduledAt"]) < first + Duration::seconds(4))
        .map(|e| e["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["SUCCEEDED"; 4]);
    assert_eq!(app.target.received().len(), 4);
}

async fn retention_deletes_old_finished_executions_with_their_attempts_and_keeps_unfinished_ones(
    app: TestApp,
) {
    // A target that fails, without retries: each fire ends FAILED with an attempt row
    // (a successful last attempt lives in its execution row alone).
    app.target.respond_with(500);
    let job = app
        .create_job(json!({"cronExpression": "* * * * * *", "maxRetries": 0}))
        .await;
    let due = time(&job["nextRunAt"]);
    assert_eq!(app.run_tick_once(due + Duration::seconds(3)).await.fired, 4);
    assert_eq!(app.drain_queue().await.failed, 4);
    assert_eq!(app.run_tick_once(due + Duration::seconds(4)).await.fired, 1);
    let attempts = |app: &TestApp| {
        let rows = app.rows.clone();
        async move { rows.count("SELECT count(*) FROM attempts").await }
    };
    assert_eq!(attempts(&app).await, 4);

    let mut settings = app.tick_settings.maintenance;
    settings.retention = Some(std::time::Duration::from_secs(3600));
    settings.retention_batch = 3;
    let store = app.store.as_ref();
    let soon = || tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    let kept = tickwork::maintenance::trim_history(app.clock().await, store, &settings, soon())
        .await
        .unwrap();
    assert_eq!(kept, 0, "nothing younger than the retention is deleted");
    assert_eq!(attempts(&app).await, 4);

    let a_day_later = app.clock().await + Duration::days(1);
    let deleted = tickwork::maintenance::trim_history(a_day_later, store, &settings, soon())
        .await
        .unwrap();
    if app.backend == Backend::Servers {
        // PostgreSQL keeps the history in daily partitions and drops whole days (tested in
        // `partitions.rs`); it never deletes rows one by one.
        assert_eq!(deleted, 0);
        assert_eq!(attempts(&app).await, 4);
        return;
    }
    assert_eq!(deleted, 4, "every finished execution is past the retention");
    assert_eq!(attempts(&app).await, 0, "their attempts go with them");
    let left = app.history(job["id"].as_str().unwrap()).await;
    assert_eq!(left.len(), 1, "the unfinished fire stays");
    assert_eq!(left[0]["status"], "QUEUED");
}

on_both_backends!(
    a_due_job_fires_once_and_its_next_run_moves_on,
    a_job_a_few_seconds_late_fires_every_missed_second_late,
    a_fire_later_than_the_misfire_threshold_fires_once_at_the_latest_missed_time,
    inactive_jobs_have_no_next_run_and_never_fire,
    a_pass_claims_batches_that_double_while_full_until_no_job_is_due,
    concurrent_ticks_record_exactly_one_execution_per_fire,
    past_the_ready_window_fires_are_held_in_the_store_and_released_oldest_first,
    a_crash_between_commit_and_push_is_delivered_by_the_sweeper,
    pushing_the_same_execution_twice_leaves_one_item,
    fires_ahead_of_time_wait_in_the_upcoming_set_until_their_second,
    a_fire_recorded_ahead_is_forgotten_when_its_job_is_paused_or_rescheduled,
    pausing_and_resuming_within_the_look_ahead_loses_no_fire,
    forbid_with_look_ahead_skips_nothing_when_fires_do_not_overlap,
    retention_deletes_old_finished_executions_with_their_attempts_and_keeps_unfinished_ones,
);

/// What this shows: the tick loop takes `now` from the storage clock, and nothing in its
/// passes, its release of fires recorded ahead or its sweep reads this host's clock. The
/// storage clock here reads three hours ahead of, then behind, the host's (shifted by the
/// forwarding store, as PostgreSQL's own clock cannot be set apart from its host's); each
/// time every second of it is fired once per job, from the first due one on, and every
/// fire is queued once, those whose second has come released to workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_loop_on_a_storage_clock_hours_from_the_hosts_fires_every_second_once() {
    for hours in [3, -3] {
        let app = crate::helpers::spawn_app().await;
        let store = Forwarding::new(app.store.clone()).with_clock_offset(Duration::hours(hours));
        let start = store
            .clock()
            .await
            .unwrap()
            .duration_trunc(Duration::seconds(1))
            .unwrap()
            + Duration::seconds(1);
        let mut ids = Vec::new();
        for _ in 0..5 {
            let job = app
                .create_job(json!({"cronExpression": "* * * * * *"}))
                .await;
            let id: uuid::Uuid = job["id"].as_str().unwrap().parse().unwrap();
            app.rows.set_next_run(id, start).await;
            ids.push(id);
        }
        // As the tick binary runs it: fires recorded 2 s ahead, released 100 ms early.
        let settings = TickSettings {
            lookahead: std::time::Duration::from_secs(2),
            release_lead: std::time::Duration::from_millis(100),
            ..app.tick_settings
        };
        let until = start + Duration::seconds(6);
        let stop = async {
            while store.clock().await.unwrap() < until {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        let run = tickwork::tick::run(&store, app.queue.as_ref(), settings, stop).await;

        let rows: Vec<(uuid::Uuid, DateTime<Utc>)> =
            sqlx::query_as("SELECT job_id, scheduled_at FROM executions ORDER BY scheduled_at")
                .fetch_all(&app.servers().db)
                .await
                .unwrap();
        assert_eq!(run.fired, rows.len() as u64, "{hours} h: {run:?}");
        for id in &ids {
            let seconds: Vec<_> = rows
                .iter()
                .filter(|(job, _)| job == id)
                .map(|(_, at)| *at)
                .collect();
            assert!(
                seconds.len() >= 4,
                "{hours} h: job {id} fired at {seconds:?}"
            );
            let every: Vec<_> = (0..seconds.len() as i64)
                .map(|i| start + Duration::seconds(i))
                .collect();
            assert_eq!(seconds, every, "{hours} h: job {id} skipped a second");
        }
        let stats = app.queue.stats().await.unwrap();
        assert_eq!(
            stats.ready + stats.scheduled,
            rows.len() as u64,
            "{hours} h: every fire queued once: {stats:?}"
        );
        assert!(
            stats.ready >= 5 * 3,
            "{hours} h: fires whose second came were not released: {stats:?} of {} fires",
            rows.len()
        );
        println!(
            "storage clock {hours:+} h from the host: {} passes, {} fires, {} released",
            run.ticks,
            rows.len(),
            stats.ready
        );
    }
}

//! Fault injection with real processes: the guarantees hold when workers are killed,
//! stopped or paused, when several ticks run at once, and when Redis or PostgreSQL lose
//! their state or restart. Each test ends by reconciling the target's log with the rows.

use std::time::Duration;

use chrono::Duration as Span;
use chrono::{DurationRound, Timelike};
use serde_json::{json, Value};

use crate::cluster::{Binary, OwnPostgres, OwnRedis, Process, Reconciliation};
use crate::helpers::{spawn_app, spawn_app_on, time, TestApp};

const SETTLE: Duration = Duration::from_secs(40);

/// Creates `n` jobs with `overrides`; returns their ids.
async fn jobs(app: &TestApp, n: usize, overrides: Value) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let job = app.create_job(overrides.clone()).await;
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    ids
}

/// Stops every job from firing again without cancelling fires already recorded.
async fn stop_firing(app: &TestApp) {
    sqlx::query("UPDATE jobs SET next_run_at = NULL")
        .execute(&app.servers().db)
        .await
        .unwrap();
}

/// Per job, (fires, first, last): asserts that the fires form an unbroken run of seconds.
async fn every_second_present(app: &TestApp) -> Vec<(i64, f64, f64)> {
    let spans: Vec<(i64, f64, f64)> = sqlx::query_as(
        "SELECT count(*), extract(epoch FROM min(scheduled_at))::float8, \
         extract(epoch FROM max(scheduled_at))::float8 FROM executions GROUP BY job_id",
    )
    .fetch_all(&app.servers().db)
    .await
    .unwrap();
    for (count, first, last) in &spans {
        assert_eq!(
            *count as f64,
            last - first + 1.0,
            "a second was missed: {spans:?}"
        );
    }
    spans
}

fn path(app: &TestApp, p: &str) -> String {
    format!("{}{p}", app.target.url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_ticks_at_once_record_exactly_one_execution_per_fire_and_miss_no_second() {
    let app = spawn_app().await;
    let ids = jobs(&app, 20, json!({"cronExpression": "* * * * * *"})).await;
    let mut ticks: Vec<Process> = (0..3)
        .map(|_| Process::spawn(&app, Binary::Tick, &[]))
        .collect();
    let worker = Process::spawn(&app, Binary::Worker, &[]);
    // At least six seconds of fires for the three ticks to race over.
    let raced = app
        .target
        .wait_until(Duration::from_secs(90), |r| r.len() >= 20 * 6)
        .await;
    assert!(
        raced,
        "{} requests reached the target; see {}",
        app.target.received().len(),
        worker.log.display()
    );
    // No new fires; the ticks keep sweeping until everything is final.
    stop_firing(&app).await;
    assert!(
        app.wait_until_settled(SETTLE).await,
        "fires left unfinished"
    );
    for (i, tick) in ticks.iter_mut().enumerate() {
        assert!(
            tick.is_running(),
            "tick {i} exited during the run: {}",
            tick.output()
        );
    }
    drop((worker, ticks));

    // Each fire, by job and scheduled time (whichever execution it was recorded as),
    // reached the target exactly once, and every second of each job's run is there.
    let per_fire = app.target.requests_per_fire();
    let repeated: Vec<_> = per_fire.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        repeated.is_empty(),
        "fires sent more than once: {repeated:?}"
    );
    for id in &ids {
        let mut seconds: Vec<_> = per_fire
            .keys()
            .filter(|(job, _)| job == id)
            .map(|(_, at)| *at)
            .collect();
        seconds.sort();
        assert!(seconds.len() >= 6, "job {id} fired {} times", seconds.len());
        let unbroken: Vec<_> = (0..seconds.len() as i64)
            .map(|i| seconds[0] + Span::seconds(i))
            .collect();
        assert_eq!(seconds, unbroken, "job {id} missed a second at the target");
    }
    // The history agrees: one SUCCEEDED execution per fire, each sent once, and no
    // request for a fire it lacks.
    let r = Reconciliation::read(&app).await;
    r.assert_each_success_sent_once(&[]);
    assert_eq!(r.rows.len(), per_fire.len());
    let spans = every_second_present(&app).await;
    assert_eq!(spans.len(), 20);
    println!(
        "three ticks: {} fires over 20 jobs, each delivered once, 0 gaps, all three ticks alive",
        r.rows.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbid_never_overlaps_a_slow_target_and_records_skipped_fires() {
    let app = spawn_app().await;
    let ids = jobs(
        &app,
        1,
        json!({"cronExpression": "* * * * * *", "concurrencyPolicy": "FORBID", "httpUrl": path(&app, "/sleep/2500")}),
    )
    .await;
    let tick = Process::spawn(&app, Binary::Tick, &[]);
    let worker = Process::spawn(&app, Binary::Worker, &[("WORKER_POOL_SIZE", "5")]);
    tokio::time::sleep(Duration::from_secs(9)).await;
    // No new fires; the tick keeps sweeping until everything is final.
    stop_firing(&app).await;
    assert!(app.wait_until_settled(SETTLE).await);
    drop((worker, tick));

    assert_eq!(
        app.target.most_at_once("/sleep/2500"),
        1,
        "requests overlapped"
    );
    let skipped: i64 =
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE status = 'SKIPPED'")
            .fetch_one(&app.servers().db)
            .await
            .unwrap();
    let sent = app.target.received().len();
    assert!(sent >= 2, "sent {sent}");
    assert!(skipped >= 4, "skipped {skipped}");
    let history = app.history(&ids[0]).await;
    assert!(history.iter().any(|e| e["status"] == "SKIPPED"));
    // Every SUCCEEDED fire was sent once, no SKIPPED fire was sent, and no request names
    // a fire the history lacks.
    let r = Reconciliation::read(&app).await;
    r.assert_each_success_sent_once(&["SKIPPED"]);
    assert_eq!(sent, r.count("AT_LEAST_ONCE", "SUCCEEDED"));
    println!("forbid: {sent} requests, never more than 1 at once, {skipped} SKIPPED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_running_request_finish_and_exits_zero() {
    let app = spawn_app().await;
    let job = app
        .create_job(json!({"httpUrl": path(&app, "/sleep/3000")}))
        .await;
    let mut worker = Process::spawn(&app, Binary::Worker, &[("SHUTDOWN_GRACE", "20s")]);
    app.run_tick_once(time(&job["nextRunAt"])).await;
    assert!(
        app.target
            .wait_until(Duration::from_secs(10), |r| !r.is_empty())
            .await
    );
    worker.signal("TERM");
    let status = worker
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("worker did not exit");
    assert!(status.success(), "exit status {status:?}");
    let history = app.history(job["id"].as_str().unwrap()).await;
    assert_eq!(history[0]["status"], "SUCCEEDED");
    assert_eq!(app.target.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_grace_period_hands_back_at_least_once_work_and_abandons_at_most_once() {
    let app = spawn_app().await;
    let slow = path(&app, "/sleep/6000");
    let alo = app.create_job(json!({"httpUrl": slow})).await;
    let amo = app
        .create_job(json!({"httpUrl": slow, "executionType": "AT_MOST_ONCE"}))
        .await;
    let mut first = Process::spawn(&app, Binary::Worker, &[("SHUTDOWN_GRACE", "1s")]);
    let due = time(&alo["nextRunAt"]).max(time(&amo["nextRunAt"]));
    assert_eq!(app.run_tick_once(due).await.fired, 2);
    assert!(
        app.target
            .wait_until(Duration::from_secs(10), |r| r.len() == 2)
            .await
    );
    first.signal("TERM");
    let status = first
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("worker did not exit");
    assert!(status.success(), "exit status {status:?}");

    let second = Process::spawn(&app, Binary::Worker, &[]);
    assert!(app.wait_until_settled(SETTLE).await);
    drop(second);
    let alo_history = app.history(alo["id"].as_str().unwrap()).await;
    assert_eq!(alo_history[0]["status"], "SUCCEEDED");
    assert_eq!(alo_history[0]["attempt"], 2);
    let amo_history = app.history(amo["id"].as_str().unwrap()).await;
    assert_eq!(amo_history[0]["status"], "ABANDONED");
    let r = Reconciliation::read(&app).await;
    assert!(r.duplicated().is_empty());
    assert_eq!(
        app.target.received().len(),
        3,
        "AT_LEAST_ONCE twice, AT_MOST_ONCE once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9s_mid_request_lose_no_at_least_once_fire_and_double_no_at_most_once_fire() {
    let app = spawn_app().await;
    let slow = path(&app, "/sleep/700");
    jobs(
        &app,
        4,
        json!({"cronExpression": "* * * * * *", "httpUrl": slow}),
    )
    .await;
    jobs(
        &app,
        4,
        json!({"cronExpression": "* * * * * *", "httpUrl": slow, "executionType": "AT_MOST_ONCE"}),
    )
    .await;
    let worker_env = [
        ("LEASE_DURATION", "2s"),
        ("CRASH_LIMIT", "1000"),
        ("WORKER_POOL_SIZE", "20"),
    ];
    let tick = Process::spawn(&app, Binary::Tick, &[]);
    let mut kills = 0;
    for _ in 0..20 {
        let before = app.target.received().len();
        let mut worker = Process::spawn(&app, Binary::Worker, &worker_env);
        let caught = app
            .target
            .wait_until(Duration::from_secs(10), |r| r.len() > before)
            .await;
        assert!(
            caught,
            "no request reached the target; see {}",
            worker.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            app.target.in_flight("/sleep/700") > 0,
            "nothing in flight to kill"
        );
        worker.kill9();
        kills += 1;
    }
    // No new fires; the tick keeps sweeping until everything is final.
    stop_firing(&app).await;
    let last = Process::spawn(&app, Binary::Worker, &worker_env);
    assert!(
        app.wait_until_settled(SETTLE).await,
        "fires left unfinished"
    );
    drop((last, tick));

    let r = Reconciliation::read(&app).await;
    r.assert_promises_kept();
    assert_eq!(r.unknown_requests(), 0);
    let abandoned = r.count("AT_MOST_ONCE", "ABANDONED");
    assert!(abandoned > 0, "no AT_MOST_ONCE fire was caught mid-request");
    let redelivered = r.requests.values().filter(|n| **n > 1).count();
    println!(
        "kill -9: {kills} kills, {} fires ({} AT_LEAST_ONCE all SUCCEEDED, {} re-delivered; {} AT_MOST_ONCE: {} SUCCEEDED, {abandoned} ABANDONED), 0 lost, 0 duplicated",
        r.rows.len(),
        r.count("AT_LEAST_ONCE", "SUCCEEDED"),
        redelivered,
        r.rows.iter().filter(|(_, k, _)| k == "AT_MOST_ONCE").count(),
        r.count("AT_MOST_ONCE", "SUCCEEDED"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flushed_with_work_queued_scheduled_and_in_flight_loses_nothing() {
    let redis = OwnRedis::start().await;
    let mut services = crate::helpers::services();
    services.redis_url = redis.url();
    let app = spawn_app_on(services).await;
    jobs(
        &app,
        3,
        json!({"cronExpression": "* * * * * *", "httpUrl": path(&app, "/flaky")}),
    )
    .await;
    jobs(
        &app,
        2,
        json!({"cronExpression": "* * * * * *", "httpUrl": path(&app, "/sleep/1500")}),
    )
    .await;
    jobs(
        &app,
        3,
        json!({"cronExpression": "* * * * * *", "httpUrl": path(&app, "/sleep/300"), "executionType": "AT_MOST_ONCE"}),
    )
    .await;
    let env = [
        ("RETRY_BACKOFF_BASE", "3s"),
        ("LEASE_DURATION", "3s"),
        ("WORKER_POOL_SIZE", "3"),
    ];
    let tick = Process::spawn(&app, Binary::Tick, &[]);
    let worker = Process::spawn(&app, Binary::Worker, &env);
    let prefix = app.servers().key_prefix.clone();
    let count = |cmd: &str, key: &str| {
        redis
            .cli(&[cmd, &format!("{prefix}:{key}")])
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let mut flushes = 0;
    for _ in 0..2 {
        // Flush only once work is waiting, scheduled for retry and in flight at once.
        let mut held = (0, 0, 0);
        for _ in 0..200 {
            held = (
                count("LLEN", "ready"),
                count("ZCARD", "scheduled"),
                count("ZCARD", "processing"),
            );
            if held.0 > 0 && held.1 > 0 && held.2 > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            held.0 > 0 && held.1 > 0 && held.2 > 0,
            "never held all three kinds of work: {held:?}"
        );
        assert!(redis.cli(&["FLUSHALL"]).contains("OK"));
        flushes += 1;
        println!(
            "flushed Redis holding {} ready, {} scheduled, {} processing",
            held.0, held.1, held.2
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // No new fires; the tick keeps sweeping until everything is final.
    stop_firing(&app).await;
    assert!(
        app.wait_until_settled(SETTLE).await,
        "fires left unfinished"
    );
    drop((worker, tick));

    let r = Reconciliation::read(&app).await;
    r.assert_promises_kept();
    assert_eq!(
        r.unknown_requests(),
        0,
        "requests for fires the history lacks"
    );
    let retried = r.requests.values().filter(|n| **n > 1).count();
    println!(
        "redis flush: {flushes} flushes, {} fires, {} AT_LEAST_ONCE all SUCCEEDED ({retried} with more than one request), {} AT_MOST_ONCE never twice, 0 lost",
        r.rows.len(),
        r.count("AT_LEAST_ONCE", "SUCCEEDED"),
        r.rows.iter().filter(|(_, k, _)| k == "AT_MOST_ONCE").count(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_run_is_reconnected_to_and_loses_or_doubles_no_fire() {
    let pg = OwnPostgres::start();
    let app = spawn_app_on(pg.services(&crate::helpers::services().redis_url)).await;
    jobs(
        &app,
        3,
        json!({"cronExpression": "* * * * * *", "httpUrl": path(&app, "/sleep/200")}),
    )
    .await;
    jobs(
        &app,
        3,
        json!({"cronExpression": "* * * * * *", "httpUrl": path(&app, "/sleep/200"), "executionType": "AT_MOST_ONCE"}),
    )
    .await;
    let tick = Process::spawn(&app, Binary::Tick, &[]);
    let worker = Process::spawn(&app, Binary::Worker, &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;

    pg.stop();
    let mut saw_503 = false;
    for _ in 0..50 {
        if app.get("/health").await.status() == 503 {
            saw_503 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_503, "/health stayed 200 with PostgreSQL down");
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.start_again();
    let mut back = false;
    for _ in 0..100 {
        if app.get("/health").await.status() == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "/health did not come back to 200");
    tokio::time::sleep(Duration::from_secs(4)).await;
    // No new fires; the tick keeps sweeping until everything is final.
    stop_firing(&app).await;
    assert!(
        app.wait_until_settled(SETTLE).await,
        "fires left unfinished"
    );
    drop((worker, tick));

    let r = Reconciliation::read(&app).await;
    r.assert_promises_kept();
    assert_eq!(
        r.unknown_requests(),
        0,
        "requests for fires the history lacks"
    );
    let spans = every_second_present(&app).await;
    println!(
        "postgres restart: {} fires over {} jobs, every second present, 0 lost, 0 duplicated; /health 503 while down, 200 after",
        r.rows.len(),
        spans.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_its_lease_is_replaced_and_its_late_result_is_refused() {
    let app = spawn_app().await;
    let job = app
        .create_job(json!({"httpUrl": path(&app, "/slow-flaky")}))
        .await;
    let stalled = Process::spawn(&app, Binary::Worker, &[("LEASE_DURATION", "2s")]);
    app.run_tick_once(time(&job["nextRunAt"])).await;
    assert!(
        app.target
            .wait_until(Duration::from_secs(10), |r| !r.is_empty())
            .await
    );
    stalled.signal("STOP");

    let other = Process::spawn(&app, Binary::Worker, &[("LEASE_DURATION", "2s")]);
    assert!(
        app.wait_until_settled(SETTLE).await,
        "the fire was not taken over"
    );
    stalled.signal("CONT");
    // Give the stale worker time to finish its request and try to write its 503.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(other);

    let id = job["id"].as_str().unwrap();
    let history = app.history(id).await;
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0]["status"], "SUCCEEDED",
        "the stale result overwrote the new one"
    );
    assert_eq!(history[0]["attempt"], 2);
    assert_eq!(history[0]["crashes"], 1);
    let attempts: Vec<_> = history[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["attempt"].as_i64().unwrap(), a["httpStatus"].as_i64()))
        .collect();
    assert_eq!(attempts, [(1, None), (2, Some(200))]);
    let log = stalled.output();
    assert!(
        log.contains("lease lost") || log.contains("outcome refused"),
        "the stale worker did not notice: {log}"
    );
    assert_eq!(app.target.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_fire_that_kills_its_worker_fails_after_the_crash_limit_while_other_jobs_run() {
    let app = spawn_app().await;
    let normal = app
        .create_job(json!({"cronExpression": "* * * * * *", "httpUrl": path(&app, "/sleep/50")}))
        .await;
    let at = app.clock().await + Span::seconds(3);
    let once = at.format("%S %M %H %d %m *").to_string();
    let poison = app
        .create_job(json!({"cronExpression": once, "httpUrl": path(&app, "/poison")}))
        .await;
    let env = [
        ("WORKER_POOL_SIZE", "1"),
        ("CRASH_LIMIT", "3"),
        ("LEASE_DURATION", "2s"),
    ];
    let tick = Process::spawn(&app, Binary::Tick, &[]);
    let mut worker = Process::spawn(&app, Binary::Worker, &env);
    let poison_id = poison["id"].as_str().unwrap().to_string();
    let mut kills = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let history = app.history(&poison_id).await;
        if history.first().is_some_and(|e| e["status"] == "FAILED") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "poison fire never failed: {history:?}"
        );
        let poisoned = app
            .target
            .received()
            .iter()
            .filter(|r| r.uri.path() == "/poison")
            .count();
        if poisoned > kills {
            worker.kill9();
            kills += 1;
            worker = Process::spawn(&app, Binary::Worker, &env);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // No new fires; the tick keeps sweeping until everything is final.
    stop_firing(&app).await;
    assert!(app.wait_until_settled(SETTLE).await);
    drop((worker, tick));

    let failed = &app.history(&poison_id).await[0];
    assert_eq!(failed["crashes"], 3);
    assert!(failed["error"].as_str().unwrap().contains("CRASH_LIMIT"));
    assert_eq!(kills, 3);
    let stats = app.get_json("/queue/stats").await;
    assert_eq!(
        stats["queue_stats"]["failed"], 1,
        "the poison fire is in the dead-letter list"
    );
    let served = app.history(normal["id"].as_str().unwrap()).await;
    assert!(served.len() >= 5, "other jobs were starved");
    assert!(
        served.iter().all(|e| e["status"] == "SUCCEEDED"),
        "{served:?}"
    );
    // Each fire reached the target once per claim: the poison fire once per crash, every
    // other fire once (twice if a kill cut it off), and nothing else reached it.
    let r = Reconciliation::read(&app).await;
    assert_eq!(
        r.unknown_requests(),
        0,
        "requests for fires the history lacks"
    );
    let claims: Vec<(uuid::Uuid, i32, String)> =
        sqlx::query_as("SELECT id, attempt, status FROM executions")
            .fetch_all(&app.servers().db)
            .await
            .unwrap();
    for (id, attempt, status) in &claims {
        let sent = r.requests.get(&id.to_string()).copied().unwrap_or(0);
        assert_eq!(
            sent, *attempt as usize,
            "fire {id} ({status}) was claimed {attempt} times and sent {sent} times"
        );
    }
    assert_eq!(r.requests.get(failed["id"].as_str().unwrap()), Some(&3));
    assert_eq!(r.count("AT_LEAST_ONCE", "FAILED"), 1);
    assert_eq!(r.count("AT_LEAST_ONCE", "SUCCEEDED"), claims.len() - 1);
    println!(
        "poison: {kills} crashes then FAILED; {} fires of another job all SUCCEEDED meanwhile",
        served.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_longer_than_the_lease_is_renewed_and_never_redelivered() {
    long_request(7_000, "2s").await;
}

/// The full 90-second-task case; run with `cargo test -p tickwork-tests -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: takes 90 s"]
async fn soak_an_85_second_request_completes_once_with_the_default_lease() {
    long_request(85_000, "15s").await;
}

async fn long_request(ms: u64, lease: &str) {
    let app = spawn_app().await;
    let job = app
        .create_job(json!({"httpUrl": path(&app, &format!("/sleep/{ms}"))}))
        .await;
    let worker = Process::spawn(&app, Binary::Worker, &[("LEASE_DURATION", lease)]);
    let reaper = Process::spawn(&app, Binary::Worker, &[("LEASE_DURATION", lease)]);
    app.run_tick_once(time(&job["nextRunAt"])).await;
    assert!(
        app.wait_until_settled(Duration::from_millis(ms) + SETTLE)
            .await
    );
    drop((worker, reaper));
    let history = app.history(job["id"].as_str().unwrap()).await;
    assert_eq!(history[0]["status"], "SUCCEEDED");
    assert_eq!(history[0]["attempt"], 1);
    assert_eq!(history[0]["crashes"], 0);
    assert_eq!(app.target.received().len(), 1);
    println!("long request: {ms} ms with a {lease} lease: one request, SUCCEEDED, no re-delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misfire_policy_five_minutes_after_the_last_tick() {
    let app = spawn_app().await;
    // Three jobs firing every 10 s within one minute of the day, five minutes ago by the
    // database clock, and due at that minute's first fire: as if no tick had run since.
    let minute = (app.clock().await - Span::minutes(5))
        .duration_trunc(Span::minutes(1))
        .unwrap();
    let cron = json!(format!("*/10 {} {} * * *", minute.minute(), minute.hour()));
    let once = app.create_job(json!({"cronExpression": cron})).await;
    let skip = app
        .create_job(json!({"cronExpression": cron, "misfirePolicy": "SKIP"}))
        .await;
    let all = app
        .create_job(json!({"cronExpression": cron, "misfirePolicy": "FIRE_ALL", "catchUpLimit": 5}))
        .await;
    for job in [&once, &skip, &all] {
        let id = job["id"].as_str().unwrap().parse().unwrap();
        app.rows.set_next_run(id, minute).await;
    }
    let tick = Process::spawn(&app, Binary::Tick, &[]);
    let worker = Process::spawn(&app, Binary::Worker, &[]);
    // Six fire times were missed per job: FIRE_ONCE sends one, SKIP none, FIRE_ALL five.
    let sent = app
        .target
        .wait_until(Duration::from_secs(60), |r| r.len() >= 6)
        .await;
    assert!(
        sent,
        "{} requests; see {}",
        app.target.received().len(),
        tick.log.display()
    );
    assert!(
        app.wait_until_settled(SETTLE).await,
        "fires left unfinished"
    );
    drop((worker, tick));

    let check = |job: &Value, fired: usize, skipped: i64| {
        let id = job["id"].as_str().unwrap().to_string();
        let app = &app;
        async move {
            let history = app.history(&id).await;
            assert_eq!(history.len(), fired, "{id}");
            assert!(
                history.iter().all(|e| e["status"] == "SUCCEEDED"),
                "{history:?}"
            );
            let job = app.get_json(&format!("/api/v1/jobs/{id}")).await;
            assert_eq!(job["skippedFires"], skipped);
            // Resumed from the present: next at that minute tomorrow.
            assert_eq!(time(&job["nextRunAt"]), minute + Span::days(1));
            let mut times: Vec<_> = history.iter().map(|e| time(&e["scheduledAt"])).collect();
            times.sort();
            times
        }
    };
    assert_eq!(check(&once, 1, 5).await, [minute + Span::seconds(50)]);
    assert!(check(&skip, 0, 6).await.is_empty());
    assert_eq!(
        check(&all, 5, 1).await,
        (0..5)
            .map(|i| minute + Span::seconds(10 * i))
            .collect::<Vec<_>>()
    );
    // The target received exactly the recorded fires, each once.
    let r = Reconciliation::read(&app).await;
    r.assert_each_success_sent_once(&[]);
    assert_eq!(app.target.received().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fires_recorded_ahead_never_reach_the_target_before_their_scheduled_instant() {
    let app = spawn_app().await;
    jobs(&app, 5, json!({"cronExpression": "* * * * * *"})).await;
    // The default look-ahead (2 s) and release lead (100 ms): fires are recorded ahead,
    // handed to the worker before their second, and claimed before it.
    let tick = Process::spawn(&app, Binary::Tick, &[]);
    let worker = Process::spawn(&app, Binary::Worker, &[]);
    let sent = app
        .target
        .wait_until(Duration::from_secs(60), |r| r.len() >= 5 * 6)
        .await;
    assert!(
        sent,
        "{} requests; see {}",
        app.target.received().len(),
        worker.log.display()
    );
    // No new fires; the tick keeps releasing and sweeping until everything is final.
    stop_firing(&app).await;
    assert!(
        app.wait_until_settled(SETTLE).await,
        "fires left unfinished"
    );
    drop((worker, tick));

    // The look-ahead was at work: fires were recorded before their second.
    let (rows, ahead): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE queued_at < scheduled_at) FROM executions",
    )
    .fetch_one(&app.servers().db)
    .await
    .unwrap();
    assert!(
        ahead > 0,
        "no fire of {rows} was recorded ahead of its time"
    );

    // The worker waits until the scheduled instant by the database clock (the wait is
    // worked out in the claim statement, rounded up to the millisecond); the target stamps
    // arrivals by this host's wall clock, and the database runs on this host, so both read
    // one clock. The allowance is for what remains: the wait itself runs on the monotonic
    // clock, which time synchronisation may slew against the wall clock by a fraction of a
    // millisecond over a wait this short, and readings are rounded to the microsecond. A
    // worker that did not wait would send up to the release lead (100 ms) early.
    let allowance = Span::milliseconds(2);
    let received = app.target.received();
    let early: Vec<_> = received
        .iter()
        .filter(|r| r.arrived + allowance < r.scheduled_at())
        .map(|r| (r.scheduled_at(), r.arrived))
        .collect();
    assert!(
        early.is_empty(),
        "{} of {} requests arrived before their scheduled instant (scheduled, arrived): {early:?}",
        early.len(),
        received.len()
    );
    let r = Reconciliation::read(&app).await;
    r.assert_each_success_sent_once(&[]);
    let soonest = received
        .iter()
        .map(|r| r.arrived - r.scheduled_at())
        .min()
        .unwrap();
    println!(
        "look-ahead: {} requests, {ahead} of {rows} fires recorded ahead, none early (soonest {} µs after its instant)",
        received.len(),
        soonest.num_microseconds().unwrap_or(i64::MAX)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_at_most_once_fire_stays_at_most_once_when_its_job_changes_type() {
    let app = spawn_app().await;
    // Each way a worker can leave a fire mid-request: killed (the reaper takes it back)
    // and stopped past its grace period (it hands the fire back).
    for (stop, slow) in [("kill -9", "/sleep/6000"), ("SIGTERM", "/sleep/6001")] {
        let job = app
            .create_job(json!({"httpUrl": path(&app, slow), "executionType": "AT_MOST_ONCE"}))
            .await;
        let id = job["id"].as_str().unwrap();
        let env = [("LEASE_DURATION", "2s"), ("SHUTDOWN_GRACE", "1s")];
        let mut worker = Process::spawn(&app, Binary::Worker, &env);
        assert_eq!(app.run_tick_once(time(&job["nextRunAt"])).await.fired, 1);
        let caught = app
            .target
            .wait_until(Duration::from_secs(10), |r| {
                r.iter().any(|r| r.uri.path() == slow)
            })
            .await;
        assert!(caught, "{stop}: no request; see {}", worker.log.display());
        let patched = app
            .patch_job(id, &json!({"executionType": "AT_LEAST_ONCE"}))
            .await;
        assert_eq!(patched.status(), 200, "{stop}");
        let job = app.get_json(&format!("/api/v1/jobs/{id}")).await;
        assert_eq!(job["executionType"], "AT_LEAST_ONCE");
        if stop == "kill -9" {
            worker.kill9();
        } else {
            worker.signal("TERM");
            let status = worker
                .wait_exit(Duration::from_secs(20))
                .await
                .expect("worker did not exit");
            assert!(status.success(), "{stop}: exit status {status:?}");
        }
        // Another worker: the reaper, and anything queued again.
        let other = Process::spawn(&app, Binary::Worker, &env);
        assert!(
            app.wait_until_settled(SETTLE).await,
            "{stop}: fire left unfinished"
        );
        drop((other, worker));

        let history = app.history(id).await;
        assert_eq!(history.len(), 1, "{stop}");
        assert_eq!(history[0]["status"], "ABANDONED", "{stop}: {history:?}");
        let execution = history[0]["id"].as_str().unwrap();
        let claimed_as: String =
            sqlx::query_scalar("SELECT execution_type FROM executions WHERE id = $1::uuid")
                .bind(execution)
                .fetch_one(&app.servers().db)
                .await
                .unwrap();
        assert_eq!(claimed_as, "AT_MOST_ONCE", "{stop}");
        assert_eq!(
            app.target.requests_per_execution().get(execution),
            Some(&1),
            "{stop}: the fire was sent again"
        );
        // This job fires no more, so the next round's pass fires only its own job.
        stop_firing(&app).await;
    }
    assert_eq!(app.target.received().len(), 2);
}

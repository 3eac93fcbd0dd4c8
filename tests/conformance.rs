//! The store and queue contracts the tick and the worker rely on, checked directly on both
//! backends: queue order, de-duplication and settling; leases renewed, fenced and reaped
//! by delivery promise; hand-backs fenced by attempt.

use std::time::Duration;

use chrono::Duration as TimeDelta;
use serde_json::json;
use tickwork::model::ExecutionStatus;
use tickwork::queue::Settled;
use tickwork::store::{Reaped, Unfinished};
use uuid::Uuid;

use crate::helpers::{on_both_backends, time, TestApp};

/// Creates one `* * * * * *` job of each delivery promise, fires both, and returns their
/// execution ids (AT_LEAST_ONCE, AT_MOST_ONCE).
async fn two_fires(app: &TestApp) -> (Uuid, Uuid) {
    let mut ids = Vec::new();
    let mut latest = app.clock().await;
    for kind in ["AT_LEAST_ONCE", "AT_MOST_ONCE"] {
        let job = app
            .create_job(json!({"cronExpression": "* * * * * *", "executionType": kind}))
            .await;
        latest = latest.max(time(&job["nextRunAt"]));
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    assert!(app.run_tick_once(latest).await.fired >= 2);
    let mut fires = Vec::new();
    for id in &ids {
        let history = app.history(id).await;
        fires.push(Uuid::parse_str(history[0]["id"].as_str().unwrap()).unwrap());
    }
    (fires[0], fires[1])
}

fn by_id(reaped: &[Reaped], id: Uuid) -> Option<ExecutionStatus> {
    reaped
        .iter()
        .find(|r| r.execution_id == id)
        .map(|r| r.status)
}

async fn the_queue_takes_oldest_first_keeps_one_copy_and_settles_each_way(app: TestApp) {
    let q = app.queue.as_ref();
    let (a, b, c, d) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    assert_eq!(q.push(&[a, b, a]).await.unwrap(), 2, "one copy per id");
    assert_eq!(q.push(&[c]).await.unwrap(), 1);
    assert_eq!(q.stats().await.unwrap().ready, 3);
    assert_eq!(q.pop(2).await.unwrap(), vec![a, b], "oldest first");
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.ready, stats.processing), (1, 2));
    assert_eq!(q.repush(&[c]).await.unwrap(), 1, "repush adds a copy");
    assert_eq!(q.stats().await.unwrap().ready, 2);

    let t0 = app.clock().await;
    q.settle(&[
        (a, Settled::Completed),
        (
            b,
            Settled::Retry {
                due: t0 + TimeDelta::seconds(1),
            },
        ),
    ])
    .await
    .unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!(
        (stats.processing, stats.completed, stats.scheduled),
        (0, 1, 1)
    );
    assert!(q.take_due(t0, 10).await.unwrap().is_empty(), "not yet due");
    assert_eq!(
        q.take_due(t0 + TimeDelta::seconds(1), 10).await.unwrap(),
        vec![b]
    );
    assert_eq!(q.stats().await.unwrap().scheduled, 0);

    q.push_upcoming(&[(d, t0 + TimeDelta::seconds(5))])
        .await
        .unwrap();
    assert_eq!(q.stats().await.unwrap().scheduled, 1);
    assert_eq!(
        q.release_upcoming(t0 + TimeDelta::seconds(4), 10)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        q.release_upcoming(t0 + TimeDelta::seconds(5), 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(q.pop(10).await.unwrap(), vec![c, c, d]);
    q.settle(&[(c, Settled::Failed), (d, Settled::Dropped)])
        .await
        .unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!(
        (stats.ready, stats.processing, stats.failed, stats.completed),
        (0, 0, 1, 1)
    );
}

async fn a_workers_lease_covers_its_fires_until_it_lapses_then_they_are_reaped_by_promise(
    app: TestApp,
) {
    let (alo, amo) = two_fires(&app).await;
    let store = app.store.as_ref();
    let lease = Duration::from_millis(300);
    let worker = store.worker_register(lease).await.unwrap();
    let claimed = store.execution_start(&[alo, amo], worker).await.unwrap();
    assert_eq!(claimed.deliveries.len(), 2);
    assert!(claimed.deliveries.iter().all(|d| d.attempt == 1));
    assert!(claimed.deliveries.iter().all(|d| d.worker_id == worker));
    let again = store.execution_start(&[alo, amo], worker).await.unwrap();
    assert!(
        again.deliveries.is_empty(),
        "a RUNNING fire is not taken twice"
    );

    // Renewed past its first expiry: one statement keeps both fires.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(store.worker_renew(worker, lease).await.unwrap());
        assert!(
            store
                .execution_reap_expired(2, 100)
                .await
                .unwrap()
                .is_empty(),
            "the lease is still held"
        );
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let reaped = store.execution_reap_expired(2, 100).await.unwrap();
    assert_eq!(by_id(&reaped, alo), Some(ExecutionStatus::Queued));
    assert_eq!(by_id(&reaped, amo), Some(ExecutionStatus::Abandoned));
    assert!(
        !store.worker_renew(worker, lease).await.unwrap(),
        "a worker declared dead cannot renew"
    );
    assert!(
        store
            .execution_start(&[alo], worker)
            .await
            .unwrap()
            .deliveries
            .is_empty(),
        "a worker declared dead claims nothing"
    );

    let second = store.worker_register(lease).await.unwrap();
    let claimed = store.execution_start(&[alo], second).await.unwrap();
    assert_eq!(claimed.deliveries[0].attempt, 2);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let reaped = store.execution_reap_expired(2, 100).await.unwrap();
    assert_eq!(
        by_id(&reaped, alo),
        Some(ExecutionStatus::Failed),
        "CRASH_LIMIT reached"
    );
    let execution = store.execution_get(alo).await.unwrap().unwrap();
    assert_eq!((execution.crashes, execution.attempt), (2, 2));
    assert!(execution.finished_at.is_some());
    let attempts = store.attempt_list(&[alo, amo]).await.unwrap();
    assert_eq!(attempts.len(), 3, "one attempt row per reap");
}

async fn a_retired_workers_fires_are_reaped_at_once(app: TestApp) {
    let (alo, amo) = two_fires(&app).await;
    let store = app.store.as_ref();
    let worker = store
        .worker_register(Duration::from_secs(60))
        .await
        .unwrap();
    let claimed = store.execution_start(&[alo, amo], worker).await.unwrap();
    assert_eq!(claimed.deliveries.len(), 2);
    assert!(store
        .execution_reap_expired(3, 100)
        .await
        .unwrap()
        .is_empty());
    store.worker_retire(worker).await.unwrap();
    let reaped = store.execution_reap_expired(3, 100).await.unwrap();
    assert_eq!(by_id(&reaped, alo), Some(ExecutionStatus::Queued));
    assert_eq!(by_id(&reaped, amo), Some(ExecutionStatus::Abandoned));
    assert!(!store
        .worker_renew(worker, Duration::from_secs(60))
        .await
        .unwrap());
}

async fn a_stopping_worker_hands_back_only_the_attempt_it_holds(app: TestApp) {
    let (alo, amo) = two_fires(&app).await;
    let store = app.store.as_ref();
    let worker = store
        .worker_register(Duration::from_secs(30))
        .await
        .unwrap();
    let claimed = store.execution_start(&[alo, amo], worker).await.unwrap();
    let held: Vec<Unfinished> = claimed
        .deliveries
        .iter()
        .map(|d| Unfinished {
            execution_id: d.execution_id,
            attempt: d.attempt,
            execution_type: d.execution_type,
        })
        .collect();
    let stale: Vec<Unfinished> = held
        .iter()
        .map(|u| Unfinished {
            attempt: u.attempt + 1,
            ..u.clone()
        })
        .collect();
    assert!(
        store.execution_hand_back(&stale).await.unwrap().is_empty(),
        "fenced"
    );
    let back = store.execution_hand_back(&held).await.unwrap();
    assert_eq!(by_id(&back, alo), Some(ExecutionStatus::Queued));
    assert_eq!(by_id(&back, amo), Some(ExecutionStatus::Abandoned));
    assert_eq!(store.attempt_list(&[alo, amo]).await.unwrap().len(), 2);
    let queued = store.execution_get(alo).await.unwrap().unwrap();
    assert_eq!(
        (queued.status, queued.crashes),
        (ExecutionStatus::Queued, 0)
    );
}

async fn a_claim_that_skips_a_forbid_fire_still_delivers_the_rest_of_its_batch(app: TestApp) {
    let mut ids = Vec::new();
    for policy in ["FORBID", "ALLOW"] {
        let job = app
            .create_job(json!({"cronExpression": "0 0 0 1 1 *", "concurrencyPolicy": policy}))
            .await;
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    let trigger = |job: String| {
        let (client, address) = (app.client.clone(), app.address.clone());
        async move {
            let response = client
                .post(format!("{address}/api/v1/jobs/{job}/trigger"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
            let body: serde_json::Value = response.json().await.unwrap();
            Uuid::parse_str(body["id"].as_str().unwrap()).unwrap()
        }
    };
    let first = trigger(ids[0].clone()).await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let second = trigger(ids[0].clone()).await;
    let other = trigger(ids[1].clone()).await;
    let store = app.store.as_ref();
    let worker = store
        .worker_register(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        store
            .execution_start(&[first], worker)
            .await
            .unwrap()
            .deliveries
            .len(),
        1
    );
    // The second FORBID fire, never claimed before, is skipped in the same statement that
    // claims the other job's fire.
    let claimed = store
        .execution_start(&[second, other], worker)
        .await
        .unwrap();
    assert_eq!(claimed.skipped, [second]);
    let delivered: Vec<Uuid> = claimed.deliveries.iter().map(|d| d.execution_id).collect();
    assert_eq!(delivered, [other]);
    assert_eq!(claimed.deliveries[0].worker_id, worker);
    let skipped = store.execution_get(second).await.unwrap().unwrap();
    assert_eq!(
        (skipped.status, skipped.attempt),
        (ExecutionStatus::Skipped, 0)
    );
}

on_both_backends!(
    a_claim_that_skips_a_forbid_fire_still_delivers_the_rest_of_its_batch,
    the_queue_takes_oldest_first_keeps_one_copy_and_settles_each_way,
    a_workers_lease_covers_its_fires_until_it_lapses_then_they_are_reaped_by_promise,
    a_retired_workers_fires_are_reaped_at_once,
    a_stopping_worker_hands_back_only_the_attempt_it_holds,
);

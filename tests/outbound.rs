//! The outbound guard: targets on loopback, private, link-local, shared and reserved
//! addresses are refused when a job is stored and again when it is called; redirects are
//! never followed.

use serde_json::{json, Value};
use tickwork::api::AppState;
use tickwork::outbound::TargetPolicy;
use tickwork::worker::{Worker, WorkerSettings};

use crate::helpers::{on_both_backends, serve_api, time, TestApp};

/// The app's store and queue behind an API with the guard as the functions run it by
/// default (nothing opened); returns its address.
async fn guarded_api(app: &TestApp) -> String {
    serve_api(AppState {
        targets: TargetPolicy::default(),
        ..app.state()
    })
    .await
}

async fn every_blocked_range_is_refused_when_a_job_is_stored_naming_http_url(app: TestApp) {
    let guarded = guarded_api(&app).await;
    let client = reqwest::Client::new();
    let blocked = [
        "http://127.0.0.1/hook",
        "http://127.9.9.9:8080/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://172.31.255.254/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.251/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fc00::1]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://localhost/",
        "https://localhost:8443/",
        // Names that can only be local, whether DNS answers now or not.
        "http://localhost./",
        "http://api.localhost/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.1.nip.io/",
        "http://app-192-168-1-1.sslip.io/",
        "http://0a000001.nip.io/",
        "http://fd00--1.sslip.io/",
    ];
    for url in blocked {
        let response = client
            .post(format!("{guarded}/api/v1/jobs"))
            .json(&app.job_body(json!({ "httpUrl": url })))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{url}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "target_not_allowed", "{url}");
        assert_eq!(body["error"]["field"], "httpUrl", "{url}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("TARGET_ALLOW_CIDRS"), "{url}: {message}");
    }
    assert_eq!(app.job_rows().await, 0, "nothing stored");
    println!(
        "outbound guard: {} blocked targets refused at creation",
        blocked.len()
    );

    // A public address is stored (no request is made to store it).
    let response = client
        .post(format!("{guarded}/api/v1/jobs"))
        .json(&app.job_body(json!({ "httpUrl": "http://93.184.215.14/hook" })))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap();

    // A PATCH to a blocked address changes nothing.
    let response = client
        .patch(format!("{guarded}/api/v1/jobs/{id}"))
        .json(&json!({ "httpUrl": "http://[::ffff:a9fe:a9fe]/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let kept = app.get_json(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(kept["httpUrl"], "http://93.184.215.14/hook");
}

async fn a_target_refused_at_call_time_fails_without_a_request_and_is_not_retried(app: TestApp) {
    // Stored through an API that allows loopback, then called by a worker that does not:
    // a literal address, and a name that resolves to 127.0.0.1.
    let port = app.target.url.rsplit(':').next().unwrap().to_string();
    let mut jobs = Vec::new();
    let mut latest = app.clock().await;
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ] {
        let job = app
            .create_job(json!({"cronExpression": "* * * * * *", "httpUrl": url, "maxRetries": 3}))
            .await;
        latest = latest.max(time(&job["nextRunAt"]));
        jobs.push(job["id"].as_str().unwrap().to_string());
    }
    // Two fires, or three when the jobs were made either side of a second boundary (the
    // first then fires at both seconds).
    let fired = app.run_tick_once(latest).await.fired;
    assert!(fired >= 2);
    let guarded = Worker::new(
        app.store.clone(),
        app.queue.clone(),
        WorkerSettings {
            targets: TargetPolicy::default(),
            keyring: Some(app.keyring.clone()),
            ..WorkerSettings::default()
        },
    )
    .unwrap();
    let pass = guarded.run_once(10).await.unwrap();
    assert_eq!((pass.failed, pass.retrying), (fired, 0), "{pass:?}");
    assert!(app.target.received().is_empty(), "no request left tickwork");
    for (job, expected) in jobs
        .iter()
        .zip(["the address 127.0.0.1", "a name that resolves to 127.0.0.1"])
    {
        let history = app.history(job).await;
        let fire = &history[0];
        assert_eq!(fire["status"], "FAILED");
        assert_eq!(fire["attempt"], 1, "not retried");
        let error = fire["error"].as_str().unwrap();
        assert!(error.starts_with("target refused, not called:"), "{error}");
        assert!(error.contains(expected), "{error}");
        assert!(error.contains("loopback"), "{error}");
    }
    let dead = app.get_json("/api/v1/dead-letters").await;
    assert_eq!(dead["executions"].as_array().unwrap().len(), fired);
}

async fn a_redirect_to_the_metadata_address_is_a_failed_attempt_never_followed(app: TestApp) {
    let job = app
        .create_job(json!({
            "cronExpression": "* * * * * *",
            "httpUrl": format!("{}/to-metadata", app.target.url),
            "maxRetries": 3,
        }))
        .await;
    assert_eq!(app.run_tick_once(time(&job["nextRunAt"])).await.fired, 1);
    let pass = app.drain_queue().await;
    assert_eq!(pass.failed, 1, "{pass:?}");
    assert_eq!(app.target.received().len(), 1);
    let fire = &app.history(job["id"].as_str().unwrap()).await[0];
    assert_eq!(fire["status"], "FAILED");
    assert_eq!(fire["httpStatus"], 302);
    assert_eq!(fire["attempt"], 1, "a 3xx is not retried");
}

on_both_backends!(
    every_blocked_range_is_refused_when_a_job_is_stored_naming_http_url,
    a_target_refused_at_call_time_fails_without_a_request_and_is_not_retried,
    a_redirect_to_the_metadata_address_is_a_failed_attempt_never_followed,
);

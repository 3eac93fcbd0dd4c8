//! Every bad-input answer the tests know, pinned byte for byte: status and body, in
//! `tests/pinned/bad-inputs.json`. A change to how requests are read (the job body, query
//! strings, headers, paths) cannot change what callers get without changing that file,
//! where the difference is reviewed. `UPDATE_PINNED=1` rewrites it.

use serde_json::{json, Value};

use tickwork::api::AppState;
use tickwork::outbound::TargetPolicy;

use crate::helpers::{on_both_backends, serve_api, TestApp};

/// A public literal address: passes the outbound guard without DNS, and is the same in
/// every run, so the answers are too.
const TARGET: &str = "http://93.184.215.14/hook";

/// An id no job has.
const UNKNOWN_ID: &str = "01a21c01-ea76-773b-b23f-6b2fc345f811";

/// One request: method, path and query, headers, body.
struct Probe {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
}

fn probe(method: &'static str, path: impl Into<String>, body: Option<String>) -> Probe {
    Probe {
        method,
        path: path.into(),
        headers: Vec::new(),
        body,
    }
}

/// Every bad request; `job` is a job that exists.
fn probes(job: &str) -> Vec<Probe> {
    let mut all: Vec<Probe> = crate::api::bad_bodies(TARGET)
        .into_iter()
        .map(|(body, ..)| probe("POST", "/api/v1/jobs", Some(body)))
        .collect();
    let patches = [
        json!({"cronExpression": "* * * *"}),
        json!({"cronExpression": "0 0 0 30 2 *"}),
        json!({"cronExpression": "x".repeat(300)}),
        json!({"timezone": "Nowhere/Land"}),
        json!({"maxRetries": 50}),
        json!({"name": null}),
        json!({"httpMethod": "FETCH"}),
        json!({"httpUrl": "ftp://example.com/"}),
        json!({"httpUrl": "http://127.0.0.1/"}),
        json!({"httpUrl": "http://localhost./"}),
        json!({"httpUrl": format!("{TARGET}?token=********")}),
        json!({"httpHeaders": {"X-Api-Key": "********"}}),
        json!({"httpHeaders": {"TE": "trailers"}}),
        json!({"httpHeaders": {"A": "b"}, "secretHeaders": ["B"]}),
        json!({"secretHeaders": ["A"]}),
        json!({"startingDeadlineSeconds": 0}),
        json!({"misfirePolicy": "SOMETIMES"}),
        json!({"concurrencyPolicy": "MAYBE"}),
        json!({"catchUpLimit": -1}),
        json!({"executionType": "EXACTLY_ONCE"}),
        json!({"id": "x"}),
        json!(["not", "an", "object"]),
    ];
    all.extend(patches.iter().map(|body| {
        probe(
            "PATCH",
            format!("/api/v1/jobs/{job}"),
            Some(body.to_string()),
        )
    }));
    for query in [
        "limit=0",
        "limit=501",
        "limit=ten",
        "cursor=bogus",
        "colour=red",
        "isActive=perhaps",
    ] {
        all.push(probe("GET", format!("/api/v1/jobs?{query}"), None));
    }
    for query in ["limit=0", "cursor=yesterday"] {
        all.push(probe(
            "GET",
            format!("/api/v1/jobs/{job}/history?{query}"),
            None,
        ));
    }
    for query in [
        "",
        "cron=*%20*%20*",
        "cron=0%200%200%2030%202%20*",
        "cron=*%20*%20*%20*%20*%20*&tz=Mars/Olympus",
        "cron=*%20*%20*%20*%20*%20*&count=0",
    ] {
        all.push(probe(
            "GET",
            format!("/api/v1/schedule/preview?{query}"),
            None,
        ));
    }
    for path in [
        "/api/v1/jobs/not-an-id".to_string(),
        format!("/api/v1/jobs/{UNKNOWN_ID}"),
        format!("/api/v1/executions/{UNKNOWN_ID}"),
        "/api/v1/nowhere".to_string(),
    ] {
        all.push(probe("GET", path, None));
    }
    all.push(probe("PUT", "/api/v1/jobs", Some("{}".into())));
    all.push(probe(
        "POST",
        format!("/api/v1/dead-letters/{UNKNOWN_ID}/requeue?force=maybe"),
        None,
    ));
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "ci", "tenant": "Not A Tenant"}),
        json!({"name": "ci", "colour": "red"}),
    ] {
        all.push(probe("POST", "/api/v1/api-keys", Some(body.to_string())));
    }
    for key in ["", "has space", &"k".repeat(300)] {
        let mut create = probe(
            "POST",
            "/api/v1/jobs",
            Some(
                json!({"name": "n", "cronExpression": "* * * * * *", "httpUrl": TARGET})
                    .to_string(),
            ),
        );
        create.headers.push(("Idempotency-Key", key.to_string()));
        all.push(create);
    }
    all
}

/// How a probe is named in the pinned file: the request, its body cut to 160 characters.
fn name(probe: &Probe) -> String {
    let mut name = format!("{} {}", probe.method, probe.path);
    for (header, value) in &probe.headers {
        name.push_str(&format!(" [{header}: {}]", cut(value)));
    }
    if let Some(body) = &probe.body {
        name.push(' ');
        name.push_str(&cut(body));
    }
    name
}

fn cut(text: &str) -> String {
    if text.chars().count() <= 160 {
        return text.to_string();
    }
    let kept: String = text.chars().take(160).collect();
    format!("{kept}… ({} characters)", text.chars().count())
}

async fn every_bad_input_answer_is_what_it_was(app: TestApp) {
    // The outbound guard as the functions run it: nothing opened.
    let api = serve_api(AppState {
        targets: TargetPolicy::default(),
        ..app.state()
    })
    .await;
    let job = app
        .create_job(json!({"httpUrl": TARGET, "httpHeaders": {"A": "b"}}))
        .await;
    let job = job["id"].as_str().unwrap().to_string();
    let mut answers = Vec::new();
    for probe in probes(&job) {
        let mut request = app.client.request(
            probe.method.parse().unwrap(),
            format!("{api}{}", probe.path),
        );
        for (header, value) in &probe.headers {
            request = request.header(*header, value);
        }
        if let Some(body) = &probe.body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.clone());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status >= 400,
            "{} was accepted: {status} {body}",
            name(&probe)
        );
        // The path of the job made here differs in every run.
        let request = name(&probe).replace(&job, "{job}");
        let body: Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{request}: not JSON: {body}"));
        answers.push(json!({"request": request, "status": status, "body": body}));
    }
    let pinned_path = concat!(env!("CARGO_MANIFEST_DIR"), "/pinned/bad-inputs.json");
    let now = serde_json::to_string_pretty(&answers).unwrap() + "\n";
    if std::env::var_os("UPDATE_PINNED").is_some() {
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/pinned")).unwrap();
        std::fs::write(pinned_path, &now).unwrap();
        return;
    }
    let pinned = std::fs::read_to_string(pinned_path)
        .unwrap_or_else(|_| panic!("{pinned_path} is missing; run with UPDATE_PINNED=1"));
    let pinned: Vec<Value> = serde_json::from_str(&pinned).unwrap();
    for (was, is) in pinned.iter().zip(&answers) {
        assert_eq!(was, is, "an answer changed");
    }
    assert_eq!(
        pinned.len(),
        answers.len(),
        "requests were added or removed"
    );
}

on_both_backends!(every_bad_input_answer_is_what_it_was);

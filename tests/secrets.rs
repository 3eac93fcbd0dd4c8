//! Signed requests (Standard Webhooks) and credentials sealed at rest, on both backends.

use redis::AsyncCommands;
use serde_json::{json, Value};
use tickwork::secrets::sign;

use crate::helpers::{on_both_backends, time, Backend, Rows, TestApp};

/// Fires the job once at its next fire time and delivers it; returns the request the
/// target received.
async fn fire_and_deliver(app: &TestApp, job_id: &str) -> crate::target::Received {
    let job = app.get_json(&format!("/api/v1/jobs/{job_id}")).await;
    let seen = app.target.received().len();
    assert!(app.run_tick_once(time(&job["nextRunAt"])).await.fired >= 1);
    app.drain_queue().await;
    let received = app.target.received();
    assert!(received.len() > seen, "nothing delivered");
    received[received.len() - 1].clone()
}

/// Every signature in `webhook-signature` checked against `secrets`, in order.
fn assert_signed_by(request: &crate::target::Received, secrets: &[&str]) {
    let id = request.header("webhook-id").expect("webhook-id");
    assert_eq!(id, request.execution_id(), "webhook-id is the execution id");
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .expect("webhook-timestamp")
        .parse()
        .expect("seconds");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - timestamp).abs() <= 5,
        "timestamp {timestamp}, now {now}"
    );
    let expected: Vec<String> = secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, request.body.as_bytes()).unwrap())
        .collect();
    assert_eq!(
        request
            .header("webhook-signature")
            .expect("webhook-signature"),
        expected.join(" ")
    );
}

async fn requests_are_signed_with_the_secret_shown_once_and_both_secrets_during_a_rotation(
    app: TestApp,
) {
    let created = app
        .create_job(json!({"cronExpression": "* * * * * *", "httpBody": "{\"n\":1}"}))
        .await;
    let secret = created["signingSecret"]
        .as_str()
        .expect("shown at creation");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = created["id"].as_str().unwrap();
    let job = app.get_json(&format!("/api/v1/jobs/{id}")).await;
    assert!(job.get("signingSecret").is_none(), "never shown again");
    assert_eq!(job["signed"], true);

    let request = fire_and_deliver(&app, id).await;
    assert_eq!(request.body, "{\"n\":1}");
    assert_signed_by(&request, &[secret]);

    let response = app
        .client
        .post(format!(
            "{}/api/v1/jobs/{id}/signing-secret?graceSeconds=3600",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new_secret = rotated["signingSecret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert!(rotated["previousSecretValidUntil"].is_string());
    let request = fire_and_deliver(&app, id).await;
    assert_signed_by(&request, &[new_secret, secret]);

    let response = app
        .client
        .post(format!(
            "{}/api/v1/jobs/{id}/signing-secret?graceSeconds=0",
            app.address
        ))
        .send()
        .await
        .unwrap();
    let rotated: Value = response.json().await.unwrap();
    let newest = rotated["signingSecret"].as_str().unwrap().to_string();
    assert!(rotated["previousSecretValidUntil"].is_null());
    let request = fire_and_deliver(&app, id).await;
    assert_signed_by(&request, &[&newest]);

    for bad in ["9999999", "-1", "soon"] {
        let response = app
            .client
            .post(format!(
                "{}/api/v1/jobs/{id}/signing-secret?graceSeconds={bad}",
                app.address
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["field"], "graceSeconds");
        assert!(error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("from 0 to 604800"));
    }
}

/// Everything stored about jobs, as text, and for the embedded backend the database file
/// itself: where a value in clear would show.
async fn stored_bytes(app: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    let sql = match app.backend {
        Backend::Servers => {
            "SELECT string_agg(http_headers::text || ' ' || coalesce(signing_secret, '') || ' ' \
             || coalesce(previous_signing_secret, ''), ' ') FROM jobs"
        }
        Backend::Embedded => {
            "SELECT group_concat(http_headers || ' ' || coalesce(signing_secret, '') || ' ' \
             || coalesce(previous_signing_secret, ''), ' ') FROM jobs"
        }
    };
    let text: Option<String> = match &app.rows {
        Rows::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Rows::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    };
    bytes.extend(text.unwrap_or_default().into_bytes());
    if let Some(path) = app.embedded_path() {
        for suffix in ["", "-wal"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            bytes.extend(std::fs::read(&file).unwrap_or_default());
        }
    }
    if app.backend == Backend::Servers {
        let servers = app.servers();
        let mut redis = servers.redis.clone();
        let keys: Vec<String> = redis
            .keys(format!("{}:*", servers.key_prefix))
            .await
            .unwrap();
        for key in keys {
            let dump: Option<Vec<u8>> = redis::cmd("DUMP")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            bytes.extend(dump.unwrap_or_default());
        }
    }
    bytes
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

async fn credentials_are_sealed_at_rest_masked_by_the_api_and_sent_in_clear(app: TestApp) {
    let canary = format!("Bearer canary-{}", uuid::Uuid::now_v7().simple());
    let created = app
        .create_job(json!({
            "cronExpression": "* * * * * *",
            "httpHeaders": {"Authorization": canary, "X-Trace": "visible"},
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    let secret = created["signingSecret"].as_str().unwrap().to_string();
    assert_eq!(created["httpHeaders"]["Authorization"], "********");
    assert_eq!(created["httpHeaders"]["X-Trace"], "visible");
    let listed = app.get_json("/api/v1/jobs").await;
    assert_eq!(
        listed["jobs"][0]["httpHeaders"]["Authorization"],
        "********"
    );

    let request = fire_and_deliver(&app, id).await;
    assert_eq!(request.header("authorization"), Some(canary.as_str()));

    let stored = stored_bytes(&app).await;
    assert!(!stored.is_empty());
    assert!(
        !holds(&stored, &canary),
        "the credential is stored in clear"
    );
    assert!(
        !holds(&stored, &secret),
        "the signing secret is stored in clear"
    );
    assert!(!holds(&stored, &secret["whsec_".len()..]));

    // The mask sent back keeps the stored value; other headers change.
    let response = app
        .patch_job(
            id,
            &json!({"httpHeaders": {"Authorization": "********", "X-Trace": "changed"}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["httpHeaders"]["Authorization"], "********");
    assert_eq!(patched["httpHeaders"]["X-Trace"], "changed");
    let request = fire_and_deliver(&app, id).await;
    assert_eq!(request.header("authorization"), Some(canary.as_str()));
    assert_eq!(request.header("x-trace"), Some("changed"));

    // A mask with nothing stored behind it is refused, and changes nothing.
    let response = app
        .patch_job(id, &json!({"httpHeaders": {"X-Api-Key": "********"}}))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "httpHeaders");
    let job = app.get_json(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(job["httpHeaders"]["X-Trace"], "changed");
    println!(
        "canary: {} stored bytes searched, no credential or signing secret in clear",
        stored.len()
    );

    // Values that look sealed are tickwork's own: refused from callers.
    let response = app
        .patch_job(id, &json!({"httpHeaders": {"X-Data": "tw1:0011aabb:AAAA"}}))
        .await;
    assert_eq!(response.status(), 422);

    // Credentials stay with the origin they were given for.
    let elsewhere = app.target.url.replace("127.0.0.1", "127.0.0.2");
    let response = app
        .patch_job(id, &json!({"httpUrl": format!("{elsewhere}/hook")}))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "httpUrl");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Authorization"));
    let response = app
        .patch_job(
            id,
            &json!({"httpUrl": format!("{elsewhere}/hook"),
                    "httpHeaders": {"Authorization": "********"}}),
        )
        .await;
    assert_eq!(
        response.status(),
        422,
        "the mask keeps the old origin's value"
    );
    let response = app
        .patch_job(
            id,
            &json!({"httpUrl": format!("{}/other-path", app.target.url)}),
        )
        .await;
    assert_eq!(response.status(), 200, "same origin, another path");
    let response = app
        .patch_job(
            id,
            &json!({"httpUrl": format!("{elsewhere}/hook"),
                    "httpHeaders": {"Authorization": "Bearer new-origin"}}),
        )
        .await;
    assert_eq!(response.status(), 200, "credentials sent again");
}

on_both_backends!(
    requests_are_signed_with_the_secret_shown_once_and_both_secrets_during_a_rotation,
    credentials_are_sealed_at_rest_masked_by_the_api_and_sent_in_clear,
);

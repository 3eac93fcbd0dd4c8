//! Signed requests (Standard Webhooks) and credentials sealed at rest, on both backends;
//! and the API and the worker, as processes, refuse to start without `ENCRYPTION_KEY`.

use std::sync::Arc;

use redis::AsyncCommands;
use serde_json::{json, Value};
use tickwork::secrets::{header_context, sign, signing_context, Keyring};

use crate::helpers::{on_both_backends, serve_api, time, Backend, Rows, TestApp};

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

/// Everything tickwork stores: on PostgreSQL every table's rows as text, on the embedded
/// backend the database file itself, and every value under the run's Redis prefix as Redis
/// returns it: where a value in clear would show.
async fn stored_bytes(app: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    match &app.rows {
        Rows::Postgres(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT quote_ident(table_name) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            assert!(tables.len() > 3, "tables: {tables:?}");
            for table in tables {
                let text: Option<String> =
                    sqlx::query_scalar(&format!("SELECT string_agg(t::text, ' ') FROM {table} t"))
                        .fetch_one(pool)
                        .await
                        .unwrap();
                bytes.extend(text.unwrap_or_default().into_bytes());
            }
        }
        Rows::Sqlite(_) => {}
    }
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
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "string" => vec![redis.get(&key).await.unwrap()],
                "list" => redis.lrange(&key, 0, -1).await.unwrap(),
                "set" => redis.smembers(&key).await.unwrap(),
                "zset" => redis.zrange(&key, 0, -1).await.unwrap(),
                "hash" => redis.hgetall::<_, Vec<Vec<u8>>>(&key).await.unwrap(),
                other => panic!("{key}: a Redis {other} the scan does not read"),
            };
            for value in values {
                bytes.extend(value);
                bytes.push(b' ');
            }
        }
    }
    bytes
}

/// The scan finds a value planted in a table no other check reads and in Redis.
async fn plant_and_find(app: &TestApp) {
    let planted = format!("planted-{}", uuid::Uuid::now_v7().simple());
    let sql = format!("UPDATE jobs SET description = '{planted}'");
    match &app.rows {
        Rows::Postgres(pool) => sqlx::query(&sql).execute(pool).await.map(|_| ()),
        Rows::Sqlite(pool) => sqlx::query(&sql).execute(pool).await.map(|_| ()),
    }
    .unwrap();
    assert!(
        holds(&stored_bytes(app).await, &planted),
        "the scan misses a table"
    );
    if app.backend == Backend::Servers {
        let servers = app.servers();
        let mut redis = servers.redis.clone();
        let key = format!("{}:planted", servers.key_prefix);
        let in_redis = format!("{planted}-redis");
        redis.set::<_, _, ()>(&key, &in_redis).await.unwrap();
        assert!(
            holds(&stored_bytes(app).await, &in_redis),
            "the scan misses Redis"
        );
        redis.del::<_, ()>(&key).await.unwrap();
    }
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
    plant_and_find(&app).await;

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

/// The stored job, as the store holds it (sealed values and all).
async fn stored(app: &TestApp, id: &str) -> tickwork::model::Job {
    let id = uuid::Uuid::parse_str(id).unwrap();
    app.store.job(id).await.unwrap().expect("the job")
}

async fn a_reseal_moves_every_stored_secret_to_the_current_key_so_the_old_one_can_go(app: TestApp) {
    let sealed = app
        .create_job(json!({"httpHeaders": {"Authorization": "Bearer canary-1", "X-Plain": "seen"}}))
        .await;
    let sealed_id = sealed["id"].as_str().unwrap().to_string();
    // A job whose credential was stored in clear, before sealing existed.
    let legacy = app.create_job(json!({})).await;
    let legacy_id = legacy["id"].as_str().unwrap().to_string();
    let plant = |mut job: tickwork::model::Job, _| {
        job.http_headers
            .insert("X-Api-Key".into(), "legacy-canary".into());
        Ok(job)
    };
    let id = uuid::Uuid::parse_str(&legacy_id).unwrap();
    app.store
        .update_job(id, &plant)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let before = (
        stored(&app, &sealed_id).await,
        stored(&app, &legacy_id).await,
    );

    // The key changes: the API now seals under `new` and still opens the old values.
    let new = Keyring::generate_key();
    let mut state = app.state();
    state.keyring = Arc::new(Keyring::new(&new, &[app.encryption_key.as_str()]).unwrap());
    let api = serve_api(state).await;
    let mut totals = (0, 0, 0, 0);
    let mut cursor = String::new();
    loop {
        let url = format!("{api}/api/v1/admin/reseal?limit=1{cursor}");
        let response = app.client.post(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        totals.0 += page["scanned"].as_u64().unwrap();
        totals.1 += page["resealedJobs"].as_u64().unwrap();
        totals.2 += page["resealedValues"].as_u64().unwrap();
        totals.3 += page["unreadable"].as_u64().unwrap();
        match page["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    // Two jobs; each had a credential header and a signing secret to move.
    assert_eq!(totals, (2, 2, 4, 0));

    // Only the new key is needed now, and every value is what it was.
    let only_new = Keyring::new(&new, &[]).unwrap();
    for (job, credential, plain) in [
        (
            stored(&app, &sealed_id).await,
            ("Authorization", "Bearer canary-1"),
            true,
        ),
        (
            stored(&app, &legacy_id).await,
            ("X-Api-Key", "legacy-canary"),
            false,
        ),
    ] {
        let value = &job.http_headers[credential.0];
        let context = header_context(job.id, credential.0);
        assert_eq!(only_new.open(value, &context).unwrap(), credential.1);
        let secret = job.signing_secret.as_deref().unwrap();
        assert!(only_new.open(secret, &signing_context(job.id)).is_ok());
        if plain {
            assert_eq!(
                job.http_headers["X-Plain"], "seen",
                "other headers stay in clear"
            );
        }
    }
    // Nothing else about the jobs changed.
    for (was, id) in [(&before.0, &sealed_id), (&before.1, &legacy_id)] {
        let now = stored(&app, id).await;
        assert_eq!(
            (now.updated_at, now.next_run_at, now.is_active),
            (was.updated_at, was.next_run_at, was.is_active)
        );
    }
    // A second run finds nothing to do.
    let again: Value = app
        .client
        .post(format!("{api}/api/v1/admin/reseal"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["scanned"].as_u64(), again["resealedJobs"].as_u64()),
        (Some(2), Some(0))
    );
}

on_both_backends!(
    requests_are_signed_with_the_secret_shown_once_and_both_secrets_during_a_rotation,
    credentials_are_sealed_at_rest_masked_by_the_api_and_sent_in_clear,
    a_reseal_moves_every_stored_secret_to_the_current_key_so_the_old_one_can_go,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_the_worker_refuse_to_start_without_encryption_key() {
    use crate::cluster::{free_port, Binary, Process};
    use std::time::Duration;

    let app = crate::helpers::spawn_app().await;
    for (binary, name) in [
        (Binary::Api, "tickwork-api"),
        (Binary::Worker, "tickwork-worker"),
    ] {
        // Everything they need but the key (the database and Redis of this test included).
        let mut refused = Process::spawn_without(&app, binary, &[], &["ENCRYPTION_KEY"]);
        let status = refused.wait_exit(Duration::from_secs(30)).await;
        let output = refused.output();
        assert!(
            status.is_some_and(|s| !s.success()),
            "{name} without ENCRYPTION_KEY: {status:?}\n{output}"
        );
        assert!(
            output.contains(&format!("{name}: ENCRYPTION_KEY is not set")),
            "{name} did not say what is missing: {output}"
        );
    }

    // The same environment with the key: both start.
    let port = free_port().to_string();
    let mut api = Process::spawn(&app, Binary::Api, &[("SERVER_PORT", port.as_str())]);
    let mut worker = Process::spawn(&app, Binary::Worker, &[]);
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let health = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await;
        if health.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            api.is_running() && tokio::time::Instant::now() < deadline,
            "the API with ENCRYPTION_KEY did not answer /health: {}",
            api.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while !worker.output().contains("tickwork-worker started") {
        assert!(
            worker.is_running() && tokio::time::Instant::now() < deadline,
            "the worker with ENCRYPTION_KEY did not start: {}",
            worker.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

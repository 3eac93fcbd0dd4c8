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
    app.store.job_get(id).await.unwrap().expect("the job")
}

async fn a_reseal_moves_every_stored_secret_to_the_current_key_so_the_old_one_can_go(app: TestApp) {
    let sealed = app
        .create_job(json!({
            "httpHeaders": {"Authorization": "Bearer canary-1", "X-Plain": "seen"},
            "httpUrl": format!("{}/hook?token=url-canary-1", app.target.url),
        }))
        .await;
    let sealed_id = sealed["id"].as_str().unwrap().to_string();
    // A job whose credential was stored in clear, before sealing existed.
    let legacy = app.create_job(json!({})).await;
    let legacy_id = legacy["id"].as_str().unwrap().to_string();
    let legacy_url = format!("{}/hook?token=legacy-url-canary", app.target.url);
    let plant = |mut job: tickwork::model::Job, _| {
        job.http_headers
            .insert("X-Api-Key".into(), "legacy-canary".into());
        job.http_url = legacy_url.clone();
        Ok(job)
    };
    let id = uuid::Uuid::parse_str(&legacy_id).unwrap();
    app.store
        .job_update(id, &plant)
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
    // Two jobs; each had a credential header, a URL token and a signing secret to move.
    assert_eq!(totals, (2, 2, 6, 0));

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
        let (url, _) = tickwork::secrets::query::open(Some(&only_new), job.id, &job.http_url)
            .expect("the URL's token opens under the new key");
        let token = if plain {
            "url-canary-1"
        } else {
            "legacy-url-canary"
        };
        assert_eq!(url, format!("{}/hook?token={token}", app.target.url));
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

/// The attempts of a job's latest execution, as the history shows them.
async fn latest_attempts(app: &TestApp, job_id: &str) -> Vec<Value> {
    let history = app
        .get_json(&format!("/api/v1/jobs/{job_id}/history"))
        .await;
    history["executions"][0]["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn a_url_token_is_sealed_masked_and_reaches_the_target_byte_for_byte(app: TestApp) {
    let token = format!("tok-{}", uuid::Uuid::now_v7().simple());
    let signature = format!("sig{}", uuid::Uuid::now_v7().simple());
    let query = format!("page=2&token={token}%2Fx%3D&X-Amz-Signature={signature}");
    let created = app
        .create_job(json!({
            "cronExpression": "* * * * * *",
            "httpUrl": format!("{}/echo?{query}", app.target.url),
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    let shown = created["httpUrl"].as_str().unwrap();
    assert_eq!(
        shown,
        format!(
            "{}/echo?page=2&token=********&X-Amz-Signature=********",
            app.target.url
        )
    );
    let listed = app.get_json("/api/v1/jobs").await;
    assert_eq!(listed["jobs"][0]["httpUrl"], shown);

    let request = fire_and_deliver(&app, id).await;
    assert_eq!(request.uri.query(), Some(query.as_str()), "sent as given");
    let bytes = stored_bytes(&app).await;
    for secret in [&token, &signature] {
        assert!(!holds(&bytes, secret), "{secret} is stored in clear");
    }
    // The target echoed the URL back: the stored answer carries the mask instead.
    let attempts = latest_attempts(&app, id).await;
    let answer = attempts[0]["responseBody"].as_str().unwrap_or_default();
    assert!(answer.contains("/echo?page=2"), "{answer}");
    assert!(
        !answer.contains(&token) && !answer.contains(&signature),
        "{answer}"
    );

    // The URL as read, sent back with another path, keeps the stored values.
    let moved = shown.replace("/echo?page=2", "/echo?page=3");
    let response = app.patch_job(id, &json!({ "httpUrl": moved })).await;
    assert_eq!(response.status(), 200);
    let request = fire_and_deliver(&app, id).await;
    assert_eq!(
        request.uri.query(),
        Some(query.replace("page=2", "page=3").as_str())
    );
    // Not to another origin; and not where nothing was stored.
    let elsewhere = shown.replace("127.0.0.1", "127.0.0.2");
    let response = app.patch_job(id, &json!({ "httpUrl": elsewhere })).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "httpUrl");
    let response = app
        .patch_job(
            id,
            &json!({ "httpUrl": format!("{}/echo?api_key=********", app.target.url) }),
        )
        .await;
    assert_eq!(response.status(), 422);
    let response = app
        .patch_job(
            id,
            &json!({ "httpUrl": format!("{}/echo?sig=tw1:0011aabb:AAAA", app.target.url) }),
        )
        .await;
    assert_eq!(
        response.status(),
        422,
        "values that look sealed are tickwork's"
    );
}

async fn an_unreachable_target_s_error_names_neither_its_url_nor_its_token(app: TestApp) {
    let token = format!("tok-{}", uuid::Uuid::now_v7().simple());
    let port = crate::cluster::free_port();
    let created = app
        .create_job(json!({
            "cronExpression": "* * * * * *",
            "maxRetries": 0,
            "httpUrl": format!("http://127.0.0.1:{port}/hooks/PATHSECRET?token={token}"),
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    assert!(app.run_tick_once(time(&created["nextRunAt"])).await.fired >= 1);
    app.drain_queue().await;
    let attempts = latest_attempts(&app, id).await;
    let error = attempts[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("could not connect"), "{error}");
    for secret in [&token, "PATHSECRET", "/hooks"] {
        assert!(!error.contains(secret), "{secret} in {error:?}");
    }
}

async fn a_header_marked_secret_is_sealed_masked_sent_opened_and_scrubbed_from_an_echo(
    app: TestApp,
) {
    let marked = format!("marked-{}", uuid::Uuid::now_v7().simple());
    let by_name = format!("jwt-{}", uuid::Uuid::now_v7().simple());
    let created = app
        .create_job(json!({
            "cronExpression": "* * * * * *",
            "httpUrl": format!("{}/echo", app.target.url),
            "httpHeaders": {"X-Custom-Thing": marked, "X-Jwt": by_name, "X-Trace": "visible"},
            "secretHeaders": ["x-custom-thing"],
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["httpHeaders"]["X-Custom-Thing"], "********");
    assert_eq!(created["httpHeaders"]["X-Jwt"], "********");
    assert_eq!(created["httpHeaders"]["X-Trace"], "visible");
    assert_eq!(created["secretHeaders"], json!(["X-Custom-Thing", "X-Jwt"]));
    let bytes = stored_bytes(&app).await;
    for secret in [&marked, &by_name] {
        assert!(!holds(&bytes, secret), "{secret} is stored in clear");
    }

    let request = fire_and_deliver(&app, id).await;
    assert_eq!(request.header("x-custom-thing"), Some(marked.as_str()));
    assert_eq!(request.header("x-jwt"), Some(by_name.as_str()));
    let attempts = latest_attempts(&app, id).await;
    let answer = attempts[0]["responseBody"].as_str().unwrap_or_default();
    assert!(answer.contains("visible"), "{answer}");
    assert!(answer.contains("********"), "{answer}");
    assert!(
        !answer.contains(&marked) && !answer.contains(&by_name),
        "{answer}"
    );

    // The view sent back as it reads keeps both.
    let job = app.get_json(&format!("/api/v1/jobs/{id}")).await;
    let response = app
        .patch_job(
            id,
            &json!({"httpHeaders": job["httpHeaders"], "secretHeaders": job["secretHeaders"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let request = fire_and_deliver(&app, id).await;
    assert_eq!(request.header("x-custom-thing"), Some(marked.as_str()));

    // Marks name headers of the same request.
    for body in [
        json!({"httpHeaders": {"A": "b"}, "secretHeaders": ["B"]}),
        json!({"secretHeaders": ["X-Trace"]}),
        json!({"httpHeaders": {"A": "b"}, "secretHeaders": "A"}),
    ] {
        let response = app.patch_job(id, &body).await;
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["field"], "secretHeaders", "{body}");
    }

    // A value stored in clear under a name that is a credential's now (before an
    // upgrade): read back masked, and the mask sent back seals it.
    let legacy = uuid::Uuid::parse_str(id).unwrap();
    let plant = |mut job: tickwork::model::Job, _| {
        job.http_headers.insert("X-Pwd".into(), "legacy-pwd".into());
        Ok(job)
    };
    app.store
        .job_update(legacy, &plant)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let job = app.get_json(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(job["httpHeaders"]["X-Pwd"], "********");
    let response = app
        .patch_job(id, &json!({"httpHeaders": job["httpHeaders"]}))
        .await;
    assert_eq!(response.status(), 200);
    let stored_job = stored(&app, id).await;
    assert!(tickwork::secrets::is_sealed(
        &stored_job.http_headers["X-Pwd"]
    ));
    let request = fire_and_deliver(&app, id).await;
    assert_eq!(request.header("x-pwd"), Some("legacy-pwd"));
}

on_both_backends!(
    a_url_token_is_sealed_masked_and_reaches_the_target_byte_for_byte,
    an_unreachable_target_s_error_names_neither_its_url_nor_its_token,
    a_header_marked_secret_is_sealed_masked_sent_opened_and_scrubbed_from_an_echo,
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

//! API keys and tenants: every route but `/health` needs a key; a key reaches only its
//! tenant's jobs, and no endpoint reveals another tenant's.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tickwork::api::{AppState, Auth};
use tickwork::queue::RateLimit;

use crate::helpers::{on_both_backends, serve_api, time, Rows, TestApp};

pub(crate) const OPERATOR_KEY: &str = "tw_operator-key-for-the-auth-tests-0123456789";

/// The app's store and queue behind an API that requires keys; returns its address.
pub(crate) async fn keyed_api(app: &TestApp) -> String {
    keyed_api_limited(app, None).await
}

/// As [`keyed_api`], with a rate limit per key.
async fn keyed_api_limited(app: &TestApp, rate_limit: Option<RateLimit>) -> String {
    serve_api(AppState {
        auth: Auth::keys(Some(OPERATOR_KEY)),
        rate_limit,
        ..app.state()
    })
    .await
}

/// One request with `key` (none when empty).
pub(crate) async fn call(
    api: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().unwrap(), format!("{api}{path}"));
    if !key.is_empty() {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Makes a key for `tenant` with the operator key; returns it.
pub(crate) async fn key_for(api: &str, tenant: &str) -> String {
    let (status, made) = call(
        api,
        OPERATOR_KEY,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": format!("{tenant} tests"), "tenant": tenant})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    made["key"].as_str().unwrap().to_string()
}

async fn every_route_but_health_needs_a_valid_key(app: TestApp) {
    let api = keyed_api(&app).await;
    let (status, _) = call(&api, "", "GET", "/health", None).await;
    assert_eq!(status, 200);
    // Every route the API document lists (the router serves exactly those).
    let document = serde_json::to_value(tickwork::api::openapi()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let path = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            routes.push((method.to_uppercase(), path));
        }
    }
    assert!(routes.len() >= 20, "{routes:?}");
    for (method, path) in &routes {
        let (method, path) = (method.as_str(), path.as_str());
        if path == "/health" {
            continue;
        }
        let body = matches!(method, "POST" | "PATCH").then(|| app.job_body(json!({})));
        let (status, error) = call(&api, "", method, path, body.clone()).await;
        assert_eq!(status, 401, "{method} {path}");
        assert_eq!(error["error"]["code"], "unauthorized");
        let (status, _) = call(&api, "tw_not-a-key-anyone-made", method, path, body).await;
        assert_eq!(status, 401, "{method} {path} with a wrong key");
        // Another scheme, even carrying the operator key.
        for scheme in [
            "Basic dXNlcjpwYXNz".to_string(),
            format!("Token {OPERATOR_KEY}"),
        ] {
            let response = reqwest::Client::new()
                .request(method.parse().unwrap(), format!("{api}{path}"))
                .header("Authorization", scheme.as_str())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {scheme}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
        }
    }
    // Two keys, as two headers or joined by a comma (as a proxy joins repeated headers):
    // neither is taken, even when one is the operator's.
    let twice = reqwest::Client::new()
        .get(format!("{api}/api/v1/jobs"))
        .header("Authorization", format!("Bearer {OPERATOR_KEY}"))
        .header("Authorization", "Bearer tw_not-a-key-anyone-made");
    let joined = reqwest::Client::new()
        .get(format!("{api}/api/v1/jobs"))
        .header(
            "Authorization",
            format!("Bearer {OPERATOR_KEY}, Bearer tw_other"),
        );
    for request in [twice, joined] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_header");
        assert_eq!(body["error"]["field"], "Authorization");
    }
    assert_eq!(app.job_rows().await, 0, "nothing made without a key");
    let (status, _) = call(&api, OPERATOR_KEY, "GET", "/api/v1/jobs", None).await;
    assert_eq!(status, 200);
}

async fn keys_are_shown_once_stored_as_hashes_and_revoked_at_once(app: TestApp) {
    let api = keyed_api(&app).await;
    let (status, made) = call(
        &api,
        OPERATOR_KEY,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "ci", "tenant": "acme"})),
    )
    .await;
    assert_eq!(status, 201);
    let key = made["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("tw_") && key.len() >= 46, "{key}");
    assert_eq!(made["prefix"], key[..11]);
    assert_eq!(made["tenant"], "acme");
    let rows = match &app.rows {
        Rows::Postgres(pool) => sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM api_keys WHERE hash = $1 OR name = $1 OR prefix = $1",
        )
        .bind(&key)
        .fetch_one(pool)
        .await
        .unwrap(),
        Rows::Sqlite(pool) => sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM api_keys WHERE hash = $1 OR name = $1 OR prefix = $1",
        )
        .bind(&key)
        .fetch_one(pool)
        .await
        .unwrap(),
    };
    assert_eq!(rows, 0, "the key itself is not stored");

    let (status, listed) = call(&api, &key, "GET", "/api/v1/api-keys", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["apiKeys"].as_array().unwrap().len(), 1);
    assert!(
        listed["apiKeys"][0].get("key").is_none(),
        "never shown again"
    );

    // Only the operator key makes keys.
    for body in [
        json!({"name": "x", "tenant": "beta"}),
        json!({"name": "deploys"}),
    ] {
        let (status, error) = call(&api, &key, "POST", "/api/v1/api-keys", Some(body)).await;
        assert_eq!(status, 403);
        assert_eq!(error["error"]["code"], "forbidden");
    }
    // Nor reseals every tenant's secrets.
    let (status, _) = call(&api, &key, "POST", "/api/v1/admin/reseal", None).await;
    assert_eq!(status, 403);
    let lower = reqwest::Client::new()
        .get(format!("{api}/api/v1/jobs"))
        .header("Authorization", format!("bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200, "the scheme name is case-insensitive");
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "a\u{0}b"}), "name"),
        (json!({"name": "x", "tenant": "Not Valid"}), "tenant"),
        (json!({"name": "x", "scope": "all"}), "scope"),
        (json!({}), "name"),
    ] {
        let (status, error) = call(
            &api,
            OPERATOR_KEY,
            "POST",
            "/api/v1/api-keys",
            Some(body.clone()),
        )
        .await;
        assert!(status.is_client_error(), "{body}");
        assert_eq!(error["error"]["field"], field, "{body}");
    }

    let id = made["id"].as_str().unwrap();
    let (status, _) = call(
        &api,
        &key,
        "DELETE",
        &format!("/api/v1/api-keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(&api, &key, "GET", "/api/v1/jobs", None).await;
    assert_eq!(status, 401, "revoked at once");
    let (status, _) = call(
        &api,
        OPERATOR_KEY,
        "DELETE",
        &format!("/api/v1/api-keys/{}", uuid::Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

async fn no_endpoint_reveals_another_tenants_job_or_its_fires(app: TestApp) {
    let api = keyed_api(&app).await;
    let (acme, beta) = (key_for(&api, "acme").await, key_for(&api, "beta").await);
    app.target.respond_with(500);
    let (status, job) = call(
        &api,
        &acme,
        "POST",
        "/api/v1/jobs",
        Some(app.job_body(json!({"cronExpression": "* * * * * *", "maxRetries": 0}))),
    )
    .await;
    assert_eq!(status, 201);
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(app.run_tick_once(time(&job["nextRunAt"])).await.fired, 1);
    app.drain_queue().await;
    let (_, history) = call(
        &api,
        &acme,
        "GET",
        &format!("/api/v1/jobs/{id}/history"),
        None,
    )
    .await;
    let execution = history["executions"][0]["id"].as_str().unwrap().to_string();

    let probes = [
        ("GET", format!("/api/v1/jobs/{id}")),
        ("PATCH", format!("/api/v1/jobs/{id}")),
        ("DELETE", format!("/api/v1/jobs/{id}")),
        ("GET", format!("/api/v1/jobs/{id}/history")),
        ("GET", format!("/api/v1/jobs/{id}/schedule")),
        ("POST", format!("/api/v1/jobs/{id}/trigger")),
        ("POST", format!("/api/v1/jobs/{id}/pause")),
        ("POST", format!("/api/v1/jobs/{id}/resume")),
        ("POST", format!("/api/v1/jobs/{id}/signing-secret")),
        ("GET", format!("/api/v1/executions/{execution}")),
        (
            "POST",
            format!("/api/v1/dead-letters/{execution}/requeue?force=true"),
        ),
    ];
    for (method, path) in &probes {
        let body = (*method == "PATCH").then(|| json!({"name": "taken over"}));
        let (status, error) = call(&api, &beta, method, path, body).await;
        assert_eq!(status, 404, "{method} {path} from another tenant");
        assert_eq!(error["error"]["code"], "not_found", "{method} {path}");
    }
    // Whatever a probe might have queued is delivered now, so the target would see it.
    app.drain_queue().await;
    let (_, list) = call(&api, &beta, "GET", "/api/v1/jobs?includeDeleted=true", None).await;
    assert!(list["jobs"].as_array().unwrap().is_empty());
    let (_, dead) = call(&api, &beta, "GET", "/api/v1/dead-letters", None).await;
    assert!(dead["executions"].as_array().unwrap().is_empty());
    let (_, stats) = call(&api, &beta, "GET", "/queue/stats", None).await;
    assert_eq!(stats["queue_stats"]["failed"], 0);

    // The owner sees all of it, and nothing was changed by the other tenant.
    let (status, own) = call(&api, &acme, "GET", &format!("/api/v1/jobs/{id}"), None).await;
    assert_eq!(
        (status, own["name"].as_str()),
        (StatusCode::OK, Some("test job"))
    );
    assert_eq!(own["isActive"], true);
    let (_, list) = call(&api, &acme, "GET", "/api/v1/jobs", None).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
    let (_, dead) = call(&api, &acme, "GET", "/api/v1/dead-letters", None).await;
    assert_eq!(dead["executions"][0]["id"], execution.as_str());
    let (_, stats) = call(&api, &acme, "GET", "/queue/stats", None).await;
    assert_eq!(stats["queue_stats"]["failed"], 1);
    assert!(
        stats["queue_stats"].get("completed").is_none(),
        "whole-queue figures stay with the operator"
    );
    let (_, whole) = call(&api, OPERATOR_KEY, "GET", "/queue/stats", None).await;
    assert!(whole["queue_stats"].get("completed").is_some());
    assert_eq!(
        app.target.received().len(),
        1,
        "the other tenant triggered nothing"
    );
    assert_eq!(
        app.rows.count("SELECT count(*) FROM executions").await,
        1,
        "the other tenant recorded no fire"
    );
    assert!(own["previousSigningSecretExpiresAt"].is_null());
    assert_eq!(
        app.rows
            .count("SELECT count(*) FROM jobs WHERE previous_signing_secret IS NOT NULL")
            .await,
        0,
        "the other tenant rotated no signing secret"
    );

    // Idempotency keys are per tenant.
    let create = |key: String| {
        let api = api.clone();
        let body = app.job_body(json!({"name": "same key"}));
        async move {
            reqwest::Client::new()
                .post(format!("{api}/api/v1/jobs"))
                .bearer_auth(key)
                .header("Idempotency-Key", "shared-key")
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(create(acme.clone()).await, 201);
    assert_eq!(create(beta.clone()).await, 201);
    assert_eq!(create(beta).await, 200);
}

async fn each_key_has_its_own_rate_limit_answered_with_429_and_retry_after(app: TestApp) {
    let api = keyed_api_limited(
        &app,
        Some(RateLimit {
            per_second: 1,
            burst: 3,
        }),
    )
    .await;
    let (acme, beta) = (key_for(&api, "acme").await, key_for(&api, "beta").await);
    for _ in 0..3 {
        let (status, _) = call(&api, &acme, "GET", "/api/v1/jobs", None).await;
        assert_eq!(status, 200);
    }
    let response = reqwest::Client::new()
        .get(format!("{api}/api/v1/jobs"))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limited");
    let (status, _) = call(&api, &beta, "GET", "/api/v1/jobs", None).await;
    assert_eq!(status, 200, "another key has its own bucket");
    for _ in 0..10 {
        let (status, _) = call(&api, OPERATOR_KEY, "GET", "/api/v1/jobs", None).await;
        assert_eq!(status, 200, "the operator key is not limited");
    }
    let (status, _) = call(&api, "", "GET", "/health", None).await;
    assert_eq!(status, 200, "health is never limited");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = call(&api, &acme, "GET", "/api/v1/jobs", None).await;
    assert_eq!(status, 200, "a token is back after a second");
}

on_both_backends!(
    a_flood_of_wrong_keys_from_one_address_gets_429_without_store_lookups,
    behind_a_trusted_proxy_wrong_keys_are_counted_by_forwarded_address,
    each_key_has_its_own_rate_limit_answered_with_429_and_retry_after,
    every_route_but_health_needs_a_valid_key,
    keys_are_shown_once_stored_as_hashes_and_revoked_at_once,
    no_endpoint_reveals_another_tenants_job_or_its_fires,
);

/// A reqwest client whose connections come from `address` (a loopback address), so the
/// API sees a client of its own.
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(address.parse().unwrap()))
        .build()
        .unwrap()
}

/// `GET /api/v1/jobs` with `key` from `client`; the status and `Retry-After`.
async fn list_with(
    client: &reqwest::Client,
    api: &str,
    key: &str,
    forwarded_for: Option<&str>,
) -> (StatusCode, Option<String>) {
    let mut request = client.get(format!("{api}/api/v1/jobs")).bearer_auth(key);
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("X-Forwarded-For", forwarded_for);
    }
    let response = request.send().await.unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status(), retry_after)
}

/// A `tw_` key of the right shape that nobody made.
fn guessed_key(n: usize) -> String {
    format!("tw_{n:0>43}")
}

async fn a_flood_of_wrong_keys_from_one_address_gets_429_without_store_lookups(app: TestApp) {
    use crate::forwarding::Forwarding;
    use std::sync::Arc;
    use tickwork::api::KeyFailures;

    let limit = RateLimit {
        per_second: 1,
        burst: 20,
    };
    let store = Arc::new(Forwarding::new(app.store.clone()));
    let api = serve_api(AppState {
        store: store.clone(),
        auth: Auth::keys(Some(OPERATOR_KEY)),
        key_failures: KeyFailures::new(Some(limit), Vec::new()),
        ..app.state()
    })
    .await;
    let tenant_key = key_for(&api, "acme").await;

    let guesser = client_from("127.0.0.4");
    let before = store.key_lookups();
    let (mut unauthorized, mut throttled) = (0, 0);
    for n in 0..100 {
        match list_with(&guesser, &api, &guessed_key(n), None).await {
            (StatusCode::UNAUTHORIZED, _) => unauthorized += 1,
            (StatusCode::TOO_MANY_REQUESTS, retry_after) => {
                assert!(retry_after.is_some(), "429 without Retry-After");
                throttled += 1;
            }
            other => panic!("a guessed key got {other:?}"),
        }
    }
    let lookups = store.key_lookups() - before;
    assert_eq!(unauthorized + throttled, 100);
    // The burst, and what refilled while the flood went on.
    assert!(unauthorized >= 20, "{unauthorized} wrong keys answered 401");
    assert!(
        throttled >= 50,
        "only {throttled} of 100 wrong keys got 429"
    );
    assert_eq!(
        lookups, unauthorized,
        "each 401 is one lookup, each 429 none"
    );

    // The same address: the operator key is compared first and still works; a right
    // tenant key waits like the guesses (the address cannot be told apart from them).
    let (status, _) = list_with(&guesser, &api, OPERATOR_KEY, None).await;
    assert_eq!(status, StatusCode::OK, "the operator key was throttled");
    let (status, _) = list_with(&guesser, &api, &tenant_key, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // Another address is not slowed: its right key is looked up once, and a key that
    // cannot be ours is refused without a lookup.
    let other = client_from("127.0.0.5");
    let before = store.key_lookups();
    let (status, _) = list_with(&other, &api, &tenant_key, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = list_with(&other, &api, "not-one-of-our-keys", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(store.key_lookups() - before, 1);

    // The 401s and 429s are counted in the metrics.
    let scrape = tickwork::metrics::render(None).unwrap();
    let count = |family: &str| -> u64 {
        scrape
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{family} ")))
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    assert!(count("tickwork_api_wrong_keys_throttled_total") >= throttled as u64);
    assert!(count("tickwork_api_unauthorized_total") >= unauthorized as u64);
}

async fn behind_a_trusted_proxy_wrong_keys_are_counted_by_forwarded_address(app: TestApp) {
    use tickwork::api::KeyFailures;

    let limit = RateLimit {
        per_second: 1,
        burst: 3,
    };
    let api = serve_api(AppState {
        auth: Auth::keys(Some(OPERATOR_KEY)),
        key_failures: KeyFailures::new(Some(limit), vec!["127.0.0.6/32".parse().unwrap()]),
        ..app.state()
    })
    .await;
    let tenant_key = key_for(&api, "acme").await;
    let proxy = client_from("127.0.0.6");
    for n in 0..10 {
        list_with(&proxy, &api, &guessed_key(n), Some("203.0.113.7")).await;
    }
    let (status, _) = list_with(&proxy, &api, &guessed_key(99), Some("203.0.113.7")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the guesser");
    // Another client behind the same proxy.
    let (status, _) = list_with(&proxy, &api, &tenant_key, Some("198.51.100.2")).await;
    assert_eq!(status, StatusCode::OK, "another client behind the proxy");
    // A client that is not a trusted proxy cannot choose the address it is counted by.
    let direct = client_from("127.0.0.7");
    for n in 0..10 {
        list_with(
            &direct,
            &api,
            &guessed_key(n),
            Some(&format!("198.51.100.{n}")),
        )
        .await;
    }
    let (status, _) = list_with(&direct, &api, &tenant_key, Some("198.51.100.99")).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged X-Forwarded-For"
    );
}

//! The job endpoints, through HTTP, as a client sees them.

use serde_json::{json, Value};

use crate::helpers::{on_both_backends, spawn_app, time, Backend, TestApp};

async fn health_reports_both_dependencies_ok(app: TestApp) {
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let checks = match app.backend {
        Backend::Servers => json!({"postgres": "ok", "redis": "ok"}),
        Backend::Embedded => json!({"sqlite": "ok", "memory": "ok"}),
    };
    assert_eq!(body, json!({"status": "ok", "checks": checks}));
}

async fn the_original_example_body_creates_a_job_with_defaults_and_a_location(app: TestApp) {
    let body = json!({
        "name": "Test Job", "description": "A test job", "cronExpression": "0 */5 * * * *",
        "httpMethod": "POST", "httpUrl": format!("{}/post", app.target.url),
        "executionType": "AT_LEAST_ONCE"
    });
    let response = app.post_job(&body).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let mut job: Value = response.json().await.unwrap();
    let secret = job
        .as_object_mut()
        .and_then(|j| j.remove("signingSecret"))
        .expect("the signing secret, shown at creation only");
    assert!(secret.as_str().unwrap().starts_with("whsec_"));
    assert_eq!(job["signed"], true);
    let id = job["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/jobs/{id}"));
    assert_eq!(job["name"], "Test Job");
    assert_eq!(job["timezone"], "UTC");
    assert_eq!(job["maxRetries"], 3);
    assert_eq!(job["timeoutSeconds"], 90);
    assert_eq!(job["isActive"], true);
    assert_eq!(job["httpHeaders"], json!({}));
    assert_eq!(job["lastRunAt"], Value::Null);
    // The next run is on a five-minute boundary, in the future, written with milliseconds.
    let next = job["nextRunAt"].as_str().unwrap();
    assert!(next.ends_with(":00.000Z"), "{next}");
    let next = time(&job["nextRunAt"]);
    assert_eq!(chrono::Timelike::minute(&next) % 5, 0);
    assert!(next > time(&job["createdAt"]));

    let fetched: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(fetched, job);
}

async fn a_job_in_a_time_zone_gets_its_next_run_from_the_local_wall_clock(app: TestApp) {
    let job = app
        .create_job(json!({"cronExpression": "0 30 9 * * *", "timezone": "Asia/Kolkata"}))
        .await;
    // 09:30 in Kolkata (UTC+5:30) is 04:00 UTC.
    let next = job["nextRunAt"].as_str().unwrap();
    assert!(next.ends_with("T04:00:00.000Z"), "{next}");
    assert_eq!(job["timezone"], "Asia/Kolkata");
}

async fn unknown_and_malformed_ids_are_404_with_a_json_error(app: TestApp) {
    for (path, says) in [
        (format!("/api/v1/jobs/{}", uuid::Uuid::now_v7()), "no job"),
        ("/api/v1/jobs/not-a-uuid".to_string(), "no job"),
        (
            format!("/api/v1/jobs/{}/history", uuid::Uuid::now_v7()),
            "no job",
        ),
        // Not even text: still a JSON 404.
        ("/api/v1/jobs/%FF%FE".to_string(), "is not an id"),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
}

async fn unknown_routes_and_methods_get_json_errors(app: TestApp) {
    let response = app.get("/api/v2/nothing").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let response = app
        .client
        .put(format!("{}/api/v1/jobs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

async fn listing_is_newest_first_and_pages_with_an_opaque_cursor(app: TestApp) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let job = app.create_job(json!({"name": format!("job {i}")})).await;
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    ids.reverse();

    let page: Value = app.get("/api/v1/jobs?limit=2").await.json().await.unwrap();
    let mut seen: Vec<String> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    let mut cursor = page["nextCursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let page: Value = app
            .get(&format!("/api/v1/jobs?limit=2&cursor={c}"))
            .await
            .json()
            .await
            .unwrap();
        seen.extend(
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_string()),
        );
        cursor = page["nextCursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen, ids);
}

async fn the_list_searches_names_and_descriptions_and_shows_recent_outcomes(app: TestApp) {
    let report = app
        .create_job(json!({"name": "Nightly Report", "description": "for billing"}))
        .await;
    let sync = app
        .create_job(json!({"name": "hourly sync", "description": "50% of the off_peak window"}))
        .await;
    app.create_job(json!({"name": "other"})).await;
    let names = |page: Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap().to_string())
            .collect()
    };
    for (q, expected) in [
        ("report", vec!["Nightly Report"]),
        ("BILLING", vec!["Nightly Report"]),
        ("50%25", vec!["hourly sync"]),
        ("_", vec!["hourly sync"]),
        ("%25", vec!["hourly sync"]),
        ("%20", vec!["other", "hourly sync", "Nightly Report"]),
        ("nothing%20like%20it", vec![]),
    ] {
        let page = app.get_json(&format!("/api/v1/jobs?q={q}")).await;
        assert_eq!(names(page), expected, "q={q}");
    }
    let long = "x".repeat(201);
    let response = app.get(&format!("/api/v1/jobs?q={long}")).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["field"], "q", "{error}");
    // A NUL no name or description can hold is refused, not sent to the store.
    let response = app.get("/api/v1/jobs?q=a%00b").await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["field"], "q", "{error}");

    // Recent outcomes: the page's jobs' last finished fires, latest first, at most N.
    for _ in 0..3 {
        let fire = app
            .client
            .post(format!(
                "{}/api/v1/jobs/{}/trigger",
                app.address,
                sync["id"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(fire.status(), 202);
        app.drain_queue().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let page = app.get_json("/api/v1/jobs?recent=2").await;
    let jobs = page["jobs"].as_array().unwrap();
    let of = |id: &Value| jobs.iter().find(|j| j["id"] == *id).unwrap()["recent"].clone();
    let recent = of(&sync["id"]);
    let recent = recent.as_array().unwrap();
    assert_eq!(recent.len(), 2, "{page}");
    assert!(recent.iter().all(|r| r["status"] == "SUCCEEDED"), "{page}");
    assert!(time(&recent[0]["scheduledAt"]) > time(&recent[1]["scheduledAt"]));
    assert_eq!(of(&report["id"]), json!([]), "a job that never ran");
    // Each fire says how late its request went out.
    for fire in app.history(sync["id"].as_str().unwrap()).await {
        let lateness = fire["latenessMs"].as_i64().expect("lateness recorded");
        assert!((0..10_000).contains(&lateness), "{fire}");
    }
    assert!(
        app.get_json("/api/v1/jobs").await["jobs"][0]
            .get("recent")
            .is_none(),
        "only when asked"
    );
    let response = app.get("/api/v1/jobs?recent=21").await;
    assert_eq!(response.status(), 400);
}

async fn bad_list_queries_are_400_naming_the_parameter(app: TestApp) {
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=bogus", "cursor"),
        ("colour=red", "colour"),
    ] {
        let response = app.get(&format!("/api/v1/jobs?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_query", "{query}");
        assert_eq!(body["error"]["field"], field, "{query}");
    }
}

/// Each bad body: (body, status, code, field).
pub(crate) fn bad_bodies(target: &str) -> Vec<(String, u16, &'static str, Option<&'static str>)> {
    let ok = |overrides: Value| {
        let mut body = json!({"name": "n", "cronExpression": "* * * * * *", "httpUrl": target});
        if let (Some(b), Value::Object(o)) = (body.as_object_mut(), overrides) {
            b.extend(o);
        }
        body.to_string()
    };
    let without = |field: &str| {
        let mut body = json!({"name": "n", "cronExpression": "* * * * * *", "httpUrl": target});
        body.as_object_mut().unwrap().remove(field);
        body.to_string()
    };
    vec![
        ("{not json".into(), 400, "invalid_json", None),
        ("".into(), 400, "invalid_json", None),
        ("[1, 2]".into(), 400, "invalid_body", None),
        ("\"a string\"".into(), 400, "invalid_body", None),
        // A number too large to read names its field, as one merely out of range does.
        (
            format!(
                r#"{{"name": "n", "maxRetries": {}, "cronExpression": "* * * * * *"}}"#,
                "9".repeat(5000)
            ),
            422,
            "invalid_field",
            Some("maxRetries"),
        ),
        (
            ok(json!({"timeoutSeconds": 9_223_372_036_854_775_808u64})),
            422,
            "invalid_field",
            Some("timeoutSeconds"),
        ),
        (
            r#"{"name": "n", "httpHeaders": {"X-A": 1e999}}"#.into(),
            422,
            "invalid_field",
            Some("httpHeaders"),
        ),
        // Still not JSON after the number: the first fault found is the one named.
        ("{\"maxRetries\": 3,".into(), 400, "invalid_json", None),
        (without("name"), 422, "missing_field", Some("name")),
        (
            without("cronExpression"),
            422,
            "missing_field",
            Some("cronExpression"),
        ),
        (without("httpUrl"), 422, "missing_field", Some("httpUrl")),
        (ok(json!({"name": ""})), 422, "invalid_field", Some("name")),
        (ok(json!({"name": 42})), 422, "invalid_field", Some("name")),
        (
            ok(json!({"cronExpression": "* * * *"})),
            422,
            "invalid_field",
            Some("cronExpression"),
        ),
        (
            ok(json!({"cronExpression": "61 * * * * *"})),
            422,
            "invalid_field",
            Some("cronExpression"),
        ),
        (
            ok(json!({"cronExpression": "0 0 0 30 2 *"})),
            422,
            "invalid_field",
            Some("cronExpression"),
        ),
        (
            ok(json!({"timezone": "Mars/Olympus"})),
            422,
            "invalid_field",
            Some("timezone"),
        ),
        (
            ok(json!({"httpUrl": "ftp://example.com/x"})),
            422,
            "invalid_field",
            Some("httpUrl"),
        ),
        (
            ok(json!({"httpUrl": "not a url"})),
            422,
            "invalid_field",
            Some("httpUrl"),
        ),
        (
            ok(json!({"httpMethod": "FETCH"})),
            422,
            "invalid_field",
            Some("httpMethod"),
        ),
        (
            ok(json!({"httpMethod": "post"})),
            422,
            "invalid_field",
            Some("httpMethod"),
        ),
        (
            ok(json!({"maxRetries": 2.5})),
            422,
            "invalid_field",
            Some("maxRetries"),
        ),
        (
            ok(json!({"executionType": "EXACTLY_ONCE"})),
            422,
            "invalid_field",
            Some("executionType"),
        ),
        (
            ok(json!({"maxRetries": 21})),
            422,
            "invalid_field",
            Some("maxRetries"),
        ),
        (
            ok(json!({"maxRetries": -1})),
            422,
            "invalid_field",
            Some("maxRetries"),
        ),
        (
            ok(json!({"maxRetries": "3"})),
            422,
            "invalid_field",
            Some("maxRetries"),
        ),
        (
            ok(json!({"timeoutSeconds": 0})),
            422,
            "invalid_field",
            Some("timeoutSeconds"),
        ),
        (
            ok(json!({"timeoutSeconds": 91})),
            422,
            "invalid_field",
            Some("timeoutSeconds"),
        ),
        (
            ok(json!({"httpHeaders": ["a"]})),
            422,
            "invalid_field",
            Some("httpHeaders"),
        ),
        (
            ok(json!({"httpHeaders": {"X-Count": 1}})),
            422,
            "invalid_field",
            Some("httpHeaders.X-Count"),
        ),
        (
            ok(json!({"httpHeaders": {"Idempotency-Key": "mine"}})),
            422,
            "invalid_field",
            Some("httpHeaders"),
        ),
        (
            ok(json!({"httpBody": {"a": 1}})),
            422,
            "invalid_field",
            Some("httpBody"),
        ),
        // NUL is refused in every text field (PostgreSQL's text cannot hold it).
        (
            ok(json!({"description": "a\u{0}b"})),
            422,
            "invalid_field",
            Some("description"),
        ),
        (
            ok(json!({"httpBody": "a\u{0}b"})),
            422,
            "invalid_field",
            Some("httpBody"),
        ),
        (
            ok(json!({"name": "a\u{0}b"})),
            422,
            "invalid_field",
            Some("name"),
        ),
        (
            ok(json!({"isActive": "yes"})),
            422,
            "invalid_field",
            Some("isActive"),
        ),
        (
            ok(json!({"cronExpresion": "* * * * * *"})),
            422,
            "unknown_field",
            Some("cronExpresion"),
        ),
        (
            ok(json!({"id": "01a21c01-ea76-773b-b23f-6b2fc345f811"})),
            422,
            "unknown_field",
            Some("id"),
        ),
    ]
}

async fn every_bad_body_gets_its_status_and_a_json_error_naming_the_field_and_stores_nothing(
    app: TestApp,
) {
    let target = format!("{}/hook", app.target.url);
    for (body, status, code, field) in bad_bodies(&target) {
        let response = app.post_raw(&body).await;
        assert_eq!(response.status(), status, "body: {body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "body: {body}");
        assert_eq!(error["error"]["field"], json!(field), "body: {body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty(), "body: {body}");
        if let Some(field) = field {
            assert!(
                message.contains(field.split('.').next().unwrap()),
                "{message}"
            );
        }
    }
    assert_eq!(app.job_rows().await, 0);
    assert_eq!(app.execution_rows().await, 0);
}

async fn whole_numbers_written_with_a_decimal_point_are_whole_numbers(app: TestApp) {
    // JSON Schema's `integer` takes 3.0 and 1e1; so does the API.
    let job = app
        .create_job(json!({"maxRetries": 3.0, "timeoutSeconds": 1e1}))
        .await;
    assert_eq!(
        (job["maxRetries"].as_i64(), job["timeoutSeconds"].as_i64()),
        (Some(3), Some(10))
    );
}

async fn a_body_over_one_mebibyte_is_413(app: TestApp) {
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let response = app.post_raw(&huge).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert_eq!(app.job_rows().await, 0);
}

#[tokio::test]
async fn health_is_503_naming_postgres_when_the_database_is_unreachable() {
    use std::sync::Arc;
    use tickwork::api::AppState;
    use tickwork::store::PgStore;

    let app = spawn_app().await;
    // Port 1 (tcpmux): nothing listens there, and unlike a free port picked now, no other
    // test can start listening on it meanwhile.
    let port = 1;
    let options = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("postgres");
    let address = crate::helpers::serve_api(AppState {
        store: Arc::new(PgStore::connect_lazy(options, 1)),
        ..app.state()
    })
    .await;

    let response = reqwest::get(format!("{address}/health")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["redis"], "ok");
    assert_ne!(body["checks"]["postgres"], "ok");

    // Creating a job while the database is down is a 503, not a 500.
    let response = reqwest::Client::new()
        .post(format!("{address}/api/v1/jobs"))
        .body(app.job_body(json!({})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
}

async fn a_create_retried_with_its_idempotency_key_returns_the_first_job(app: TestApp) {
    let post = |key: String, body: Value| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/jobs", app.address);
        async move {
            client
                .post(url)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let body = app.job_body(json!({"name": "once"}));
    let first = post("create-once".into(), body.clone()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = post("create-once".into(), body.clone()).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert!(first["signingSecret"].is_string());
    assert!(
        again.get("signingSecret").is_none(),
        "shown in the first answer only"
    );
    assert_eq!(app.job_rows().await, 1);

    let other = post("create-once".into(), app.job_body(json!({"name": "other"}))).await;
    assert_eq!(other.status(), 422);
    let error: Value = other.json().await.unwrap();
    assert_eq!(error["error"]["code"], "idempotency_key_reused");
    assert_eq!(error["error"]["field"], "Idempotency-Key");
    let bad = post("x".repeat(300), body.clone()).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(app.job_rows().await, 1);

    // Five at once with a new key: one job.
    let racing = futures_util::future::join_all(
        (0..5).map(|_| post("racing".into(), app.job_body(json!({"name": "race"})))),
    )
    .await;
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for response in racing {
        created += usize::from(response.status() == 201);
        let job: Value = response.json().await.unwrap();
        ids.insert(job["id"].as_str().unwrap().to_string());
    }
    assert_eq!((created, ids.len()), (1, 1));
    assert_eq!(app.job_rows().await, 2);
}

async fn metrics_are_not_on_the_public_port_and_the_metrics_router_shows_queue_depths(
    app: TestApp,
) {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 404, "not public");
    let state = app.state();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(tickwork::api::serve_metrics(
        listener,
        Some(state),
        tickwork::config::ConnectionSettings::default(),
        std::future::pending(),
    ));
    let scrape = |accept: Option<&'static str>| {
        let url = format!("{address}/metrics");
        async move {
            let mut request = reqwest::Client::new().get(url);
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_string();
            (content_type, response.text().await.unwrap())
        }
    };
    let (content_type, text) = scrape(None).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        text.contains("tickwork_queue_depth{state=\"ready\"}"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE tickwork_fires_total counter"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");

    // A scraper that asks for OpenMetrics (as Prometheus does by default) gets it.
    let (content_type, text) = scrape(Some(
        "application/openmetrics-text;version=1.0.0;q=0.6,text/plain;version=0.0.4;q=0.3",
    ))
    .await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(
        text.contains("tickwork_queue_depth{state=\"ready\"}"),
        "{text}"
    );
    assert!(text.contains("# TYPE tickwork_fires counter"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

on_both_backends!(
    the_list_searches_names_and_descriptions_and_shows_recent_outcomes,
    metrics_are_not_on_the_public_port_and_the_metrics_router_shows_queue_depths,
    a_create_retried_with_its_idempotency_key_returns_the_first_job,
    health_reports_both_dependencies_ok,
    the_original_example_body_creates_a_job_with_defaults_and_a_location,
    a_job_in_a_time_zone_gets_its_next_run_from_the_local_wall_clock,
    unknown_and_malformed_ids_are_404_with_a_json_error,
    unknown_routes_and_methods_get_json_errors,
    listing_is_newest_first_and_pages_with_an_opaque_cursor,
    bad_list_queries_are_400_naming_the_parameter,
    every_bad_body_gets_its_status_and_a_json_error_naming_the_field_and_stores_nothing,
    whole_numbers_written_with_a_decimal_point_are_whole_numbers,
    a_body_over_one_mebibyte_is_413,
);

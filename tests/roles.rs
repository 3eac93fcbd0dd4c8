//! Key roles: a viewer key reads everything its tenant may see and changes nothing, on
//! every route that changes something, those added later too.

use serde_json::{json, Value};

use crate::auth::{call, key_for, keyed_api, OPERATOR_KEY};
use crate::helpers::{on_both_backends, TestApp};

/// Makes a key for `tenant` with `role`; returns the answer.
async fn make_key(api: &str, tenant: &str, role: Value) -> (reqwest::StatusCode, Value) {
    call(
        api,
        OPERATOR_KEY,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": format!("{tenant} {role}"), "tenant": tenant, "role": role})),
    )
    .await
}

async fn a_viewer_key_reads_and_every_write_route_refuses_it(app: TestApp) {
    let api = keyed_api(&app).await;
    let editor = key_for(&api, "acme").await;
    let (status, made) = make_key(&api, "acme", json!("viewer")).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["role"], "viewer");
    let viewer = made["key"].as_str().unwrap().to_string();

    let (status, job) = call(
        &api,
        &editor,
        "POST",
        "/api/v1/jobs",
        Some(app.job_body(json!({"name": "watched"}))),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();

    // It reads what its tenant may see.
    for path in [
        "/api/v1/jobs".to_string(),
        format!("/api/v1/jobs/{id}"),
        format!("/api/v1/jobs/{id}/history"),
        format!("/api/v1/jobs/{id}/schedule"),
        "/api/v1/dead-letters".to_string(),
        "/api/v1/api-keys".to_string(),
    ] {
        let (status, body) = call(&api, &viewer, "GET", &path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
    }
    let (_, me) = call(&api, &viewer, "GET", "/api/v1/me", None).await;
    assert_eq!(
        me,
        json!({"tenant": "acme", "role": "viewer", "operator": false})
    );
    let (_, keys) = call(&api, &viewer, "GET", "/api/v1/api-keys", None).await;
    let roles: Vec<&str> = keys["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles.len(), 2, "{keys}");
    assert!(
        roles.contains(&"viewer") && roles.contains(&"editor"),
        "{keys}"
    );

    // Every route that changes something, as the API document lists them, refuses it.
    let document = serde_json::to_value(tickwork::api::openapi()).unwrap();
    let mut refused = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if matches!(method.as_str(), "get" | "head") {
                continue;
            }
            let method = method.to_uppercase();
            let path = path.replace("{id}", &id);
            let body = matches!(method.as_str(), "POST" | "PATCH").then(|| {
                if path.ends_with("/api-keys") {
                    json!({"name": "made by a viewer", "role": "editor"})
                } else {
                    app.job_body(json!({"name": "changed by a viewer"}))
                }
            });
            let (status, error) = call(&api, &viewer, &method, &path, body).await;
            assert_eq!(status, 403, "{method} {path}: {error}");
            assert_eq!(error["error"]["code"], "forbidden", "{method} {path}");
            assert!(
                error["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("read-only"),
                "{error}"
            );
            refused += 1;
        }
    }
    assert!(refused >= 10, "every write route tried: {refused}");

    // Nothing changed: the job as it was, no other job, no other key.
    let (_, after) = call(&api, &editor, "GET", &format!("/api/v1/jobs/{id}"), None).await;
    assert_eq!(after["name"], "watched");
    assert_eq!(after["isActive"], true);
    assert_eq!(after["updatedAt"], job["updatedAt"]);
    assert_eq!(app.job_rows().await, 1);
    let (_, keys) = call(&api, OPERATOR_KEY, "GET", "/api/v1/api-keys", None).await;
    assert_eq!(keys["apiKeys"].as_array().unwrap().len(), 2, "{keys}");
    let (status, _) = call(&api, &viewer, "GET", "/api/v1/jobs", None).await;
    assert_eq!(status, 200, "the viewer's key still works");
}

async fn a_key_is_an_editor_unless_made_a_viewer_and_a_bad_role_is_named(app: TestApp) {
    let api = keyed_api(&app).await;
    // `null` is the same as leaving the role out.
    let (status, made) = make_key(&api, "acme", Value::Null).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["role"], "editor", "the default");
    let editor = made["key"].as_str().unwrap().to_string();
    let (status, job) = call(
        &api,
        &editor,
        "POST",
        "/api/v1/jobs",
        Some(app.job_body(json!({}))),
    )
    .await;
    assert_eq!(status, 201, "an editor changes things: {job}");

    for (role, message) in [
        (
            json!("VIEWER"),
            "role \"VIEWER\" is not supported; expected editor or viewer (in lower case)",
        ),
        (
            json!("admin"),
            "role \"admin\" is not supported; expected editor or viewer",
        ),
        (json!(1), "role must be a string, got a number"),
    ] {
        let (status, error) = make_key(&api, "acme", role.clone()).await;
        assert_eq!(status, 422, "{role}: {error}");
        assert_eq!(error["error"]["field"], "role", "{error}");
        assert_eq!(error["error"]["message"], message);
    }
    let (_, keys) = call(&api, OPERATOR_KEY, "GET", "/api/v1/api-keys", None).await;
    assert_eq!(
        keys["apiKeys"].as_array().unwrap().len(),
        1,
        "nothing made: {keys}"
    );
}

on_both_backends!(
    a_key_is_an_editor_unless_made_a_viewer_and_a_bad_role_is_named,
    a_viewer_key_reads_and_every_write_route_refuses_it,
);

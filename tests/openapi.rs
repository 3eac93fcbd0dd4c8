//! The OpenAPI document: the committed `docs/api-spec.yaml` is the one the code generates,
//! it is served with Swagger UI without a key, and it names the key on every other route.
//! (`.ci/contract` fuzzes the running API against it.)

use serde_json::Value;
use tickwork::api::{openapi, Auth};

use crate::helpers::{on_both_backends, serve_api, TestApp};

/// Where the committed copy lives.
const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api-spec.yaml");

#[test]
fn the_committed_api_spec_is_the_generated_one() {
    let generated = openapi().to_yaml().expect("the document renders as YAML");
    if std::env::var_os("UPDATE_API_SPEC").is_some() {
        std::fs::write(SPEC, &generated).expect("could not write docs/api-spec.yaml");
        return;
    }
    let committed = std::fs::read_to_string(SPEC).unwrap_or_default();
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "docs/api-spec.yaml is not the document the code generates (first difference at \
             line {}: committed {:?}, generated {:?}); refresh it with \
             `UPDATE_API_SPEC=1 cargo test -p tickwork-tests the_committed_api_spec` and \
             commit it",
            first + 1,
            committed.lines().nth(first).unwrap_or("<end>"),
            generated.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

#[test]
fn every_route_but_health_needs_a_key_and_documents_what_the_key_check_answers() {
    let document = serde_json::to_value(openapi()).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{:?}", paths.keys());
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let responses = operation["responses"].as_object().unwrap();
            if path == "/health" {
                assert_eq!(operation.get("security"), None);
                continue;
            }
            assert_eq!(
                operation["security"],
                serde_json::json!([{"apiKey": []}]),
                "{method} {path}"
            );
            for status in ["401", "429", "500", "503"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
            // A viewer's key is refused every method but GET.
            assert_eq!(
                responses.contains_key("403"),
                method != "get",
                "{method} {path}: 403"
            );
            // Every error answer has the one error shape.
            for (status, response) in responses {
                if status.starts_with('4') && response.get("$ref").is_none() {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path}: {status}"
                    );
                }
            }
        }
    }
    assert_eq!(operations, 23, "one per route and method");
}

async fn the_document_and_swagger_ui_are_served_without_a_key(app: TestApp) {
    let mut state = app.state();
    state.auth = Auth::keys(Some("an-operator-key-of-at-least-32-characters"));
    let address = serve_api(state).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("{address}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, serde_json::to_value(openapi()).unwrap());

    let response = client.get(format!("{address}/docs/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(response.text().await.unwrap().contains("swagger"));

    // The documented routes themselves still need the key.
    let response = client
        .get(format!("{address}/api/v1/jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

on_both_backends!(the_document_and_swagger_ui_are_served_without_a_key);

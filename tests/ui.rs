//! The dashboard's files as the API serves them: one page, its script and style, with a
//! policy that allows nothing else; the caller endpoint the page reads its key's role from.
//! The pages themselves are driven in Chromium by `tests/browser/dashboard.py`
//! (`.ci/browser`).

use crate::helpers::{on_both_backends, TestApp};

async fn the_dashboard_is_served_with_a_policy_that_allows_only_its_own_files(app: TestApp) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let moved = client
        .get(format!("{}/ui", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 308);
    assert_eq!(moved.headers()["location"], "/ui/");

    for (path, kind, holds) in [
        (
            "/ui/",
            "text/html",
            r#"<script type="module" src="/ui/app.js">"#,
        ),
        ("/ui/app.js", "text/javascript", "sessionStorage"),
        ("/ui/style.css", "text/css", "prefers-color-scheme: dark"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let header = |name: &str| headers[name].to_str().unwrap().to_string();
        assert!(header("content-type").starts_with(kind), "{path}");
        let policy = header("content-security-policy");
        for rule in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(rule), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe"), "{policy}");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("cache-control"), "no-store");
        assert!(headers.get("set-cookie").is_none(), "no cookie, so no CSRF");
        let body = response.text().await.unwrap();
        assert!(body.contains(holds), "{path}");
    }
    assert_eq!(app.get("/ui/missing.js").await.status(), 404);

    // Answers with a tenant's data are never kept by a cache.
    let jobs = app.get("/api/v1/jobs").await;
    assert_eq!(jobs.headers()["cache-control"], "no-store");
    // Keys off: the caller is the operator, an editor.
    let me: serde_json::Value = app.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(
        me,
        serde_json::json!({"tenant": "default", "role": "editor", "operator": true})
    );
}

on_both_backends!(the_dashboard_is_served_with_a_policy_that_allows_only_its_own_files,);

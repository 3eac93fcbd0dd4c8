//! The dashboard at `/ui`: one page, its script and its style, compiled into the binary
//! (no build step, nothing fetched from elsewhere). The page is a client of the public
//! JSON API with the caller's own key, so everything it shows and does is within reach of
//! a script too (`docs/decisions.md`, "The dashboard is a client of the API").
//!
//! Every answer carries a policy that allows only these files and calls to this origin,
//! forbids framing, and is not stored by caches.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// The page.
const PAGE: &str = include_str!("assets/index.html");
/// Its script (an ES module).
const SCRIPT: &str = include_str!("assets/app.js");
/// Its style.
const STYLE: &str = include_str!("assets/style.css");

/// What the page may load and do: its own script and style, calls to this origin, no
/// inline script or style, no plugins, no framing, forms posting nowhere else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The dashboard's routes, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route(
            "/ui/",
            get(|| async { file("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/ui/style.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
}

/// One of the dashboard's files with the headers every answer of it carries.
fn file(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 7] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files_and_nothing_inline() {
        assert!(PAGE.contains(r#"<script type="module" src="/ui/app.js"></script>"#));
        assert!(PAGE.contains(r#"<link rel="stylesheet" href="/ui/style.css">"#));
        // The policy forbids inline script and style, so the page must hold none.
        assert_eq!(PAGE.matches("<script").count(), 1);
        assert!(!PAGE.contains("<style") && !PAGE.contains("style="));
        for handler in ["onclick=", "onload=", "onerror=", "onsubmit="] {
            assert!(!PAGE.contains(handler), "{handler}");
        }
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("eval("));
    }
}

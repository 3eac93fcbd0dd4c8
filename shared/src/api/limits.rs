//! The sizes of a request's line and headers the API reads, below hyper's own limits so
//! that a common oversize request gets an answer in the API's shape (JSON 414 and 431)
//! rather than hyper's empty one.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Longest path and query read (8 KiB; hyper's own limit is 65,534 bytes).
pub const URI_LIMIT: usize = 8 * 1024;

/// Largest set of headers read, counted as `name: value\r\n` per header (16 KiB; hyper's
/// own limits are 100 headers and its read buffer).
pub const HEADERS_LIMIT: usize = 16 * 1024;

/// Refuses a request whose path and query or whose headers are over the limits.
pub async fn within_limits(request: Request, next: Next) -> Response {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if uri > URI_LIMIT {
        return ApiError::uri_too_long(URI_LIMIT).into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > HEADERS_LIMIT {
        return ApiError::headers_too_large(HEADERS_LIMIT).into_response();
    }
    next.run(request).await
}

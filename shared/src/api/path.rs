//! The `{id}` of a route, as the caller wrote it. Handlers decide what it names (a job, an
//! execution, a key) and answer 404 for anything that is not one; a path that is not even
//! valid text gets the same JSON 404 rather than axum's plain-text 400.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::error::ApiError;

/// The route's `{id}` segment, decoded.
pub struct RawId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RawId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(RawId(id)),
            Err(rejection) => Err(ApiError::not_an_id(&rejection.body_text())),
        }
    }
}

/// A job id from the path; one that is not an id is no job (404).
pub(super) fn parse_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::job_not_found(raw))
}

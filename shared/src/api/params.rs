//! Query strings and path ids as the routes read them.

use std::collections::HashMap;

use axum::extract::Query;
use uuid::Uuid;

use super::error::ApiError;

/// A route's query string as pairs, or why it could not be read.
pub(super) type QueryParams =
    Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

/// A job id from the path; one that is not an id is no job (404).
pub(super) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::job_not_found(raw))
}

/// Reads the query string, refusing parameters the route does not take.
pub(super) fn query<'a>(
    params: &'a HashMap<String, String>,
    allowed: &[&str],
) -> Result<impl Fn(&str) -> Option<&'a str>, ApiError> {
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid_query(
            unknown,
            format!(
                "unknown query parameter {unknown:?}; expected {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(move |name: &str| params.get(name).map(String::as_str))
}

pub(super) fn count(
    name: &str,
    raw: Option<&str>,
    (default, max): (u32, u32),
) -> Result<u32, ApiError> {
    match raw {
        None => Ok(default),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid_query(
                name,
                format!("{name} is {raw:?}; expected a whole number from 1 to {max}"),
            )),
        },
    }
}

pub(super) fn flag(name: &str, raw: Option<&str>) -> Result<Option<bool>, ApiError> {
    match raw {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::invalid_query(
            name,
            format!("{name} is {other:?}; expected true or false"),
        )),
    }
}

pub(super) fn query_map(query: QueryParams) -> Result<HashMap<String, String>, ApiError> {
    query
        .map(|Query(map)| map)
        .map_err(|e| ApiError::invalid_query("query", format!("query string is malformed: {e}")))
}

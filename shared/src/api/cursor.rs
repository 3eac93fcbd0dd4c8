//! Opaque page cursors. Callers pass them back unchanged; their content is ours to change.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::ApiError;
use crate::model::JobName;
use crate::store::JobCursor;

const JOBS: &str = "j1";
const JOBS_BY_NAME: &str = "n1";
const HISTORY: &str = "h1";

fn malformed() -> ApiError {
    ApiError::invalid_query(
        "cursor",
        "cursor is not one this API issued; pass nextCursor from the previous page unchanged",
    )
}

fn decode(raw: &str, kind: &str) -> Result<Vec<String>, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| malformed())?;
    let text = String::from_utf8(bytes).map_err(|_| malformed())?;
    let mut parts = text.split(':').map(str::to_string);
    match parts.next() {
        Some(k) if k == kind => Ok(parts.collect()),
        _ => Err(malformed()),
    }
}

fn micros(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    raw.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(malformed)
}

/// Encodes a position in a job list.
pub fn encode_jobs(cursor: &JobCursor) -> String {
    URL_SAFE_NO_PAD.encode(match cursor {
        JobCursor::Newest { created_at, id } => {
            format!("{JOBS}:{}:{}", created_at.timestamp_micros(), id.simple())
        }
        // The name goes last: it may hold the separator.
        JobCursor::Name { name, id } => format!("{JOBS_BY_NAME}:{}:{name}", id.simple()),
    })
}

/// Reads a job-list cursor, of either order.
pub fn decode_jobs(raw: &str) -> Result<JobCursor, ApiError> {
    if let Ok(parts) = decode(raw, JOBS) {
        return match parts.as_slice() {
            [created, id] => Ok(JobCursor::Newest {
                created_at: micros(created)?,
                id: Uuid::parse_str(id).map_err(|_| malformed())?,
            }),
            _ => Err(malformed()),
        };
    }
    let parts = decode(raw, JOBS_BY_NAME)?;
    let Some((id, name)) = parts.split_first() else {
        return Err(malformed());
    };
    // Only a name a job can hold: a cursor is read back into a query.
    let name = JobName::parse(&name.join(":")).map_err(|_| malformed())?;
    Ok(JobCursor::Name {
        name: name.as_str().to_string(),
        id: Uuid::parse_str(id).map_err(|_| malformed())?,
    })
}

/// Encodes the position after the fire scheduled at `scheduled_at` in a history.
pub fn encode_history(scheduled_at: DateTime<Utc>) -> String {
    URL_SAFE_NO_PAD.encode(format!("{HISTORY}:{}", scheduled_at.timestamp_micros()))
}

/// Reads a history cursor.
pub fn decode_history(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    match decode(raw, HISTORY)?.as_slice() {
        [at] => micros(at),
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_each_other() {
        let c = JobCursor::Newest {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(decode_jobs(&encode_jobs(&c)).unwrap(), c);
        let named = JobCursor::Name {
            name: "a:b::c".into(),
            id: Uuid::now_v7(),
        };
        assert_eq!(decode_jobs(&encode_jobs(&named)).unwrap(), named);
        let at = DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap();
        assert_eq!(decode_history(&encode_history(at)).unwrap(), at);
        assert!(decode_history(&encode_jobs(&c)).is_err());
        assert!(decode_history(&encode_jobs(&named)).is_err());
        assert!(decode_jobs("garbage!").is_err());
        let nul =
            URL_SAFE_NO_PAD.encode(format!("{JOBS_BY_NAME}:{}:a\0b", Uuid::now_v7().simple()));
        assert!(decode_jobs(&nul).is_err());
    }
}

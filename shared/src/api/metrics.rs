//! `GET /metrics`: this process's metrics, in the Prometheus text format or, when the
//! scraper's `Accept` asks for it, in OpenMetrics.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;
use crate::metrics::{render_as, Depths, Format};

/// The API's `GET /metrics`: this process's counters plus the queue depths an autoscaler
/// scales on.
pub async fn with_depths(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (queue, retrying) =
        tokio::join!(state.queue.stats(), state.store.execution_count_retrying());
    let queue = queue?;
    let depths = Depths {
        ready: queue.ready,
        scheduled: queue.scheduled,
        processing: queue.processing,
        retrying: retrying?,
        failed: queue.failed,
    };
    scrape(&headers, Some(depths))
}

/// `GET /metrics` of a process without a queue to read (the tick, the worker).
pub async fn without_depths(headers: HeaderMap) -> Result<Response, ApiError> {
    scrape(&headers, None)
}

fn scrape(headers: &HeaderMap, depths: Option<Depths>) -> Result<Response, ApiError> {
    let format = requested_format(headers);
    let body = render_as(format, depths).map_err(|error| ApiError::internal(&error))?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// OpenMetrics when an `Accept` entry names `application/openmetrics-text` (any version)
/// with a quality above 0; the Prometheus text format otherwise, as for a scraper that
/// sends no `Accept`.
fn requested_format(headers: &HeaderMap) -> Format {
    let asks_for_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let media_type = parts.next().unwrap_or_default();
            let quality = parts
                .filter_map(|parameter| parameter.strip_prefix("q="))
                .map(|q| q.parse::<f32>().unwrap_or(0.0))
                .next()
                .unwrap_or(1.0);
            media_type.eq_ignore_ascii_case("application/openmetrics-text") && quality > 0.0
        });
    if asks_for_openmetrics {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_for(accept: &[&str]) -> Format {
        let mut headers = HeaderMap::new();
        for value in accept {
            headers.append(header::ACCEPT, value.parse().unwrap());
        }
        requested_format(&headers)
    }

    #[test]
    fn openmetrics_only_when_asked_for() {
        assert_eq!(format_for(&[]), Format::Prometheus);
        assert_eq!(format_for(&["*/*"]), Format::Prometheus);
        assert_eq!(
            format_for(&["text/plain;version=0.0.4;q=0.3,*/*;q=0.2"]),
            Format::Prometheus
        );
        // What Prometheus sends by default.
        assert_eq!(
            format_for(&[
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
                 application/openmetrics-text;version=0.0.1;q=0.5,\
                 text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
                 text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
            ]),
            Format::OpenMetrics
        );
        assert_eq!(
            format_for(&["text/plain", "Application/OpenMetrics-Text"]),
            Format::OpenMetrics
        );
        assert_eq!(
            format_for(&["application/openmetrics-text;q=0, text/plain"]),
            Format::Prometheus
        );
    }
}

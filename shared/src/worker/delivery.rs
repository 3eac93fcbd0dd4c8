//! One HTTP call to a job's target, with tickwork's headers.

use std::time::Duration;

use chrono::SecondsFormat;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use tokio::time::Instant;

use crate::model::Delivery;
use crate::telemetry::error_chain;

/// Most response bytes read before the rest is dropped.
pub const RESPONSE_READ_LIMIT: usize = 64 * 1024;

/// What the target did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// The HTTP status, when the target answered.
    pub status: Option<u16>,
    /// Why the attempt failed: a non-2xx status, a timeout, a connection error.
    pub error: Option<String>,
    /// From sending the request to reading the response.
    pub duration: Duration,
}

impl CallResult {
    /// True for a 2xx answer.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Builds the HTTP client every call shares: keep-alive pools, no redirects (a 3xx is an
/// answer, not an instruction to call somewhere else).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tickwork/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
}

/// The headers tickwork adds to every request, beside the job's own.
pub fn tickwork_headers(delivery: &Delivery) -> Vec<(&'static str, String)> {
    vec![
        ("idempotency-key", delivery.execution_id.to_string()),
        ("x-tickwork-job-id", delivery.job_id.to_string()),
        ("x-tickwork-execution-id", delivery.execution_id.to_string()),
        (
            "x-tickwork-scheduled-at",
            delivery
                .scheduled_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
        ("x-tickwork-attempt", delivery.attempt.to_string()),
    ]
}

fn request_headers(delivery: &Delivery) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in delivery.target.headers.iter() {
        // Checked when the job was stored; a header that no longer parses is skipped.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    if let Some(body) = delivery.target.body.as_deref() {
        if !headers.contains_key(CONTENT_TYPE) {
            let kind = if serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
        }
    }
    for (name, value) in tickwork_headers(delivery) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers
}

/// Calls the target once. The timeout is the job's, never more than `ceiling`.
pub async fn call(client: &reqwest::Client, delivery: &Delivery, ceiling: Duration) -> CallResult {
    let timeout = Duration::from_secs(u64::from(delivery.timeout_seconds)).min(ceiling);
    let method = reqwest::Method::from_bytes(delivery.target.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut request = client
        .request(method, delivery.target.url.as_str())
        .headers(request_headers(delivery))
        .timeout(timeout);
    if let Some(body) = delivery.target.body.as_deref() {
        request = request.body(body.to_string());
    }

    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, async {
        let mut response = request.send().await?;
        let status = response.status();
        // Read (and drop) the body so the connection can be reused.
        let mut read = 0usize;
        while read < RESPONSE_READ_LIMIT {
            match response.chunk().await? {
                Some(chunk) => read += chunk.len(),
                None => break,
            }
        }
        Ok::<_, reqwest::Error>(status)
    })
    .await;
    let duration = started.elapsed();

    match outcome {
        Ok(Ok(status)) => CallResult {
            status: Some(status.as_u16()),
            error: (!status.is_success()).then(|| format!("target responded {status}")),
            duration,
        },
        Ok(Err(error)) => CallResult {
            status: None,
            error: Some(describe_error(&error, timeout)),
            duration,
        },
        Err(_) => CallResult {
            status: None,
            error: Some(format!("request timed out after {}s", timeout.as_secs())),
            duration,
        },
    }
}

fn describe_error(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        format!("request timed out after {}s", timeout.as_secs())
    } else if error.is_connect() {
        format!("could not connect to the target: {}", error_chain(error))
    } else {
        format!("request failed: {}", error_chain(error))
    }
}

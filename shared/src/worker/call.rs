//! One call to a job's target, and what came of it.

use std::time::Duration;

use tokio::time::Instant;

use super::delivery::{request_headers, Scrubber, RESPONSE_KEPT, RESPONSE_READ_LIMIT};
use super::WorkerSettings;
use crate::model::Delivery;
use crate::outbound::{refusal_in, Refused, TargetPolicy};
use crate::telemetry::error_chain;

/// What came of one call: each case carries what it has, and nothing it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The target answered, with any status.
    Answered {
        /// The HTTP status.
        status: u16,
        /// How long the target asked to wait before trying again (`Retry-After`).
        retry_after: Option<Duration>,
        /// The start of the body (up to [`RESPONSE_KEPT`] bytes), when there was one.
        body: Option<String>,
        /// From sending the request to reading the answer.
        duration: Duration,
    },
    /// No answer came (a timeout, a connection error): another attempt may go differently.
    Unanswered {
        /// What went wrong.
        error: String,
        /// From sending the request to giving up.
        duration: Duration,
    },
    /// No request was sent (the outbound guard refused the address, or a sealed value did
    /// not open), and another attempt would end the same way: never retried.
    NotSent {
        /// Why.
        error: String,
        /// Time spent before the refusal (a name resolved to a refused address).
        duration: Duration,
    },
}

impl CallOutcome {
    /// An attempt the outbound guard stopped before any request was sent.
    pub fn refused(refused: &Refused, duration: Duration) -> Self {
        Self::NotSent {
            error: format!("target refused, not called: {refused}"),
            duration,
        }
    }

    /// True for a 2xx answer.
    pub fn succeeded(&self) -> bool {
        matches!(self, Self::Answered { status, .. } if (200..300).contains(status))
    }

    /// The HTTP status, when the target answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Why the attempt failed: a non-2xx status, a timeout, a connection error, a refusal.
    pub fn error(&self) -> Option<String> {
        match self {
            Self::Answered { status, .. } if (200..300).contains(status) => None,
            Self::Answered { status, .. } => Some(match reqwest::StatusCode::from_u16(*status) {
                Ok(code) => format!("target responded {code}"),
                Err(_) => format!("target responded {status}"),
            }),
            Self::Unanswered { error, .. } | Self::NotSent { error, .. } => Some(error.clone()),
        }
    }

    /// The start of the target's answer, when it gave one with a body.
    pub fn body(&self) -> Option<&str> {
        match self {
            Self::Answered { body, .. } => body.as_deref(),
            _ => None,
        }
    }

    /// How long the attempt took.
    pub fn duration(&self) -> Duration {
        match self {
            Self::Answered { duration, .. }
            | Self::Unanswered { duration, .. }
            | Self::NotSent { duration, .. } => *duration,
        }
    }
}

/// Calls the target once. The timeout is the job's, never more than `WORKER_HTTP_TIMEOUT`.
pub async fn call(
    client: &reqwest::Client,
    settings: &WorkerSettings,
    delivery: &Delivery,
) -> CallOutcome {
    // A literal address never reaches the resolver, so it is checked here.
    if let Err(refused) = literal_address_allowed(&settings.targets, delivery) {
        return CallOutcome::refused(&refused, Duration::ZERO);
    }
    let timeout =
        Duration::from_secs(u64::from(delivery.timeout_seconds)).min(settings.http_timeout);
    let (request, scrubber) = match prepare(client, settings, delivery, timeout) {
        Ok(prepared) => prepared,
        Err(why) => {
            return CallOutcome::NotSent {
                error: format!("request not sent: {why}"),
                duration: Duration::ZERO,
            }
        }
    };
    let started = Instant::now();
    let answer = tokio::time::timeout(timeout, read_answer(request, &scrubber)).await;
    let duration = started.elapsed();
    match answer {
        Ok(Ok((status, retry_after, body))) => CallOutcome::Answered {
            status,
            retry_after,
            body,
            duration,
        },
        Ok(Err(error)) => match refusal_in(&error) {
            Some(refused) => CallOutcome::refused(refused, duration),
            None => CallOutcome::Unanswered {
                // Without the URL: its path and query may hold credentials.
                error: describe_error(&error.without_url(), timeout),
                duration,
            },
        },
        Err(_) => CallOutcome::Unanswered {
            error: format!("request timed out after {}s", timeout.as_secs()),
            duration,
        },
    }
}

/// The request, its sealed values opened, and the scrubber for the secrets it carries.
fn prepare(
    client: &reqwest::Client,
    settings: &WorkerSettings,
    delivery: &Delivery,
    timeout: Duration,
) -> Result<(reqwest::RequestBuilder, Scrubber), String> {
    let keyring = settings.keyring.as_deref();
    let (headers, mut secrets) = request_headers(delivery, keyring)?;
    let (url, opened) =
        crate::secrets::query::open(keyring, delivery.job_id, delivery.target.url.as_str())?;
    secrets.extend(opened);
    let method = reqwest::Method::from_bytes(delivery.target.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut request = client
        .request(method, url.as_str())
        .headers(headers)
        .timeout(timeout);
    if let Some(body) = delivery.target.body.as_deref() {
        request = request.body(body.to_string());
    }
    Ok((request, Scrubber::new(&secrets)))
}

/// Sends the request and reads up to [`RESPONSE_READ_LIMIT`] bytes of the answer (so the
/// connection can be reused), keeping its start, scrubbed.
async fn read_answer(
    request: reqwest::RequestBuilder,
    scrubber: &Scrubber,
) -> Result<(u16, Option<Duration>, Option<String>), reqwest::Error> {
    let mut response = request.send().await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    // With secrets to scrub, a little more: one that starts in the excerpt and ends past it.
    let keep = RESPONSE_KEPT + scrubber.longest();
    let mut kept = Vec::new();
    let mut read = 0usize;
    while read < RESPONSE_READ_LIMIT {
        match response.chunk().await? {
            Some(chunk) => {
                let room = keep.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                read += chunk.len();
            }
            None => break,
        }
    }
    // As text, each byte that is not UTF-8, and each NUL (which PostgreSQL's text cannot
    // hold), shown as U+FFFD.
    let body = (!kept.is_empty()).then(|| {
        let text = String::from_utf8_lossy(&kept);
        let text = if text.contains('\0') {
            text.replace('\0', "\u{FFFD}")
        } else {
            text.into_owned()
        };
        scrubber.excerpt(text)
    });
    Ok((status, retry_after, body))
}

/// Reads `Retry-After`: delay-seconds, or an HTTP date (counted from this host's clock).
pub fn parse_retry_after(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// Checks the target's host when the URL names an address rather than a name.
fn literal_address_allowed(targets: &TargetPolicy, delivery: &Delivery) -> Result<(), Refused> {
    let url = delivery.target.url.as_url();
    let host = url.host_str().unwrap_or_default();
    match url.host() {
        Some(url::Host::Ipv4(ip)) => targets.check_all(host, [std::net::IpAddr::V4(ip)]),
        Some(url::Host::Ipv6(ip)) => targets.check_all(host, [std::net::IpAddr::V6(ip)]),
        _ => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_says_only_what_it_has() {
        let answered = |status| CallOutcome::Answered {
            status,
            retry_after: None,
            body: Some("fine".into()),
            duration: Duration::from_millis(5),
        };
        assert!(answered(204).succeeded());
        assert_eq!(answered(204).error(), None);
        assert_eq!(
            answered(503).error().as_deref(),
            Some("target responded 503 Service Unavailable")
        );
        assert_eq!(answered(503).body(), Some("fine"));
        let unanswered = CallOutcome::Unanswered {
            error: "request timed out after 5s".into(),
            duration: Duration::from_secs(5),
        };
        assert!(!unanswered.succeeded());
        assert_eq!((unanswered.status(), unanswered.body()), (None, None));
        assert_eq!(unanswered.duration(), Duration::from_secs(5));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let parsed = parse_retry_after(&later.replace("+0000", "GMT")).unwrap();
        assert!(parsed > Duration::from_secs(80) && parsed <= Duration::from_secs(90));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            None,
            "in the past"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}

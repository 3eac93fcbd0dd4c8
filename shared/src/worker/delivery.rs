//! One HTTP call to a job's target, with tickwork's headers.

use std::time::Duration;

use chrono::SecondsFormat;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use tokio::time::Instant;

use std::sync::Arc;

use crate::model::Delivery;
use crate::outbound::{refusal_in, GuardedResolver, Refused, TargetPolicy};
use crate::secrets::{header_context, is_sealed, sign, signing_context, Keyring};
use crate::telemetry::error_chain;

/// Most response bytes read before the rest is dropped.
pub const RESPONSE_READ_LIMIT: usize = 64 * 1024;

/// Most response bytes kept in an attempt's history.
pub const RESPONSE_KEPT: usize = 2 * 1024;

/// What the target did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// The HTTP status, when the target answered.
    pub status: Option<u16>,
    /// Why the attempt failed: a non-2xx status, a timeout, a connection error.
    pub error: Option<String>,
    /// From sending the request to reading the response.
    pub duration: Duration,
    /// How long the target asked to wait before trying again (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The start of the response body (up to [`RESPONSE_KEPT`] bytes), when there was one.
    pub body: Option<String>,
    /// No request was sent (the outbound guard refused the address, or a sealed value did
    /// not open), and another attempt would end the same way: not retried.
    pub refused: bool,
}

impl CallResult {
    /// An attempt the outbound guard stopped before any request was sent.
    pub fn refused(refused: &Refused, duration: Duration) -> Self {
        Self {
            status: None,
            error: Some(format!("target refused, not called: {refused}")),
            duration,
            retry_after: None,
            body: None,
            refused: true,
        }
    }

    /// An attempt that could not be prepared (a sealed value that does not open): no
    /// request was sent, and another attempt would fail the same way.
    pub fn unsendable(error: String) -> Self {
        Self {
            status: None,
            error: Some(error),
            duration: Duration::ZERO,
            retry_after: None,
            body: None,
            refused: true,
        }
    }

    /// True for a 2xx answer.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Builds the HTTP client every call shares: keep-alive pools, no redirects (a 3xx is an
/// answer, not an instruction to call somewhere else), no proxy, and the outbound guard's
/// resolver.
pub fn http_client(targets: &TargetPolicy) -> Result<reqwest::Client, reqwest::Error> {
    let builder = if targets.is_guarded() {
        reqwest::Client::builder().dns_resolver(Arc::new(GuardedResolver::new(targets.clone())))
    } else {
        reqwest::Client::builder()
    };
    builder
        .redirect(reqwest::redirect::Policy::none())
        // Connect to targets directly: through an HTTP(S)_PROXY from the environment the
        // guard would check the proxy's address instead of the target's.
        .no_proxy()
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

/// The request's headers, and the secret values opened for them (to scrub from what the
/// target answers).
fn request_headers(
    delivery: &Delivery,
    keyring: Option<&Keyring>,
) -> Result<(HeaderMap, Vec<String>), String> {
    let open = |value: &str, context: &str| -> Result<String, String> {
        let keyring = keyring.ok_or("a sealed value needs ENCRYPTION_KEY, which is not set")?;
        keyring.open(value, context).map_err(|e| e.to_string())
    };
    let mut headers = HeaderMap::new();
    let mut secrets = Vec::new();
    for (name, value) in delivery.target.headers.iter() {
        // Every value the API sealed (credential headers, those marked secret) is opened, in
        // this job's context.
        let value = if is_sealed(value) {
            let opened = open(value, &header_context(delivery.job_id, name))
                .map_err(|e| format!("header {name}: {e}"))?;
            secrets.push(opened.clone());
            opened
        } else {
            value.to_string()
        };
        // Checked when the job was stored; a header that no longer parses is skipped.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    let body = delivery.target.body.as_deref();
    if let Some(body) = body {
        if !headers.contains_key(CONTENT_TYPE) {
            let kind = if serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
        }
    }
    let mut ours = tickwork_headers(delivery);
    if !delivery.signing_secrets.is_empty() {
        // Standard Webhooks: the execution id (the same on every attempt), the time of
        // this attempt, and one signature per secret (two during a rotation).
        let id = delivery.execution_id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let signatures = delivery
            .signing_secrets
            .iter()
            .map(|sealed| {
                let secret = open(sealed, &signing_context(delivery.job_id))
                    .map_err(|e| format!("signing secret: {e}"))?;
                sign(&secret, &id, timestamp, body.unwrap_or("").as_bytes())
                    .map_err(|e| format!("signing secret: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        ours.push(("webhook-id", id));
        ours.push(("webhook-timestamp", timestamp.to_string()));
        ours.push(("webhook-signature", signatures.join(" ")));
    }
    for (name, value) in ours {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    Ok((headers, secrets))
}

/// Calls the target once. The timeout is the job's, never more than `ceiling`.
pub async fn call(
    client: &reqwest::Client,
    settings: &super::WorkerSettings,
    delivery: &Delivery,
) -> CallResult {
    let ceiling = settings.http_timeout;
    // A literal address never reaches the resolver, so it is checked here.
    if let Err(refused) = literal_address_allowed(&settings.targets, delivery) {
        return CallResult::refused(&refused, Duration::ZERO);
    }
    let (headers, mut secrets) = match request_headers(delivery, settings.keyring.as_deref()) {
        Ok(opened) => opened,
        Err(why) => return CallResult::unsendable(format!("request not sent: {why}")),
    };
    let url = match crate::secrets::query::open(
        settings.keyring.as_deref(),
        delivery.job_id,
        delivery.target.url.as_str(),
    ) {
        Ok((url, opened)) => {
            secrets.extend(opened);
            url
        }
        Err(why) => return CallResult::unsendable(format!("request not sent: {why}")),
    };
    let timeout = Duration::from_secs(u64::from(delivery.timeout_seconds)).min(ceiling);
    let method = reqwest::Method::from_bytes(delivery.target.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut request = client
        .request(method, url.as_str())
        .headers(headers)
        .timeout(timeout);
    if let Some(body) = delivery.target.body.as_deref() {
        request = request.body(body.to_string());
    }

    let scrubber = Scrubber::new(&secrets);
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, async {
        let mut response = request.send().await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Read up to the limit, keeping the start, so the connection can be reused. With
        // secrets to scrub, a little more: one that starts in the excerpt and ends past it.
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
        // As text, each byte that is not UTF-8, and each NUL (which PostgreSQL's text
        // cannot hold), shown as U+FFFD.
        let body = (!kept.is_empty()).then(|| {
            let text = String::from_utf8_lossy(&kept);
            let text = if text.contains('\0') {
                text.replace('\0', "\u{FFFD}")
            } else {
                text.into_owned()
            };
            scrubber.excerpt(text)
        });
        Ok::<_, reqwest::Error>((status, retry_after, body))
    })
    .await;
    let duration = started.elapsed();

    match outcome {
        Ok(Ok((status, retry_after, body))) => CallResult {
            status: Some(status.as_u16()),
            error: (!status.is_success()).then(|| format!("target responded {status}")),
            duration,
            retry_after,
            body,
            refused: false,
        },
        Ok(Err(error)) => match refusal_in(&error) {
            Some(refused) => CallResult::refused(refused, duration),
            None => CallResult {
                status: None,
                // Without the URL: its path and query may hold credentials.
                error: Some(describe_error(&error.without_url(), timeout)),
                duration,
                retry_after: None,
                body: None,
                refused: false,
            },
        },
        Err(_) => CallResult {
            status: None,
            error: Some(format!("request timed out after {}s", timeout.as_secs())),
            duration,
            retry_after: None,
            body: None,
            refused: false,
        },
    }
}

/// Secret values shorter than this are not scrubbed from answers: a one- or two-character
/// value would mask ordinary text.
pub const SHORTEST_SCRUBBED: usize = 4;

/// Takes the secrets a request carried out of what its target answered: each as sent,
/// JSON-escaped and percent-encoded becomes the mask, before the excerpt is cut.
struct Scrubber {
    /// Every form of every secret, longest first (so a form holding another goes first).
    forms: Vec<String>,
}

impl Scrubber {
    fn new(secrets: &[String]) -> Self {
        let mut forms: Vec<String> = secrets
            .iter()
            .filter(|secret| secret.len() >= SHORTEST_SCRUBBED)
            .flat_map(|secret| {
                let json = serde_json::to_string(secret).unwrap_or_default();
                let json = json.trim_matches('"').to_string();
                let form: String =
                    url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
                let percent = form.replace('+', "%20");
                [secret.clone(), json, form, percent]
            })
            .collect();
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        forms.dedup();
        Self { forms }
    }

    /// The longest form, in bytes (0 without secrets).
    fn longest(&self) -> usize {
        self.forms.first().map_or(0, String::len)
    }

    /// `text` scrubbed and cut to [`RESPONSE_KEPT`] bytes.
    fn excerpt(&self, mut text: String) -> String {
        if self.forms.is_empty() {
            return text;
        }
        for form in &self.forms {
            if text.contains(form.as_str()) {
                text = text.replace(form.as_str(), crate::secrets::MASK);
            }
        }
        if text.len() > RESPONSE_KEPT {
            let mut end = RESPONSE_KEPT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }
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
    fn secrets_are_scrubbed_from_answers_in_every_form_before_the_cut() {
        let secret = "s3cr\"et value/+&".to_string();
        let scrubber = Scrubber::new(&[secret.clone(), "ab".to_string()]);
        let answer = format!(
            "{{\"headers\":{{\"X-Custom\":{}}}}} raw={secret} query=s3cr%22et%20value%2F%2B%26 \
             form=s3cr%22et+value%2F%2B%26 ab",
            serde_json::to_string(&secret).unwrap()
        );
        let scrubbed = scrubber.excerpt(answer);
        assert!(!scrubbed.contains("s3cr"), "{scrubbed}");
        assert_eq!(
            scrubbed.matches(crate::secrets::MASK).count(),
            4,
            "{scrubbed}"
        );
        assert!(
            scrubbed.ends_with(" ab"),
            "short values are left: {scrubbed}"
        );

        // One that starts inside the excerpt and ends past it.
        let long = format!("{}{secret}", "x".repeat(RESPONSE_KEPT - 3));
        let scrubbed = scrubber.excerpt(long);
        assert!(!scrubbed.contains("s3c"), "a piece of the secret was kept");
        assert!(scrubbed.len() <= RESPONSE_KEPT);
        assert!(scrubber.longest() >= secret.len());
        assert_eq!(Scrubber::new(&[]).longest(), 0);
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

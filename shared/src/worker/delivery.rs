//! One HTTP call to a job's target, with tickwork's headers.

use std::time::Duration;

use chrono::SecondsFormat;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use std::sync::Arc;

use crate::model::Delivery;
use crate::outbound::{GuardedResolver, TargetPolicy};
use crate::secrets::{header_context, is_sealed, sign, signing_context, Keyring};

/// Most response bytes read before the rest is dropped.
pub const RESPONSE_READ_LIMIT: usize = 64 * 1024;

/// Most response bytes kept in an attempt's history.
pub const RESPONSE_KEPT: usize = 2 * 1024;

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
pub(super) fn request_headers(
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

/// Secret values shorter than this are not scrubbed from answers: a one- or two-character
/// value would mask ordinary text.
pub const SHORTEST_SCRUBBED: usize = 4;

/// Takes the secrets a request carried out of what its target answered: each as sent,
/// JSON-escaped and percent-encoded becomes the mask, before the excerpt is cut.
pub(super) struct Scrubber {
    /// Every form of every secret, longest first (so a form holding another goes first).
    forms: Vec<String>,
}

impl Scrubber {
    pub(super) fn new(secrets: &[String]) -> Self {
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
    pub(super) fn longest(&self) -> usize {
        self.forms.first().map_or(0, String::len)
    }

    /// `text` scrubbed and cut to [`RESPONSE_KEPT`] bytes.
    pub(super) fn excerpt(&self, mut text: String) -> String {
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
}

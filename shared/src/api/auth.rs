//! Who is calling: `Authorization: Bearer <key>` on every route but `/health`.
//!
//! A key belongs to a tenant and reaches only that tenant's jobs (and through them their
//! history, dead letters and counts). The operator key (`API_ADMIN_KEY`, kept only in the
//! environment) works in the tenant `default` and may also manage every tenant's keys and
//! read the whole queue's statistics. Keys made through the API are stored as hashes and
//! looked up on each request. Each key (the operator's too) has a rate limit, counted in the
//! queue so every API instance shares it: 429 with `Retry-After` past it. The routes that
//! make, list and revoke keys are in `keys.rs`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::client;
use super::error::ApiError;
use super::AppState;
use crate::metrics::METRICS;
use crate::model::{ApiKey, KeyRole, DEFAULT_TENANT};
use crate::secrets::{api_key_hash, looks_like_api_key};

/// How callers are recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Every caller is the operator (`AUTH_DISABLED=true`, for development only).
    Disabled,
    /// A key is required; `operator_hash` is the hash of `API_ADMIN_KEY`, when set.
    Keys {
        /// SHA-256 of the operator key.
        operator_hash: Option<String>,
    },
}

impl Auth {
    /// Keys required, with `API_ADMIN_KEY` (if any) as the operator key.
    pub fn keys(operator_key: Option<&str>) -> Self {
        Auth::Keys {
            operator_hash: operator_key.map(api_key_hash),
        }
    }
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant whose jobs the request reaches.
    pub tenant: String,
    /// The operator key (or auth disabled): manages every tenant's keys, reads global stats.
    pub operator: bool,
    /// What the key may do; the operator is an editor.
    pub role: KeyRole,
}

impl Caller {
    fn operator() -> Self {
        Caller {
            tenant: DEFAULT_TENANT.to_string(),
            operator: true,
            role: KeyRole::Editor,
        }
    }
}

fn unauthorized(message: &str) -> Response {
    challenge(ApiError::unauthorized(message))
}

/// A 401 with the `WWW-Authenticate` challenge, counted.
fn challenge(error: ApiError) -> Response {
    METRICS.api_unauthorized.inc();
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Recognises the caller, or answers 401 saying what is missing.
pub async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let (caller, bucket) = match &state.auth {
        Auth::Disabled => (Caller::operator(), "anonymous".to_string()),
        Auth::Keys { operator_hash } => {
            let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
            let Some(value) = values.next() else {
                return unauthorized(
                    "this endpoint needs an API key: send Authorization: Bearer <key>",
                );
            };
            // Never the first of several: which one a proxy keeps is not ours to guess.
            if values.next().is_some() || value.as_bytes().contains(&b',') {
                return challenge(ApiError::ambiguous_authorization(
                    "Authorization is sent more than once; send one \"Bearer <key>\"",
                ));
            }
            // The scheme name is case-insensitive (RFC 9110).
            let key = value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, key)| key.trim());
            let Some(key) = key.filter(|k| !k.is_empty()) else {
                return unauthorized("the Authorization header must be \"Bearer <key>\"");
            };
            let hash = api_key_hash(key);
            let bucket = format!("key:{}", &hash[..16]);
            // The operator's key first: it is never throttled, and need not look like ours.
            if operator_hash.as_deref() == Some(hash.as_str()) {
                (Caller::operator(), bucket)
            } else {
                let client = client::address(&request, state.key_failures.trusted_proxies());
                match stored_key(&state, key, &hash, client).await {
                    Ok(stored) => (
                        Caller {
                            tenant: stored.tenant,
                            operator: false,
                            role: stored.role,
                        },
                        bucket,
                    ),
                    Err(refused) => return refused,
                }
            }
        }
    };
    // The operator's key is for bulk work (registering thousands of jobs, reseals): only
    // tenant keys are limited.
    if let Some(limit) = state.rate_limit.filter(|_| !caller.operator) {
        match state.queue.take_token(&bucket, limit).await {
            Ok(None) => {}
            Ok(Some(wait)) => return rate_limited(wait, limit),
            // Never refuse a request because the counter is unreachable.
            Err(error) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&error), "rate limit not checked")
            }
        }
    }
    if caller.role == KeyRole::Viewer && !is_read(request.method()) {
        return ApiError::forbidden(
            "this API key is read-only (role viewer): it can read but change nothing; use a key \
             with role editor",
        )
        .into_response();
    }
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    // Answers to a key hold its tenant's data: no cache along the way keeps them.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether a request only reads: every route that changes something takes another method,
/// so a viewer's key is refused them all, those added later too.
fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// 429 for a key past its rate limit, with `Retry-After`.
fn rate_limited(wait: std::time::Duration, limit: crate::queue::RateLimit) -> Response {
    with_retry_after(
        ApiError::rate_limited(&format!(
            "too many requests for this API key (at most {} a second, {} at once); retry in {} s",
            limit.per_second,
            limit.burst,
            whole_seconds(wait)
        )),
        wait,
    )
}

/// `wait` rounded up to whole seconds, at least 1.
fn whole_seconds(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// `error` with `Retry-After: wait` in whole seconds.
fn with_retry_after(error: ApiError, wait: std::time::Duration) -> Response {
    let mut response = error.into_response();
    if let Ok(value) = header::HeaderValue::from_str(&whole_seconds(wait).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The tenant whose key `key` (hashed: `hash`) is, or the answer refusing it. A client
/// address that has sent too many wrong keys is refused before the lookup; a key that
/// cannot be one of ours is refused without one.
async fn stored_key(
    state: &AppState,
    key: &str,
    hash: &str,
    client: Option<std::net::IpAddr>,
) -> Result<ApiKey, Response> {
    let failures = &state.key_failures;
    if let (Some(client), Some(limit)) = (client, failures.limit()) {
        if let Some(wait) = failures.wait(client) {
            METRICS.api_wrong_keys_throttled.inc();
            return Err(too_many_wrong_keys(wait, limit));
        }
    }
    let refused = || {
        if let Some(client) = client {
            failures.failed(client);
        }
        unauthorized("the API key is not valid (unknown or revoked)")
    };
    if !looks_like_api_key(key) {
        return Err(refused());
    }
    match state.store.api_key_by_hash(hash).await {
        Ok(Some(stored)) if stored.revoked_at.is_none() => Ok(stored),
        Ok(_) => Err(refused()),
        Err(error) => Err(ApiError::from(error).into_response()),
    }
}

/// 429 for a client address past its wrong keys, with `Retry-After`.
fn too_many_wrong_keys(wait: std::time::Duration, limit: crate::queue::RateLimit) -> Response {
    with_retry_after(
        ApiError::rate_limited(&format!(
            "too many wrong API keys from this address (at most {} in a row, then {} a \
             second); retry in {} s",
            limit.burst,
            limit.per_second,
            whole_seconds(wait)
        )),
        wait,
    )
}

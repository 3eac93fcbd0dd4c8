//! Who is calling: `Authorization: Bearer <key>` on every route but `/health`.
//!
//! A key belongs to a tenant and reaches only that tenant's jobs (and through them their
//! history, dead letters and counts). The operator key (`API_ADMIN_KEY`, kept only in the
//! environment) works in the tenant `default` and may also manage every tenant's keys and
//! read the whole queue's statistics. Keys made through the API are stored as hashes and
//! looked up on each request. Each key (the operator's too) has a rate limit, counted in the
//! queue so every API instance shares it: 429 with `Retry-After` past it.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::body::json_object;
use super::client;
use super::error::{ApiError, ErrorBody};
use super::openapi::{ApiKeyRequest, BadBody, TooLarge};
use super::path::RawId;
use super::AppState;
use crate::metrics::METRICS;
use crate::model::{ApiKey, Tenant, DEFAULT_TENANT};
use crate::secrets::{api_key_hash, api_key_prefix, looks_like_api_key, new_api_key};

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
}

impl Caller {
    fn operator() -> Self {
        Caller {
            tenant: DEFAULT_TENANT.to_string(),
            operator: true,
        }
    }
}

fn unauthorized(message: &str) -> Response {
    challenge(ApiError::unauthorized(message))
}

/// A 401 with the `WWW-Authenticate` challenge, counted.
fn challenge(error: ApiError) -> Response {
    METRICS.api_unauthorized.add(1);
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
                match tenant_of_key(&state, key, &hash, client).await {
                    Ok(tenant) => (
                        Caller {
                            tenant,
                            operator: false,
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
    request.extensions_mut().insert(caller);
    next.run(request).await
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
async fn tenant_of_key(
    state: &AppState,
    key: &str,
    hash: &str,
    client: Option<std::net::IpAddr>,
) -> Result<String, Response> {
    let failures = &state.key_failures;
    if let (Some(client), Some(limit)) = (client, failures.limit()) {
        if let Some(wait) = failures.wait(client) {
            METRICS.api_wrong_keys_throttled.add(1);
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
        Ok(Some(stored)) if stored.revoked_at.is_none() => Ok(stored.tenant),
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

/// An API key as the API shows it (the key itself only when it is made).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiKey)]
pub struct ApiKeyView {
    id: Uuid,
    /// The tenant whose jobs the key reaches.
    tenant: String,
    name: String,
    /// The key's first characters, to tell keys apart.
    prefix: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime, required = true)]
    revoked_at: Option<String>,
    /// The key itself: only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    key: Option<String>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(key: ApiKey) -> Self {
        let time =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        ApiKeyView {
            id: key.id,
            tenant: key.tenant,
            name: key.name,
            prefix: key.prefix,
            created_at: time(key.created_at),
            revoked_at: key.revoked_at.map(time),
            key: None,
        }
    }
}

/// `GET /api/v1/api-keys`
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyList {
    api_keys: Vec<ApiKeyView>,
}

/// `POST /api/v1/api-keys` `{"name", "tenant"}`: a new key, shown once. Only the operator
/// key makes keys (so a leaked tenant key cannot make others that outlive its revocation,
/// nor multiply its rate limit).
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    operation_id = "createApiKey",
    tag = "keys",
    summary = "Make an API key",
    description = "Operator key only. The key is in this answer only; tickwork keeps its hash.",
    request_body(content = ApiKeyRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The key, in clear this once.", body = ApiKeyView),
        (status = 400, response = BadBody),
        (status = 403, description = "The caller is not the operator (`forbidden`).", body = ErrorBody),
        (status = 413, response = TooLarge),
        (status = 422, description = "name is missing, name or tenant is of the wrong type or invalid, or a field is unknown (`missing_field`, `invalid_field`, `unknown_field`); `field` names it.", body = ErrorBody),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = super::body::read(body)?;
    let object = json_object(&body)?;
    if let Some(unknown) = object
        .keys()
        .find(|k| !["name", "tenant"].contains(&k.as_str()))
    {
        return Err(ApiError::unknown_field(
            unknown,
            format!("{unknown:?} is not a field of an API key; expected name and tenant"),
        ));
    }
    let name = match object.get("name") {
        Some(Value::String(name))
            if (1..=100).contains(&name.trim().chars().count())
                && !name.chars().any(char::is_control) =>
        {
            name.trim()
        }
        Some(Value::String(_)) => {
            return Err(ApiError::from(crate::model::InvalidField::new(
                "name",
                "name must be 1 to 100 characters, without control characters",
            )))
        }
        Some(other) => return Err(ApiError::wrong_type("name", "a string", other)),
        None => return Err(ApiError::missing_field("name")),
    };
    let tenant = match object.get("tenant") {
        None | Some(Value::Null) => Tenant::parse(&caller.tenant)?,
        Some(Value::String(raw)) => Tenant::parse(raw)?,
        Some(other) => return Err(ApiError::wrong_type("tenant", "a string", other)),
    };
    if !caller.operator {
        return Err(ApiError::forbidden(
            "only the operator key (API_ADMIN_KEY) makes API keys; a tenant's key lists and \
             revokes its tenant's keys",
        ));
    }
    let key = new_api_key();
    let stored = ApiKey {
        id: Uuid::now_v7(),
        tenant: tenant.as_str().to_string(),
        name: name.to_string(),
        prefix: api_key_prefix(&key),
        created_at: state.store.clock().await?,
        revoked_at: None,
    };
    state
        .store
        .insert_api_key(&stored, &api_key_hash(&key))
        .await?;
    tracing::info!(key_id = %stored.id, tenant = %stored.tenant, "API key made");
    let mut view = ApiKeyView::from(stored);
    view.key = Some(key);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /api/v1/api-keys`: the caller's tenant's keys (every tenant's for the operator).
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    operation_id = "listApiKeys",
    tag = "keys",
    summary = "List API keys",
    description = "The caller's tenant's keys (every tenant's for the operator): prefixes and metadata, never the keys.",
    responses(
        (status = 200, description = "The keys.", body = ApiKeyList),
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ApiKeyList>, ApiError> {
    let tenant = (!caller.operator).then_some(caller.tenant.as_str());
    let keys = state.store.api_keys(tenant).await?;
    Ok(Json(ApiKeyList {
        api_keys: keys.into_iter().map(ApiKeyView::from).collect(),
    }))
}

/// `DELETE /api/v1/api-keys/{id}`: revokes a key at once (204, again 204).
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    operation_id = "revokeApiKey",
    tag = "keys",
    summary = "Revoke an API key",
    description = "The key stops working at once. Revoking it again answers 204 too.",
    params(
        ("id" = Uuid, Path, description = "The key's id."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "No such key in the caller's tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawId(id): RawId,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::key_not_found(&id);
    let key_id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let tenant = (!caller.operator).then_some(caller.tenant.as_str());
    let now = state.store.clock().await?;
    if state.store.revoke_api_key(key_id, tenant, now).await? {
        tracing::info!(%key_id, "API key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

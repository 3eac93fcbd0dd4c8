//! `/api/v1/api-keys`: make a key (shown once), list a tenant's keys, revoke one.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use super::body::json_object;
use super::error::{ApiError, ErrorBody};
use super::fields::fields_of;
use super::openapi::{BadBody, TooLarge};
use super::path::RawId;
use super::request::{read_new, required_of};
use super::AppState;
use crate::model::{ApiKey, KeyName, KeyRole, Tenant};
use crate::secrets::{api_key_hash, api_key_prefix, new_api_key};

/// A new API key (`POST /api/v1/api-keys`, operator key only).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "billing-ci", "tenant": "billing", "role": "editor"}))]
pub struct ApiKeyRequest {
    /// What the key is for: trimmed, no control characters.
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = "\\S")]
    name: KeyName,
    /// The tenant whose jobs the key reaches (default `default`): 1 to 64 of a-z, 0-9, `-`
    /// and `_`.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9_-]{1,64}$")]
    tenant: Option<Tenant>,
    /// What the key may do (default `editor`): `viewer` keys read and change nothing.
    role: Option<KeyRole>,
}

/// The fields of [`ApiKeyRequest`], as serde names them.
static KEY_FIELDS: LazyLock<&'static [&'static str]> = LazyLock::new(fields_of::<ApiKeyRequest>);

/// The fields an [`ApiKeyRequest`] must carry.
static KEY_REQUIRED: LazyLock<Vec<String>> = LazyLock::new(required_of::<ApiKeyRequest>);

/// An API key as the API shows it (the key itself only when it is made).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiKey)]
pub struct ApiKeyView {
    id: Uuid,
    /// The tenant whose jobs the key reaches.
    tenant: String,
    name: String,
    #[schema(value_type = KeyRole)]
    role: &'static str,
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
            role: key.role.as_str(),
            prefix: key.prefix,
            created_at: time(key.created_at),
            revoked_at: key.revoked_at.map(time),
            key: None,
        }
    }
}

/// Who the caller is, as the key it sent says: what a screen needs to show only what the
/// key may do.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Caller)]
pub struct CallerView {
    /// The tenant whose jobs the key reaches.
    tenant: String,
    #[schema(value_type = KeyRole)]
    role: &'static str,
    /// The operator key (or keys off): manages every tenant's keys.
    operator: bool,
}

/// `GET /api/v1/me`: the caller's tenant and role.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    operation_id = "getCaller",
    tag = "keys",
    summary = "Who is calling",
    description = "The tenant and role of the key this request carries (the operator's, or `default` and editor when keys are off).",
    responses(
        (status = 200, description = "The caller.", body = CallerView),
    )
)]
pub async fn me(Extension(caller): Extension<Caller>) -> Json<CallerView> {
    Json(CallerView {
        tenant: caller.tenant,
        role: caller.role.as_str(),
        operator: caller.operator,
    })
}

/// `GET /api/v1/api-keys`
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyList {
    api_keys: Vec<ApiKeyView>,
}

/// `POST /api/v1/api-keys` `{"name", "tenant", "role"}`: a new key, shown once. Only the operator
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
        (status = 403, description = "The caller is not the operator, or its key is a viewer's (`forbidden`).", body = ErrorBody),
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
    if let Some(unknown) = object.keys().find(|k| !KEY_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::unknown_field(
            unknown,
            format!(
                "{unknown:?} is not a field of an API key; expected {}",
                KEY_FIELDS.join(", ")
            ),
        ));
    }
    let request: ApiKeyRequest = read_new(object, &KEY_REQUIRED)?;
    let tenant = match request.tenant {
        Some(tenant) => tenant,
        None => Tenant::parse(&caller.tenant)?,
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
        name: request.name.as_str().to_string(),
        role: request.role.unwrap_or_default(),
        prefix: api_key_prefix(&key),
        created_at: state.store.clock().await?,
        revoked_at: None,
    };
    state
        .store
        .api_key_insert(&stored, &api_key_hash(&key))
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
    let keys = state.store.api_key_list(tenant).await?;
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
    if state.store.api_key_revoke(key_id, tenant, now).await? {
        tracing::info!(%key_id, "API key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

//! `/api/v1/api-keys`: make a key (shown once), list a tenant's keys, revoke one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::auth::Caller;
use super::body::json_object;
use super::error::{ApiError, ErrorBody};
use super::openapi::{ApiKeyRequest, BadBody, TooLarge};
use super::path::RawId;
use super::AppState;
use crate::model::{ApiKey, Tenant};
use crate::secrets::{api_key_hash, api_key_prefix, new_api_key};

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

//! The one place where failures become HTTP statuses and JSON error bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::model::InvalidField;
use crate::queue::QueueError;
use crate::store::StoreError;
use crate::telemetry::error_chain;

/// An error as the caller sees it: `{"error":{"code","message","field"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code such as `invalid_field`.
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
    /// The JSON field or query parameter at fault, when there is one.
    pub field: Option<String>,
}

/// Every error the API answers with.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {
    "code": "invalid_field",
    "message": "timeoutSeconds is 300; expected 1 to 90",
    "field": "timeoutSeconds"
}}))]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail<'a> {
    /// Stable and machine-readable: `invalid_json`, `invalid_body`, `invalid_query`,
    /// `invalid_header`, `missing_field`, `invalid_field`, `unknown_field`,
    /// `target_not_allowed`, `idempotency_key_reused`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `request_timeout`, `payload_too_large`,
    /// `uri_too_long`, `headers_too_large`, `rate_limited`, a conflict
    /// (`job_deleted`, `fire_exists`, `not_dead_letter`, `at_most_once`), `internal`,
    /// `unavailable`.
    code: &'a str,
    /// What is wrong, for a person.
    message: &'a str,
    /// The JSON field, query parameter or header at fault, when there is one.
    #[schema(required = true)]
    field: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400: the body is not JSON.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 400: the body is JSON but not an object.
    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    }

    /// 400: a query parameter is malformed or unknown.
    pub fn invalid_query(parameter: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", message).with_field(parameter)
    }

    /// 422: a required field is absent.
    pub fn missing_field(field: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            format!("{field} is required"),
        )
        .with_field(field)
    }

    /// 422: a field has the wrong type.
    pub fn wrong_type(field: &str, expected: &str, got: &serde_json::Value) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!(
                "{field} must be {expected}, got {}",
                crate::model::json_kind(got)
            ),
        )
        .with_field(field)
    }

    /// 422: `field` (a JSON path such as `httpHeaders.X-Count`) cannot be used, as
    /// `message` says.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(field)
    }

    /// 422: a number too large to read at all (beyond any field's range).
    pub fn number_out_of_range(field: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field} is a number too large to read; see the field's range"),
        )
        .with_field(field)
    }

    /// 404 for an execution.
    pub fn execution_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no execution with id {id:?}"),
        )
    }

    /// 422: a field nobody reads.
    pub fn unknown_field(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_field", message).with_field(field)
    }

    /// 409: the request is well formed, but the thing it names is not in a state that
    /// allows it (the message says which state, and what would).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: the target's address is one tickwork does not call.
    pub fn target_not_allowed(refused: &crate::outbound::Refused) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "target_not_allowed",
            format!("httpUrl: {refused}"),
        )
        .with_field("httpUrl")
    }

    /// 400: a request header is malformed.
    pub fn invalid_header(name: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_header", message).with_field(name)
    }

    /// 422: an idempotency key sent again with a different request.
    pub fn idempotency_key_reused(key: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            format!(
                "Idempotency-Key {key:?} was used for a different request body; a retry must \
                 send the same body, a new request needs a new key"
            ),
        )
        .with_field("Idempotency-Key")
    }

    /// 401: no key, or a key that is not valid.
    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 401: an `Authorization` header that cannot be read as one key (sent twice, or two
    /// values joined by a comma as a proxy joins repeated headers).
    pub fn ambiguous_authorization(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_header", message).with_field("Authorization")
    }

    /// 429: a caller past its rate limit.
    pub fn rate_limited(message: &str) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    }

    /// 403: the key is valid but may not do this.
    pub fn forbidden(message: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 for an API key.
    pub fn key_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no API key with id {id:?}"),
        )
    }

    /// 404 for a job, whether unknown or not an id at all.
    pub fn job_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no job with id {id:?}"),
        )
    }

    /// 404 for an `{id}` that cannot be read at all (not valid UTF-8, say).
    pub fn not_an_id(detail: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the id in the path is not an id: {detail}"),
        )
    }

    /// 404 for a path that is not a route.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}; see the README for the API"),
        )
    }

    /// 405 for a route that exists with other methods.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
    }

    /// 413: the body is over the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 408: the body did not arrive within `API_BODY_TIMEOUT` of the headers.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} s of its headers",
                limit.as_secs_f64()
            ),
        )
    }

    /// 414: the path and query are longer than the API reads.
    pub fn uri_too_long(limit: usize) -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request's path and query are longer than {limit} bytes"),
        )
    }

    /// 431: the headers together are larger than the API reads.
    pub fn headers_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request's headers together are larger than {limit} bytes"),
        )
    }

    /// 500, logged with its full cause chain; the caller learns nothing internal.
    pub fn internal(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error_chain(error), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the details are in the server log",
        )
    }

    /// 503: a dependency is down; retrying later can help.
    pub fn unavailable(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error_chain(error), "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is unavailable; retry shortly",
        )
    }
}

impl From<InvalidField> for ApiError {
    fn from(error: InvalidField) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            error.message,
        )
        .with_field(error.field)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => Self::unavailable(&error),
            _ => Self::internal(&error),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        Self::internal(&error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        (self.status, Json(body)).into_response()
    }
}

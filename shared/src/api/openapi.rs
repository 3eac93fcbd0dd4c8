//! The OpenAPI 3.1 document of the API.
//!
//! Its paths come from the handlers' `#[utoipa::path]` annotations as [`super::router`]
//! registers them (`utoipa_axum::routes!`), so a route cannot be served without being
//! documented. This module adds what is common to them: the bearer-key scheme and, on every
//! keyed route, the answers the key check and the storage can give (401, 429, 500, 503).
//! It also holds the schemas of what the handlers read by hand (job and key requests) and
//! of the names the model defines (methods, promises, policies, states).
//!
//! Served at `/openapi.json` (Swagger UI at `/docs`) and committed as `docs/api-spec.yaml`;
//! a test fails when the two differ.

use std::borrow::Cow;
use std::collections::BTreeMap;

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, OpenApi as Document, Ref, RefOr, Schema, Type};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use super::error::ErrorBody;
use crate::model::{
    ConcurrencyPolicy, ExecutionStatus, ExecutionType, FireKind, HttpHeaders, HttpMethod,
    MisfirePolicy,
};

/// The security scheme every keyed route names.
const KEY_SCHEME: &str = "apiKey";

/// The document's fixed parts: what it describes, its tags, and the schemas and answers
/// many routes share.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tickwork",
        description = "A distributed cron scheduler with second-level precision: register \
            jobs (a cron expression with seconds, an IANA timezone, an HTTP target and a \
            delivery promise), and tickwork calls the target at every fire time, retries, \
            dead-letters and keeps each job's history.\n\n\
            Every route but `/health`, `/openapi.json` and `/docs` needs \
            `Authorization: Bearer <key>`. Every error is \
            `{\"error\": {\"code\", \"message\", \"field\"}}`; `field` names the JSON field, \
            query parameter or header at fault when there is one. Times are UTC, RFC 3339, \
            with milliseconds.",
        license(name = "MIT", identifier = "MIT"),
    ),
    components(
        schemas(ErrorBody),
        responses(
            Unauthorized,
            RateLimited,
            Internal,
            Unavailable,
            BadQuery,
            BadBody,
            TooLarge,
            RequestTimeout,
            UriTooLong,
            HeadersTooLarge,
            InvalidFields,
            JobNotFound,
            ExecutionNotFound,
        )
    ),
    tags(
        (name = "jobs", description = "Register, read, change and delete jobs."),
        (name = "history", description = "What happened at each fire: executions and their attempts."),
        (name = "operate", description = "Run now, pause, resume, dead letters, signing secrets, schedule previews."),
        (name = "keys", description = "API keys and the tenants they belong to."),
        (name = "health", description = "Whether the process reaches its store and queue; queue statistics."),
    )
)]
struct Fixed;

/// The whole document: `open` routes with the answers of the edge, `keyed` routes also
/// with the key requirement and the answers every keyed request can get.
pub fn document(mut open: Document, mut keyed: Document) -> Document {
    for operation in operations(&mut open) {
        add_edge_answers(operation);
    }
    for operation in operations(&mut keyed) {
        require_key(operation);
        add_edge_answers(operation);
    }
    let mut document = Fixed::openapi().merge_from(open).merge_from(keyed);
    document
        .components
        .get_or_insert_with(Default::default)
        .security_schemes
        .insert(
            KEY_SCHEME.to_string(),
            RefOr::T(SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`tw_...`) made with POST /api/v1/api-keys, or the \
                         operator key from API_ADMIN_KEY.",
                    ))
                    .build(),
            )),
        );
    document
}

/// Every operation in `document`.
fn operations(document: &mut Document) -> impl Iterator<Item = &mut Operation> {
    document.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
    })
}

/// Adds the answers any request can get before its route runs: a body too slow to
/// arrive, a path and query or a header block over the API's limits.
fn add_edge_answers(operation: &mut Operation) {
    add_answers(
        operation,
        &[
            ("408", "RequestTimeout"),
            ("414", "UriTooLong"),
            ("431", "HeadersTooLarge"),
        ],
    );
}

/// Marks `operation` as needing a key and adds the answers of the key check and the
/// storage behind every keyed route.
fn require_key(operation: &mut Operation) {
    operation
        .security
        .get_or_insert_with(Vec::new)
        .push(SecurityRequirement::new(KEY_SCHEME, Vec::<String>::new()));
    add_answers(
        operation,
        &[
            ("401", "Unauthorized"),
            ("429", "RateLimited"),
            ("500", "Internal"),
            ("503", "Unavailable"),
        ],
    );
}

/// Adds the shared answers `(status, name)` an operation does not describe itself.
fn add_answers(operation: &mut Operation, answers: &[(&str, &str)]) {
    for &(status, name) in answers {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}

/// Answers many routes share, each an [`ErrorBody`]; handlers name them with
/// `(status = N, response = Name)`.
#[allow(dead_code)] // Never built: each stands for an answer `ApiError` makes.
mod answers {
    use utoipa::ToResponse;

    use super::ErrorBody;

    /// No key, a malformed Authorization header, or a key that is unknown or revoked
    /// (`unauthorized`); Authorization sent more than once, or two values joined by a
    /// comma (`invalid_header`, `field` `Authorization`).
    #[derive(ToResponse)]
    #[response(headers(("WWW-Authenticate" = String, description = "Always `Bearer`.")))]
    pub struct Unauthorized(ErrorBody<'static>);

    /// Past this key's rate limit (`RATE_LIMIT_PER_SECOND`, `RATE_LIMIT_BURST`), or too
    /// many wrong keys from this client address (`WRONG_KEY_LIMIT_PER_SECOND`,
    /// `WRONG_KEY_LIMIT_BURST`; the key is not looked up) (`rate_limited`).
    #[derive(ToResponse)]
    #[response(headers(("Retry-After" = String, description = "Whole seconds to wait.")))]
    pub struct RateLimited(ErrorBody<'static>);

    /// A failure inside tickwork; the details are in its log (`internal`).
    #[derive(ToResponse)]
    pub struct Internal(ErrorBody<'static>);

    /// The database is unreachable; retry shortly (`unavailable`).
    #[derive(ToResponse)]
    pub struct Unavailable(ErrorBody<'static>);

    /// A query parameter is malformed, out of range or unknown (`invalid_query`; `field`
    /// names it).
    #[derive(ToResponse)]
    pub struct BadQuery(ErrorBody<'static>);

    /// The body is not JSON, or not a JSON object (`invalid_json`, `invalid_body`).
    #[derive(ToResponse)]
    pub struct BadBody(ErrorBody<'static>);

    /// The body is larger than 1 MiB, or says it is in `Content-Length`
    /// (`payload_too_large`); the connection is closed after it.
    #[derive(ToResponse)]
    pub struct TooLarge(ErrorBody<'static>);

    /// The body did not arrive whole within `API_BODY_TIMEOUT` (default 30 s) of the
    /// request's headers (`request_timeout`); the connection is closed after it.
    #[derive(ToResponse)]
    pub struct RequestTimeout(ErrorBody<'static>);

    /// The path and query are longer than 8 KiB (`uri_too_long`). Past 65,534 bytes the
    /// HTTP server answers 414 itself, with an empty body, and closes the connection.
    #[derive(ToResponse)]
    pub struct UriTooLong(ErrorBody<'static>);

    /// The headers add up to more than 16 KiB, counted as `name: value` and a line end
    /// each (`headers_too_large`). Past 100 headers or about 400 KiB the HTTP server
    /// answers 431 itself, with an empty body, and closes the connection.
    #[derive(ToResponse)]
    pub struct HeadersTooLarge(ErrorBody<'static>);

    /// A field is missing, of the wrong type, invalid or unknown (`missing_field`,
    /// `invalid_field`, `unknown_field`, `target_not_allowed`); `field` names it.
    #[derive(ToResponse)]
    pub struct InvalidFields(ErrorBody<'static>);

    /// No such job: unknown, another tenant's, or not an id (`not_found`).
    #[derive(ToResponse)]
    pub struct JobNotFound(ErrorBody<'static>);

    /// No such execution: unknown, of another tenant's job, or not an id (`not_found`).
    #[derive(ToResponse)]
    pub struct ExecutionNotFound(ErrorBody<'static>);
}

pub use answers::{
    BadBody, BadQuery, ExecutionNotFound, HeadersTooLarge, Internal, InvalidFields, JobNotFound,
    RateLimited, RequestTimeout, TooLarge, Unauthorized, Unavailable, UriTooLong,
};

/// Parameters many routes share; handlers name them in `params(...)`.
#[allow(dead_code)] // Never built: the handlers read these by hand.
mod parameters {
    use utoipa::IntoParams;
    use uuid::Uuid;

    /// `{id}` of a job.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub struct JobId {
        /// The job's id.
        id: Uuid,
    }

    /// `{id}` of an execution.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub struct ExecutionId {
        /// The execution's id.
        id: Uuid,
    }

    /// A page of a list.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct Page {
        /// Most items in the page (default 50); a page also ends when its items reach
        /// 4 MiB, so it may hold fewer.
        #[param(minimum = 1, maximum = 500)]
        limit: Option<u32>,
        /// `nextCursor` of the previous page.
        cursor: Option<String>,
    }
}

pub use parameters::{ExecutionId, JobId, Page};

/// A string schema whose values are `names`.
fn names(names: impl IntoIterator<Item = &'static str>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(names))
        .description(Some(description))
        .into()
}

/// A schema type for a set of names the model defines, listed from the model itself.
macro_rules! names_schema {
    ($(#[$doc:meta])* $schema:ident, $name:literal, $model:ty, $description:literal) => {
        $(#[$doc])*
        pub struct $schema;

        impl PartialSchema for $schema {
            fn schema() -> RefOr<Schema> {
                names(<$model>::ALL.map(|v| v.as_str()), $description)
            }
        }

        impl ToSchema for $schema {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

names_schema!(
    /// `httpMethod`.
    HttpMethodName,
    "HttpMethod",
    HttpMethod,
    "The method of the call to the target."
);
names_schema!(
    /// `executionType`.
    ExecutionTypeName,
    "ExecutionType",
    ExecutionType,
    "The delivery promise: AT_LEAST_ONCE (retried with backoff, never lost) or AT_MOST_ONCE \
     (never delivered twice, not retried)."
);
names_schema!(
    /// `misfirePolicy`.
    MisfirePolicyName,
    "MisfirePolicy",
    MisfirePolicy,
    "What happens to fires missed while tickwork was down: FIRE_ONCE (one fire now), SKIP \
     (none), FIRE_ALL (each, up to catchUpLimit)."
);
names_schema!(
    /// `concurrencyPolicy`.
    ConcurrencyPolicyName,
    "ConcurrencyPolicy",
    ConcurrencyPolicy,
    "Whether fires may overlap: ALLOW, or FORBID (a fire due while an earlier one is \
     unfinished is recorded SKIPPED)."
);
names_schema!(
    /// An execution's `status`.
    ExecutionStatusName,
    "ExecutionStatus",
    ExecutionStatus,
    "Where a fire is in its life (docs/job-states.md)."
);
names_schema!(
    /// An execution's `kind`.
    FireKindName,
    "FireKind",
    FireKind,
    "SCHEDULED (from the job's schedule) or MANUAL (POST /api/v1/jobs/{id}/trigger)."
);

/// A job to create (`POST /api/v1/jobs`). Only `name`, `cronExpression` and `httpUrl` are
/// required; `null` is the same as leaving a field out. Unknown fields are refused (422
/// `unknown_field`).
#[derive(ToSchema)]
#[schema(
    rename_all = "camelCase",
    example = json!({
        "name": "nightly-report",
        "cronExpression": "0 30 2 * * *",
        "timezone": "Europe/Paris",
        "httpMethod": "POST",
        "httpUrl": "https://reports.example.com/run",
        "httpHeaders": {"Authorization": "Bearer s3cret"},
        "httpBody": "{\"kind\":\"nightly\"}",
        "executionType": "AT_LEAST_ONCE",
        "maxRetries": 3
    })
)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by hand in `body`, field by field; this is its schema.
pub struct JobRequest {
    /// A name for people; need not be unique. Trimmed; no control characters.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    name: String,
    /// Free text (default empty), without NUL characters.
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// Six fields, seconds first: `sec min hour day-of-month month day-of-week`
    /// (e.g. `31 10-15 1 * * MON-FRI`); five fields (minute first) fire at second 0. At
    /// most 256 characters, and at most 60 comma-separated items in a field.
    #[schema(min_length = 1, max_length = 256, example = "31 10-15 1 * * MON-FRI")]
    cron_expression: String,
    /// The IANA zone the expression is read in (default `UTC`).
    #[schema(example = "America/New_York")]
    timezone: Option<String>,
    /// Default `POST`.
    http_method: Option<HttpMethodName>,
    /// An absolute http or https URL of at most 2048 bytes, without credentials; its
    /// address must be one tickwork may call (422 `target_not_allowed` otherwise).
    #[schema(max_length = 2048, example = "https://reports.example.com/run")]
    http_url: String,
    /// Headers sent to the target: at most 32, 8 KiB of names and values in all; names
    /// are HTTP tokens, each once (ignoring case), values visible ASCII. tickwork sets
    /// `Host`, `Content-Length`, `Transfer-Encoding`, `Connection`, `Upgrade`,
    /// `Idempotency-Key`, `X-Tickwork-*` and (on signed jobs) `webhook-id`,
    /// `webhook-signature` and `webhook-timestamp` itself, so those are refused, as are the
    /// hop-by-hop and framing headers `TE`, `Trailer`, `Keep-Alive`, `Proxy-Connection` and
    /// `Expect`. Values are visible ASCII and spaces (no tab). Credential headers (names
    /// with `auth`, `token`, `secret`, `key`, `pass`, `pwd`, `cred`, `sig`, `session`,
    /// `cookie`, `jwt`, `bearer`, `otp`, `hmac`, `assertion`, `nonce` or `private`, and those
    /// named in `secretHeaders`) are sealed at rest and read back as `********`; sending the
    /// mask back in a PATCH keeps the stored value.
    #[schema(value_type = Option<HttpHeadersSchema>)]
    http_headers: Option<BTreeMap<String, String>>,
    /// Names of `httpHeaders` to keep secret beside the credential headers recognised by
    /// name: their values are sealed at rest, read back as `********` and sent as given.
    /// Sent with `httpHeaders` (it marks headers of that request).
    #[schema(max_items = 32)]
    secret_headers: Option<Vec<String>>,
    /// The request body sent to the target: at most 65,536 bytes of UTF-8, without NUL.
    #[schema(max_length = 65536)]
    http_body: Option<String>,
    /// Default `AT_LEAST_ONCE`.
    execution_type: Option<ExecutionTypeName>,
    /// Retries after the first attempt, AT_LEAST_ONCE only (default 3).
    #[schema(minimum = 0, maximum = 20)]
    max_retries: Option<i32>,
    /// How long one attempt may take (default 90).
    #[schema(minimum = 1, maximum = 90)]
    timeout_seconds: Option<i32>,
    /// Whether the job fires (default true).
    is_active: Option<bool>,
    /// Default `FIRE_ONCE`.
    misfire_policy: Option<MisfirePolicyName>,
    /// Most missed fires FIRE_ALL makes up (default 100).
    #[schema(minimum = 1, maximum = 10000)]
    catch_up_limit: Option<i32>,
    /// Default `ALLOW`.
    concurrency_policy: Option<ConcurrencyPolicyName>,
    /// Seconds a fire may wait for its first attempt to start, counted from the later of
    /// its scheduled time and when it was queued: a fire not started by then is not sent
    /// and ends EXPIRED (a dead letter; requeue it to send it). Retries and fires taken back
    /// from a stopped worker are not held to it. Null: none, fires wait as long as it takes.
    #[schema(minimum = 1, maximum = 86400)]
    starting_deadline_seconds: Option<i32>,
}

/// `httpHeaders`: names to values, as many as a job may carry, names HTTP tokens.
pub struct HttpHeadersSchema;

impl PartialSchema for HttpHeadersSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .additional_properties(Some(String::schema()))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .pattern(Some("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")),
            ))
            .max_properties(Some(HttpHeaders::MAX_COUNT))
            .description(Some("Header names to values."))
            .into()
    }
}

impl ToSchema for HttpHeadersSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("HttpHeaders")
    }
}

/// Fields a PATCH may set to `null` to clear them: the list `body::job_patch` reads by.
const CLEARABLE: [&str; 4] = super::body::CLEARABLE_FIELDS;

/// A change to a job (`PATCH /api/v1/jobs/{id}`): the fields of [`JobRequest`], none
/// required, each checked as at creation; `null` clears `description`, `httpHeaders`,
/// `httpBody` and `startingDeadlineSeconds`.
pub struct JobPatchRequest;

impl PartialSchema for JobPatchRequest {
    fn schema() -> RefOr<Schema> {
        let RefOr::T(Schema::Object(mut object)) = JobRequest::schema() else {
            return JobRequest::schema();
        };
        object.required.clear();
        object.example =
            Some(serde_json::json!({"cronExpression": "*/30 * * * * *", "isActive": false}));
        object.description = Some(
            "Any subset of a job's fields, each checked as at creation; `null` clears \
             description, httpHeaders, httpBody and startingDeadlineSeconds. Unknown fields \
             are refused."
                .to_string(),
        );
        // At creation `null` means "not given"; in a patch only the clearable fields take it.
        for (name, field) in object.properties.iter_mut() {
            if !CLEARABLE.contains(&name.as_str()) {
                *field = not_null(field.clone());
            }
            // A field left out of a patch keeps its value; creation's defaults do not apply.
            match field {
                RefOr::T(Schema::Object(field)) => {
                    field.description = field.description.as_deref().and_then(without_default);
                }
                RefOr::Ref(reference) => {
                    reference.description =
                        without_default(&reference.description).unwrap_or_default();
                }
                _ => {}
            }
        }
        RefOr::T(Schema::Object(object))
    }
}

/// `types` without `null`.
fn without_null(types: SchemaType) -> SchemaType {
    let SchemaType::Array(types) = types else {
        return types;
    };
    let kept: Vec<Type> = types.into_iter().filter(|t| *t != Type::Null).collect();
    match kept.as_slice() {
        [one] => SchemaType::Type(one.clone()),
        _ => SchemaType::Array(kept),
    }
}

/// A field's description without what it says of its default at creation: a
/// "(default ...)" aside or a "Default `...`." sentence.
fn without_default(description: &str) -> Option<String> {
    let mut text = description.to_string();
    if let Some(start) = text.find(" (default ") {
        if let Some(length) = text[start..].find(')') {
            text.replace_range(start..=start + length, "");
        }
    }
    if text.starts_with("Default `") && text.matches('.').count() <= 1 {
        return None;
    }
    Some(text)
}

/// `schema` without `null` among the values it takes: `[T, "null"]` becomes `T`, and
/// `oneOf: [null, X]` becomes `X`.
fn not_null(schema: RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            object.schema_type = without_null(object.schema_type);
            RefOr::T(Schema::Object(object))
        }
        RefOr::T(Schema::Array(mut array)) => {
            array.schema_type = without_null(array.schema_type);
            RefOr::T(Schema::Array(array))
        }
        RefOr::T(Schema::OneOf(mut one_of)) => {
            one_of.items.retain(|item| {
                !matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
            });
            match (one_of.items.len(), one_of.items.pop()) {
                (1, Some(only)) => only,
                (_, last) => {
                    one_of.items.extend(last);
                    RefOr::T(Schema::OneOf(one_of))
                }
            }
        }
        other => other,
    }
}

impl ToSchema for JobPatchRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        JobRequest::schemas(schemas);
    }
}

/// A new API key (`POST /api/v1/api-keys`, operator key only).
#[derive(ToSchema)]
#[schema(example = json!({"name": "billing-ci", "tenant": "billing"}))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by hand in `keys::create_key`; this is its schema.
pub struct ApiKeyRequest {
    /// What the key is for: trimmed, no control characters.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    /// The tenant whose jobs the key reaches (default `default`): 1 to 64 of a-z, 0-9, `-`
    /// and `_`.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    tenant: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(schema: RefOr<Schema>) -> Vec<String> {
        match schema {
            RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn the_job_request_schema_lists_exactly_the_fields_the_api_reads() {
        let mut documented = properties(JobRequest::schema());
        let mut read: Vec<String> = super::super::body::JOB_FIELDS
            .iter()
            .map(|f| f.to_string())
            .collect();
        documented.sort();
        read.sort();
        assert_eq!(documented, read);
        assert_eq!(properties(JobPatchRequest::schema()), {
            let mut patch = properties(JobRequest::schema());
            patch.sort();
            patch
        });
    }

    fn nullable(field: &RefOr<Schema>) -> bool {
        let json = serde_json::to_value(field).unwrap_or_default();
        json["type"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "null"))
            || json["oneOf"]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i["type"] == "null"))
    }

    #[test]
    fn a_patch_says_nothing_of_creation_defaults() {
        assert_eq!(
            without_default("How long one attempt may take (default 90)."),
            Some("How long one attempt may take.".to_string())
        );
        assert_eq!(without_default("Default `POST`."), None);
        let patch = serde_json::to_string(&JobPatchRequest::schema()).unwrap_or_default();
        assert!(!patch.contains("default"), "{patch}");
    }

    #[test]
    fn a_create_takes_null_for_every_optional_field_and_a_patch_only_for_the_clearable_ones() {
        let (RefOr::T(Schema::Object(create)), RefOr::T(Schema::Object(patch))) =
            (JobRequest::schema(), JobPatchRequest::schema())
        else {
            panic!("both schemas are objects");
        };
        assert_eq!(create.required, ["name", "cronExpression", "httpUrl"]);
        for (name, field) in &create.properties {
            let required = create.required.contains(name);
            assert_eq!(nullable(field), !required, "create {name}");
        }
        assert!(patch.required.is_empty());
        for (name, field) in &patch.properties {
            let clearable = CLEARABLE.contains(&name.as_str());
            assert_eq!(nullable(field), clearable, "patch {name}");
        }
    }
}

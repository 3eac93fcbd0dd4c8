//! The OpenAPI 3.1 document of the API.
//!
//! Its paths come from the handlers' `#[utoipa::path]` annotations as [`super::router`]
//! registers them (`utoipa_axum::routes!`), so a route cannot be served without being
//! documented. This module adds what is common to them: the bearer-key scheme and, on every
//! keyed route, the answers the key check and the storage can give (401, 429, 500, 503).
//! It also holds the schema of what a handler reads by hand (the key request).
//!
//! Served at `/openapi.json` (Swagger UI at `/docs`) and committed as `docs/api-spec.yaml`;
//! a test fails when the two differ.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr};
use utoipa::OpenApi;

use super::error::ErrorBody;

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
            ReadOnlyKey,
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
    // Every method but GET changes something, and a viewer's key is refused them all.
    for item in keyed.paths.paths.values_mut() {
        let writes = [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in writes.into_iter().flatten() {
            add_answers(operation, &[("403", "ReadOnlyKey")]);
        }
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

    /// The key is a viewer's: it reads and changes nothing (`forbidden`).
    #[derive(ToResponse)]
    pub struct ReadOnlyKey(ErrorBody<'static>);

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
    RateLimited, ReadOnlyKey, RequestTimeout, TooLarge, Unauthorized, Unavailable, UriTooLong,
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

#[cfg(test)]
mod tests {
    use super::super::request::{JobPatchRequest, JobRequest, JOB_FIELDS};
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::PartialSchema;

    fn properties(schema: RefOr<Schema>) -> Vec<String> {
        match schema {
            RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn the_job_request_schemas_list_exactly_the_fields_the_api_reads() {
        let mut read: Vec<String> = JOB_FIELDS.iter().map(|f| f.to_string()).collect();
        read.sort();
        assert_eq!(properties(JobRequest::schema()), read);
        assert_eq!(properties(JobPatchRequest::schema()), read);
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
        assert!(patch.required.is_empty(), "{:?}", patch.required);
        let clearable = [
            "description",
            "httpBody",
            "httpHeaders",
            "startingDeadlineSeconds",
        ];
        for (name, field) in &patch.properties {
            assert_eq!(
                nullable(field),
                clearable.contains(&name.as_str()),
                "patch {name}"
            );
        }
    }
}

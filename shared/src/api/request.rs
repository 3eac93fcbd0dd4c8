//! A job request, described once: [`JobRequest`] (create) and [`JobPatchRequest`] (change)
//! are read by serde and documented by utoipa from the same declarations, so the parser,
//! the OpenAPI document and the list of fields cannot drift apart.
//!
//! Their fields are the model's checked types, each of which reads its own JSON and names
//! itself when it is wrong (`model::field`). Before serde runs, the body is looked over
//! once so the commonest mistakes get their own answers: a field tickwork sets, a field
//! that does not exist, a required field left out.

use std::sync::LazyLock;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::body::json_object;
use super::error::ApiError;
use super::fields::fields_of;
use crate::model::{
    CatchUpLimit, ConcurrencyPolicy, Description, ExecutionType, HttpBody, HttpHeaders, HttpMethod,
    HttpTarget, InvalidField, JobName, JobPatch, MaxRetries, MisfirePolicy, NewJob,
    SecretHeaderNames, StartingDeadline, TargetUrl, TimeoutSeconds,
};
use crate::schedule::{CronExpression, Schedule, Timezone};

/// A job to create (`POST /api/v1/jobs`). Only `name`, `cronExpression` and `httpUrl` are
/// required; `null` is the same as leaving a field out. Unknown fields are refused (422
/// `unknown_field`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "name": "nightly-report",
    "cronExpression": "0 30 2 * * *",
    "timezone": "Europe/Paris",
    "httpMethod": "POST",
    "httpUrl": "https://reports.example.com/run",
    "httpHeaders": {"Authorization": "Bearer s3cret"},
    "httpBody": "{\"kind\":\"nightly\"}",
    "executionType": "AT_LEAST_ONCE",
    "maxRetries": 3
}))]
pub struct JobRequest {
    /// A name for people; need not be unique. Trimmed; no control characters.
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = "\\S")]
    name: JobName,
    /// Free text (default empty), without NUL characters.
    #[schema(value_type = Option<String>, max_length = 2000)]
    description: Option<Description>,
    /// Six fields, seconds first: `sec min hour day-of-month month day-of-week`
    /// (e.g. `31 10-15 1 * * MON-FRI`); five fields (minute first) fire at second 0. At
    /// most 256 characters, and at most 60 comma-separated items in a field.
    #[schema(
        value_type = String,
        min_length = 1,
        max_length = 256,
        example = "31 10-15 1 * * MON-FRI"
    )]
    cron_expression: CronExpression,
    /// The IANA zone the expression is read in (default `UTC`).
    #[schema(value_type = Option<String>, example = "America/New_York")]
    timezone: Option<Timezone>,
    /// Default `POST`.
    http_method: Option<HttpMethod>,
    /// An absolute http or https URL of at most 2048 bytes, without credentials; its
    /// address must be one tickwork may call (422 `target_not_allowed` otherwise).
    #[schema(
        value_type = String,
        max_length = 2048,
        example = "https://reports.example.com/run"
    )]
    http_url: TargetUrl,
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
    http_headers: Option<HttpHeaders>,
    /// Names of `httpHeaders` to keep secret beside the credential headers recognised by
    /// name: their values are sealed at rest, read back as `********` and sent as given.
    /// Sent with `httpHeaders` (it marks headers of that request).
    #[schema(value_type = Option<Vec<String>>, max_items = 32)]
    secret_headers: Option<SecretHeaderNames>,
    /// The request body sent to the target: at most 65,536 bytes of UTF-8, without NUL.
    #[schema(value_type = Option<String>, max_length = 65536)]
    http_body: Option<HttpBody>,
    /// Default `AT_LEAST_ONCE`.
    execution_type: Option<ExecutionType>,
    /// Retries after the first attempt, AT_LEAST_ONCE only (default 3).
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 20)]
    max_retries: Option<MaxRetries>,
    /// How long one attempt may take (default 90).
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 90)]
    timeout_seconds: Option<TimeoutSeconds>,
    /// Whether the job fires (default true).
    #[serde(default, deserialize_with = "flag")]
    #[schema(value_type = Option<bool>)]
    is_active: Option<bool>,
    /// Default `FIRE_ONCE`.
    misfire_policy: Option<MisfirePolicy>,
    /// Most missed fires FIRE_ALL makes up (default 100).
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 10000)]
    catch_up_limit: Option<CatchUpLimit>,
    /// Default `ALLOW`.
    concurrency_policy: Option<ConcurrencyPolicy>,
    /// Seconds a fire may wait for its first attempt to start, counted from the later of
    /// its scheduled time and when it was queued: a fire not started by then is not sent
    /// and ends EXPIRED (a dead letter; requeue it to send it). Retries and fires taken back
    /// from a stopped worker are not held to it. Null: none, fires wait as long as it takes.
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 86400)]
    starting_deadline_seconds: Option<StartingDeadline>,
}

/// A change to a job (`PATCH /api/v1/jobs/{id}`): any subset of `JobRequest`'s fields,
/// each checked as at creation; `null` clears description, httpHeaders, httpBody and
/// startingDeadlineSeconds. Unknown fields are refused.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"cronExpression": "*/30 * * * * *", "isActive": false}))]
pub struct JobPatchRequest {
    /// A new name, read as at creation.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = String, required = false, min_length = 1, max_length = 200, pattern = "\\S")]
    name: Option<JobName>,
    /// A new description; `null` clears it.
    #[serde(default, deserialize_with = "clearable")]
    #[schema(value_type = Option<String>, required = false, max_length = 2000)]
    description: Option<Option<Description>>,
    /// A new expression, read as at creation; the schedule restarts from now.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = String, required = false, min_length = 1, max_length = 256)]
    cron_expression: Option<CronExpression>,
    /// A new IANA zone; the schedule restarts from now.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = String, required = false)]
    timezone: Option<Timezone>,
    /// A new method.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = HttpMethod, required = false)]
    http_method: Option<HttpMethod>,
    /// A new URL, checked as at creation.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = String, required = false, max_length = 2048)]
    http_url: Option<TargetUrl>,
    /// New headers, replacing them all and checked as at creation; `null` clears them.
    /// A credential header sent as `********` keeps its stored value.
    #[serde(default, deserialize_with = "clearable")]
    #[schema(value_type = Option<HttpHeadersSchema>, required = false)]
    http_headers: Option<Option<HttpHeaders>>,
    /// Names of the new `httpHeaders` to keep secret (sent with `httpHeaders`).
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Vec<String>, required = false, max_items = 32)]
    secret_headers: Option<SecretHeaderNames>,
    /// A new request body; `null` clears it.
    #[serde(default, deserialize_with = "clearable")]
    #[schema(value_type = Option<String>, required = false, max_length = 65536)]
    http_body: Option<Option<HttpBody>>,
    /// A new delivery promise.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = ExecutionType, required = false)]
    execution_type: Option<ExecutionType>,
    /// A new retry count.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = i32, required = false, minimum = 0, maximum = 20)]
    max_retries: Option<MaxRetries>,
    /// A new timeout, in seconds.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = i32, required = false, minimum = 1, maximum = 90)]
    timeout_seconds: Option<TimeoutSeconds>,
    /// `false` pauses the job, `true` resumes it (and brings back a deleted job).
    #[serde(default, deserialize_with = "flag")]
    #[schema(value_type = bool, required = false)]
    is_active: Option<bool>,
    /// A new misfire policy.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = MisfirePolicy, required = false)]
    misfire_policy: Option<MisfirePolicy>,
    /// A new catch-up limit.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = i32, required = false, minimum = 1, maximum = 10000)]
    catch_up_limit: Option<CatchUpLimit>,
    /// A new overlap policy.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = ConcurrencyPolicy, required = false)]
    concurrency_policy: Option<ConcurrencyPolicy>,
    /// A new starting deadline, in seconds; `null` removes it (fires wait as long as it
    /// takes).
    #[serde(default, deserialize_with = "clearable")]
    #[schema(value_type = Option<i32>, required = false, minimum = 1, maximum = 86400)]
    starting_deadline_seconds: Option<Option<StartingDeadline>>,
}

/// A field a patch may leave out but not set to `null`: the checked type sees the `null`
/// and refuses it.
fn given<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A field a patch may clear: `null` is `Some(None)`.
fn clearable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `isActive`: true or false.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(flag) => Ok(Some(flag)),
        Value::Null => Err(de::Error::custom(InvalidField::null("isActive"))),
        other => Err(de::Error::custom(InvalidField::wrong_type(
            "isActive",
            "isActive",
            "true or false",
            &other,
        ))),
    }
}

impl JobRequest {
    /// The job it asks for, defaults filled in.
    fn into_new_job(self) -> Result<NewJob, ApiError> {
        let headers = with_secret(self.http_headers, self.secret_headers)?;
        Ok(NewJob {
            name: self.name,
            description: self.description.unwrap_or_default(),
            schedule: Schedule::new(self.cron_expression, self.timezone.unwrap_or_default()),
            target: HttpTarget {
                method: self.http_method.unwrap_or_default(),
                url: self.http_url,
                headers: headers.unwrap_or_default(),
                body: self.http_body.unwrap_or_default(),
            },
            execution_type: self.execution_type.unwrap_or_default(),
            max_retries: self.max_retries.unwrap_or_default(),
            timeout: self.timeout_seconds.unwrap_or_default(),
            is_active: self.is_active.unwrap_or(true),
            misfire_policy: self.misfire_policy.unwrap_or_default(),
            catch_up_limit: self.catch_up_limit.unwrap_or_default(),
            concurrency_policy: self.concurrency_policy.unwrap_or_default(),
            starting_deadline: self.starting_deadline_seconds,
        })
    }
}

impl JobPatchRequest {
    /// The change it asks for; a cleared field becomes its empty value.
    fn into_patch(self) -> Result<JobPatch, ApiError> {
        let headers = match self.http_headers {
            Some(headers) => Some(with_secret(headers, self.secret_headers)?.unwrap_or_default()),
            None => with_secret(None, self.secret_headers)?,
        };
        Ok(JobPatch {
            name: self.name,
            description: self.description.map(Option::unwrap_or_default),
            cron: self.cron_expression,
            timezone: self.timezone,
            method: self.http_method,
            url: self.http_url,
            headers,
            body: self.http_body.map(Option::unwrap_or_default),
            execution_type: self.execution_type,
            max_retries: self.max_retries,
            timeout: self.timeout_seconds,
            is_active: self.is_active,
            misfire_policy: self.misfire_policy,
            catch_up_limit: self.catch_up_limit,
            concurrency_policy: self.concurrency_policy,
            starting_deadline: self.starting_deadline_seconds,
        })
    }
}

/// `httpHeaders` with the names `secretHeaders` marks; `secretHeaders` alone is refused,
/// since it marks headers of the same request.
fn with_secret(
    headers: Option<HttpHeaders>,
    secret: Option<SecretHeaderNames>,
) -> Result<Option<HttpHeaders>, InvalidField> {
    match (headers, secret) {
        (Some(headers), Some(SecretHeaderNames(names))) => headers.with_secret(names).map(Some),
        (None, Some(_)) => Err(InvalidField::new(
            "secretHeaders",
            "secretHeaders marks headers of httpHeaders; send httpHeaders with it",
        )),
        (headers, None) => Ok(headers),
    }
}

/// `httpHeaders`: names to values, as many as a job may carry, names HTTP tokens.
pub struct HttpHeadersSchema;

impl PartialSchema for HttpHeadersSchema {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
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
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("HttpHeaders")
    }
}

/// Fields tickwork sets; sending them is a mistake worth its own message.
const READ_ONLY_FIELDS: [&str; 8] = [
    "id",
    "nextRunAt",
    "lastRunAt",
    "lastStatus",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "skippedFires",
];

/// The fields a job request takes, in the order they are declared, as serde names them.
pub(super) static JOB_FIELDS: LazyLock<&'static [&'static str]> =
    LazyLock::new(fields_of::<JobRequest>);

/// The fields a create must carry, as the schema derived from [`JobRequest`] lists them.
static REQUIRED_FIELDS: LazyLock<Vec<String>> = LazyLock::new(required_of::<JobRequest>);

/// The fields a request of `T` must carry, as the schema derived from it lists them.
pub(super) fn required_of<T: PartialSchema>() -> Vec<String> {
    match T::schema() {
        RefOr::T(Schema::Object(object)) => object.required,
        _ => Vec::new(),
    }
}

/// Reads a create-job request: a JSON object of [`JobRequest`]'s fields.
pub fn new_job(bytes: &[u8]) -> Result<NewJob, ApiError> {
    let object = json_object(bytes)?;
    refuse_unknown(&object)?;
    read_new::<JobRequest>(object, &REQUIRED_FIELDS)?.into_new_job()
}

/// Reads a request that makes something: `null` is the same as a field left out, and a
/// `required` field left out is named before anything else is read.
pub(super) fn read_new<T: for<'de> Deserialize<'de>>(
    mut object: Map<String, Value>,
    required: &[String],
) -> Result<T, ApiError> {
    object.retain(|_, value| !value.is_null());
    if let Some(missing) = required.iter().find(|f| !object.contains_key(*f)) {
        return Err(ApiError::missing_field(missing));
    }
    read::<T>(object)
}

/// Reads a partial update: any subset of the job fields, checked as at creation.
pub fn job_patch(bytes: &[u8]) -> Result<JobPatch, ApiError> {
    let object = json_object(bytes)?;
    refuse_unknown(&object)?;
    read::<JobPatchRequest>(object)?.into_patch()
}

/// Refuses a field tickwork sets and a field no job has, each with its own message.
fn refuse_unknown(object: &Map<String, Value>) -> Result<(), ApiError> {
    for key in object.keys() {
        if READ_ONLY_FIELDS.contains(&key.as_str()) {
            return Err(ApiError::unknown_field(
                key,
                format!("{key} is set by tickwork and cannot be written"),
            ));
        }
        if !JOB_FIELDS.contains(&key.as_str()) {
            return Err(ApiError::unknown_field(
                key,
                format!(
                    "unknown field {key:?}; expected one of {}",
                    JOB_FIELDS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Reads `object` as `T`; a field it cannot take is named by its JSON path.
fn read<T: for<'de> Deserialize<'de>>(object: Map<String, Value>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|error| {
        let field = error.path().to_string();
        ApiError::invalid_field(&field, error.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> ApiError {
        new_job(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn the_original_example_body_parses_with_defaults() {
        let job = new_job(
            br#"{"name": "Test Job", "description": "A test job", "cronExpression": "0 */5 * * * *",
                "httpMethod": "POST", "httpUrl": "https://httpbin.org/post", "executionType": "AT_LEAST_ONCE"}"#,
        )
        .unwrap();
        assert_eq!(job.name.as_str(), "Test Job");
        assert_eq!(job.max_retries.get(), 3);
        assert_eq!(job.timeout.get(), 90);
        assert_eq!(job.schedule.timezone().name(), "UTC");
        assert!(job.is_active);
    }

    #[test]
    fn the_field_list_is_the_declared_one() {
        assert_eq!(JOB_FIELDS.len(), 17);
        assert_eq!(JOB_FIELDS[0], "name");
        assert_eq!(JOB_FIELDS[2], "cronExpression");
        assert_eq!(fields_of::<JobPatchRequest>(), *JOB_FIELDS);
        assert_eq!(*REQUIRED_FIELDS, ["name", "cronExpression", "httpUrl"]);
    }

    #[test]
    fn each_mistake_names_its_field() {
        assert_eq!(err("not json").code, "invalid_json");
        assert_eq!(err("[1]").code, "invalid_body");
        assert_eq!(err("").code, "invalid_json");
        let e = err(r#"{"cronExpression":"* * * * * *","httpUrl":"http://x"}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("name"))
        );
        let e = err(r#"{"name":5,"cronExpression":"* * * * * *","httpUrl":"http://x"}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("name"))
        );
        assert_eq!(e.message, "name must be a string, got a number");
        let e = err(r#"{"name":"a","cronExpression":"* * * *","httpUrl":"http://x"}"#);
        assert_eq!(e.field.as_deref(), Some("cronExpression"));
        let e = err(
            r#"{"name":"a","cronExpression":"* * * * * *","httpUrl":"http://x","cronExpresion":"x"}"#,
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("cronExpresion"))
        );
        let e = err(
            r#"{"name":"a","cronExpression":"* * * * * *","httpUrl":"http://x","httpHeaders":{"A":1}}"#,
        );
        assert_eq!(e.field.as_deref(), Some("httpHeaders.A"));
        assert_eq!(e.message, "httpHeaders.A must be a string, got a number");
        let e = err(
            r#"{"name":"a","cronExpression":"* * * * * *","httpUrl":"http://x","maxRetries":1.5}"#,
        );
        assert_eq!(e.field.as_deref(), Some("maxRetries"));
        let job = new_job(
            br#"{"name":"a","cronExpression":"* * * * * *","httpUrl":"http://x","maxRetries":2.0,"description":null}"#,
        )
        .unwrap();
        assert_eq!(job.max_retries.get(), 2);
    }

    #[test]
    fn a_patch_carries_only_what_was_sent_and_null_clears_optional_fields() {
        let patch = job_patch(br#"{"cronExpression":"*/5 * * * * *","httpBody":null}"#).unwrap();
        assert!(patch.cron.is_some());
        assert!(patch.name.is_none());
        assert_eq!(patch.body, Some(HttpBody::default()));
        let e = job_patch(br#"{"name":null}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("name"))
        );
        assert_eq!(
            e.message,
            "name cannot be null; omit it to keep the current value"
        );
        let e = job_patch(br#"{"maxRetries":99}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("maxRetries"));
        let e = job_patch(br#"{"isActive":"yes"}"#).unwrap_err();
        assert_eq!(e.message, "isActive must be true or false, got a string");
        assert!(job_patch(b"{}").is_ok());
    }

    #[test]
    fn a_patch_sets_clears_or_keeps_the_starting_deadline() {
        let set = job_patch(br#"{"startingDeadlineSeconds":30}"#).unwrap();
        assert_eq!(
            set.starting_deadline.map(|d| d.map(StartingDeadline::get)),
            Some(Some(30))
        );
        let cleared = job_patch(br#"{"startingDeadlineSeconds":null}"#).unwrap();
        assert_eq!(cleared.starting_deadline, Some(None));
        let kept = job_patch(br#"{"name":"x"}"#).unwrap();
        assert_eq!(kept.starting_deadline, None);
        for bad in [
            r#"{"startingDeadlineSeconds":0}"#,
            r#"{"startingDeadlineSeconds":86401}"#,
            r#"{"startingDeadlineSeconds":"30"}"#,
            r#"{"startingDeadlineSeconds":1.5}"#,
        ] {
            let e = job_patch(bad.as_bytes()).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("invalid_field", Some("startingDeadlineSeconds")),
                "{bad}"
            );
        }
    }

    #[test]
    fn secret_headers_come_with_the_headers_they_mark() {
        let patch = job_patch(br#"{"httpHeaders":{"A":"b"},"secretHeaders":["a"]}"#).unwrap();
        let headers = patch.headers.unwrap();
        assert!(headers.marked_secret().contains("a"));
        let e = job_patch(br#"{"secretHeaders":["A"]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("secretHeaders"));
        let e = job_patch(br#"{"httpHeaders":{"A":"b"},"secretHeaders":"A"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "secretHeaders must be an array of strings, got a string"
        );
    }
}

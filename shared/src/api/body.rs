//! Reading job requests: JSON in, a checked [`NewJob`] out, or an error naming the field.
//!
//! Bodies are read as untyped JSON first so each mistake gets its own message: not JSON
//! (400), not an object (400), a field missing, of the wrong type, invalid or unknown
//! (422, naming it).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use std::cell::RefCell;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::model::{
    CatchUpLimit, ConcurrencyPolicy, Description, ExecutionType, HttpBody, HttpHeaders, HttpMethod,
    HttpTarget, InvalidField, JobName, JobPatch, MaxRetries, MisfirePolicy, NewJob,
    StartingDeadline, TargetUrl, TimeoutSeconds,
};
use crate::schedule::{CronExpression, Schedule, Timezone};

/// Fields a job request may carry.
pub(super) const JOB_FIELDS: [&str; 17] = [
    "name",
    "description",
    "cronExpression",
    "timezone",
    "httpMethod",
    "httpUrl",
    "httpHeaders",
    "secretHeaders",
    "httpBody",
    "executionType",
    "maxRetries",
    "timeoutSeconds",
    "isActive",
    "misfirePolicy",
    "catchUpLimit",
    "concurrencyPolicy",
    "startingDeadlineSeconds",
];

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

/// The request body, or why it could not be read: 413 past the limit, 400 otherwise (the
/// client hung up, a broken chunked encoding).
pub fn read(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(super::BODY_LIMIT)
        } else {
            ApiError::invalid_body(format!(
                "request body could not be read: {}",
                rejection.body_text()
            ))
        }
    })
}

/// Parses bytes into a JSON object. A number too large to read is refused naming the
/// field it is in (422), like any other value out of its field's range.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json(
            "request body is empty; expected a JSON object",
        ));
    }
    let reading = RefCell::new(None);
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let parsed = TopLevelSeed { reading: &reading }
        .deserialize(&mut json)
        .and_then(|top| json.end().map(|()| top));
    match parsed {
        Ok(TopLevel::Object(map)) => Ok(map),
        Ok(TopLevel::Other(kind)) => Err(ApiError::invalid_body(format!(
            "request body must be a JSON object, got {kind}"
        ))),
        Err(error) => match reading.into_inner() {
            Some(field) if error.to_string().starts_with("number out of range") => {
                Err(ApiError::number_out_of_range(&field))
            }
            _ => Err(ApiError::invalid_json(format!(
                "request body is not valid JSON: {error}"
            ))),
        },
    }
}

/// A request body's top level.
enum TopLevel {
    Object(Map<String, Value>),
    /// Anything else, named for the error message.
    Other(&'static str),
}

/// Reads the top level field by field, keeping in `reading` the field whose value is being
/// read, so an error inside a value can name its field.
struct TopLevelSeed<'a> {
    reading: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for TopLevelSeed<'_> {
    type Value = TopLevel;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<TopLevel, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevelSeed<'_> {
    type Value = TopLevel;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<TopLevel, A::Error> {
        let mut map = Map::new();
        while let Some(name) = fields.next_key::<String>()? {
            *self.reading.borrow_mut() = Some(name.clone());
            let value: Value = fields.next_value()?;
            map.insert(name, value);
        }
        *self.reading.borrow_mut() = None;
        Ok(TopLevel::Object(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<TopLevel, A::Error> {
        while items.next_element::<IgnoredAny>()?.is_some() {}
        Ok(TopLevel::Other("an array"))
    }

    fn visit_str<E>(self, _: &str) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a string"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a number"))
    }

    fn visit_unit<E>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("null"))
    }
}

/// Typed reads of one JSON object's fields. Absent and `null` both mean "not given".
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn optional_str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ApiError::wrong_type(name, "a string", other)),
        }
    }

    fn optional_int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            // `3.0` is a whole number too (JSON Schema's `integer` says so).
            Some(Value::Number(n)) => match n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }) {
                Some(i) => Ok(Some(i)),
                None => Err(ApiError::wrong_type(
                    name,
                    "a whole number",
                    &Value::Number(n.clone()),
                )),
            },
            Some(other) => Err(ApiError::wrong_type(name, "a whole number", other)),
        }
    }

    fn optional_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(ApiError::wrong_type(name, "true or false", other)),
        }
    }

    fn optional_string_map(&self, name: &str) -> Result<Vec<(String, String)>, ApiError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(ApiError::wrong_type(
                        &format!("{name}.{k}"),
                        "a string",
                        other,
                    )),
                })
                .collect(),
            Some(other) => Err(ApiError::wrong_type(
                name,
                "an object of header names to string values",
                other,
            )),
        }
    }

    fn optional_string_list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ApiError::wrong_type(name, "an array of strings", other)),
                })
                .collect(),
            Some(other) => Err(ApiError::wrong_type(name, "an array of strings", other)),
        }
    }

    fn reject_unknown(&self) -> Result<(), ApiError> {
        for key in self.0.keys() {
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
}

/// Every job field a request may carry, each checked; absent (or `null`) is `None`.
struct JobFields {
    name: Option<JobName>,
    description: Option<Description>,
    cron: Option<CronExpression>,
    timezone: Option<Timezone>,
    method: Option<HttpMethod>,
    url: Option<TargetUrl>,
    headers: Option<HttpHeaders>,
    body: Option<HttpBody>,
    execution_type: Option<ExecutionType>,
    max_retries: Option<MaxRetries>,
    timeout: Option<TimeoutSeconds>,
    is_active: Option<bool>,
    misfire_policy: Option<MisfirePolicy>,
    catch_up_limit: Option<CatchUpLimit>,
    concurrency_policy: Option<ConcurrencyPolicy>,
    starting_deadline: Option<StartingDeadline>,
}

/// Reads and checks every field present, in the order the API documents them.
fn job_fields(fields: &Fields<'_>) -> Result<JobFields, ApiError> {
    let schedule_error = crate::model::InvalidField::from_schedule;
    Ok(JobFields {
        name: fields
            .optional_str("name")?
            .map(JobName::parse)
            .transpose()?,
        description: fields
            .optional_str("description")?
            .map(Description::parse)
            .transpose()?,
        cron: fields
            .optional_str("cronExpression")?
            .map(|c| CronExpression::parse_submitted(c).map_err(schedule_error))
            .transpose()?,
        timezone: fields
            .optional_str("timezone")?
            .map(|tz| Timezone::parse(tz).map_err(schedule_error))
            .transpose()?,
        method: fields
            .optional_str("httpMethod")?
            .map(HttpMethod::parse)
            .transpose()?,
        url: fields
            .optional_str("httpUrl")?
            .map(TargetUrl::parse)
            .transpose()?,
        headers: match fields.get("httpHeaders") {
            None if fields.get("secretHeaders").is_some() => {
                return Err(ApiError::from(InvalidField::new(
                    "secretHeaders",
                    "secretHeaders marks headers of httpHeaders; send httpHeaders with it",
                )))
            }
            None => None,
            Some(_) => Some(
                HttpHeaders::parse(fields.optional_string_map("httpHeaders")?)?
                    .with_secret(fields.optional_string_list("secretHeaders")?)?,
            ),
        },
        body: fields
            .optional_str("httpBody")?
            .map(|b| HttpBody::parse(Some(b.to_string())))
            .transpose()?,
        execution_type: fields
            .optional_str("executionType")?
            .map(ExecutionType::parse)
            .transpose()?,
        max_retries: fields
            .optional_int("maxRetries")?
            .map(MaxRetries::parse)
            .transpose()?,
        timeout: fields
            .optional_int("timeoutSeconds")?
            .map(TimeoutSeconds::parse)
            .transpose()?,
        is_active: fields.optional_bool("isActive")?,
        misfire_policy: fields
            .optional_str("misfirePolicy")?
            .map(MisfirePolicy::parse)
            .transpose()?,
        catch_up_limit: fields
            .optional_int("catchUpLimit")?
            .map(CatchUpLimit::parse)
            .transpose()?,
        concurrency_policy: fields
            .optional_str("concurrencyPolicy")?
            .map(ConcurrencyPolicy::parse)
            .transpose()?,
        starting_deadline: fields
            .optional_int("startingDeadlineSeconds")?
            .map(StartingDeadline::parse)
            .transpose()?,
    })
}

/// Reads a create-job request. Only `name`, `cronExpression` and `httpUrl` are required.
pub fn new_job(bytes: &[u8]) -> Result<NewJob, ApiError> {
    let object = json_object(bytes)?;
    let fields = Fields(&object);
    fields.reject_unknown()?;
    for required in ["name", "cronExpression", "httpUrl"] {
        if fields.get(required).is_none() {
            return Err(ApiError::missing_field(required));
        }
    }
    let f = job_fields(&fields)?;
    let (Some(name), Some(cron), Some(url)) = (f.name, f.cron, f.url) else {
        return Err(ApiError::missing_field("name"));
    };
    Ok(NewJob {
        name,
        description: f.description.unwrap_or_default(),
        schedule: Schedule::new(cron, f.timezone.unwrap_or_default()),
        target: HttpTarget {
            method: f.method.unwrap_or_default(),
            url,
            headers: f.headers.unwrap_or_default(),
            body: f.body.unwrap_or_default(),
        },
        execution_type: f.execution_type.unwrap_or_default(),
        max_retries: f.max_retries.unwrap_or_default(),
        timeout: f.timeout.unwrap_or_default(),
        is_active: f.is_active.unwrap_or(true),
        misfire_policy: f.misfire_policy.unwrap_or_default(),
        catch_up_limit: f.catch_up_limit.unwrap_or_default(),
        concurrency_policy: f.concurrency_policy.unwrap_or_default(),
        starting_deadline: f.starting_deadline,
    })
}

/// Fields a PATCH may set to `null`, meaning "clear it".
pub(super) const CLEARABLE_FIELDS: [&str; 4] = [
    "description",
    "httpHeaders",
    "httpBody",
    "startingDeadlineSeconds",
];

/// Reads a partial update: any subset of the job fields, checked as at creation.
/// `null` clears `description`, `httpHeaders`, `httpBody` and `startingDeadlineSeconds`;
/// other fields cannot be null.
pub fn job_patch(bytes: &[u8]) -> Result<JobPatch, ApiError> {
    let object = json_object(bytes)?;
    let fields = Fields(&object);
    fields.reject_unknown()?;
    if let Some((key, _)) = object
        .iter()
        .find(|(k, v)| v.is_null() && !CLEARABLE_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::null_field(key));
    }
    let f = job_fields(&fields)?;
    let cleared = |name: &str| object.get(name).is_some_and(Value::is_null);
    Ok(JobPatch {
        name: f.name,
        description: f
            .description
            .or_else(|| cleared("description").then(Description::default)),
        cron: f.cron,
        timezone: f.timezone,
        method: f.method,
        url: f.url,
        headers: f
            .headers
            .or_else(|| cleared("httpHeaders").then(HttpHeaders::default)),
        body: f
            .body
            .or_else(|| cleared("httpBody").then(HttpBody::default)),
        execution_type: f.execution_type,
        max_retries: f.max_retries,
        timeout: f.timeout,
        is_active: f.is_active,
        misfire_policy: f.misfire_policy,
        catch_up_limit: f.catch_up_limit,
        concurrency_policy: f.concurrency_policy,
        starting_deadline: f
            .starting_deadline
            .map(Some)
            .or_else(|| cleared("startingDeadlineSeconds").then_some(None)),
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
        let e = err(
            r#"{"name":"a","cronExpression":"* * * * * *","httpUrl":"http://x","maxRetries":1.5}"#,
        );
        assert_eq!(e.field.as_deref(), Some("maxRetries"));
    }
}

#[cfg(test)]
mod patch_tests {
    use super::*;

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
        let e = job_patch(br#"{"maxRetries":99}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("maxRetries"));
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
}

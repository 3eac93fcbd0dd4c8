//! Reading job requests: JSON in, a checked [`NewJob`] out, or an error naming the field.
//!
//! Bodies are read as untyped JSON first so each mistake gets its own message: not JSON
//! (400), not an object (400), a field missing, of the wrong type, invalid or unknown
//! (422, naming it).

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::model::{
    Description, ExecutionType, HttpBody, HttpHeaders, HttpMethod, HttpTarget, JobName, MaxRetries,
    NewJob, TargetUrl, TimeoutSeconds,
};
use crate::schedule::{CronExpression, Schedule, Timezone};

/// Fields a job request may carry.
const JOB_FIELDS: [&str; 12] = [
    "name",
    "description",
    "cronExpression",
    "timezone",
    "httpMethod",
    "httpUrl",
    "httpHeaders",
    "httpBody",
    "executionType",
    "maxRetries",
    "timeoutSeconds",
    "isActive",
];

/// Fields tickwork sets; sending them is a mistake worth its own message.
const READ_ONLY_FIELDS: [&str; 6] = [
    "id",
    "nextRunAt",
    "lastRunAt",
    "lastStatus",
    "createdAt",
    "updatedAt",
];

/// Parses bytes into a JSON object.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json(
            "request body is empty; expected a JSON object",
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_json(format!("request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::invalid_body(format!(
            "request body must be a JSON object, got {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        ))),
    }
}

/// Typed reads of one JSON object's fields. Absent and `null` both mean "not given".
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn required_str(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            None => Err(ApiError::missing_field(name)),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(ApiError::wrong_type(name, "a string", other)),
        }
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
            Some(Value::Number(n)) => match n.as_i64() {
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

/// Reads a create-job request. Only `name`, `cronExpression` and `httpUrl` are required.
pub fn new_job(bytes: &[u8]) -> Result<NewJob, ApiError> {
    let object = json_object(bytes)?;
    let fields = Fields(&object);
    fields.reject_unknown()?;

    let name = JobName::parse(fields.required_str("name")?)?;
    let description = Description::parse(fields.optional_str("description")?.unwrap_or(""))?;
    let cron = CronExpression::parse(fields.required_str("cronExpression")?)
        .map_err(crate::model::InvalidField::from_schedule)?;
    let timezone = match fields.optional_str("timezone")? {
        Some(tz) => Timezone::parse(tz).map_err(crate::model::InvalidField::from_schedule)?,
        None => Timezone::default(),
    };
    let method = match fields.optional_str("httpMethod")? {
        Some(m) => HttpMethod::parse(m)?,
        None => HttpMethod::default(),
    };
    let url = TargetUrl::parse(fields.required_str("httpUrl")?)?;
    let headers = HttpHeaders::parse(fields.optional_string_map("httpHeaders")?)?;
    let body = HttpBody::parse(fields.optional_str("httpBody")?.map(str::to_string))?;
    let execution_type = match fields.optional_str("executionType")? {
        Some(t) => ExecutionType::parse(t)?,
        None => ExecutionType::default(),
    };
    let max_retries = match fields.optional_int("maxRetries")? {
        Some(n) => MaxRetries::parse(n)?,
        None => MaxRetries::default(),
    };
    let timeout = match fields.optional_int("timeoutSeconds")? {
        Some(n) => TimeoutSeconds::parse(n)?,
        None => TimeoutSeconds::default(),
    };
    let is_active = fields.optional_bool("isActive")?.unwrap_or(true);

    Ok(NewJob {
        name,
        description,
        schedule: Schedule::new(cron, timezone),
        target: HttpTarget {
            method,
            url,
            headers,
            body,
        },
        execution_type,
        max_retries,
        timeout,
        is_active,
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

//! A field of a job request: the error that names it, and how each checked value is read
//! from its JSON.
//!
//! Every checked type reads itself (`Deserialize`): the JSON shape it takes (a string, a
//! whole number), then its own `parse`. So a request type can hold the checked types
//! directly and serde reads it field by field; a mistake comes back as one message that
//! names the field and says what would be accepted.

use std::str::FromStr;

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;
use strum::VariantArray;

use crate::schedule::{CronExpression, ScheduleError, Timezone};

/// A value a user sent that cannot be used, with the JSON field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidField {
    /// The camelCase field name as the API spells it.
    pub field: &'static str,
    /// What is wrong, and what would be accepted.
    pub message: String,
}

impl InvalidField {
    /// An error about `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// Maps a schedule error to the field it concerns.
    pub fn from_schedule(error: ScheduleError) -> Self {
        let field = match error {
            ScheduleError::UnknownTimezone(_) => "timezone",
            _ => "cronExpression",
        };
        Self::new(field, error.to_string())
    }

    /// `field` (or a part of it, such as `httpHeaders.X-Count`) holds JSON of the wrong
    /// shape.
    pub fn wrong_type(field: &'static str, path: &str, expected: &str, got: &Value) -> Self {
        Self::new(
            field,
            format!("{path} must be {expected}, got {}", json_kind(got)),
        )
    }

    /// `null` for a field that cannot be cleared.
    pub fn null(field: &'static str) -> Self {
        Self::new(
            field,
            format!("{field} cannot be null; omit it to keep the current value"),
        )
    }
}

/// How a JSON value is named in messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads one field's JSON and checks it with `check`; `null` is refused (a request that
/// may clear the field reads it as `Option`, which takes `null` before this sees it).
pub(super) fn read<'de, D, T>(
    deserializer: D,
    field: &'static str,
    check: impl FnOnce(Value) -> Result<T, InvalidField>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Err(D::Error::custom(InvalidField::null(field)));
    }
    check(value).map_err(D::Error::custom)
}

/// The string in `value`, or why there is none.
pub(super) fn text(field: &'static str, value: Value) -> Result<String, InvalidField> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(InvalidField::wrong_type(field, field, "a string", &other)),
    }
}

/// The whole number in `value`: `3.0` is one too (JSON Schema's `integer` says so).
pub(super) fn whole_number(field: &'static str, value: Value) -> Result<i64, InvalidField> {
    let whole = match &value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    };
    whole.ok_or_else(|| InvalidField::wrong_type(field, field, "a whole number", &value))
}

/// `Deserialize` for a checked type read from a string or a whole number of one field:
/// `reads!(JobName, "name", text, |raw| JobName::parse(&raw))`.
macro_rules! reads {
    ($type:ty, $field:literal, $shape:path, $check:expr) => {
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::model::field::read(deserializer, $field, |value| {
                    $shape($field, value).and_then($check)
                })
            }
        }
    };
}
pub(super) use reads;

/// The names of a fixed set (the model's enums), their parse and their JSON reading, all
/// from the variants' derived names: `named!(HttpMethod, "httpMethod")`.
macro_rules! named {
    ($type:ty, $field:literal) => {
        impl $type {
            /// The name used in JSON and storage.
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// Reads a name, refusing any other with a message that lists the names.
            pub fn parse(raw: &str) -> Result<Self, $crate::model::InvalidField> {
                $crate::model::field::parse_name($field, raw)
            }
        }

        $crate::model::field::reads!($type, $field, $crate::model::field::text, |raw| {
            <$type>::parse(&raw)
        });
    };
}
pub(super) use named;

/// One of `T`'s names, or an error for `field` listing them, with a hint when only the case
/// is wrong (the names of a set are all in upper case, or all in lower case).
pub(super) fn parse_name<T>(field: &'static str, raw: &str) -> Result<T, InvalidField>
where
    T: FromStr + VariantArray + Copy + Into<&'static str>,
{
    T::from_str(raw).map_err(|_| {
        let names: Vec<&'static str> = T::VARIANTS.iter().map(|v| (*v).into()).collect();
        let hint = match names.iter().find(|n| n.eq_ignore_ascii_case(raw.trim())) {
            Some(name) if name.chars().any(|c| c.is_ascii_lowercase()) => " (in lower case)",
            Some(_) => " (in upper case)",
            None => "",
        };
        InvalidField::new(
            field,
            format!(
                "{field} {raw:?} is not supported; expected {}{hint}",
                listed(&names)
            ),
        )
    })
}

/// Names as a sentence lists them: "A or B", "A, B or C", and past three "one of A, B,
/// C, D".
fn listed(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] if names.len() <= 3 => format!("{} or {last}", rest.join(", ")),
        _ => format!("one of {}", names.join(", ")),
    }
}

// The schedule's parts are read here rather than in `schedule`, which knows nothing of
// request fields.
reads!(CronExpression, "cronExpression", text, |raw| {
    CronExpression::parse_submitted(&raw).map_err(InvalidField::from_schedule)
});
reads!(Timezone, "timezone", text, |raw| {
    Timezone::parse(&raw).map_err(InvalidField::from_schedule)
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lists_read_as_a_sentence_and_long_ones_as_a_list() {
        assert_eq!(listed(&["A", "B"]), "A or B");
        assert_eq!(listed(&["A", "B", "C"]), "A, B or C");
        assert_eq!(listed(&["A", "B", "C", "D"]), "one of A, B, C, D");
    }

    #[test]
    fn a_whole_number_may_be_written_with_a_zero_fraction() {
        assert_eq!(whole_number("n", serde_json::json!(3.0)), Ok(3));
        let error = whole_number("n", serde_json::json!(2.5)).unwrap_err();
        assert_eq!(error.message, "n must be a whole number, got a number");
        let error = whole_number("n", serde_json::json!("3")).unwrap_err();
        assert_eq!(error.message, "n must be a whole number, got a string");
    }
}

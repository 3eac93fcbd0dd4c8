//! Reading request bodies: bytes in, a JSON object out, or an error that says what the
//! body is instead (not JSON, not an object: 400; a number too large to read: 422 naming
//! its field). `request` then reads the object's fields.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use std::cell::RefCell;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::error::ApiError;

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

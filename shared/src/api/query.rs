//! Query strings as types. A route declares the parameters it takes as a struct
//! (`#[derive(Deserialize)]`), and [`Query`] reads the query string into it: a parameter the
//! struct does not name is refused listing those it does, and a value it cannot take is
//! refused naming the parameter (400 `invalid_query`).
//!
//! A parameter given more than once arrives as a list, so a field declared as a `Vec`
//! takes repeats and any other field refuses them.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::error::ApiError;
use super::fields::fields_of;

/// A route's query parameters, read into `T`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        read(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Reads `query` into `T`. The error for a value is the rest of a sentence that begins
/// with the parameter's name (`limit` + ` is "0"; expected ...`).
fn read<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let names = fields_of::<T>();
    let mut given: BTreeMap<String, Value> = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if !names.contains(&name.as_ref()) {
            return Err(ApiError::invalid_query(
                &name,
                format!(
                    "unknown query parameter {name:?}; expected {}",
                    names.join(", ")
                ),
            ));
        }
        let value = Value::String(value.into_owned());
        match given.entry(name.into_owned()) {
            Entry::Vacant(entry) => {
                entry.insert(value);
            }
            Entry::Occupied(mut entry) => match entry.get_mut() {
                Value::Array(values) => values.push(value),
                first => *first = Value::Array(vec![first.take(), value]),
            },
        }
    }
    serde_path_to_error::deserialize(Value::Object(given.into_iter().collect())).map_err(|error| {
        let name = error.path().to_string();
        ApiError::invalid_query(&name, format!("{name}{}", error.into_inner()))
    })
}

/// The one value of a parameter, or why there is not one.
fn one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(value) => Ok(value),
        Value::Array(values) => Err(D::Error::custom(format!(
            " is given {} times; expected it once",
            values.len()
        ))),
        other => Err(D::Error::custom(format!(" is {other}; expected text"))),
    }
}

/// A count from 1 to `MAX`, `DEFAULT` when not given (a page's `limit`, a schedule's
/// `count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count<const DEFAULT: u32, const MAX: u32>(pub u32);

impl<const DEFAULT: u32, const MAX: u32> Default for Count<DEFAULT, MAX> {
    fn default() -> Self {
        Self(DEFAULT)
    }
}

impl<'de, const DEFAULT: u32, const MAX: u32> Deserialize<'de> for Count<DEFAULT, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = one(deserializer)?;
        match raw.parse::<u32>() {
            Ok(n) if (1..=MAX).contains(&n) => Ok(Self(n)),
            _ => Err(D::Error::custom(format!(
                " is {raw:?}; expected a whole number from 1 to {MAX}"
            ))),
        }
    }
}

/// A span of seconds from 0 to `MAX`, `DEFAULT` when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds<const DEFAULT: u32, const MAX: u32>(pub u32);

impl<const DEFAULT: u32, const MAX: u32> Default for Seconds<DEFAULT, MAX> {
    fn default() -> Self {
        Self(DEFAULT)
    }
}

impl<'de, const DEFAULT: u32, const MAX: u32> Deserialize<'de> for Seconds<DEFAULT, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = one(deserializer)?;
        match raw.parse::<u32>() {
            Ok(n) if n <= MAX => Ok(Self(n)),
            _ => Err(D::Error::custom(format!(
                " is {raw:?}; expected a whole number from 0 to {MAX}"
            ))),
        }
    }
}

/// `true` or `false`, written so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match one(deserializer)?.as_str() {
            "true" => Ok(Self(true)),
            "false" => Ok(Self(false)),
            other => Err(D::Error::custom(format!(
                " is {other:?}; expected true or false"
            ))),
        }
    }
}

/// An id (a job's, an execution's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub Uuid);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = one(deserializer)?;
        Uuid::parse_str(&raw)
            .map(Self)
            .map_err(|_| D::Error::custom(format!(" is {raw:?}; expected an id")))
    }
}

/// Text taken as it is (a cursor, an expression), once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one(deserializer).map(Self)
    }
}

/// Text to search for: trimmed, at most `Search::MAX` characters, no NUL; blank is no search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search(pub Option<String>);

impl Search {
    /// Longest search, in characters.
    pub const MAX: usize = 200;
}

impl<'de> Deserialize<'de> for Search {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = one(deserializer)?;
        let text = raw.trim();
        let length = text.chars().count();
        if length > Self::MAX {
            return Err(D::Error::custom(format!(
                " is {length} characters long; at most {} are accepted",
                Self::MAX
            )));
        }
        // No name or description holds one, and PostgreSQL text cannot.
        if text.contains('\0') {
            return Err(D::Error::custom(
                " holds the NUL character (%00); no name or description can",
            ));
        }
        Ok(Self((!text.is_empty()).then(|| text.to_string())))
    }
}

/// A value named by one of a fixed set of words.
pub trait Word: Sized + Copy + 'static {
    /// Each word and the value it names.
    const WORDS: &'static [(&'static str, Self)];
}

/// One of `T`'s words, once (`sort=name`, `status=FAILED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneOf<T>(pub T);

/// The OpenAPI schema of a `OneOf<T>` parameter, `$name`: a string that is one of `T`'s
/// words. (utoipa's tuple parameters take a plain type, so each parameter names one.)
macro_rules! words_schema {
    ($name:ident, $words:ty) => {
        #[doc = concat!("`", stringify!($words), "` in the OpenAPI document: one of its words.")]
        pub(crate) struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
                let words = <$words as $crate::api::query::Word>::WORDS;
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .enum_values(Some(words.iter().map(|(word, _)| *word)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use words_schema;

impl<'de, T: Word> Deserialize<'de> for OneOf<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = one(deserializer)?;
        match T::WORDS.iter().find(|(word, _)| *word == raw) {
            Some((_, value)) => Ok(Self(*value)),
            None => {
                let words: Vec<&str> = T::WORDS.iter().map(|(word, _)| *word).collect();
                Err(D::Error::custom(format!(
                    " is {raw:?}; expected one of {}",
                    words.join(", ")
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Listing {
        #[serde(default)]
        limit: Count<50, 500>,
        is_active: Option<Flag>,
        #[serde(default)]
        label: Vec<Text>,
        sort: Option<OneOf<Side>>,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Side {
        Left,
        Right,
    }

    impl Word for Side {
        const WORDS: &'static [(&'static str, Self)] =
            &[("left", Side::Left), ("right", Side::Right)];
    }

    fn error(query: &str) -> (Option<String>, String) {
        let error = read::<Listing>(query).unwrap_err();
        (error.field, error.message)
    }

    #[test]
    fn parameters_read_into_their_types_and_repeat_only_into_lists() {
        let listing: Listing = read("limit=20&isActive=false&label=a&label=b%20c").unwrap();
        assert_eq!(listing.limit, Count(20));
        assert_eq!(listing.is_active, Some(Flag(false)));
        assert_eq!(listing.label, [Text("a".into()), Text("b c".into())]);
        let defaults: Listing = read("").unwrap();
        assert_eq!((defaults.limit, defaults.is_active), (Count(50), None));
        assert_eq!(
            read::<Listing>("sort=right").unwrap().sort,
            Some(OneOf(Side::Right))
        );
        assert_eq!(
            error("sort=up"),
            (
                Some("sort".into()),
                "sort is \"up\"; expected one of left, right".into()
            )
        );
        assert_eq!(
            error("limit=0"),
            (
                Some("limit".into()),
                "limit is \"0\"; expected a whole number from 1 to 500".into()
            )
        );
        assert_eq!(
            error("limit=1&limit=2"),
            (
                Some("limit".into()),
                "limit is given 2 times; expected it once".into()
            )
        );
        assert_eq!(
            error("colour=red"),
            (
                Some("colour".into()),
                "unknown query parameter \"colour\"; expected limit, isActive, label, sort".into()
            )
        );
    }
}

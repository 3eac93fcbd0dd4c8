//! What a fire calls: the method, the URL, the headers and the body.

use std::collections::{BTreeMap, BTreeSet};

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::field::{named, reads, text, InvalidField};

/// The HTTP methods a target may be called with.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
    strum::Display,
    utoipa::ToSchema,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[schema(
    rename_all = "SCREAMING_SNAKE_CASE",
    description = "The method of the call to the target."
)]
pub enum HttpMethod {
    /// `GET`
    Get,
    /// `POST`, the default: most webhook receivers expect it.
    #[default]
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

named!(HttpMethod, "httpMethod");

/// A target URL: absolute, `http` or `https`, with a host, at most 2048 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(url::Url);

impl TargetUrl {
    /// Longest accepted URL, in bytes.
    pub const MAX_LEN: usize = 2048;

    /// Parses and checks a URL.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(InvalidField::new("httpUrl", "httpUrl must not be empty"));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(InvalidField::new(
                "httpUrl",
                format!(
                    "httpUrl is {} bytes long; at most {} are allowed",
                    raw.len(),
                    Self::MAX_LEN
                ),
            ));
        }
        Self::checked(raw)
    }

    /// A URL read back from storage: checked as at creation but for its length, which
    /// sealed query values add to.
    pub fn from_stored(raw: &str) -> Result<Self, InvalidField> {
        Self::checked(raw.trim())
    }

    fn checked(raw: &str) -> Result<Self, InvalidField> {
        let url = url::Url::parse(raw).map_err(|e| {
            InvalidField::new(
                "httpUrl",
                format!("httpUrl {raw:?} is not a valid absolute URL: {e}"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvalidField::new(
                "httpUrl",
                format!(
                    "httpUrl scheme {:?} is not supported; use http or https",
                    url.scheme()
                ),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(InvalidField::new("httpUrl", "httpUrl has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidField::new(
                "httpUrl",
                "httpUrl must not carry credentials; send them in httpHeaders (e.g. Authorization)",
            ));
        }
        Ok(Self(url))
    }

    /// The URL as stored and called.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL.
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }
}

/// Headers sent with each request: at most 32, names unique (ignoring case), none that
/// tickwork sets itself; with the names the caller marked secret (`secretHeaders`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpHeaders {
    map: BTreeMap<String, String>,
    /// Lowercase names of headers marked secret, beside those secret by name.
    secret: BTreeSet<String>,
}

impl HttpHeaders {
    /// Most headers a job may carry.
    pub const MAX_COUNT: usize = 32;
    /// Most bytes of names and values together.
    pub const MAX_TOTAL_BYTES: usize = 8 * 1024;

    /// Headers that tickwork sets on every request (or, the Standard Webhooks ones, on
    /// every signed request) or that belong to the connection.
    const RESERVED: [&'static str; 9] = [
        "idempotency-key",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "webhook-id",
        "webhook-signature",
        "webhook-timestamp",
    ];

    /// Hop-by-hop and framing headers: they speak of one connection or of how a message
    /// is framed, never of the request a job sends.
    const HOP_BY_HOP: [&'static str; 5] =
        ["te", "trailer", "keep-alive", "proxy-connection", "expect"];

    /// Checks each name and value.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, InvalidField> {
        if pairs.len() > Self::MAX_COUNT {
            return Err(InvalidField::new(
                "httpHeaders",
                format!(
                    "httpHeaders has {} entries; at most {} are allowed",
                    pairs.len(),
                    Self::MAX_COUNT
                ),
            ));
        }
        let total: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
        if total > Self::MAX_TOTAL_BYTES {
            return Err(InvalidField::new(
                "httpHeaders",
                format!(
                    "httpHeaders hold {total} bytes; at most {} are allowed",
                    Self::MAX_TOTAL_BYTES
                ),
            ));
        }
        let mut map = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in pairs {
            let lower = name.to_ascii_lowercase();
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(InvalidField::new(
                    "httpHeaders",
                    format!("httpHeaders name {name:?} is not a valid HTTP header name"),
                ));
            }
            if Self::RESERVED.contains(&lower.as_str()) || lower.starts_with("x-tickwork-") {
                return Err(InvalidField::new(
                    "httpHeaders",
                    format!("httpHeaders {name:?} is set by tickwork on every request and cannot be overridden"),
                ));
            }
            if Self::HOP_BY_HOP.contains(&lower.as_str()) {
                return Err(InvalidField::new(
                    "httpHeaders",
                    format!("httpHeaders {name:?} is a hop-by-hop or framing header; the HTTP client sets what the connection needs"),
                ));
            }
            let visible = value.bytes().all(|b| (0x20..=0x7e).contains(&b));
            if !visible || http::HeaderValue::from_str(&value).is_err() {
                return Err(InvalidField::new(
                    "httpHeaders",
                    format!("httpHeaders value of {name:?} is not a valid HTTP header value (visible ASCII only, no line breaks)"),
                ));
            }
            if !seen.insert(lower) {
                return Err(InvalidField::new(
                    "httpHeaders",
                    format!("httpHeaders {name:?} appears twice (header names ignore case)"),
                ));
            }
            map.insert(name, value);
        }
        Ok(Self {
            map,
            secret: BTreeSet::new(),
        })
    }

    /// Marks the headers `names` secret (`secretHeaders`): their values are sealed at rest
    /// and masked like a credential header's. Each must be one of these headers.
    pub fn with_secret(mut self, names: Vec<String>) -> Result<Self, InvalidField> {
        for name in names {
            if !self.map.keys().any(|n| n.eq_ignore_ascii_case(&name)) {
                return Err(InvalidField::new(
                    "secretHeaders",
                    format!(
                        "secretHeaders names {name:?}, which is not in httpHeaders; list the \
                         names of headers this request sends"
                    ),
                ));
            }
            self.secret.insert(name.to_ascii_lowercase());
        }
        Ok(self)
    }

    /// Lowercase names of the headers marked secret by the caller.
    pub fn marked_secret(&self) -> &BTreeSet<String> {
        &self.secret
    }

    /// Name/value pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The headers as a map, for storage.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    /// Rebuilds headers read back from storage, where they were already checked (a secret
    /// header is stored sealed, which says so itself).
    pub fn from_stored(map: BTreeMap<String, String>) -> Self {
        Self {
            map,
            secret: BTreeSet::new(),
        }
    }
}

/// A request body: any string up to 64 KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpBody(Option<String>);

impl HttpBody {
    /// Largest accepted body, in bytes.
    pub const MAX_BYTES: usize = 64 * 1024;

    /// Checks a body's size.
    pub fn parse(raw: Option<String>) -> Result<Self, InvalidField> {
        if let Some(body) = &raw {
            if body.len() > Self::MAX_BYTES {
                return Err(InvalidField::new(
                    "httpBody",
                    format!(
                        "httpBody is {} bytes; at most {} are allowed",
                        body.len(),
                        Self::MAX_BYTES
                    ),
                ));
            }
            if body.contains('\0') {
                return Err(InvalidField::new(
                    "httpBody",
                    "httpBody must not contain the NUL character (\\u0000); bodies are text",
                ));
            }
        }
        Ok(Self(raw))
    }

    /// The body, if any.
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

reads!(TargetUrl, "httpUrl", text, |raw| TargetUrl::parse(&raw));
reads!(HttpBody, "httpBody", text, |raw| HttpBody::parse(Some(raw)));

/// `httpHeaders`: an object of names to string values, each value read under its own
/// path (`httpHeaders.X-Count`) so a value of the wrong type is named exactly.
impl<'de> Deserialize<'de> for HttpHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = deserializer.deserialize_any(HeaderPairs)?;
        HttpHeaders::parse(pairs).map_err(D::Error::custom)
    }
}

/// What `httpHeaders` must be.
const HEADERS_EXPECTED: &str = "an object of header names to string values";

/// Reads `httpHeaders` into pairs; anything but an object is refused naming what it was.
struct HeaderPairs;

impl HeaderPairs {
    fn refuse<E: de::Error>(got: Value) -> E {
        E::custom(InvalidField::wrong_type(
            "httpHeaders",
            "httpHeaders",
            HEADERS_EXPECTED,
            &got,
        ))
    }
}

impl<'de> Visitor<'de> for HeaderPairs {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(HEADERS_EXPECTED)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        while let Some(name) = entries.next_key::<String>()? {
            let value = entries.next_value_seed(HeaderValue { name: &name })?;
            pairs.push((name, value));
        }
        Ok(pairs)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
        while items.next_element::<de::IgnoredAny>()?.is_some() {}
        Err(Self::refuse(Value::Array(Vec::new())))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(Self::refuse(Value::String(String::new())))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Err(Self::refuse(Value::Bool(b)))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Err(Self::refuse(Value::from(n)))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Err(Self::refuse(Value::from(n)))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Err(Self::refuse(Value::from(n)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom(InvalidField::null("httpHeaders")))
    }
}

/// One header's value, which must be a string.
struct HeaderValue<'a> {
    name: &'a str,
}

impl<'de> DeserializeSeed<'de> for HeaderValue<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(value) => Ok(value),
            other => Err(D::Error::custom(InvalidField::wrong_type(
                "httpHeaders",
                &format!("httpHeaders.{}", self.name),
                "a string",
                &other,
            ))),
        }
    }
}

/// `secretHeaders`: names of `httpHeaders` to keep secret, checked against them by
/// [`HttpHeaders::with_secret`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretHeaderNames(pub Vec<String>);

reads!(SecretHeaderNames, "secretHeaders", names, |names| Ok(
    SecretHeaderNames(names)
));

/// The strings of a JSON array.
fn names(field: &'static str, value: Value) -> Result<Vec<String>, InvalidField> {
    let refuse = |got: &Value| InvalidField::wrong_type(field, field, "an array of strings", got);
    let Value::Array(items) = value else {
        return Err(refuse(&value));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(name) => Ok(name),
            other => Err(refuse(&other)),
        })
        .collect()
}

/// Everything needed to make one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Method of each request.
    pub method: HttpMethod,
    /// Where each request goes.
    pub url: TargetUrl,
    /// The job's own headers, sent beside tickwork's.
    pub headers: HttpHeaders,
    /// The request body, sent as is.
    pub body: HttpBody,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_or_https() {
        assert!(TargetUrl::parse("https://example.com/hook").is_ok());
        let err = TargetUrl::parse("ftp://example.com").unwrap_err();
        assert!(err.message.contains("ftp"), "{}", err.message);
        assert!(TargetUrl::parse("/relative").is_err());
        assert!(TargetUrl::parse("https://user:pw@example.com").is_err());
    }

    #[test]
    fn methods_are_limited_to_five() {
        assert_eq!(HttpMethod::parse("PATCH").unwrap(), HttpMethod::Patch);
        let err = HttpMethod::parse("FETCH").unwrap_err();
        assert_eq!(err.field, "httpMethod");
        let err = HttpMethod::parse("patch").unwrap_err();
        assert!(err.message.ends_with("(in upper case)"), "{}", err.message);
    }

    #[test]
    fn headers_refuse_reserved_duplicate_and_malformed_names() {
        let h = |pairs: &[(&str, &str)]| {
            HttpHeaders::parse(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert!(h(&[("Authorization", "Bearer x")]).is_ok());
        assert!(h(&[("Idempotency-Key", "x")]).is_err());
        assert!(h(&[("X-Tickwork-Attempt", "9")]).is_err());
        assert!(h(&[("A", "1"), ("a", "2")]).is_err());
        assert!(h(&[("bad name", "1")]).is_err());
        assert!(h(&[("X-Ok", "line\nbreak")]).is_err());
    }

    #[test]
    fn header_values_are_visible_ascii_and_hop_by_hop_and_webhook_headers_are_refused() {
        let h = |name: &str, value: &str| {
            HttpHeaders::parse(vec![(name.to_string(), value.to_string())])
        };
        assert!(h("X-Ok", "a b ~!").is_ok());
        for value in ["tab\there", "caf\u{e9}", "del\u{7f}"] {
            let err = h("X-Value", value).unwrap_err();
            assert_eq!(err.field, "httpHeaders");
            assert!(err.message.contains("visible ASCII"), "{}", err.message);
        }
        for name in ["TE", "Trailer", "Keep-Alive", "Proxy-Connection", "Expect"] {
            let err = h(name, "x").unwrap_err();
            assert!(
                err.message.contains("hop-by-hop"),
                "{name}: {}",
                err.message
            );
        }
        for name in ["webhook-id", "Webhook-Signature", "webhook-timestamp"] {
            let err = h(name, "x").unwrap_err();
            assert!(
                err.message.contains("set by tickwork"),
                "{name}: {}",
                err.message
            );
        }
    }
}

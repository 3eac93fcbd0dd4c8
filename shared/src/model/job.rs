//! A job: what to call, when, and with which delivery guarantee.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ExecutionStatus;
use crate::schedule::{CronExpression, Schedule, ScheduleError, Timezone};

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
}

/// Characters that change the order text is shown in: a name holding one can read as
/// something else.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing: whitespace, zero-width and other default-ignorable ones.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2064}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
        )
}

/// A job's display name: 1 to 200 characters once surrounding whitespace is trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobName(String);

impl JobName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Trims and checks a name.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InvalidField::new("name", "name must not be empty"));
        }
        let chars = trimmed.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(InvalidField::new(
                "name",
                format!(
                    "name is {chars} characters long; at most {} are allowed",
                    Self::MAX_CHARS
                ),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(InvalidField::new(
                "name",
                "name must not contain control characters",
            ));
        }
        if trimmed.chars().any(is_bidi_control) {
            return Err(InvalidField::new(
                "name",
                "name must not contain bidirectional controls (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069): they reorder how the name reads",
            ));
        }
        if trimmed.chars().all(is_invisible) {
            return Err(InvalidField::new(
                "name",
                "name has no visible character (only spaces or zero-width characters)",
            ));
        }
        Ok(Self(trimmed.to_string()))
    }

    /// The name as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text shown beside the name: at most 2000 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Longest accepted description, in characters.
    pub const MAX_CHARS: usize = 2000;

    /// Checks a description's length.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let chars = raw.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(InvalidField::new(
                "description",
                format!(
                    "description is {chars} characters long; at most {} are allowed",
                    Self::MAX_CHARS
                ),
            ));
        }
        if raw.contains('\0') {
            return Err(InvalidField::new(
                "description",
                "description must not contain the NUL character (\\u0000)",
            ));
        }
        Ok(Self(raw.to_string()))
    }

    /// The description as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The HTTP methods a target may be called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

impl HttpMethod {
    /// Every method, in the order error messages list them.
    pub const ALL: [HttpMethod; 5] = [
        HttpMethod::Get,
        HttpMethod::Post,
        HttpMethod::Put,
        HttpMethod::Patch,
        HttpMethod::Delete,
    ];

    /// The method's name on the wire and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }

    /// Parses a method name, written in upper case like every name the API takes.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == raw)
            .ok_or_else(|| {
                let hint = if Self::ALL
                    .iter()
                    .any(|m| m.as_str().eq_ignore_ascii_case(raw.trim()))
                {
                    " (in upper case)"
                } else {
                    ""
                };
                InvalidField::new(
                    "httpMethod",
                    format!(
                        "httpMethod {raw:?} is not supported; expected one of GET, POST, PUT, \
                         PATCH, DELETE{hint}"
                    ),
                )
            })
    }
}

impl FromStr for HttpMethod {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// What the tick does with fires missed by more than `MISFIRE_THRESHOLD` (it was down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MisfirePolicy {
    /// One fire, at the latest missed time; the schedule resumes from now.
    #[default]
    FireOnce,
    /// No fire; the schedule resumes at the next time after now.
    Skip,
    /// Every missed fire, oldest first, up to the job's `catchUpLimit`; the rest skipped.
    FireAll,
}

impl MisfirePolicy {
    /// Every policy.
    pub const ALL: [MisfirePolicy; 3] = [
        MisfirePolicy::FireOnce,
        MisfirePolicy::Skip,
        MisfirePolicy::FireAll,
    ];

    /// The name used in JSON and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            MisfirePolicy::FireOnce => "FIRE_ONCE",
            MisfirePolicy::Skip => "SKIP",
            MisfirePolicy::FireAll => "FIRE_ALL",
        }
    }

    /// Parses `FIRE_ONCE`, `SKIP` or `FIRE_ALL`.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        match raw {
            "FIRE_ONCE" => Ok(Self::FireOnce),
            "SKIP" => Ok(Self::Skip),
            "FIRE_ALL" => Ok(Self::FireAll),
            other => Err(InvalidField::new(
                "misfirePolicy",
                format!("misfirePolicy {other:?} is not supported; expected FIRE_ONCE, SKIP or FIRE_ALL"),
            )),
        }
    }
}

/// Most missed fires `FIRE_ALL` records at once: 1 to 10000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUpLimit(u16);

impl CatchUpLimit {
    /// The largest limit a job may ask for.
    pub const MAX: i64 = 10_000;

    /// Checks the range.
    pub fn parse(raw: i64) -> Result<Self, InvalidField> {
        if (1..=Self::MAX).contains(&raw) {
            Ok(Self(raw as u16))
        } else {
            Err(InvalidField::new(
                "catchUpLimit",
                format!("catchUpLimit is {raw}; expected 1 to {}", Self::MAX),
            ))
        }
    }

    /// The limit.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for CatchUpLimit {
    fn default() -> Self {
        Self(100)
    }
}

/// Whether a job's fires may overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConcurrencyPolicy {
    /// Fires run whenever they come due, even alongside earlier ones.
    #[default]
    Allow,
    /// A fire that comes due while an earlier one is unfinished is recorded SKIPPED.
    Forbid,
}

impl ConcurrencyPolicy {
    /// Every policy.
    pub const ALL: [ConcurrencyPolicy; 2] = [ConcurrencyPolicy::Allow, ConcurrencyPolicy::Forbid];

    /// The name used in JSON and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ConcurrencyPolicy::Allow => "ALLOW",
            ConcurrencyPolicy::Forbid => "FORBID",
        }
    }

    /// Parses `ALLOW` or `FORBID`.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        match raw {
            "ALLOW" => Ok(Self::Allow),
            "FORBID" => Ok(Self::Forbid),
            other => Err(InvalidField::new(
                "concurrencyPolicy",
                format!("concurrencyPolicy {other:?} is not supported; expected ALLOW or FORBID"),
            )),
        }
    }
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

/// The delivery promise a job's fires carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionType {
    /// Retried until it succeeds or runs out of retries; never lost.
    #[default]
    AtLeastOnce,
    /// Never delivered twice; not retried.
    AtMostOnce,
}

impl ExecutionType {
    /// Every promise.
    pub const ALL: [ExecutionType; 2] = [ExecutionType::AtLeastOnce, ExecutionType::AtMostOnce];

    /// The name used in JSON and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionType::AtLeastOnce => "AT_LEAST_ONCE",
            ExecutionType::AtMostOnce => "AT_MOST_ONCE",
        }
    }

    /// Parses `AT_LEAST_ONCE` or `AT_MOST_ONCE`.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        match raw {
            "AT_LEAST_ONCE" => Ok(Self::AtLeastOnce),
            "AT_MOST_ONCE" => Ok(Self::AtMostOnce),
            other => Err(InvalidField::new(
                "executionType",
                format!("executionType {other:?} is not supported; expected AT_LEAST_ONCE or AT_MOST_ONCE"),
            )),
        }
    }
}

/// How many times a failed AT_LEAST_ONCE fire is tried again: 0 to 20.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxRetries(u8);

impl MaxRetries {
    /// Most retries a job may ask for.
    pub const MAX: i64 = 20;

    /// Checks the range.
    pub fn parse(raw: i64) -> Result<Self, InvalidField> {
        if (0..=Self::MAX).contains(&raw) {
            Ok(Self(raw as u8))
        } else {
            Err(InvalidField::new(
                "maxRetries",
                format!("maxRetries is {raw}; expected 0 to {}", Self::MAX),
            ))
        }
    }

    /// The count.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for MaxRetries {
    fn default() -> Self {
        Self(3)
    }
}

/// How long one request may take, in seconds: 1 to 90.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutSeconds(u8);

impl TimeoutSeconds {
    /// Longest timeout a job may ask for: tasks run up to 90 seconds.
    pub const MAX: i64 = 90;

    /// Checks the range.
    pub fn parse(raw: i64) -> Result<Self, InvalidField> {
        if (1..=Self::MAX).contains(&raw) {
            Ok(Self(raw as u8))
        } else {
            Err(InvalidField::new(
                "timeoutSeconds",
                format!("timeoutSeconds is {raw}; expected 1 to {}", Self::MAX),
            ))
        }
    }

    /// The timeout in seconds.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for TimeoutSeconds {
    fn default() -> Self {
        Self(90)
    }
}

/// How long a fire may wait for its first attempt to start, in seconds: 1 to 86400. A fire
/// not started by then (counted from the later of its scheduled time and when it was
/// recorded) is not sent and ends EXPIRED. Jobs have none unless they ask: waiting as long
/// as it takes is what AT_LEAST_ONCE promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartingDeadline(u32);

impl StartingDeadline {
    /// The longest deadline a job may ask for: one day.
    pub const MAX: i64 = 86_400;

    /// Checks the range.
    pub fn parse(raw: i64) -> Result<Self, InvalidField> {
        if (1..=Self::MAX).contains(&raw) {
            Ok(Self(raw as u32))
        } else {
            Err(InvalidField::new(
                "startingDeadlineSeconds",
                format!(
                    "startingDeadlineSeconds is {raw}; expected 1 to {} (seconds), or null for none",
                    Self::MAX
                ),
            ))
        }
    }

    /// The deadline in seconds.
    pub fn get(self) -> u32 {
        self.0
    }

    /// As stored.
    pub fn seconds(deadline: Option<Self>) -> Option<i32> {
        deadline.map(|d| i32::try_from(d.0).unwrap_or(i32::MAX))
    }
}

/// A job as a user asked for it, every part already checked.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Display name.
    pub name: JobName,
    /// Free text.
    pub description: Description,
    /// When it fires.
    pub schedule: Schedule,
    /// What each fire calls.
    pub target: HttpTarget,
    /// The delivery promise.
    pub execution_type: ExecutionType,
    /// Retries after a failed attempt (AT_LEAST_ONCE only).
    pub max_retries: MaxRetries,
    /// Per-request timeout.
    pub timeout: TimeoutSeconds,
    /// Whether the job fires at all.
    pub is_active: bool,
    /// What to do with fires missed while the tick was down.
    pub misfire_policy: MisfirePolicy,
    /// Most missed fires `FIRE_ALL` records.
    pub catch_up_limit: CatchUpLimit,
    /// Whether fires may overlap.
    pub concurrency_policy: ConcurrencyPolicy,
    /// How long a fire may wait for its first attempt; `None`: as long as it takes.
    pub starting_deadline: Option<StartingDeadline>,
}

impl NewJob {
    /// Turns the request into a stored job, created at `now`.
    ///
    /// Refuses a schedule that would not fire for years, so a job that can never run is
    /// never stored.
    pub fn into_job(self, id: Uuid, now: DateTime<Utc>) -> Result<Job, InvalidField> {
        let first_fire = self
            .schedule
            .first_fire(now)
            .map_err(InvalidField::from_schedule)?;
        Ok(Job {
            id,
            name: self.name.as_str().to_string(),
            description: self.description.as_str().to_string(),
            cron_expression: self.schedule.cron().as_str().to_string(),
            timezone: self.schedule.timezone().name().to_string(),
            http_method: self.target.method,
            http_url: self.target.url.as_str().to_string(),
            http_headers: self.target.headers.as_map().clone(),
            http_body: self.target.body.as_deref().map(str::to_string),
            execution_type: self.execution_type,
            max_retries: i32::from(self.max_retries.get()),
            timeout_seconds: i32::from(self.timeout.get()),
            is_active: self.is_active,
            next_run_at: self.is_active.then_some(first_fire),
            last_run_at: None,
            last_status: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            misfire_policy: self.misfire_policy,
            catch_up_limit: i32::from(self.catch_up_limit.get()),
            concurrency_policy: self.concurrency_policy,
            starting_deadline_seconds: StartingDeadline::seconds(self.starting_deadline),
            skipped_fires: 0,
            signing_secret: None,
            previous_signing_secret: None,
            previous_secret_expires_at: None,
            tenant: super::DEFAULT_TENANT.to_string(),
        })
    }
}

/// A partial update: each `Some` replaces the job's value, checked like a new job's.
#[derive(Debug, Clone, Default)]
pub struct JobPatch {
    /// New display name.
    pub name: Option<JobName>,
    /// New description.
    pub description: Option<Description>,
    /// New cron expression.
    pub cron: Option<CronExpression>,
    /// New time zone.
    pub timezone: Option<Timezone>,
    /// New method.
    pub method: Option<HttpMethod>,
    /// New URL.
    pub url: Option<TargetUrl>,
    /// New headers (replacing all of them).
    pub headers: Option<HttpHeaders>,
    /// New body.
    pub body: Option<HttpBody>,
    /// New delivery promise.
    pub execution_type: Option<ExecutionType>,
    /// New retry count.
    pub max_retries: Option<MaxRetries>,
    /// New timeout.
    pub timeout: Option<TimeoutSeconds>,
    /// Pause (`false`) or resume (`true`); resuming also undeletes.
    pub is_active: Option<bool>,
    /// New misfire policy.
    pub misfire_policy: Option<MisfirePolicy>,
    /// New catch-up limit.
    pub catch_up_limit: Option<CatchUpLimit>,
    /// New overlap policy.
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// New starting deadline: `Some(None)` clears it.
    pub starting_deadline: Option<Option<StartingDeadline>>,
}

impl JobPatch {
    /// Applies the patch at `now`. A change to the expression, the time zone or
    /// `isActive` recomputes `next_run_at` from `now`; a schedule that would never fire is
    /// refused as at creation.
    pub fn apply(self, mut job: Job, now: DateTime<Utc>) -> Result<Job, InvalidField> {
        let reschedule = self.cron.is_some() || self.timezone.is_some() || self.is_active.is_some();
        if let Some(name) = self.name {
            job.name = name.as_str().to_string();
        }
        if let Some(description) = self.description {
            job.description = description.as_str().to_string();
        }
        if let Some(method) = self.method {
            job.http_method = method;
        }
        if let Some(url) = self.url {
            job.http_url = url.as_str().to_string();
        }
        if let Some(headers) = self.headers {
            job.http_headers = headers.as_map().clone();
        }
        if let Some(body) = self.body {
            job.http_body = body.as_deref().map(str::to_string);
        }
        if let Some(execution_type) = self.execution_type {
            job.execution_type = execution_type;
        }
        if let Some(max_retries) = self.max_retries {
            job.max_retries = i32::from(max_retries.get());
        }
        if let Some(timeout) = self.timeout {
            job.timeout_seconds = i32::from(timeout.get());
        }
        if let Some(policy) = self.misfire_policy {
            job.misfire_policy = policy;
        }
        if let Some(limit) = self.catch_up_limit {
            job.catch_up_limit = i32::from(limit.get());
        }
        if let Some(policy) = self.concurrency_policy {
            job.concurrency_policy = policy;
        }
        if let Some(deadline) = self.starting_deadline {
            job.starting_deadline_seconds = StartingDeadline::seconds(deadline);
        }
        if let Some(is_active) = self.is_active {
            job.is_active = is_active;
            if is_active {
                job.deleted_at = None;
            }
        }
        if reschedule {
            let cron = match self.cron {
                Some(cron) => cron,
                None => CronExpression::parse(&job.cron_expression)
                    .map_err(InvalidField::from_schedule)?,
            };
            let timezone = match self.timezone {
                Some(tz) => tz,
                None => Timezone::parse(&job.timezone).map_err(InvalidField::from_schedule)?,
            };
            let schedule = Schedule::new(cron, timezone);
            let first_fire = schedule
                .first_fire(now)
                .map_err(InvalidField::from_schedule)?;
            job.cron_expression = schedule.cron().as_str().to_string();
            job.timezone = schedule.timezone().name().to_string();
            job.next_run_at = job.is_active.then_some(first_fire);
        }
        job.updated_at = now;
        Ok(job)
    }
}

/// A job as stored. Its values were checked when it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Stable id (UUID v7, so ids sort by creation time).
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Cron expression, 5 or 6 fields.
    pub cron_expression: String,
    /// IANA zone the expression is read in.
    pub timezone: String,
    /// Method of each request.
    pub http_method: HttpMethod,
    /// Where each request goes.
    pub http_url: String,
    /// The job's own headers.
    pub http_headers: BTreeMap<String, String>,
    /// The request body.
    pub http_body: Option<String>,
    /// The delivery promise.
    pub execution_type: ExecutionType,
    /// Retries after a failed attempt.
    pub max_retries: i32,
    /// Per-request timeout, seconds.
    pub timeout_seconds: i32,
    /// Whether the job fires.
    pub is_active: bool,
    /// The next fire time; `None` when inactive or the schedule has ended.
    pub next_run_at: Option<DateTime<Utc>>,
    /// When the latest finished fire started.
    pub last_run_at: Option<DateTime<Utc>>,
    /// How the latest finished fire ended.
    pub last_status: Option<ExecutionStatus>,
    /// When the job was created.
    pub created_at: DateTime<Utc>,
    /// When a user last changed it.
    pub updated_at: DateTime<Utc>,
    /// When it was deleted; deleted jobs are inactive and left out of lists.
    pub deleted_at: Option<DateTime<Utc>>,
    /// What to do with fires missed while the tick was down.
    pub misfire_policy: MisfirePolicy,
    /// Most missed fires `FIRE_ALL` records.
    pub catch_up_limit: i32,
    /// Whether fires may overlap.
    pub concurrency_policy: ConcurrencyPolicy,
    /// Seconds a fire may wait for its first attempt before it ends EXPIRED unsent; `None`:
    /// as long as it takes.
    pub starting_deadline_seconds: Option<i32>,
    /// Fires that came due and were not recorded, by the misfire policy.
    pub skipped_fires: i64,
    /// The secret requests are signed with, sealed (`secrets::Keyring`); never shown.
    pub signing_secret: Option<String>,
    /// During a rotation, the secret before it, sealed; it signs too until
    /// `previous_secret_expires_at`.
    pub previous_signing_secret: Option<String>,
    /// When the previous secret stops signing.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// The tenant it belongs to; only its keys reach it. Never changes.
    pub tenant: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_must_not_be_empty() {
        assert_eq!(JobName::parse("  nightly  ").unwrap().as_str(), "nightly");
        assert_eq!(JobName::parse("   ").unwrap_err().field, "name");
        assert!(JobName::parse(&"x".repeat(201)).is_err());
    }

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

    #[test]
    fn names_need_a_visible_character_and_no_bidirectional_control() {
        for invisible in ["\u{200B}", "\u{200B}\u{200D}\u{FEFF}", " \u{2060} "] {
            let err = JobName::parse(invisible).unwrap_err();
            assert!(
                err.message.contains("no visible character"),
                "{}",
                err.message
            );
        }
        let err = JobName::parse("invoice\u{202E}fdp.exe").unwrap_err();
        assert!(err.message.contains("bidirectional"), "{}", err.message);
        assert!(JobName::parse("caf\u{e9} \u{1F600}").is_ok());
    }

    #[test]
    fn retries_and_timeouts_have_ranges() {
        assert!(MaxRetries::parse(0).is_ok());
        assert!(MaxRetries::parse(21).is_err());
        assert!(MaxRetries::parse(-1).is_err());
        assert!(TimeoutSeconds::parse(0).is_err());
        assert!(TimeoutSeconds::parse(90).is_ok());
        assert!(TimeoutSeconds::parse(91).is_err());
        assert_eq!(StartingDeadline::parse(1).map(StartingDeadline::get), Ok(1));
        assert!(StartingDeadline::parse(86_400).is_ok());
        for out_of_range in [0, -1, 86_401] {
            let err = StartingDeadline::parse(out_of_range).unwrap_err();
            assert_eq!(err.field, "startingDeadlineSeconds");
            assert!(
                err.message.contains("expected 1 to 86400"),
                "{}",
                err.message
            );
        }
    }
}

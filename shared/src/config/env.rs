//! Typed reads of environment variables, each error naming the variable.

use std::time::Duration;

use super::{Cidr, ConfigError, EncryptionKeys, RateLimit, Secret};

/// The environment as a lookup function sees it.
pub(super) struct Env<'a, F: Fn(&str) -> Option<String>>(pub(super) &'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    pub(super) fn string(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    pub(super) fn string_or(&self, name: &str, default: &str) -> String {
        self.string(name).unwrap_or_else(|| default.to_string())
    }

    pub(super) fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default);
        };
        match raw.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError::new(
                name,
                format!("is {raw:?}; expected a whole number from {min} to {max}"),
            )),
        }
    }

    pub(super) fn port(&self, name: &'static str, default: u16) -> Result<u16, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default);
        };
        raw.trim().parse::<u16>().map_err(|_| {
            ConfigError::new(
                name,
                format!("is {raw:?}; expected a port number from 0 to 65535"),
            )
        })
    }

    pub(super) fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new(
                name,
                format!("is {raw:?}; expected true or false"),
            )),
        }
    }

    pub(super) fn one_of(
        &self,
        name: &'static str,
        default: &str,
        allowed: &[&str],
    ) -> Result<String, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default.to_string());
        };
        let value = raw.trim().to_ascii_lowercase();
        if allowed.contains(&value.as_str()) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                name,
                format!("is {raw:?}; expected one of {}", allowed.join(", ")),
            ))
        }
    }

    pub(super) fn duration(
        &self,
        name: &'static str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default);
        };
        match parse_duration(&raw) {
            Some(d) if d >= min && d <= max => Ok(d),
            Some(_) => Err(ConfigError::new(
                name,
                format!("is {raw:?}; expected a duration from {min:?} to {max:?}"),
            )),
            None => Err(ConfigError::new(
                name,
                format!("is {raw:?}; expected a duration such as 90, 90s, 500ms, 5m, 1h or 7d (a bare number is seconds)"),
            )),
        }
    }

    /// A duration that is `None` when the variable is unset.
    pub(super) fn optional_duration(
        &self,
        name: &'static str,
        min: Duration,
        max: Duration,
    ) -> Result<Option<Duration>, ConfigError> {
        match self.string(name) {
            None => Ok(None),
            Some(_) => self.duration(name, min, min, max).map(Some),
        }
    }

    /// A rate limit: `per_second` (0 turns it off) and `burst`.
    pub(super) fn rate_limit(
        &self,
        (per_second_name, per_second_default): (&'static str, u64),
        (burst_name, burst_default): (&'static str, u64),
    ) -> Result<Option<RateLimit>, ConfigError> {
        let per_second = self.number(per_second_name, per_second_default, 0, 100_000)?;
        if per_second == 0 {
            return Ok(None);
        }
        let burst = self.number(burst_name, burst_default, 1, 1_000_000)?;
        Ok(Some(RateLimit {
            per_second: u32::try_from(per_second).unwrap_or(u32::MAX),
            burst: u32::try_from(burst).unwrap_or(u32::MAX),
        }))
    }

    pub(super) fn encryption_keys(&self) -> Result<Option<EncryptionKeys>, ConfigError> {
        let Some(current) = self.string("ENCRYPTION_KEY") else {
            return Ok(None);
        };
        let previous = self.string("ENCRYPTION_PREVIOUS_KEYS").unwrap_or_default();
        Ok(Some(EncryptionKeys {
            current: encryption_key("ENCRYPTION_KEY", &current)?,
            previous: previous
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| encryption_key("ENCRYPTION_PREVIOUS_KEYS", k))
                .collect::<Result<_, _>>()?,
        }))
    }

    pub(super) fn cidrs(&self, name: &'static str) -> Result<Vec<Cidr>, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(Vec::new());
        };
        raw.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| part.parse().map_err(|e: String| ConfigError::new(name, e)))
            .collect()
    }

    pub(super) fn key_prefix(
        &self,
        name: &'static str,
        default: &str,
    ) -> Result<String, ConfigError> {
        let value = self.string_or(name, default);
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::new(
                name,
                format!("is {value:?}; it must not contain whitespace"),
            ));
        }
        Ok(value)
    }
}

/// Parses `90`, `90s`, `500ms`, `5m`, `1h` or `7d`.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(86_400).map(Duration::from_secs),
        _ => None,
    }
}

/// A key as `variable` gives it, if it is 32 bytes in base64.
fn encryption_key(variable: &'static str, raw: &str) -> Result<Secret, ConfigError> {
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(raw.trim()) {
        Ok(bytes) if bytes.len() == 32 => Ok(Secret::new(raw.trim())),
        _ => Err(ConfigError::new(
            variable,
            "is not a key: expected 32 random bytes in base64 (openssl rand -base64 32)",
        )),
    }
}

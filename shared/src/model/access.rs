//! Who may call the API: tenants and their API keys.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::field::{named, reads, text};
use super::InvalidField;

/// The tenant jobs belong to when no key says otherwise: jobs stored before keys existed,
/// the operator key (`API_ADMIN_KEY`), and every caller when auth is off.
pub const DEFAULT_TENANT: &str = "default";

/// A tenant (project) name: 1 to 64 of `a-z`, `0-9`, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant(String);

impl Tenant {
    /// Checks a tenant name.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(InvalidField::new(
                "tenant",
                format!("tenant {raw:?} must be 1 to 64 of a-z, 0-9, '-' and '_'"),
            ))
        }
    }

    /// The default tenant.
    pub fn default_tenant() -> Self {
        Self(DEFAULT_TENANT.to_string())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

reads!(Tenant, "tenant", text, |raw| Tenant::parse(&raw));

/// What an API key is for, as people name it: trimmed, 1 to 100 characters, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    /// Checks a key's name, trimmed.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let name = raw.trim();
        if (1..=100).contains(&name.chars().count()) && !raw.chars().any(char::is_control) {
            Ok(Self(name.to_string()))
        } else {
            Err(InvalidField::new(
                "name",
                "name must be 1 to 100 characters, without control characters",
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

reads!(KeyName, "name", text, |raw| KeyName::parse(&raw));

/// What a key may do. A viewer sees everything its tenant may see and changes nothing: the
/// API answers every request other than `GET` and `HEAD` with 403.
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
    utoipa::ToSchema,
)]
#[strum(serialize_all = "lowercase")]
#[schema(
    rename_all = "lowercase",
    description = "What the key may do: editor (read and change, the default) or viewer (read only)."
)]
pub enum KeyRole {
    /// Reads and changes.
    #[default]
    Editor,
    /// Reads only.
    Viewer,
}

named!(KeyRole, "role");

/// An API key as stored: never the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// Its id (for revoking).
    pub id: Uuid,
    /// The tenant whose jobs it reaches.
    pub tenant: String,
    /// What it is for.
    pub name: String,
    /// What it may do.
    pub role: KeyRole,
    /// The key's first characters (`tw_` and 8 more), to recognise it.
    pub prefix: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked key is refused.
    pub revoked_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_short_lowercase_words() {
        assert!(Tenant::parse("acme-prod_2").is_ok());
        for bad in ["", "Acme", "a b", "x".repeat(65).as_str(), "ünï"] {
            let error = Tenant::parse(bad).unwrap_err();
            assert_eq!(error.field, "tenant");
        }
    }

    #[test]
    fn a_key_name_is_trimmed_and_refused_empty_too_long_or_with_control_characters() {
        assert_eq!(
            KeyName::parse("  billing-ci ").unwrap().as_str(),
            "billing-ci"
        );
        assert!(KeyName::parse(&"é".repeat(100)).is_ok());
        for bad in ["", "   ", "a\nb", &"x".repeat(101)] {
            let error = KeyName::parse(bad).unwrap_err();
            assert_eq!(error.field, "name");
        }
    }
}

//! The words of a job: its name and its description.

use super::field::{reads, text, InvalidField};

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

reads!(JobName, "name", text, |raw| JobName::parse(&raw));
reads!(Description, "description", text, |raw| Description::parse(
    &raw
));

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
}

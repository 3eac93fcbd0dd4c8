//! How a job's fires are delivered and scheduled: the promise, retries, timeout, misfire
//! and overlap policies, and the starting deadline.

use super::field::{named, reads, whole_number, InvalidField};

/// A whole number checked against its range when read, named for its field in errors.
macro_rules! ranged {
    ($(#[$doc:meta])* $type:ident($repr:ty), $field:literal, $min:literal..=$max:literal, $note:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $type($repr);

        impl $type {
            /// Checks the range.
            pub fn parse(raw: i64) -> Result<Self, InvalidField> {
                match <$repr>::try_from(raw) {
                    Ok(value) if ($min..=$max).contains(&raw) => Ok(Self(value)),
                    _ => Err(InvalidField::new(
                        $field,
                        format!("{} is {raw}; expected {} to {}{}", $field, $min, $max, $note),
                    )),
                }
            }

            /// The number.
            pub fn get(self) -> $repr {
                self.0
            }
        }

        reads!($type, $field, whole_number, $type::parse);
    };
}

/// The delivery promise a job's fires carry.
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
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[schema(
    rename_all = "SCREAMING_SNAKE_CASE",
    description = "The delivery promise: AT_LEAST_ONCE (retried with backoff, never lost) or \
     AT_MOST_ONCE (never delivered twice, not retried)."
)]
pub enum ExecutionType {
    /// Retried until it succeeds or runs out of retries; never lost.
    #[default]
    AtLeastOnce,
    /// Never delivered twice; not retried.
    AtMostOnce,
}

named!(ExecutionType, "executionType");

ranged!(
    /// How many times a failed AT_LEAST_ONCE fire is tried again: 0 to 20.
    MaxRetries(u8),
    "maxRetries",
    0..=20,
    ""
);

impl Default for MaxRetries {
    fn default() -> Self {
        Self(3)
    }
}

ranged!(
    /// How long one request may take, in seconds: 1 to 90 (tasks run up to 90 seconds).
    TimeoutSeconds(u8),
    "timeoutSeconds",
    1..=90,
    ""
);

impl Default for TimeoutSeconds {
    fn default() -> Self {
        Self(90)
    }
}

ranged!(
    /// How long a fire may wait for its first attempt to start, in seconds: 1 to 86400. A
    /// fire not started by then (counted from the later of its scheduled time and when it
    /// was recorded) is not sent and ends EXPIRED. Jobs have none unless they ask: waiting
    /// as long as it takes is what AT_LEAST_ONCE promises.
    StartingDeadline(u32),
    "startingDeadlineSeconds",
    1..=86_400,
    " (seconds), or null for none"
);

impl StartingDeadline {
    /// As stored.
    pub fn seconds(deadline: Option<Self>) -> Option<i32> {
        deadline.map(|d| i32::try_from(d.0).unwrap_or(i32::MAX))
    }
}

/// What the tick does with fires missed by more than `MISFIRE_THRESHOLD` (it was down).
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
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[schema(
    rename_all = "SCREAMING_SNAKE_CASE",
    description = "What happens to fires missed while tickwork was down: FIRE_ONCE (one fire \
     now), SKIP (none), FIRE_ALL (each, up to catchUpLimit)."
)]
pub enum MisfirePolicy {
    /// One fire, at the latest missed time; the schedule resumes from now.
    #[default]
    FireOnce,
    /// No fire; the schedule resumes at the next time after now.
    Skip,
    /// Every missed fire, oldest first, up to the job's `catchUpLimit`; the rest skipped.
    FireAll,
}

named!(MisfirePolicy, "misfirePolicy");

ranged!(
    /// Most missed fires `FIRE_ALL` records at once: 1 to 10000.
    CatchUpLimit(u16),
    "catchUpLimit",
    1..=10_000,
    ""
);

impl Default for CatchUpLimit {
    fn default() -> Self {
        Self(100)
    }
}

/// Whether a job's fires may overlap.
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
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[schema(
    rename_all = "SCREAMING_SNAKE_CASE",
    description = "Whether fires may overlap: ALLOW, or FORBID (a fire due while an earlier \
     one is unfinished is recorded SKIPPED)."
)]
pub enum ConcurrencyPolicy {
    /// Fires run whenever they come due, even alongside earlier ones.
    #[default]
    Allow,
    /// A fire that comes due while an earlier one is unfinished is recorded SKIPPED.
    Forbid,
}

named!(ConcurrencyPolicy, "concurrencyPolicy");

#[cfg(test)]
mod tests {
    use super::*;

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

//! Cron expressions with seconds, IANA time zones, and the fire times they produce.
//!
//! Pure: nothing here reads the clock or does I/O. Every function takes the instant it
//! counts from, so the tick, the API and the tests all get the same answers for the same
//! inputs. Fire times are computed in the job's time zone and returned in UTC, whole
//! seconds, strictly after the instant given.

mod words;

use std::fmt;

use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

pub use words::describe;

/// How far ahead a new schedule must fire at least once to be accepted.
pub const MUST_FIRE_WITHIN_YEARS: i64 = 10;

/// Why a cron expression or time zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The expression is empty or only whitespace.
    #[error("cronExpression is empty; expected 6 fields (seconds first), e.g. \"0 */5 * * * *\"")]
    Empty,
    /// The expression does not have 5 or 6 whitespace-separated fields.
    #[error("cronExpression has {0} fields; expected 5 (minute-level) or 6 (seconds first)")]
    FieldCount(usize),
    /// A field holds a value, range, step or character the cron grammar does not allow.
    #[error("cronExpression is not valid: {0}")]
    Invalid(String),
    /// The expression is well formed but never fires within the accepted horizon.
    #[error("cronExpression never fires in the next {MUST_FIRE_WITHIN_YEARS} years")]
    NeverFires,
    /// The time zone is not an IANA name known to this build.
    #[error("timezone {0:?} is not a known IANA time zone; expected a name such as \"UTC\" or \"Europe/Paris\"")]
    UnknownTimezone(String),
    /// A submitted expression is longer than [`MAX_SUBMITTED_LENGTH`].
    #[error("cronExpression is {0} characters long; at most {MAX_SUBMITTED_LENGTH} are accepted")]
    TooLong(usize),
    /// A field of a submitted expression lists more than [`MAX_FIELD_ITEMS`] items.
    #[error("cronExpression field {field} lists {items} comma-separated items; at most {MAX_FIELD_ITEMS} are accepted (use a range or a step)")]
    TooManyItems {
        /// The field, counted from 1.
        field: usize,
        /// How many items it lists.
        items: usize,
    },
}

/// The longest expression a request may submit. Stored expressions are not held to it, so
/// a job stored before the limit keeps firing.
pub const MAX_SUBMITTED_LENGTH: usize = 256;

/// Most comma-separated items one field of a submitted expression may list (a seconds field
/// can list each of its 60 values).
pub const MAX_FIELD_ITEMS: usize = 60;

/// A parsed cron expression: 6 fields with seconds first, or 5 minute-level fields.
#[derive(Clone)]
pub struct CronExpression {
    source: String,
    cron: Cron,
}

impl CronExpression {
    /// Parses an expression, naming the field count or the faulty part when it is refused.
    ///
    /// Weekdays are POSIX numbered (0 or 7 = Sunday); when both day fields are restricted a
    /// day matches if either does.
    pub fn parse(source: &str) -> Result<Self, ScheduleError> {
        let trimmed = source.trim();
        if trimmed.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let fields = trimmed.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(ScheduleError::FieldCount(fields));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .dom_and_dow(false)
            .alternative_weekdays(false)
            .build();
        let cron = parser
            .parse(trimmed)
            .map_err(|e| ScheduleError::Invalid(describe_cron_error(&e)))?;
        Ok(Self {
            source: trimmed.split_whitespace().collect::<Vec<_>>().join(" "),
            cron,
        })
    }

    /// [`CronExpression::parse`] for an expression a request submits, within the limits on
    /// its length and on the items a field lists, checked before the parser runs: the
    /// parser's work grows with the expression, and the tick computes each fire from it.
    pub fn parse_submitted(source: &str) -> Result<Self, ScheduleError> {
        let length = source.chars().count();
        if length > MAX_SUBMITTED_LENGTH {
            return Err(ScheduleError::TooLong(length));
        }
        for (i, field) in source.split_whitespace().enumerate() {
            let items = field.split(',').count();
            if items > MAX_FIELD_ITEMS {
                return Err(ScheduleError::TooManyItems {
                    field: i + 1,
                    items,
                });
            }
        }
        Self::parse(source)
    }

    /// The expression as stored: trimmed, fields separated by one space.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for CronExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronExpression").field(&self.source).finish()
    }
}

impl PartialEq for CronExpression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Turns croner's messages into ones that read well after "cronExpression is not valid: ".
fn describe_cron_error(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    match error {
        E::InvalidPattern(msg) | E::IllegalCharacters(msg) | E::ComponentError(msg) => {
            let msg = msg.trim_end_matches('.');
            let mut chars = msg.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => "unrecognised pattern".to_string(),
            }
        }
        other => other.to_string().to_lowercase(),
    }
}

/// An IANA time zone name, checked against the tz database compiled into this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timezone(Tz);

impl Timezone {
    /// Parses an IANA name such as `Europe/Paris`; `UTC` is always known.
    pub fn parse(name: &str) -> Result<Self, ScheduleError> {
        name.trim()
            .parse::<Tz>()
            .map(Self)
            .map_err(|_| ScheduleError::UnknownTimezone(shortened(name)))
    }

    /// The canonical name, as stored and returned by the API.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

/// `name` as an error quotes it: its first 64 characters (IANA names are shorter), so a
/// long submission is not echoed back whole.
fn shortened(name: &str) -> String {
    const SHOWN: usize = 64;
    if name.chars().count() <= SHOWN {
        return name.to_string();
    }
    let mut shown: String = name.chars().take(SHOWN).collect();
    shown.push('…');
    shown
}

impl Default for Timezone {
    fn default() -> Self {
        Self(Tz::UTC)
    }
}

/// A cron expression read in a time zone: the thing that produces fire times.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    cron: CronExpression,
    timezone: Timezone,
}

impl Schedule {
    /// Combines an expression with the zone its wall-clock fields are read in.
    pub fn new(cron: CronExpression, timezone: Timezone) -> Self {
        Self { cron, timezone }
    }

    /// Parses both parts; used where stored values are read back.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, ScheduleError> {
        Ok(Self::new(
            CronExpression::parse(expression)?,
            Timezone::parse(timezone)?,
        ))
    }

    /// The expression part.
    pub fn cron(&self) -> &CronExpression {
        &self.cron
    }

    /// The time zone part.
    pub fn timezone(&self) -> Timezone {
        self.timezone
    }

    /// The first fire time strictly after `after`, or `None` when the schedule has no more.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone.0);
        let next = self
            .cron
            .cron
            .find_next_occurrence(&local, false)
            .ok()?
            .with_timezone(&Utc);
        let next = whole_second(next);
        if next > after {
            Some(next)
        } else {
            // Never hand back a time at or before the start: step past it instead.
            self.next_after(after + Duration::seconds(1))
        }
    }

    /// The last fire time at or before `at`, or `None` when there is none.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = whole_second(at).with_timezone(&self.timezone.0);
        let previous = self
            .cron
            .cron
            .find_previous_occurrence(&local, true)
            .ok()?
            .with_timezone(&Utc);
        Some(whole_second(previous)).filter(|p| *p <= at)
    }

    /// Up to `count` fire times strictly after `after`, in order.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut times = Vec::with_capacity(count.min(1024));
        let mut cursor = after;
        while times.len() < count {
            match self.next_after(cursor) {
                Some(next) => {
                    times.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        times
    }

    /// The first fire after `now`, refusing schedules that would not fire for
    /// [`MUST_FIRE_WITHIN_YEARS`] years (such as the 30th of February).
    pub fn first_fire(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        let horizon = now + Duration::days(366 * MUST_FIRE_WITHIN_YEARS);
        match self.next_after(now) {
            Some(next) if next <= horizon => Ok(next),
            _ => Err(ScheduleError::NeverFires),
        }
    }
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::seconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
    }

    fn schedule(expr: &str, tz: &str) -> Schedule {
        Schedule::parse(expr, tz).unwrap()
    }

    #[test]
    fn an_unknown_time_zone_is_quoted_shortened() {
        let long = "Europe/".repeat(10_000);
        let message = Timezone::parse(&long).unwrap_err().to_string();
        assert!(message.len() < 300, "{message}");
        assert!(message.contains("Europe/Europe/"));
        let message = Timezone::parse("Mars/Olympus").unwrap_err().to_string();
        assert!(message.contains("\"Mars/Olympus\""), "{message}");
    }

    #[test]
    fn the_example_expression_fires_at_second_31_of_minutes_10_to_15_on_weekdays_of_the_first() {
        // 1 June 2026 is a Monday.
        let s = schedule("31 10-15 1 * * MON-FRI", "UTC");
        let fires = s.upcoming(utc(2026, 6, 1, 0, 0, 0), 7);
        assert_eq!(fires[0], utc(2026, 6, 1, 1, 10, 31));
        assert_eq!(fires[5], utc(2026, 6, 1, 1, 15, 31));
        // Next is the next weekday, since day-of-month `*` leaves only the weekday rule.
        assert_eq!(fires[6], utc(2026, 6, 2, 1, 10, 31));
    }

    #[test]
    fn six_fields_put_seconds_first() {
        let s = schedule("*/2 * * * * *", "UTC");
        let from = utc(2026, 1, 1, 0, 0, 0);
        assert_eq!(
            s.upcoming(from, 3),
            vec![
                utc(2026, 1, 1, 0, 0, 2),
                utc(2026, 1, 1, 0, 0, 4),
                utc(2026, 1, 1, 0, 0, 6)
            ]
        );
    }

    #[test]
    fn five_fields_are_minute_level_at_second_zero() {
        let s = schedule("*/5 * * * *", "UTC");
        let from = utc(2026, 1, 1, 0, 1, 30);
        assert_eq!(s.next_after(from), Some(utc(2026, 1, 1, 0, 5, 0)));
    }

    #[test]
    fn month_and_weekday_names_are_accepted() {
        let s = schedule("0 0 12 * JAN SUN", "UTC");
        // The first Sunday of January 2027 is the 3rd.
        assert_eq!(
            s.next_after(utc(2026, 12, 31, 0, 0, 0)),
            Some(utc(2027, 1, 3, 12, 0, 0))
        );
    }

    #[test]
    fn weekday_numbers_are_posix_with_zero_and_seven_both_sunday() {
        let from = utc(2026, 6, 1, 0, 0, 0); // a Monday
        let sunday = Some(utc(2026, 6, 7, 0, 0, 0));
        assert_eq!(schedule("0 0 0 * * 0", "UTC").next_after(from), sunday);
        assert_eq!(schedule("0 0 0 * * 7", "UTC").next_after(from), sunday);
        assert_eq!(
            schedule("0 0 0 * * 1", "UTC").next_after(from),
            Some(utc(2026, 6, 8, 0, 0, 0))
        );
    }

    #[test]
    fn last_day_of_month_with_l() {
        let s = schedule("0 0 0 L * *", "UTC");
        assert_eq!(
            s.next_after(utc(2026, 2, 1, 0, 0, 0)),
            Some(utc(2026, 2, 28, 0, 0, 0))
        );
    }

    #[test]
    fn nearest_weekday_with_w() {
        // 15 August 2026 is a Saturday: the nearest weekday is Friday the 14th.
        let s = schedule("0 0 9 15W * *", "UTC");
        assert_eq!(
            s.next_after(utc(2026, 8, 1, 0, 0, 0)),
            Some(utc(2026, 8, 14, 9, 0, 0))
        );
    }

    #[test]
    fn nth_weekday_with_hash() {
        // The second Tuesday of March 2026 is the 10th.
        let s = schedule("0 30 8 * * TUE#2", "UTC");
        assert_eq!(
            s.next_after(utc(2026, 3, 1, 0, 0, 0)),
            Some(utc(2026, 3, 10, 8, 30, 0))
        );
    }

    #[test]
    fn restricted_day_of_month_and_weekday_match_when_either_does() {
        // The 13th or any Friday: Friday 5 June 2026 comes before the 13th.
        let s = schedule("0 0 0 13 * FRI", "UTC");
        assert_eq!(
            s.next_after(utc(2026, 6, 1, 0, 0, 0)),
            Some(utc(2026, 6, 5, 0, 0, 0))
        );
    }

    #[test]
    fn time_zone_shapes_the_wall_clock() {
        let s = schedule("0 0 9 * * *", "Europe/Paris");
        // 9:00 in Paris is 7:00 UTC in summer.
        assert_eq!(
            s.next_after(utc(2026, 7, 1, 0, 0, 0)),
            Some(utc(2026, 7, 1, 7, 0, 0))
        );
    }

    #[test]
    fn field_counts_other_than_five_or_six_are_refused_with_the_count() {
        assert_eq!(
            CronExpression::parse("* * * *").unwrap_err(),
            ScheduleError::FieldCount(4)
        );
        assert_eq!(
            CronExpression::parse("0 0 0 * * * 2030").unwrap_err(),
            ScheduleError::FieldCount(7)
        );
        assert_eq!(
            CronExpression::parse("   ").unwrap_err(),
            ScheduleError::Empty
        );
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let err = CronExpression::parse("61 * * * * *").unwrap_err();
        assert!(matches!(err, ScheduleError::Invalid(_)), "{err:?}");
        let err = CronExpression::parse("0 0 25 * * *").unwrap_err();
        assert!(matches!(err, ScheduleError::Invalid(_)), "{err:?}");
        let err = CronExpression::parse("0 0 0 * * FUNDAY").unwrap_err();
        assert!(matches!(err, ScheduleError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn a_schedule_that_never_fires_is_refused() {
        let s = schedule("0 0 0 30 2 *", "UTC");
        assert_eq!(
            s.first_fire(utc(2026, 1, 1, 0, 0, 0)),
            Err(ScheduleError::NeverFires)
        );
    }

    #[test]
    fn unknown_time_zones_are_refused_by_name() {
        assert_eq!(
            Timezone::parse("Mars/Olympus").unwrap_err(),
            ScheduleError::UnknownTimezone("Mars/Olympus".into())
        );
        assert_eq!(
            Timezone::parse("America/New_York").unwrap().name(),
            "America/New_York"
        );
    }

    #[test]
    fn next_after_is_strictly_later_even_from_a_fire_time_with_milliseconds() {
        let s = schedule("* * * * * *", "UTC");
        let at = utc(2026, 1, 1, 0, 0, 5);
        assert_eq!(s.next_after(at), Some(utc(2026, 1, 1, 0, 0, 6)));
        let mid = at + Duration::milliseconds(500);
        assert_eq!(s.next_after(mid), Some(utc(2026, 1, 1, 0, 0, 6)));
    }

    #[test]
    fn latest_at_or_before_finds_the_last_missed_fire() {
        let s = schedule("0 */5 * * * *", "UTC");
        let at = utc(2026, 1, 1, 10, 7, 12) + Duration::milliseconds(250);
        assert_eq!(s.latest_at_or_before(at), Some(utc(2026, 1, 1, 10, 5, 0)));
        assert_eq!(
            s.latest_at_or_before(utc(2026, 1, 1, 10, 5, 0)),
            Some(utc(2026, 1, 1, 10, 5, 0))
        );
    }

    /// Fire times strictly after `from` until `until`, all checked to strictly increase.
    fn fires_between(
        s: &Schedule,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = from;
        while let Some(next) = s.next_after(cursor) {
            assert!(next > cursor, "{next} is not after {cursor}");
            if next > until {
                break;
            }
            out.push(next);
            cursor = next;
        }
        out
    }

    mod dst {
        use super::*;

        #[test]
        fn new_york_spring_a_fixed_time_in_the_gap_fires_once_at_the_end_of_the_gap() {
            // 8 March 2026: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
            let s = schedule("0 30 2 * * *", "America/New_York");
            let fires = fires_between(&s, utc(2026, 3, 7, 12, 0, 0), utc(2026, 3, 9, 12, 0, 0));
            // 03:00 EDT = 07:00 UTC on the 8th; 02:30 EDT = 06:30 UTC on the 9th.
            assert_eq!(
                fires,
                vec![utc(2026, 3, 8, 7, 0, 0), utc(2026, 3, 9, 6, 30, 0)]
            );
        }

        #[test]
        fn new_york_autumn_a_fixed_time_in_the_repeated_hour_fires_once_at_its_first_occurrence() {
            // 1 November 2026: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
            let s = schedule("0 30 1 * * *", "America/New_York");
            let fires = fires_between(&s, utc(2026, 10, 31, 12, 0, 0), utc(2026, 11, 2, 12, 0, 0));
            // 01:30 EDT = 05:30 UTC (not 01:30 EST = 06:30 UTC); then 01:30 EST on the 2nd.
            assert_eq!(
                fires,
                vec![utc(2026, 11, 1, 5, 30, 0), utc(2026, 11, 2, 6, 30, 0)]
            );
        }

        #[test]
        fn new_york_intervals_follow_real_time_through_both_changes() {
            let s = schedule("0 */15 * * * *", "America/New_York");
            // Spring: 01:45 EST is followed by 03:00 EDT, 15 real minutes later.
            let spring = fires_between(&s, utc(2026, 3, 8, 6, 30, 0), utc(2026, 3, 8, 7, 15, 0));
            assert_eq!(
                spring,
                vec![
                    utc(2026, 3, 8, 6, 45, 0),
                    utc(2026, 3, 8, 7, 0, 0),
                    utc(2026, 3, 8, 7, 15, 0)
                ]
            );
            // Autumn: every quarter of both 01:00 hours, 15 real minutes apart throughout.
            let autumn = fires_between(&s, utc(2026, 11, 1, 4, 59, 59), utc(2026, 11, 1, 7, 0, 0));
            let expected: Vec<_> = (0..9)
                .map(|i| utc(2026, 11, 1, 5, 0, 0) + Duration::minutes(15 * i))
                .collect();
            assert_eq!(autumn, expected);
        }

        #[test]
        fn new_york_an_hour_range_fires_in_both_copies_of_the_repeated_hour() {
            let s = schedule("0 0 1-3 * * *", "America/New_York");
            let fires = fires_between(&s, utc(2026, 11, 1, 4, 0, 0), utc(2026, 11, 1, 9, 0, 0));
            // 01:00 EDT, 01:00 EST, 02:00 EST, 03:00 EST.
            assert_eq!(
                fires,
                vec![
                    utc(2026, 11, 1, 5, 0, 0),
                    utc(2026, 11, 1, 6, 0, 0),
                    utc(2026, 11, 1, 7, 0, 0),
                    utc(2026, 11, 1, 8, 0, 0)
                ]
            );
        }

        #[test]
        fn every_second_strictly_increases_one_real_second_at_a_time_across_both_changes() {
            let s = schedule("* * * * * *", "America/New_York");
            for start in [utc(2026, 3, 8, 6, 50, 0), utc(2026, 11, 1, 5, 50, 0)] {
                let fires = fires_between(&s, start, start + Duration::minutes(80));
                assert_eq!(fires.len(), 80 * 60);
                assert!(fires
                    .windows(2)
                    .all(|w| w[1] - w[0] == Duration::seconds(1)));
            }
        }

        #[test]
        fn paris_spring_and_autumn_fixed_times() {
            let s = schedule("0 30 2 * * *", "Europe/Paris");
            // 29 March 2026: 02:00 CET jumps to 03:00 CEST = 01:00 UTC.
            let spring = fires_between(&s, utc(2026, 3, 28, 12, 0, 0), utc(2026, 3, 29, 12, 0, 0));
            assert_eq!(spring, vec![utc(2026, 3, 29, 1, 0, 0)]);
            // 25 October 2026: 03:00 CEST falls back to 02:00 CET; 02:30 CEST = 00:30 UTC only.
            let autumn =
                fires_between(&s, utc(2026, 10, 24, 12, 0, 0), utc(2026, 10, 25, 12, 0, 0));
            assert_eq!(autumn, vec![utc(2026, 10, 25, 0, 30, 0)]);
        }

        #[test]
        fn paris_intervals_keep_real_time_through_the_repeated_hour() {
            let s = schedule("0 */30 * * * *", "Europe/Paris");
            let fires = fires_between(
                &s,
                utc(2026, 10, 24, 23, 59, 59),
                utc(2026, 10, 25, 2, 0, 0),
            );
            let expected: Vec<_> = (0..5)
                .map(|i| utc(2026, 10, 25, 0, 0, 0) + Duration::minutes(30 * i))
                .collect();
            assert_eq!(fires, expected);
        }

        #[test]
        fn lord_howe_half_hour_shift_spring_gap_and_autumn_repeat() {
            // 4 October 2026: 02:00 (+10:30) jumps to 02:30 (+11); 02:15 does not exist.
            let fixed = schedule("0 15 2 * * *", "Australia/Lord_Howe");
            let spring = fires_between(
                &fixed,
                utc(2026, 10, 3, 0, 0, 0),
                utc(2026, 10, 3, 23, 0, 0),
            );
            // The end of the gap, 02:30 +11, is 15:30 UTC on the 3rd.
            assert_eq!(spring, vec![utc(2026, 10, 3, 15, 30, 0)]);

            // 5 April 2026: 02:00 (+11) falls back to 01:30 (+10:30); 01:45 happens twice.
            let fixed = schedule("0 45 1 * * *", "Australia/Lord_Howe");
            let autumn = fires_between(&fixed, utc(2026, 4, 4, 0, 0, 0), utc(2026, 4, 4, 23, 0, 0));
            // First occurrence: 01:45 +11 = 14:45 UTC (not 01:45 +10:30 = 15:15 UTC).
            assert_eq!(autumn, vec![utc(2026, 4, 4, 14, 45, 0)]);

            let interval = schedule("0 */15 * * * *", "Australia/Lord_Howe");
            let fires = fires_between(
                &interval,
                utc(2026, 4, 4, 14, 14, 59),
                utc(2026, 4, 4, 15, 30, 0),
            );
            let expected: Vec<_> = (0..6)
                .map(|i| utc(2026, 4, 4, 14, 15, 0) + Duration::minutes(15 * i))
                .collect();
            assert_eq!(fires, expected);
            let spring = fires_between(
                &interval,
                utc(2026, 10, 3, 15, 0, 0),
                utc(2026, 10, 3, 15, 45, 0),
            );
            // 01:30 +10:30 = 15:00Z, 01:45 = 15:15Z, then 02:30 +11 = 15:30Z, 02:45 = 15:45Z.
            assert_eq!(
                spring,
                vec![
                    utc(2026, 10, 3, 15, 15, 0),
                    utc(2026, 10, 3, 15, 30, 0),
                    utc(2026, 10, 3, 15, 45, 0)
                ]
            );
        }
    }
}

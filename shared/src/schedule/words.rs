//! A schedule in plain words: "at 02:30, Monday through Friday, Europe/Paris".
//!
//! Read from the expression as stored (already accepted by the parser), field by field.
//! Every form the parser accepts gets words: values, ranges, steps, lists, month and day
//! names, `L`, `W` and `#`; a part it cannot put in words is quoted as written, so a
//! description is never wrong by omission.

use super::Schedule;

/// The schedule in plain words, ending with its time zone.
pub fn describe(schedule: &Schedule) -> String {
    let expression = schedule.cron().as_str();
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let (second, rest) = match fields.as_slice() {
        [second, rest @ ..] if fields.len() == 6 => (*second, rest),
        rest => ("0", rest),
    };
    let [minute, hour, day, month, weekday] = rest else {
        return format!("{expression:?}, {}", schedule.timezone().name());
    };
    let mut parts = vec![time_of_day(second, minute, hour)];
    parts.extend(days(day, weekday));
    parts.extend(months(month));
    parts.push(schedule.timezone().name().to_string());
    parts.join(", ")
}

/// What a field counts.
#[derive(Clone, Copy)]
enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Weekday,
}

impl Unit {
    fn singular(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Month => "month",
            Unit::Weekday => "day of the week",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Unit::Second => "seconds",
            Unit::Minute => "minutes",
            Unit::Hour => "hours",
            Unit::Day => "days",
            Unit::Month => "months",
            Unit::Weekday => "days of the week",
        }
    }

    /// A value named with its unit where a bare number would be unclear: "minute 10",
    /// "day 3"; hours, months and weekdays name themselves.
    fn point(self, raw: &str) -> String {
        match self {
            Unit::Second | Unit::Minute | Unit::Day => format!("{} {raw}", self.singular()),
            _ => self.value(raw),
        }
    }

    /// A value of this field as people say it: a number, or a month or weekday name.
    fn value(self, raw: &str) -> String {
        match self {
            Unit::Month => named(raw, &MONTHS, 1).unwrap_or_else(|| raw.to_string()),
            Unit::Weekday => named(raw, &WEEKDAYS, 0).unwrap_or_else(|| raw.to_string()),
            Unit::Hour => number(raw).map_or_else(|| raw.to_string(), |h| format!("{h:02}:00")),
            _ => raw.to_string(),
        }
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Sunday is 0 and 7.
const WEEKDAYS: [&str; 8] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const ORDINALS: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];

fn number(raw: &str) -> Option<u32> {
    raw.parse().ok()
}

/// The name of `raw`, a number counted from `first` or the name's first three letters.
fn named(raw: &str, names: &[&str], first: u32) -> Option<String> {
    if let Some(n) = number(raw) {
        let index = usize::try_from(n.checked_sub(first)?).ok()?;
        return names.get(index).map(|name| name.to_string());
    }
    names
        .iter()
        .find(|name| name[..3].eq_ignore_ascii_case(raw))
        .map(|name| name.to_string())
}

/// Whether a field matches every value.
fn is_any(field: &str) -> bool {
    field == "*" || field == "?"
}

/// The single number a field holds, if it holds one.
fn single(field: &str) -> Option<u32> {
    number(field)
}

/// One comma-separated item of a field in words, without the unit's name for a plain
/// value or range (the caller says it once for the list).
fn item(unit: Unit, raw: &str) -> String {
    if let Some((start, step)) = raw.split_once('/') {
        let every = match number(step) {
            Some(1) => format!("every {}", unit.singular()),
            Some(2) if matches!(unit, Unit::Day | Unit::Weekday) => {
                format!("every other {}", unit.singular())
            }
            _ => format!("every {step} {}", unit.plural()),
        };
        return match start.split_once('-') {
            _ if is_any(start) => every,
            Some((from, to)) => format!(
                "{every} from {} through {}",
                unit.point(from),
                unit.value(to)
            ),
            None => format!("{every} from {}", unit.point(start)),
        };
    }
    match raw.split_once('-') {
        Some((from, to)) => format!("{} through {}", unit.value(from), unit.value(to)),
        None => unit.value(raw),
    }
}

/// A whole field of plain values, ranges and steps: "every 5 minutes", "minutes 10
/// through 15", "seconds 0, 15 and 30".
fn field(unit: Unit, raw: &str) -> String {
    if is_any(raw) {
        return format!("every {}", unit.singular());
    }
    let items: Vec<&str> = raw.split(',').collect();
    let words: Vec<String> = items.iter().map(|i| item(unit, i)).collect();
    let stepped = items.iter().all(|i| i.contains('/'));
    if stepped {
        return and_list(&words);
    }
    let name = if items.len() == 1 && !raw.contains('-') && !raw.contains('/') {
        unit.singular()
    } else {
        unit.plural()
    };
    format!("{name} {}", and_list(&words))
}

/// "a", "a and b", "a, b and c".
fn and_list(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The time of day: "at 02:30", "every 5 minutes", "at minute 30 of hours 09:00 through
/// 17:00", "at second 31, minutes 10 through 15 past 01:00".
fn time_of_day(second: &str, minute: &str, hour: &str) -> String {
    let seconds_zero = single(second) == Some(0);
    match (single(second), single(minute), single(hour)) {
        (Some(0), Some(m), Some(h)) => format!("at {h:02}:{m:02}"),
        (Some(s), Some(m), Some(h)) => format!("at {h:02}:{m:02}:{s:02}"),
        (_, Some(m), Some(h)) => format!("{} of {h:02}:{m:02}", field(Unit::Second, second)),
        (_, _, Some(h)) => {
            let minutes = field(Unit::Minute, minute);
            if seconds_zero {
                format!("{minutes} past {h:02}:00")
            } else {
                format!("{}, {minutes} past {h:02}:00", at(Unit::Second, second))
            }
        }
        (Some(s), Some(m), None) => {
            let at_minute = if s == 0 {
                format!("at minute {m}")
            } else {
                format!("at minute {m}, second {s}")
            };
            format!("{at_minute} of {}", field(Unit::Hour, hour))
        }
        _ if is_any(minute) && is_any(hour) && !seconds_zero => {
            let seconds = at(Unit::Second, second);
            if seconds.starts_with("every") {
                seconds
            } else {
                format!("{seconds} of every minute")
            }
        }
        _ => {
            let mut parts = Vec::new();
            if !seconds_zero {
                parts.push(at(Unit::Second, second));
            }
            parts.push(field(Unit::Minute, minute));
            if !is_any(hour) {
                parts.push(field(Unit::Hour, hour));
            }
            parts.join(", ")
        }
    }
}

/// A field said as the moments it names: "every second", "at second 15", "at seconds 0
/// and 30", "every 10 seconds".
fn at(unit: Unit, raw: &str) -> String {
    let words = field(unit, raw);
    if words.starts_with("every") {
        words
    } else {
        format!("at {words}")
    }
}

/// The days: day of the month, day of the week, or either (when both are restricted a day
/// matches if either does). `None` for every day.
fn days(day: &str, weekday: &str) -> Option<String> {
    let by_date = (!is_any(day)).then(|| day_of_month(day));
    let by_weekday = (!is_any(weekday)).then(|| day_of_week(weekday));
    match (by_date, by_weekday) {
        (Some(date), Some(weekday)) => Some(format!("{date} or {weekday}")),
        (date, weekday) => date.or(weekday),
    }
}

fn day_of_month(raw: &str) -> String {
    let words: Vec<String> = raw
        .split(',')
        .map(|part| match part.to_ascii_uppercase().as_str() {
            "L" => "the last day of the month".to_string(),
            "LW" => "the last weekday (Monday to Friday) of the month".to_string(),
            upper => match upper.strip_prefix("L-") {
                Some(back) => format!("{back} days before the last day of the month"),
                None => match upper.strip_suffix('W') {
                    Some(n) => format!("the weekday (Monday to Friday) nearest day {n}"),
                    None => item_of_month(part),
                },
            },
        })
        .collect();
    format!("on {}", and_list(&words))
}

fn item_of_month(raw: &str) -> String {
    if raw.contains('/') {
        format!("{} of the month", item(Unit::Day, raw))
    } else if raw.contains('-') {
        format!("days {} of the month", item(Unit::Day, raw))
    } else {
        format!("day {raw} of the month")
    }
}

fn day_of_week(raw: &str) -> String {
    let words: Vec<String> = raw
        .split(',')
        .map(|part| {
            if let Some((day, nth)) = part.split_once('#') {
                let ordinal = number(nth)
                    .and_then(|n| ORDINALS.get(usize::try_from(n).ok()?.checked_sub(1)?))
                    .map_or_else(|| format!("#{nth}"), |o| o.to_string());
                return format!("the {ordinal} {} of the month", Unit::Weekday.value(day));
            }
            let upper = part.to_ascii_uppercase();
            if let Some(day) = upper.strip_suffix('L').filter(|d| !d.is_empty()) {
                return format!("the last {} of the month", Unit::Weekday.value(day));
            }
            item(Unit::Weekday, part)
        })
        .collect();
    format!("on {}", and_list(&words))
}

fn months(raw: &str) -> Option<String> {
    if is_any(raw) {
        return None;
    }
    let words: Vec<String> = raw.split(',').map(|i| item(Unit::Month, i)).collect();
    Some(format!("in {}", and_list(&words)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(expression: &str) -> String {
        describe(&Schedule::parse(expression, "Europe/Paris").unwrap())
    }

    #[test]
    fn the_issue_example_reads_as_people_say_it() {
        assert_eq!(
            words("31 10-15 1 * * MON-FRI"),
            "at second 31, minutes 10 through 15 past 01:00, on Monday through Friday, \
             Europe/Paris"
        );
    }

    #[test]
    fn a_time_of_day() {
        assert_eq!(words("0 30 2 * * *"), "at 02:30, Europe/Paris");
        assert_eq!(words("30 2 * * *"), "at 02:30, Europe/Paris", "five fields");
        assert_eq!(words("15 30 2 * * *"), "at 02:30:15, Europe/Paris");
        assert_eq!(
            words("*/10 30 2 * * *"),
            "every 10 seconds of 02:30, Europe/Paris"
        );
    }

    #[test]
    fn repeating_times() {
        assert_eq!(words("* * * * * *"), "every second, Europe/Paris");
        assert_eq!(words("*/5 * * * * *"), "every 5 seconds, Europe/Paris");
        assert_eq!(words("0 * * * * *"), "every minute, Europe/Paris");
        assert_eq!(
            words("15 * * * * *"),
            "at second 15 of every minute, Europe/Paris"
        );
        assert_eq!(
            words("* * * * *"),
            "every minute, Europe/Paris",
            "five fields"
        );
        assert_eq!(words("0 */5 * * * *"), "every 5 minutes, Europe/Paris");
        assert_eq!(
            words("0 0 * * * *"),
            "at minute 0 of every hour, Europe/Paris"
        );
        assert_eq!(
            words("0 30 9-17 * * *"),
            "at minute 30 of hours 09:00 through 17:00, Europe/Paris"
        );
        assert_eq!(
            words("15 0 */2 * * *"),
            "at minute 0, second 15 of every 2 hours, Europe/Paris"
        );
        assert_eq!(
            words("0,30 * * * * *"),
            "at seconds 0 and 30 of every minute, Europe/Paris"
        );
        assert_eq!(
            words("0 */15 8 * * *"),
            "every 15 minutes past 08:00, Europe/Paris"
        );
        assert_eq!(
            words("0 0 8-18/2 * * *"),
            "at minute 0 of every 2 hours from 08:00 through 18:00, Europe/Paris"
        );
        assert_eq!(
            words("0 0-10,30 * * * *"),
            "minutes 0 through 10 and 30, Europe/Paris"
        );
        assert_eq!(
            words("0 10-40/10 */3 * * *"),
            "every 10 minutes from minute 10 through 40, every 3 hours, Europe/Paris"
        );
    }

    #[test]
    fn days_of_the_month_and_of_the_week() {
        assert_eq!(
            words("0 0 12 1 * *"),
            "at 12:00, on day 1 of the month, Europe/Paris"
        );
        assert_eq!(
            words("0 0 12 1,15 * *"),
            "at 12:00, on day 1 of the month and day 15 of the month, Europe/Paris"
        );
        assert_eq!(
            words("0 0 12 1-7 * *"),
            "at 12:00, on days 1 through 7 of the month, Europe/Paris"
        );
        assert_eq!(
            words("0 0 12 */2 * *"),
            "at 12:00, on every other day of the month, Europe/Paris"
        );
        assert_eq!(words("0 0 12 * * 0"), "at 12:00, on Sunday, Europe/Paris");
        assert_eq!(words("0 0 12 * * 7"), "at 12:00, on Sunday, Europe/Paris");
        assert_eq!(
            words("0 0 12 * * mon,wed,FRI"),
            "at 12:00, on Monday, Wednesday and Friday, Europe/Paris"
        );
        assert_eq!(
            words("0 0 12 13 * FRI"),
            "at 12:00, on day 13 of the month or on Friday, Europe/Paris"
        );
    }

    #[test]
    fn last_nearest_weekday_and_nth() {
        assert_eq!(
            words("0 0 18 L * *"),
            "at 18:00, on the last day of the month, Europe/Paris"
        );
        assert_eq!(
            words("0 0 9 15W * *"),
            "at 09:00, on the weekday (Monday to Friday) nearest day 15, Europe/Paris"
        );
        assert_eq!(
            words("0 0 9 * * 5L"),
            "at 09:00, on the last Friday of the month, Europe/Paris"
        );
        assert_eq!(
            words("0 0 9 * * MON#2"),
            "at 09:00, on the second Monday of the month, Europe/Paris"
        );
    }

    #[test]
    fn months_by_number_name_range_and_step() {
        assert_eq!(
            words("0 0 0 1 1 *"),
            "at 00:00, on day 1 of the month, in January, Europe/Paris"
        );
        assert_eq!(
            words("0 0 0 1 JUN-AUG *"),
            "at 00:00, on day 1 of the month, in June through August, Europe/Paris"
        );
        assert_eq!(
            words("0 0 0 1 */3 *"),
            "at 00:00, on day 1 of the month, in every 3 months, Europe/Paris"
        );
    }

    #[test]
    fn the_zone_is_always_named() {
        let schedule = Schedule::parse("0 0 9 * * *", "America/New_York").unwrap();
        assert_eq!(describe(&schedule), "at 09:00, America/New_York");
        let utc = Schedule::parse("0 0 9 * * *", "UTC").unwrap();
        assert!(describe(&utc).ends_with(", UTC"));
    }
}

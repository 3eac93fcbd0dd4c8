//! Execution ids that name their fire's time.
//!
//! An execution's id is a UUID v7 whose timestamp is the fire's scheduled time (to the
//! millisecond) rather than the moment the row was written. In PostgreSQL the history is
//! partitioned by that time, one partition per UTC day, so the id names its partition: a
//! statement given ids bounds the scheduled time to their days ([`FireTimes`]) and reads
//! those partitions instead of every one. Ids made by earlier
//! versions took the time they were made, which can differ from the fire's by hours (a
//! fire caught up after an outage) or a second (one recorded ahead); those are looked up
//! over the whole history made before the store started naming fires (see
//! `history_layout.fire_named_ids_from`).

use chrono::{DateTime, TimeDelta, Utc};
use uuid::{Timestamp, Uuid};

/// A new id for the fire due at `at`.
pub fn fire_id(at: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let (secs, nanos) = (
        ms / 1000,
        u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    );
    Uuid::new_v7(Timestamp::from_unix_time(secs, nanos, 0, 0))
}

/// The millisecond a UUID v7 names; `None` for ids of other versions.
pub fn named_time(id: Uuid) -> Option<DateTime<Utc>> {
    if id.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
}

/// A range of scheduled times `[from, until)` that holds the fires of some ids (whole UTC
/// days for fire-named ids): the bounds a statement adds so PostgreSQL reads only the
/// partitions in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FireTimes {
    /// Earliest possible scheduled time.
    pub from: DateTime<Utc>,
    /// Just past the latest.
    pub until: DateTime<Utc>,
}

/// How far past the start of fire-named ids an id made before it may name a fire: such an
/// id took the time it was made, and a fire recorded ahead is due a little after that.
const EARLIER_IDS_REACH: TimeDelta = TimeDelta::days(1);

impl FireTimes {
    /// The range holding the fires of `ids`, given when the store started naming fires by
    /// their time (`None`: every id does). Empty `ids` give an empty range.
    pub fn of<'a>(
        ids: impl IntoIterator<Item = &'a Uuid>,
        named_from: Option<DateTime<Utc>>,
    ) -> Self {
        let mut range: Option<Self> = None;
        for id in ids {
            let one = Self::one(*id, named_from);
            range = Some(match range {
                None => one,
                Some(r) => Self {
                    from: r.from.min(one.from),
                    until: r.until.max(one.until),
                },
            });
        }
        range.unwrap_or(Self {
            from: DateTime::UNIX_EPOCH,
            until: DateTime::UNIX_EPOCH,
        })
    }

    /// The UTC day the range is, when it is exactly one.
    pub fn single_day(&self) -> Option<chrono::NaiveDate> {
        let day = self.from.date_naive();
        let start = day.and_hms_opt(0, 0, 0)?.and_utc();
        (self.from == start && self.until == start + TimeDelta::days(1)).then_some(day)
    }

    fn one(id: Uuid, named_from: Option<DateTime<Utc>>) -> Self {
        match (named_time(id), named_from) {
            (Some(at), None) => Self::exact(at),
            (Some(at), Some(from)) if at >= from => Self::exact(at),
            (_, from) => Self {
                from: DateTime::UNIX_EPOCH,
                until: from.map_or(DateTime::<Utc>::MAX_UTC, |f| f + EARLIER_IDS_REACH),
            },
        }
    }

    /// The UTC day of `at`: the partition of a fire-named id.
    fn exact(at: DateTime<Utc>) -> Self {
        let from = at
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map_or(at, |d| d.and_utc());
        Self {
            from,
            until: from + TimeDelta::days(1),
        }
    }
}

/// The smallest UUID v7 of the millisecond `at`: every id made at or after it is larger.
pub(super) fn first_uuid_at(at: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn an_id_names_the_millisecond_of_its_fire() {
        let fire = at("2026-11-28T10:15:31.250Z");
        let id = fire_id(fire);
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(named_time(id), Some(fire));
        assert_ne!(fire_id(fire), id, "ids of one millisecond differ");
        let later = fire_id(at("2026-11-28T10:15:32Z"));
        assert!(id < later, "ids order as their fires");
    }

    #[test]
    fn the_range_of_fire_named_ids_spans_their_days() {
        let (a, b) = (at("2026-11-28T10:00:00Z"), at("2026-11-29T23:59:59.999Z"));
        let ids = [fire_id(b), fire_id(a)];
        let range = FireTimes::of(&ids, None);
        assert_eq!(range.from, at("2026-11-28T00:00:00Z"));
        assert_eq!(range.until, at("2026-11-30T00:00:00Z"));
        assert_eq!(FireTimes::of(&ids, Some(a)), range);
        let one = FireTimes::of(&[fire_id(a)], None);
        assert_eq!(one.until - one.from, TimeDelta::days(1));
    }

    #[test]
    fn ids_made_before_fires_were_named_reach_back_over_everything_before() {
        let named_from = at("2026-11-30T12:00:00Z");
        let earlier = fire_id(at("2026-11-30T11:59:59Z"));
        let range = FireTimes::of(&[earlier, fire_id(named_from)], Some(named_from));
        assert_eq!(range.from, DateTime::UNIX_EPOCH);
        assert_eq!(range.until, named_from + EARLIER_IDS_REACH);
        let v4 = Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef);
        assert_eq!(FireTimes::of(&[v4], None).until, DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn the_first_uuid_of_a_millisecond_orders_below_every_id_made_then_or_later() {
        let now = Utc::now();
        let cutoff = first_uuid_at(now - chrono::Duration::milliseconds(5));
        let later = Uuid::now_v7();
        assert!(cutoff < later);
        let much_later = first_uuid_at(now + chrono::Duration::seconds(1));
        assert!(later < much_later);
        assert_eq!(cutoff.get_version_num(), 7);
    }
}

//! Which fires a due job gets at `now`: on time, late, or past the misfire threshold by
//! its policy, and those ahead up to the look-ahead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::MisfirePolicy;
use crate::schedule::Schedule;
use crate::store::{DueJob, FirePlan};

/// Most missed fire times a misfire plan walks through to count them.
const MISSED_COUNT_LIMIT: u64 = 1_000_000;

/// Decides which fires to record for a due job at `now`, up to `horizon` (`now` plus the
/// look-ahead), and its next fire time.
///
/// A job less than `misfire_threshold` late fires every missed time, late. A job later
/// than that (the tick was down) follows its misfire policy and resumes from `now`. Fires
/// after `now` and up to `horizon` are recorded ahead of time. (Overlap under `FORBID` is
/// decided when a worker claims a fire, not here.) A job whose stored schedule no longer
/// parses fires nothing and stops.
pub fn plan_fires(
    job: &DueJob,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    misfire_threshold: Duration,
) -> FirePlan {
    match Schedule::parse(&job.cron_expression, &job.timezone) {
        Ok(schedule) => plan_fires_on(job, &schedule, now, horizon, misfire_threshold),
        Err(error) => {
            tracing::error!(job_id = %job.id, %error, "stored schedule does not parse; the job stops firing");
            FirePlan::default()
        }
    }
}

/// Most parsed schedules a tick keeps.
const SCHEDULES_KEPT: usize = 10_000;

/// Schedules already parsed, by expression and time zone: a pass does not parse the same
/// expression for every due job, nor again every second. Bounded: past
/// [`SCHEDULES_KEPT`] it starts over.
#[derive(Debug, Default)]
pub struct ScheduleCache {
    parsed: std::sync::Mutex<HashMap<(String, String), Arc<Schedule>>>,
}

impl ScheduleCache {
    /// As [`plan_fires`], parsing each expression once.
    pub fn plan(
        &self,
        job: &DueJob,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        misfire_threshold: Duration,
    ) -> FirePlan {
        let key = (job.cron_expression.clone(), job.timezone.clone());
        let cached = self
            .parsed
            .lock()
            .ok()
            .and_then(|parsed| parsed.get(&key).cloned());
        let schedule = match cached {
            Some(schedule) => schedule,
            None => match Schedule::parse(&job.cron_expression, &job.timezone) {
                Ok(schedule) => {
                    let schedule = Arc::new(schedule);
                    if let Ok(mut parsed) = self.parsed.lock() {
                        if parsed.len() >= SCHEDULES_KEPT {
                            parsed.clear();
                        }
                        parsed.insert(key, schedule.clone());
                    }
                    schedule
                }
                Err(error) => {
                    tracing::error!(job_id = %job.id, %error, "stored schedule does not parse; the job stops firing");
                    return FirePlan::default();
                }
            },
        };
        plan_fires_on(job, &schedule, now, horizon, misfire_threshold)
    }
}

/// [`plan_fires`] with the job's schedule already parsed.
fn plan_fires_on(
    job: &DueJob,
    schedule: &Schedule,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    misfire_threshold: Duration,
) -> FirePlan {
    let threshold = chrono::Duration::from_std(misfire_threshold).unwrap_or(chrono::Duration::MAX);
    let horizon = horizon.max(now);
    let mut plan = if now - job.next_run_at > threshold {
        plan_misfire(job, schedule, now)
    } else {
        FirePlan {
            fires: vec![job.next_run_at],
            next_run_at: schedule.next_after(job.next_run_at),
            ..FirePlan::default()
        }
    };
    while let Some(t) = plan.next_run_at.filter(|t| *t <= horizon) {
        plan.fires.push(t);
        plan.next_run_at = schedule.next_after(t);
    }
    plan
}

/// The plan for a job whose first due fire is older than the misfire threshold.
fn plan_misfire(job: &DueJob, schedule: &Schedule, now: DateTime<Utc>) -> FirePlan {
    let keep = match job.misfire_policy {
        MisfirePolicy::FireAll => job.catch_up_limit.max(1) as usize,
        MisfirePolicy::FireOnce | MisfirePolicy::Skip => 0,
    };
    // Walk the missed times oldest first: keep the first `keep`, count them all.
    let mut oldest = Vec::with_capacity(keep.min(1024));
    let mut missed = 0u64;
    let mut cursor = Some(job.next_run_at);
    while let Some(t) = cursor.filter(|t| *t <= now) {
        missed += 1;
        if oldest.len() < keep {
            oldest.push(t);
        }
        if missed >= MISSED_COUNT_LIMIT {
            break;
        }
        cursor = schedule.next_after(t);
    }
    let fires = match job.misfire_policy {
        MisfirePolicy::FireOnce => vec![schedule
            .latest_at_or_before(now)
            .filter(|t| *t >= job.next_run_at)
            .unwrap_or(job.next_run_at)],
        MisfirePolicy::Skip => Vec::new(),
        MisfirePolicy::FireAll => oldest,
    };
    FirePlan {
        skipped_fires: missed.saturating_sub(fires.len() as u64),
        fires,
        next_run_at: schedule.next_after(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).single().unwrap()
    }

    fn due(expr: &str, next: DateTime<Utc>) -> DueJob {
        DueJob {
            id: Uuid::nil(),
            cron_expression: expr.into(),
            timezone: "UTC".into(),
            next_run_at: next,
            misfire_policy: MisfirePolicy::FireOnce,
            catch_up_limit: 100,
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn misfire_policies_after_five_minutes_down() {
        let job = |policy, limit| DueJob {
            misfire_policy: policy,
            catch_up_limit: limit,
            ..due("*/10 * * * * *", at(10, 0, 0))
        };
        let now = at(10, 5, 5);
        // 31 fire times were missed: 10:00:00 to 10:05:00 every 10 s.
        let once = plan_fires(&job(MisfirePolicy::FireOnce, 100), now, now, MINUTE);
        assert_eq!(
            (once.fires.clone(), once.skipped_fires),
            (vec![at(10, 5, 0)], 30)
        );
        assert_eq!(once.next_run_at, Some(at(10, 5, 10)));
        let skip = plan_fires(&job(MisfirePolicy::Skip, 100), now, now, MINUTE);
        assert_eq!((skip.fires.len(), skip.skipped_fires), (0, 31));
        assert_eq!(skip.next_run_at, Some(at(10, 5, 10)));
        let all = plan_fires(&job(MisfirePolicy::FireAll, 100), now, now, MINUTE);
        assert_eq!((all.fires.len(), all.skipped_fires), (31, 0));
        assert_eq!(all.fires[0], at(10, 0, 0));
        let capped = plan_fires(&job(MisfirePolicy::FireAll, 5), now, now, MINUTE);
        assert_eq!(
            capped.fires,
            (0..5).map(|i| at(10, 0, 10 * i)).collect::<Vec<_>>()
        );
        assert_eq!(capped.skipped_fires, 26);
    }

    #[test]
    fn fires_up_to_the_horizon_are_planned_ahead() {
        let job = due("*/2 * * * * *", at(10, 0, 0));
        let plan = plan_fires(&job, at(10, 0, 0), at(10, 0, 3), MINUTE);
        assert_eq!(plan.fires, vec![at(10, 0, 0), at(10, 0, 2)]);
        assert_eq!(plan.next_run_at, Some(at(10, 0, 4)));
        // A job not yet due but inside the horizon is planned too.
        let ahead = plan_fires(
            &due("*/2 * * * * *", at(10, 0, 2)),
            at(10, 0, 1),
            at(10, 0, 2),
            MINUTE,
        );
        assert_eq!(ahead.fires, vec![at(10, 0, 2)]);
    }

    #[test]
    fn an_on_time_job_fires_once_and_moves_to_its_next_time() {
        let plan = plan_fires(
            &due("*/2 * * * * *", at(10, 0, 0)),
            at(10, 0, 0),
            at(10, 0, 0),
            MINUTE,
        );
        assert_eq!(plan.fires, vec![at(10, 0, 0)]);
        assert_eq!(plan.next_run_at, Some(at(10, 0, 2)));
    }

    #[test]
    fn a_job_a_few_seconds_late_fires_every_missed_time() {
        let now = at(10, 0, 5) + chrono::Duration::milliseconds(300);
        let plan = plan_fires(&due("* * * * * *", at(10, 0, 2)), now, now, MINUTE);
        assert_eq!(
            plan.fires,
            vec![at(10, 0, 2), at(10, 0, 3), at(10, 0, 4), at(10, 0, 5)]
        );
        assert_eq!(plan.next_run_at, Some(at(10, 0, 6)));
    }

    #[test]
    fn a_job_later_than_the_misfire_threshold_fires_once_at_the_latest_missed_time() {
        let plan = plan_fires(
            &due("0 * * * * *", at(9, 0, 0)),
            at(10, 0, 30),
            at(10, 0, 30),
            MINUTE,
        );
        assert_eq!(plan.fires, vec![at(10, 0, 0)]);
        assert_eq!(plan.next_run_at, Some(at(10, 1, 0)));
    }

    #[test]
    fn a_job_not_yet_due_in_its_plan_never_fires_before_its_time() {
        // Due at 10:00:04 and planned at 10:00:01 with 4 s of look-ahead: its schedule has
        // times between now and its due time (10:00:02), and none of them is planned.
        let job = due("*/2 * * * * *", at(10, 0, 4));
        let plan = plan_fires(&job, at(10, 0, 1), at(10, 0, 5), MINUTE);
        assert!(
            plan.fires.iter().all(|t| *t >= job.next_run_at),
            "a fire before the job's time: {:?}",
            plan.fires
        );
        assert_eq!(plan.fires, vec![at(10, 0, 4)]);
        assert_eq!(plan.next_run_at, Some(at(10, 0, 6)));
        // Without look-ahead and long before its time (the store would not hand it over),
        // the plan still holds nothing before the job's time.
        let later = due("0 0 * * * *", at(11, 0, 0));
        let plan = plan_fires(&later, at(10, 0, 0), at(10, 0, 0), MINUTE);
        assert!(
            plan.fires.iter().all(|t| *t >= later.next_run_at),
            "a fire before the job's time: {:?}",
            plan.fires
        );
    }

    #[test]
    fn a_schedule_that_no_longer_parses_stops_without_firing() {
        let plan = plan_fires(
            &due("not cron", at(10, 0, 0)),
            at(10, 0, 0),
            at(10, 0, 0),
            MINUTE,
        );
        assert_eq!(plan, FirePlan::default());
    }

    #[test]
    fn the_schedule_cache_plans_as_parsing_each_time_does() {
        let cache = ScheduleCache::default();
        for (expr, next, now) in [
            ("*/2 * * * * *", at(10, 0, 0), at(10, 0, 3)),
            ("0 * * * * *", at(9, 0, 0), at(10, 0, 30)),
            ("*/2 * * * * *", at(10, 0, 4), at(10, 0, 5)),
            ("not cron", at(10, 0, 0), at(10, 0, 0)),
        ] {
            let job = due(expr, next);
            assert_eq!(
                cache.plan(&job, now, now, MINUTE),
                plan_fires(&job, now, now, MINUTE),
                "{expr} at {now}"
            );
        }
        assert_eq!(cache.parsed.lock().unwrap().len(), 2, "parsed once each");
    }
}

//! `GET /api/v1/activity`: what the workers recorded over the last hour or day, per step,
//! read from the per-minute rollups (never from the history), with percentiles of lateness
//! and target latency computed here from the rollups' histograms.

use axum::extract::State;
use axum::{Extension, Json};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::openapi::BadQuery;
use super::query::{words_schema, OneOf, Query, Word};
use super::views::time;
use super::AppState;
use crate::model::{minute_of, MinuteRollup};

/// How far back the activity goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    /// The last 60 minutes, a point a minute.
    #[default]
    Hour,
    /// The last 24 hours, a point every 15 minutes.
    Day,
}

impl Word for Window {
    const WORDS: &'static [(&'static str, Self)] = &[("hour", Window::Hour), ("day", Window::Day)];
}

words_schema!(WindowWords, Window);

impl Window {
    fn step(self) -> TimeDelta {
        match self {
            Window::Hour => TimeDelta::minutes(1),
            Window::Day => TimeDelta::minutes(15),
        }
    }

    fn points(self) -> i32 {
        match self {
            Window::Hour => 60,
            Window::Day => 96,
        }
    }
}

/// `GET /api/v1/activity`'s parameters.
#[derive(Deserialize)]
pub struct ActivityQuery {
    window: Option<OneOf<Window>>,
}

/// Counts and percentiles over one step (or the whole window).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityPoint {
    /// Start of the step (absent for the window's totals).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    at: Option<String>,
    /// Fires whose first attempt was recorded.
    fires: u64,
    /// Fires recorded SUCCEEDED.
    succeeded: u64,
    /// Fires recorded FAILED.
    failed: u64,
    /// Attempts that failed and were retried.
    retried: u64,
    /// Median lateness (first request sent less scheduled time), ms; null without fires.
    lateness_p50_ms: Option<f64>,
    /// 95th percentile of lateness, ms.
    lateness_p95_ms: Option<f64>,
    /// Median time the target took, ms; null without attempts.
    latency_p50_ms: Option<f64>,
    /// 95th percentile of the time the target took, ms.
    latency_p95_ms: Option<f64>,
}

impl ActivityPoint {
    fn of(at: Option<DateTime<Utc>>, r: &MinuteRollup) -> Self {
        let round = |v: Option<f64>| v.map(|v| (v * 10.0).round() / 10.0);
        Self {
            at: at.map(time),
            fires: r.fires,
            succeeded: r.succeeded,
            failed: r.failed,
            retried: r.retried,
            lateness_p50_ms: round(r.lateness.quantile(0.5)),
            lateness_p95_ms: round(r.lateness.quantile(0.95)),
            latency_p50_ms: round(r.latency.quantile(0.5)),
            latency_p95_ms: round(r.latency.quantile(0.95)),
        }
    }
}

/// The activity of a window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityView {
    /// `hour` or `day`.
    window: &'static str,
    /// Seconds per point.
    step_seconds: i64,
    /// One point per step, oldest first; steps without outcomes count zero.
    points: Vec<ActivityPoint>,
    /// The whole window.
    totals: ActivityPoint,
}

/// Adds rollups (oldest first) into `points` steps of `step` ending with the one holding
/// `now`; the totals last.
fn into_steps(
    rollups: &[MinuteRollup],
    now: DateTime<Utc>,
    step: TimeDelta,
    points: i32,
) -> (Vec<(DateTime<Utc>, MinuteRollup)>, MinuteRollup) {
    let step_minutes = step.num_minutes().max(1);
    let now_minute = minute_of(now);
    let last = now_minute - TimeDelta::minutes(now_minute.timestamp() / 60 % step_minutes);
    let first = last - step * (points - 1);
    let mut steps: Vec<(DateTime<Utc>, MinuteRollup)> = (0..points)
        .map(|i| {
            let at = first + step * i;
            (at, MinuteRollup::empty(at, ""))
        })
        .collect();
    let mut totals = MinuteRollup::empty(first, "");
    for rollup in rollups {
        let Ok(index) = usize::try_from((rollup.minute - first).num_minutes() / step_minutes)
        else {
            continue;
        };
        if let Some((_, slot)) = steps.get_mut(index) {
            slot.add(rollup);
            totals.add(rollup);
        }
    }
    (steps, totals)
}

/// `GET /api/v1/activity?window=hour|day`.
#[utoipa::path(
    get,
    path = "/api/v1/activity",
    operation_id = "getActivity",
    tag = "health",
    summary = "Recorded outcomes over time",
    description = "Fires, successes, failures and retries, and lateness and target-latency percentiles, per minute over the last hour (`window=hour`, the default) or per 15 minutes over the last day (`window=day`), from per-minute rollups the workers write every few seconds. The operator key sees every tenant; a tenant's key its own jobs.",
    params(
        ("window" = inline(Option<WindowWords>), Query, nullable = false, description = "`hour` (default) or `day`."),
    ),
    responses(
        (status = 200, description = "The activity.", body = ActivityView),
        (status = 400, response = BadQuery),
    )
)]
pub async fn activity(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ActivityQuery>,
) -> Result<Json<ActivityView>, ApiError> {
    let window = query.window.map(|OneOf(w)| w).unwrap_or_default();
    let now = state.store.clock().await?;
    let (step, points) = (window.step(), window.points());
    let since = minute_of(now) - step * points;
    let tenant = (!caller.operator).then_some(caller.tenant.as_str());
    let rollups = state.store.rollup_list(tenant, since).await?;
    let (steps, totals) = into_steps(&rollups, now, step, points);
    Ok(Json(ActivityView {
        window: match window {
            Window::Hour => "hour",
            Window::Day => "day",
        },
        step_seconds: step.num_seconds(),
        points: steps
            .iter()
            .map(|(at, rollup)| ActivityPoint::of(Some(*at), rollup))
            .collect(),
        totals: ActivityPoint::of(None, &totals),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollups_fall_into_their_steps_and_old_ones_are_left_out() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T10:37:20Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut recent = MinuteRollup::empty(now, "");
        recent.fires = 3;
        let mut earlier = MinuteRollup::empty(now - TimeDelta::minutes(20), "");
        earlier.fires = 5;
        let mut too_old = MinuteRollup::empty(now - TimeDelta::hours(30), "");
        too_old.fires = 100;
        let rollups = [too_old, earlier, recent];
        let (steps, totals) = into_steps(&rollups, now, TimeDelta::minutes(15), 96);
        assert_eq!(steps.len(), 96);
        assert_eq!(steps[95].0.to_rfc3339(), "2026-12-06T10:30:00+00:00");
        assert_eq!(steps[95].1.fires, 3);
        assert_eq!(steps[94].1.fires, 5);
        assert_eq!(totals.fires, 8);
        let (minutes, totals) = into_steps(&rollups, now, TimeDelta::minutes(1), 60);
        assert_eq!(minutes[59].0.to_rfc3339(), "2026-12-06T10:37:00+00:00");
        assert_eq!((minutes[59].1.fires, minutes[39].1.fires), (3, 5));
        assert_eq!(totals.fires, 8);
    }
}

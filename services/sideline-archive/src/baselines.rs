//! Baselines read from the archive: each player's sessions with their final live totals
//! ([`session_loads`]), summed per day of the club's time zone ([`daily_loads`]: the day a
//! session starts on; a 09:00 session in Sydney is that day's, not the previous UTC day's,
//! and a session past midnight stays whole). The statistics on them (7-day sums, z-scores,
//! EWMA/ACWR, monotony, the score's baseline) are the engine's, re-exported here from
//! [`sideline_engine::history`] with their constants in the versioned parameter set.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};
pub use sideline_engine::history::{
    Day, SessionLoad, Trend, baseline, baseline_at, days_of, dense, trend,
};

use crate::query::{self, QueryError};

/// Days since the epoch of a `YYYY-MM-DD` date.
pub fn day_of(date: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some((d - epoch).num_days())
}

/// `YYYY-MM-DD` of a day since the epoch.
pub fn date_of_day(day: i64) -> String {
    crate::schema::date_of(day * 86_400_000_000)
}

/// The day (since 1970-01-01) of an event time in the time zone `tz`.
pub fn local_day(t_us: i64, tz: chrono_tz::Tz) -> i64 {
    let utc = chrono::DateTime::from_timestamp_micros(t_us).unwrap_or_default();
    let local = utc.with_timezone(&tz).date_naive();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (local - epoch).num_days()
}

/// Every player's sessions from the archive's live metrics, each on the day of `tz` it
/// started: (team, player) → sessions in time order.
pub async fn session_loads(
    root: &Path,
    tz: chrono_tz::Tz,
) -> Result<BTreeMap<(String, String), Vec<SessionLoad>>, QueryError> {
    let ctx = query::context(root).await?;
    // A session's final totals are its maxima (totals only grow); a session that crosses
    // midnight is in two date partitions and is grouped whole here.
    let sql = "SELECT team, player, session, \
          CAST(min(t) AS BIGINT) AS start_us, CAST(max(t) AS BIGINT) AS end_us, \
          max(hsr_m) AS hsr, max(moderate_m) AS moderate, max(v24_m) AS v24, \
          max(sprint_m) AS sprint, max(distance_m) AS distance, \
          CAST(max(vmax90) AS DOUBLE) AS vmax90, CAST(max(vmax95) AS DOUBLE) AS vmax95, \
          max(w1_peak_sprint_m) AS sprint1, max(max_speed_mps) AS vmax \
        FROM metrics WHERE source = 'live' GROUP BY team, player, session \
        ORDER BY team, player, start_us";
    let mut out: BTreeMap<(String, String), Vec<SessionLoad>> = BTreeMap::new();
    for b in query::run(&ctx, sql).await? {
        let s = |i: usize| b.column(i).as_string::<i32>();
        let f = |i: usize, r: usize| {
            let c = b.column(i).as_primitive::<Float64Type>();
            if c.is_valid(r) { c.value(r) } else { 0.0 }
        };
        let (start, end) = (
            b.column(3).as_primitive::<Int64Type>(),
            b.column(4).as_primitive::<Int64Type>(),
        );
        for r in 0..b.num_rows() {
            let day = local_day(start.value(r), tz);
            let (hsr, sprint) = (f(5, r), f(8, r));
            out.entry((s(0).value(r).to_string(), s(1).value(r).to_string()))
                .or_default()
                .push(SessionLoad {
                    day,
                    start_us: start.value(r),
                    end_us: end.value(r),
                    loads: Day {
                        day,
                        sessions: 1,
                        hsr_m: hsr,
                        moderate_m: f(6, r),
                        v24_m: f(7, r),
                        sprint_m: sprint,
                        distance_m: f(9, r),
                        vmax90: f(10, r) as u32,
                        vmax95: f(11, r) as u32,
                        session_hsr_max_m: hsr,
                        session_sprint_max_m: sprint,
                        sprint_1min_peak_m: f(12, r),
                        max_speed_mps: f(13, r),
                    },
                });
        }
    }
    Ok(out)
}

/// Every player's daily loads (days of `tz`) from the archive's live metrics:
/// (team, player) → days.
pub async fn daily_loads(
    root: &Path,
    tz: chrono_tz::Tz,
) -> Result<BTreeMap<(String, String), Vec<Day>>, QueryError> {
    Ok(session_loads(root, tz)
        .await?
        .into_iter()
        .map(|(k, v)| (k, days_of(&v)))
        .collect())
}

#[cfg(test)]
#[path = "baselines_tests.rs"]
mod tests;

//! Which club day a session belongs to, and dates (the statistics are tested in
//! `sideline_engine::history`).

use super::*;

#[test]
fn dates_round_trip() {
    assert_eq!(day_of("1970-01-02"), Some(1));
    assert_eq!(date_of_day(20_422), "2025-11-30");
    assert_eq!(day_of("2025-11-30"), Some(20_422));
    assert_eq!(day_of("30/11/2025"), None);
}

#[test]
fn a_session_belongs_to_the_club_s_day_it_started_on() {
    // 23:30 UTC on 1 March is 10:30 on 2 March in Sydney (UTC+11 in March).
    let t = (day_of("2026-03-01").unwrap() * 86_400 + 23 * 3_600 + 1_800) * 1_000_000;
    assert_eq!(local_day(t, chrono_tz::UTC), day_of("2026-03-01").unwrap());
    assert_eq!(
        local_day(t, chrono_tz::Australia::Sydney),
        day_of("2026-03-02").unwrap()
    );
}

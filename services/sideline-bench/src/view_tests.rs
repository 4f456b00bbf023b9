use super::*;
use crate::model::{RiskView, TotalsView, WindowView};
use sideline_engine::Signal;

fn f(red: Option<f64>, amber: Option<f64>) -> Forecast {
    Forecast {
        to_amber_min: amber,
        to_red_min: red,
        to_red_long_rate_min: red,
        full_time_in_min: None,
    }
}

fn snap(player: &str, session: &str, t_s: i64, score: f64, band: Band) -> Snapshot {
    Snapshot {
        player: player.into(),
        team: "home".into(),
        session: session.into(),
        t: t_s * 1_000_000,
        signal: Signal::Ok,
        risk: RiskView {
            score,
            band,
            blocks: vec![0.0; 4],
            terms: Vec::new(),
            completeness: 1.0,
            band_floor: false,
        },
        forecast: Forecast::default(),
        totals: TotalsView {
            minutes: t_s as f64 / 60.0,
            distance_m: 10.0 * t_s as f64,
            hsr_m: 1.0,
            sprint_m: 0.5,
            sprints: 1,
            max_speed_mps: 8.0,
        },
        window: WindowView::default(),
    }
}

fn alert(id: &str, player: &str, session: &str, state: &str) -> AlertItem {
    AlertItem {
        id: id.into(),
        kind: "strain_risk".into(),
        severity: "critical".into(),
        state: state.into(),
        player: player.into(),
        team: "home".into(),
        session: session.into(),
        t: 0,
        since: 0,
        value: 7.0,
        threshold: 6.0,
        band: Band::Red,
        forecast: Forecast::default(),
        summary: String::new(),
    }
}

#[test]
fn the_forecast_is_said_only_where_it_means_something() {
    // Already red: the engine says 0 min to red; the page said "red in ~1 min".
    assert_eq!(forecast_text(Band::Red, &f(Some(0.0), Some(0.0))), None);
    assert_eq!(
        forecast_text(Band::Amber, &f(Some(0.0), Some(0.0))).as_deref(),
        Some("at the red threshold")
    );
    assert_eq!(
        forecast_text(Band::Amber, &f(Some(6.4), Some(0.0))).as_deref(),
        Some("red in ~6 min")
    );
    assert_eq!(
        forecast_text(Band::Amber, &f(Some(0.3), Some(0.0))).as_deref(),
        Some("red in ~1 min")
    );
    // The last 10 minutes' rate says later: a range.
    let range = Forecast {
        to_red_long_rate_min: Some(14.6),
        ..f(Some(7.8), Some(0.0))
    };
    assert_eq!(
        forecast_text(Band::Amber, &range).as_deref(),
        Some("red in 8–15 min at the last 5 and 10 minutes' rates")
    );
    // Amber already: the amber forecast is no news.
    assert_eq!(forecast_text(Band::Amber, &f(None, Some(0.0))), None);
    assert_eq!(
        forecast_text(Band::Green, &f(None, Some(12.0))).as_deref(),
        Some("amber in ~12 min")
    );
    assert_eq!(forecast_text(Band::Green, &f(None, None)), None);
}

#[test]
fn sessions_are_kept_apart_and_the_newest_is_shown_unless_one_is_picked() {
    let mut v = SquadView::default();
    v.snapshot(snap("p1", "mon", 100, 2.0, Band::Green), 100_000_000);
    v.snapshot(snap("p1", "tue", 500, 3.0, Band::Green), 500_000_000);
    v.snapshot(snap("p2", "tue", 500, 4.0, Band::Amber), 500_000_000);
    let newest = v.pick(None, None).unwrap();
    assert_eq!(newest.1, "tue");
    assert_eq!(v.squad(&newest).len(), 2);
    let mon = v.pick(Some("home"), Some("mon")).unwrap();
    assert_eq!(v.squad(&mon).len(), 1);
    // An unknown pick falls back to the team's newest.
    assert_eq!(v.pick(Some("home"), Some("nope")).unwrap().1, "tue");
    assert_eq!(v.pick(Some("away"), None), None);
    // Fresher data wins the default pick over a later event time (a replayed old session
    // does not push the live one off the page).
    v.snapshot(snap("p1", "replayed", 900, 1.0, Band::Green), 200_000_000);
    assert_eq!(v.pick(None, None).unwrap().1, "tue");
    let s = v.sessions(510_000_000);
    assert_eq!(
        (s[0].session.as_str(), s[0].players, s[0].age_s),
        ("tue", 2, 10.0)
    );
}

#[test]
fn only_the_kept_number_of_sessions_stays_and_the_oldest_goes() {
    let mut v = SquadView::default();
    for i in 0..(SESSIONS as i64 + 3) {
        v.snapshot(snap("p", &format!("s{i:02}"), 100 + i, 1.0, Band::Green), 0);
    }
    let s = v.sessions(0);
    assert_eq!(s.len(), SESSIONS);
    assert!(s.iter().all(|x| x.session.as_str() >= "s03"), "{s:?}");
    // Something older than every session kept is not taken in.
    v.snapshot(snap("p", "ancient", 1, 1.0, Band::Green), 0);
    assert!(v.sessions(0).iter().all(|x| x.session != "ancient"));
}

#[test]
fn names_open_alerts_acknowledgements_and_the_summary() {
    let mut v = SquadView::default();
    v.set_person(
        "p1",
        Person {
            name: Some("Ada Hart".into()),
            number: Some(7),
            position: Some("winger".into()),
        },
    );
    v.snapshot(snap("p1", "tue", 100, 6.5, Band::Red), 0);
    v.snapshot(snap("p1", "tue", 101, 5.0, Band::Amber), 0);
    v.snapshot(snap("p2", "tue", 101, 1.0, Band::Green), 0);
    v.alert(alert("a1", "p1", "tue", "firing"));
    v.alert(alert("a2", "p2", "tue", "firing"));
    v.alert(alert("a2", "p2", "tue", "resolved"));
    let key = ("home".to_string(), "tue".to_string());
    let rows = v.squad(&key);
    assert_eq!(rows[0].person.name.as_deref(), Some("Ada Hart"));
    assert_eq!(rows[0].open_alerts, vec!["a1".to_string()]);
    assert!(rows[1].open_alerts.is_empty());
    // Only an alert in the feed can be acknowledged on the page; the first one stands.
    assert!(!v.acknowledge("zz", "Dr Lee", 5));
    assert!(v.acknowledge("a1", "Dr Lee", 5));
    assert!(v.acknowledge("a1", "Someone else", 6));
    let feed = v.alerts(Some(&key));
    let a1 = feed.iter().find(|f| f.alert.id == "a1").unwrap();
    assert_eq!(
        (a1.acknowledged_by.as_deref(), a1.acknowledged_at_us),
        (Some("Dr Lee"), Some(5))
    );
    assert_eq!(a1.name.as_deref(), Some("Ada Hart"));
    // a2's firing event is history: its alert is over.
    assert!(a1.open);
    assert!(feed.iter().filter(|f| f.alert.id == "a2").all(|f| !f.open));
    // From the topic, before its alert is seen.
    v.record_ack("later", "Coach", 9);
    assert_eq!(v.ack("later").map(|a| a.by.as_str()), Some("Coach"));
    let sum = v.summary(&key);
    assert_eq!(sum[0].player, "p1", "numbered players first");
    assert_eq!(
        (sum[0].peak_score, sum[0].peak_band, sum[0].final_band),
        (6.5, Band::Red, Band::Amber)
    );
    assert_eq!((sum[0].alerts, sum[0].acknowledged), (1, 1));
    assert_eq!((sum[1].alerts, sum[1].acknowledged), (1, 0));
}

#[test]
fn acknowledgements_are_bounded_oldest_first() {
    let mut v = SquadView::default();
    for i in 0..(ACKS + 5) {
        v.record_ack(&format!("a{i}"), "x", i as i64);
    }
    assert!(v.ack("a0").is_none());
    assert!(v.ack(&format!("a{}", ACKS + 4)).is_some());
    assert_eq!(v.acknowledged().count(), ACKS);
}

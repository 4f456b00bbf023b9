use super::*;
use crate::item::tests::item;
use crate::item::{Resolution, Severity::*, State::*};
use crate::policy::{Route, Timing};

const T0: i64 = 1_768_057_200;

fn policy() -> Policy {
    Policy {
        timing: Timing {
            group_wait_s: 5,
            repeat_interval_s: 600,
            digest_after_s: 1800,
            remember_closed_s: 3600,
        },
        routes: vec![Route {
            teams: vec![],
            kinds: vec![],
            min_severity: Warning,
            destinations: vec!["bench".into()],
            escalate_to: Some("doctor".into()),
            escalate_after_s: 120,
        }],
        send_resolved: Default::default(),
    }
}

/// Offer `events` (seconds after T0) and tick every second up to `until`; the messages.
fn run(r: &mut Router, events: &[Item], from: i64, until: i64) -> Vec<Message> {
    let mut out = Vec::new();
    for s in from..=until {
        let now = (T0 + s) * S;
        for e in events.iter().filter(|e| e.t_us == now) {
            r.offer(e.clone(), now);
        }
        out.extend(r.tick(now));
    }
    out
}

fn ev(id: &str, player: &str, kind: &str, sev: Severity, st: State, s: i64) -> Item {
    item(id, player, kind, sev, st, T0 + s)
}

fn changes(m: &[Message]) -> Vec<(String, Change, String)> {
    m.iter()
        .flat_map(|m| {
            m.entries
                .iter()
                .map(|e| (m.destination.clone(), e.change, e.alert.player.clone()))
        })
        .collect()
}

#[test]
fn rising_then_amber_then_red_is_two_messages_and_the_red_one_lists_the_rest() {
    let mut r = Router::new(policy());
    let mut superseded = ev("rise", "p7", "strain_risk_rising", Warning, Resolved, 400);
    superseded.resolution = Some(Resolution::Superseded);
    let events = [
        ev("rise", "p7", "strain_risk_rising", Warning, Firing, 10),
        ev("risk", "p7", "strain_risk", Warning, Firing, 100),
        ev("risk", "p7", "strain_risk", Critical, Updated, 400),
        superseded,
    ];
    let m = run(&mut r, &events, 0, 500);
    assert_eq!(
        changes(&m),
        [
            ("bench".into(), Change::Raised, "p7".into()),
            ("bench".into(), Change::Escalated, "p7".into())
        ]
    );
    assert_eq!(
        m[0].at,
        (T0 + 15) * S,
        "sent one group wait after the first event"
    );
    assert_eq!(m[1].entries[0].alert.id, "risk");
    assert!(
        m[1].cleared.is_empty(),
        "a superseded rising says nothing of its own"
    );
}

#[test]
fn an_alert_raised_and_closed_within_the_group_wait_is_never_sent() {
    let mut r = Router::new(policy());
    let events = [
        ev("a", "p1", "sprint_spike", Warning, Firing, 10),
        ev("a", "p1", "sprint_spike", Warning, Resolved, 12),
    ];
    assert!(run(&mut r, &events, 0, 4000).is_empty());
}

#[test]
fn an_alert_learnt_of_only_after_it_cleared_is_sent_if_it_was_open_a_group_wait() {
    // The alerter was down: firing (t = 10 s) and resolution (t = 100 s) of "long", and of the
    // 2-s "blip", all arrive together at 200 s.
    let mut r = Router::new(policy());
    let late = [
        ev("long", "p1", "sprint_spike", Warning, Firing, 10),
        ev("long", "p1", "sprint_spike", Warning, Resolved, 100),
        ev("blip", "p2", "device", Warning, Firing, 120),
        ev("blip", "p2", "device", Warning, Resolved, 122),
    ];
    let now = (T0 + 200) * S;
    for e in late {
        r.offer(e, now);
    }
    let m: Vec<Message> = (200..=300).flat_map(|s| r.tick((T0 + s) * S)).collect();
    assert_eq!(
        changes(&m),
        [("bench".into(), Change::Cleared, "p1".into())]
    );
    assert_eq!(m[0].entries[0].alert.id, "long");
    assert_eq!(m[0].entries[0].key, "bench|cleared|long");
    assert_eq!(m[0].at, (T0 + 205) * S);
}

#[test]
fn a_cleared_warning_rides_with_the_next_message_or_a_digest() {
    let mut r = Router::new(policy());
    let events = [
        ev("a", "p1", "sprint_spike", Warning, Firing, 10),
        ev("a", "p1", "sprint_spike", Warning, Resolved, 100),
        ev("b", "p2", "device", Warning, Firing, 200),
    ];
    let m = run(&mut r, &events, 0, 300);
    assert_eq!(m.len(), 2, "{m:#?}");
    assert_eq!(m[1].entries[0].alert.player, "p2");
    assert_eq!(m[1].cleared.len(), 1);
    assert_eq!(m[1].cleared[0].alert.id, "a");
    // Without a next message the line goes out as a digest after digest_after_s.
    let mut r = Router::new(policy());
    let m = run(&mut r, &events[..2], 0, 2000);
    assert_eq!(m.len(), 2);
    assert!(m[1].entries.is_empty());
    assert_eq!(m[1].at, (T0 + 105 + 1800) * S);
}

#[test]
fn a_red_that_clears_gets_its_own_message_and_session_ends_stay_quiet() {
    let mut r = Router::new(policy());
    let mut ended = ev("c", "p3", "strain_risk", Critical, Resolved, 400);
    ended.resolution = Some(Resolution::SessionEnded);
    let events = [
        ev("r", "p1", "strain_risk", Critical, Firing, 10),
        ev("r", "p1", "strain_risk", Critical, Resolved, 60),
        ev("c", "p3", "strain_risk", Critical, Firing, 300),
        ended,
    ];
    let m = run(&mut r, &events, 0, 500);
    let c = changes(&m);
    assert_eq!(c[0].1, Change::Raised);
    assert_eq!(c[1], ("bench".into(), Change::Cleared, "p1".into()));
    assert_eq!(c[2], ("bench".into(), Change::Raised, "p3".into()));
    assert_eq!(c.len(), 3, "{c:?}");
    // To a machine, every clearing is a message.
    let mut p = policy();
    p.send_resolved.insert("bench".into(), SendResolved::All);
    let mut r = Router::new(p);
    assert_eq!(changes(&run(&mut r, &events, 0, 500)).len(), 4);
}

#[test]
fn players_of_one_team_in_one_group_wait_share_a_message_red_first() {
    let mut r = Router::new(policy());
    let events = [
        ev("a", "p1", "sprint_spike", Warning, Firing, 10),
        ev("b", "p2", "strain_risk", Critical, Firing, 12),
    ];
    let m = run(&mut r, &events, 0, 30);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].entries[0].alert.player, "p2");
    assert_eq!(m[0].entries[1].alert.player, "p1");
}

#[test]
fn an_unacknowledged_red_escalates_and_repeats_and_an_ack_stops_both() {
    let events = [ev("r", "p1", "strain_risk", Critical, Firing, 10)];
    let mut r = Router::new(policy());
    let m = run(&mut r, &events, 0, 700);
    let c = changes(&m);
    // Escalated: nothing waits any more.
    assert_eq!(r.escalations_waiting(), 0);
    assert_eq!(
        c,
        [
            ("bench".into(), Change::Raised, "p1".into()),
            ("doctor".into(), Change::Escalation, "p1".into()),
            ("bench".into(), Change::Reminder, "p1".into()),
        ]
    );
    assert_eq!(m[1].at, (T0 + 15 + 120) * S);
    assert_eq!(m[2].at, (T0 + 15 + 600) * S);

    let mut r = Router::new(policy());
    assert_eq!(r.escalations_waiting(), 0);
    run(&mut r, &events, 0, 60);
    // Told to the bench, whose route escalates: one escalation waiting, until the ack.
    assert_eq!(r.escalations_waiting(), 1);
    assert_eq!(r.ack("r", "Dr Lee", (T0 + 60) * S).as_deref(), Some("p1"));
    assert_eq!(r.escalations_waiting(), 0);
    assert!(r.acked("r"));
    assert_eq!(r.acknowledgement("r").unwrap().by, "Dr Lee");
    // The acknowledgement is told (who, when) where the red was; nothing else follows.
    let told = run(&mut r, &[], 61, 2000);
    assert_eq!(
        changes(&told),
        [("bench".into(), Change::Acknowledged, "p1".into())]
    );
    let k = told[0].entries[0].ack.as_ref().unwrap();
    assert_eq!((k.by.as_str(), k.at), ("Dr Lee", (T0 + 60) * S));
    // A second acknowledgement of the same red changes nothing and tells no one.
    assert_eq!(
        r.ack("r", "Someone else", (T0 + 2001) * S).as_deref(),
        Some("p1")
    );
    assert!(run(&mut r, &[], 2001, 2010).is_empty());
    assert_eq!(r.acknowledgement("r").unwrap().by, "Dr Lee");
    assert_eq!(r.ack("unknown", "x", 0), None);
}

#[test]
fn an_acknowledgement_after_the_escalation_is_told_to_the_doctor_too() {
    let events = [ev("r", "p1", "strain_risk", Critical, Firing, 10)];
    let mut r = Router::new(policy());
    run(&mut r, &events, 0, 200);
    r.ack("r", "Kit man", (T0 + 200) * S);
    let told = run(&mut r, &[], 201, 205);
    let mut c = changes(&told);
    c.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        c,
        [
            ("bench".into(), Change::Acknowledged, "p1".into()),
            ("doctor".into(), Change::Acknowledged, "p1".into()),
        ]
    );
    // It survives a save between the acknowledgement and the tick.
    let mut r2 = Router::new(policy());
    run(&mut r2, &events, 0, 200);
    r2.ack("r", "Kit man", (T0 + 200) * S);
    let saved = serde_json::to_string(&r2).unwrap();
    let mut back: Router = serde_json::from_str::<Router>(&saved)
        .unwrap()
        .with_policy(policy());
    assert_eq!(changes(&run(&mut back, &[], 201, 205)).len(), 2);
}

/// An acknowledgement made on the bench (read from the acks topic) stops the escalation and
/// the reminders like a tapped link, is told in chat with the bench's name and time, and is
/// not written back to the topic it came from.
#[test]
fn a_bench_acknowledgement_stops_the_escalation_and_is_not_written_back() {
    let events = [ev("r", "p1", "strain_risk", Critical, Firing, 10)];
    let mut r = Router::new(policy());
    run(&mut r, &events, 0, 60);
    assert_eq!(
        r.ack_recorded("r", "Dr Lee", (T0 + 55) * S).as_deref(),
        Some("p1")
    );
    assert!(r.unarchived().is_empty(), "already on the topic");
    let told = run(&mut r, &[], 61, 2000);
    assert_eq!(
        changes(&told),
        [("bench".into(), Change::Acknowledged, "p1".into())],
        "no escalation to the doctor, no reminder"
    );
    let k = told[0].entries[0].ack.as_ref().unwrap();
    assert_eq!((k.by.as_str(), k.at), ("Dr Lee", (T0 + 55) * S));
    // Its own acknowledgement coming back from the topic changes nothing.
    assert_eq!(
        r.ack_recorded("r", "Dr Lee", (T0 + 55) * S).as_deref(),
        Some("p1")
    );
    assert!(run(&mut r, &[], 2001, 2010).is_empty());
    assert_eq!(r.ack_recorded("unknown", "x", 0), None);
}

/// Each acknowledgement waits in the saved state until the acks topic has it: a restart
/// before then still writes it, once it is written it is gone.
#[test]
fn an_acknowledgement_waits_in_the_state_until_it_is_archived() {
    let events = [ev("r", "p1", "strain_risk", Critical, Firing, 10)];
    let mut r = Router::new(policy());
    run(&mut r, &events, 0, 200);
    assert!(r.unarchived().is_empty());
    r.ack("r", "Dr Lee", (T0 + 200) * S);
    r.ack("r", "Someone else", (T0 + 201) * S);
    assert_eq!(
        r.unarchived().len(),
        1,
        "a second ack of the same player is not new"
    );
    let saved = serde_json::to_string(&r).unwrap();
    let mut back: Router = serde_json::from_str::<Router>(&saved)
        .unwrap()
        .with_policy(policy());
    let rec = &back.unarchived()[0];
    assert_eq!(
        (rec.alert.id.as_str(), rec.ack.by.as_str(), rec.ack.at),
        ("r", "Dr Lee", (T0 + 200) * S)
    );
    back.archived(1);
    assert!(back.unarchived().is_empty());
    back.archived(5);
}

#[test]
fn a_replay_sends_nothing_new_and_cannot_reopen_a_closed_alert() {
    let events = [
        ev("a", "p1", "sprint_spike", Warning, Firing, 10),
        ev("r", "p2", "strain_risk", Critical, Firing, 20),
        ev("r", "p2", "strain_risk", Critical, Resolved, 80),
    ];
    let mut r = Router::new(policy());
    let first = run(&mut r, &events, 0, 100);
    assert_eq!(first.len(), 3);
    // The same events again, later (a consumer re-reading from an older offset).
    let again: Vec<Item> = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.t_us += 200 * S;
            e
        })
        .collect();
    assert!(run(&mut r, &again, 101, 400).is_empty());
    // An open alert's older event (a re-read) does not lower what staff were told.
    let mut r = Router::new(policy());
    let up = [
        ev("k", "p3", "strain_risk", Warning, Firing, 10),
        ev("k", "p3", "strain_risk", Critical, Updated, 30),
    ];
    assert_eq!(run(&mut r, &up, 0, 60).len(), 2);
    assert!(!r.offer(up[0].clone(), (T0 + 61) * S));
    assert!(run(&mut r, &[], 61, 100).is_empty());
}

#[test]
fn a_saved_router_carries_on_exactly_where_it_stopped() {
    let events = [
        ev("rise", "p7", "strain_risk_rising", Warning, Firing, 10),
        ev("risk", "p7", "strain_risk", Critical, Firing, 100),
        ev("x", "p8", "device", Warning, Firing, 101),
    ];
    let mut a = Router::new(policy());
    let mut b = Router::new(policy());
    let mut ma = run(&mut a, &events, 0, 102);
    let mut mb = run(&mut b, &events, 0, 102);
    let saved = serde_json::to_string(&b).unwrap();
    let mut b: Router = serde_json::from_str::<Router>(&saved)
        .unwrap()
        .with_policy(policy());
    ma.extend(run(&mut a, &events, 103, 1000));
    mb.extend(run(&mut b, &events, 103, 1000));
    assert_eq!(ma, mb);
    assert!(ma.len() >= 3);
}

#[test]
fn routes_choose_by_team_kind_and_severity() {
    let mut p = policy();
    p.routes.push(Route {
        teams: vec!["home".into()],
        kinds: vec!["device".into()],
        min_severity: Warning,
        destinations: vec!["kit".into()],
        escalate_to: None,
        escalate_after_s: 300,
    });
    let mut r = Router::new(p);
    let events = [
        ev("d", "p1", "device", Warning, Firing, 10),
        ev("f", "p2", "fatigue", Info, Firing, 10),
    ];
    let c = changes(&run(&mut r, &events, 0, 30));
    assert_eq!(
        c,
        [
            ("bench".into(), Change::Raised, "p1".into()),
            ("kit".into(), Change::Raised, "p1".into())
        ]
    );
}

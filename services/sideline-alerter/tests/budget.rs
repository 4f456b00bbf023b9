//! The alert budget on the synthetic match (seeds 7 and 8, the scripted scenarios): with the
//! default policy, staff get at most 3 messages per player per match, the at-risk player's
//! first message comes at least 3 minutes before his red, and only the scripted players (the
//! at-risk one, the dropout, the poor fixes) are ever mentioned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sideline_alerter::{Change, Item, Policy, Route, Router, Severity, budget};
use sideline_engine::Params;
use sideline_sim::MatchConfig;
use sideline_sim::offline::run_match;

fn budget_for(seed: u64) -> budget::Budget {
    let run = run_match(
        MatchConfig {
            seed,
            ..Default::default()
        },
        Params::default(),
        |_| {},
    );
    let items: Vec<Item> = run
        .alerts
        .iter()
        .map(|a| Item::from_pb(&sideline_wire::convert::alert(a)).unwrap())
        .collect();
    let policy = Policy {
        routes: vec![Route {
            teams: vec![],
            kinds: vec![],
            min_severity: Severity::Warning,
            destinations: vec!["bench".into()],
            escalate_to: Some("doctor".into()),
            escalate_after_s: 300,
        }],
        ..Policy::default()
    };
    budget::run(Router::new(policy), &items, 60)
}

#[test]
fn the_scripted_matches_stay_within_the_alert_budget() {
    for seed in [7, 8] {
        let b = budget_for(seed);
        let mentioned: Vec<&str> = b.per_player.keys().map(|(_, p)| p.as_str()).collect();
        for p in &mentioned {
            assert!(
                ["home-07", "home-02", "away-05"].contains(p),
                "seed {seed}: steady player {p} was messaged"
            );
        }
        for ((d, p), n) in &b.per_player {
            assert!(*n <= 3, "seed {seed}: {n} messages about {p} to {d}");
        }
        let lead = b.lead_min[&("bench".to_string(), "home-07".to_string())];
        assert!(
            lead >= 3.0,
            "seed {seed}: first message only {lead:.1} min before red"
        );
        // The red reached the chat as a change of its own, and escalated unacknowledged.
        let changes: Vec<Change> = b
            .messages
            .iter()
            .flat_map(|m| m.entries.iter().map(|e| e.change))
            .collect();
        assert!(changes.contains(&Change::Escalated) || changes.contains(&Change::Raised));
        assert_eq!(b.per_destination.get("doctor"), Some(&1), "seed {seed}");
        assert!(
            b.per_destination["bench"] <= 8,
            "seed {seed}: {:?}",
            b.per_destination
        );
    }
}

//! `make bench` / `make budget`: the alert budget of the synthetic match for several seeds —
//! messages staff receive per match and per player, and the warning's lead before each red.

use sideline_alerter::budget;
use sideline_alerter::{Item, Policy, Route, Router, Severity};
use sideline_engine::Params;
use sideline_sim::MatchConfig;
use sideline_sim::offline::run_match;

fn main() {
    let seeds: Vec<u64> = std::env::var("SIDELINE_BUDGET_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| (1..=10).collect());
    println!("alert budget, synthetic match (22 players, 2 × 45 min), default policy, one chat");
    println!("destination \"bench\" (warnings and reds) escalating to \"doctor\" after 5 min");
    println!();
    println!(
        "{:>5} {:>9} {:>9} {:>12} {:>22} {:>24}",
        "seed", "messages", "escalat.", "max/player", "players mentioned", "lead before red (min)"
    );
    let mut worst_lead = f64::INFINITY;
    let mut worst_per_player = 0;
    for seed in seeds {
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
            .filter_map(|a| Item::from_pb(&sideline_wire::convert::alert(a)).ok())
            .collect();
        let b = budget::run(Router::new(policy()), &items, 60);
        if std::env::var("SIDELINE_BUDGET_VERBOSE").is_ok() {
            for m in &b.messages {
                let e: Vec<String> = m
                    .entries
                    .iter()
                    .map(|e| format!("{} {} {}", e.change.as_str(), e.alert.player, e.alert.kind))
                    .collect();
                let c: Vec<String> = m
                    .cleared
                    .iter()
                    .map(|c| format!("{} {}", c.alert.player, c.alert.kind))
                    .collect();
                println!(
                    "  {} {} [{}] cleared [{}]",
                    sideline_alerter::item::clock(m.at),
                    m.destination,
                    e.join(", "),
                    c.join(", ")
                );
            }
        }
        let bench = b.per_destination.get("bench").copied().unwrap_or(0);
        let doctor = b.per_destination.get("doctor").copied().unwrap_or(0);
        let per: Vec<(&str, usize)> = b
            .per_player
            .iter()
            .filter(|((d, _), _)| d == "bench")
            .map(|((_, p), n)| (p.as_str(), *n))
            .collect();
        let max = per.iter().map(|x| x.1).max().unwrap_or(0);
        worst_per_player = worst_per_player.max(max);
        let names: Vec<String> = per.iter().map(|(p, n)| format!("{p}:{n}")).collect();
        let leads: Vec<String> = b
            .lead_min
            .iter()
            .filter(|((d, _), _)| d == "bench")
            .map(|((_, p), l)| {
                worst_lead = worst_lead.min(*l);
                format!("{p} {l:.1}")
            })
            .collect();
        println!(
            "{seed:>5} {bench:>9} {doctor:>9} {max:>12} {:>22} {:>24}",
            names.join(" "),
            if leads.is_empty() {
                "no red".into()
            } else {
                leads.join(" ")
            }
        );
    }
    println!();
    println!(
        "worst: {worst_per_player} messages for one player; shortest lead before red {worst_lead:.1} min"
    );
}

fn policy() -> Policy {
    Policy {
        routes: vec![Route {
            teams: vec![],
            kinds: vec![],
            min_severity: Severity::Warning,
            destinations: vec!["bench".into()],
            escalate_to: Some("doctor".into()),
            escalate_after_s: 300,
        }],
        ..Policy::default()
    }
}

//! The alert budget: run a match's alert events through the router on event time and count
//! what staff would receive — messages per destination and per player, and how many minutes
//! before each red crossing the player's first warning message went out.

use std::collections::BTreeMap;

use crate::item::{Item, Severity};
use crate::router::{Message, Router};

/// What a match's alerts cost staff.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budget {
    /// Every message, in order.
    pub messages: Vec<Message>,
    /// Messages per destination.
    pub per_destination: BTreeMap<String, usize>,
    /// Per destination and player: messages that mention the player.
    pub per_player: BTreeMap<(String, String), usize>,
    /// Per destination and player who reached red: minutes from the first message about the
    /// player to the red crossing (event time); negative if red came first.
    pub lead_min: BTreeMap<(String, String), f64>,
}

/// Run `events` (in event-time order) through `router`, ticking every second of event time,
/// and `tail_s` seconds past the last event.
pub fn run(mut router: Router, events: &[Item], tail_s: i64) -> Budget {
    let mut b = Budget::default();
    let Some(first) = events.first() else {
        return b;
    };
    let mut clock = first.t_us;
    let end = events.last().map_or(clock, |e| e.t_us) + tail_s * 1_000_000;
    let mut red_at: BTreeMap<String, i64> = BTreeMap::new();
    let mut i = 0;
    while clock <= end {
        while i < events.len() && events[i].t_us <= clock {
            let e = &events[i];
            if e.kind == "strain_risk" && e.severity == Severity::Critical {
                red_at.entry(e.player.clone()).or_insert(e.t_us);
            }
            router.offer(e.clone(), clock);
            i += 1;
        }
        b.messages.extend(router.tick(clock));
        clock += 1_000_000;
    }
    let mut first_msg: BTreeMap<(String, String), i64> = BTreeMap::new();
    for m in &b.messages {
        *b.per_destination.entry(m.destination.clone()).or_default() += 1;
        let mut players: Vec<&str> = m.entries.iter().map(|e| e.alert.player.as_str()).collect();
        players.extend(m.cleared.iter().map(|c| c.alert.player.as_str()));
        players.sort_unstable();
        players.dedup();
        for p in players {
            let k = (m.destination.clone(), p.to_string());
            *b.per_player.entry(k.clone()).or_default() += 1;
            first_msg.entry(k).or_insert(m.at);
        }
    }
    for ((dest, player), t) in first_msg {
        if let Some(red) = red_at.get(&player) {
            b.lead_min.insert((dest, player), (red - t) as f64 / 60e6);
        }
    }
    b
}

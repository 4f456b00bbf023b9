//! What the bench sees: the latest snapshot of every player, each player's history for the
//! session (one point per second, for sparklines), and the alert feed with acknowledgements.
//! Bounded: [`HISTORY_S`] points per player, [`FEED`] alert events.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;
use sideline_engine::{AlertEvent, PlayerMetrics};

/// Seconds of history kept per player (a whole match with extra time).
pub const HISTORY_S: usize = 2 * 60 * 60;
/// Alert events kept in the feed.
pub const FEED: usize = 500;

/// One point of a player's history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// End of the second, µs.
    pub t_us: i64,
    /// Strain-risk score.
    pub score: f64,
    /// Rolling HSR of the shortest window, m.
    pub hsr_m: f64,
    /// Rolling sprint distance of the shortest window, m.
    pub sprint_m: f64,
}

/// An alert event with its acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedItem {
    /// The event.
    pub alert: AlertEvent,
    /// Acknowledged by staff.
    pub acknowledged: bool,
    /// Who acknowledged it (their name, from the bench page or the chat link's page).
    pub acknowledged_by: Option<String>,
}

/// The squad's state.
#[derive(Debug, Default)]
pub struct SquadView {
    latest: BTreeMap<String, PlayerMetrics>,
    history: BTreeMap<String, VecDeque<Point>>,
    feed: VecDeque<AlertEvent>,
    acked: HashMap<String, String>,
    /// Snapshots seen.
    pub updates: u64,
}

/// A player's row, for the squad list (sorted by strain-risk attention).
#[derive(Debug, Clone, Serialize)]
pub struct Row<'a> {
    /// The latest snapshot.
    #[serde(flatten)]
    pub metrics: &'a PlayerMetrics,
    /// Open (firing, unacknowledged or not) alert ids of this player.
    pub open_alerts: Vec<&'a str>,
}

impl SquadView {
    /// Take a snapshot in.
    pub fn snapshot(&mut self, m: &PlayerMetrics) {
        self.updates += 1;
        let w = m.windows.first();
        let h = self.history.entry(m.player.to_string()).or_default();
        if h.len() == HISTORY_S {
            h.pop_front();
        }
        h.push_back(Point {
            t_us: m.t,
            score: m.risk.score,
            hsr_m: w.map_or(0.0, |w| w.hsr_m),
            sprint_m: w.map_or(0.0, |w| w.sprint_m),
        });
        self.latest.insert(m.player.to_string(), m.clone());
    }

    /// Take an alert event in.
    pub fn alert(&mut self, a: &AlertEvent) {
        if self.feed.len() == FEED {
            self.feed.pop_front();
        }
        self.feed.push_back(a.clone());
    }

    /// Mark an alert id acknowledged by `by` (the first acknowledgement stands); `false` if
    /// no such alert is in the feed.
    pub fn acknowledge(&mut self, id: &str, by: &str) -> bool {
        if self.feed.iter().any(|a| a.id == id) {
            self.acked
                .entry(id.to_string())
                .or_insert_with(|| by.to_string());
            true
        } else {
            false
        }
    }

    /// Is this alert id acknowledged?
    pub fn is_acknowledged(&self, id: &str) -> bool {
        self.acked.contains_key(id)
    }

    /// Acknowledged alert ids and who acknowledged each.
    pub fn acknowledged(&self) -> impl Iterator<Item = (&str, &str)> {
        self.acked.iter().map(|(i, b)| (i.as_str(), b.as_str()))
    }

    /// Every player, highest strain-risk score first (ties by player id).
    pub fn squad(&self) -> Vec<Row<'_>> {
        let open = self.open();
        let mut rows: Vec<Row<'_>> = self
            .latest
            .values()
            .map(|m| Row {
                metrics: m,
                open_alerts: open
                    .iter()
                    .filter(|a| *a.player == *m.player)
                    .map(|a| a.id.as_str())
                    .collect(),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.metrics
                .risk
                .score
                .total_cmp(&a.metrics.risk.score)
                .then_with(|| a.metrics.player.cmp(&b.metrics.player))
        });
        rows
    }

    /// Alerts whose latest event is not a resolution.
    fn open(&self) -> Vec<&AlertEvent> {
        let mut last: BTreeMap<&str, &AlertEvent> = BTreeMap::new();
        for a in &self.feed {
            last.insert(a.id.as_str(), a);
        }
        last.into_values()
            .filter(|a| a.state != sideline_engine::alerts::Lifecycle::Resolved)
            .collect()
    }

    /// One player's latest snapshot and history.
    pub fn player(&self, id: &str) -> Option<(&PlayerMetrics, &VecDeque<Point>)> {
        Some((self.latest.get(id)?, self.history.get(id)?))
    }

    /// The alert feed, newest first.
    pub fn alerts(&self) -> Vec<FeedItem> {
        self.feed
            .iter()
            .rev()
            .map(|a| FeedItem {
                alert: a.clone(),
                acknowledged: self.acked.contains_key(&a.id),
                acknowledged_by: self.acked.get(&a.id).cloned(),
            })
            .collect()
    }

    /// Players seen.
    pub fn players(&self) -> usize {
        self.latest.len()
    }
}

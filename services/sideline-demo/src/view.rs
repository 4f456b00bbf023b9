//! What the bench sees: the latest snapshot of every player, each player's history for the
//! session (one point per second, for sparklines), and the alert feed with acknowledgements.
//! Bounded: [`HISTORY_S`] points per player, [`FEED`] alert events.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;
use sideline_engine::forecast::Forecast;
use sideline_engine::risk::Band;
use sideline_engine::{AlertEvent, PlayerMetrics};

/// The forecast as staff read it, only where it tells them something: nothing for a player
/// already in the red band (the band says it), "at the red threshold" while the score has
/// reached red but the band has not changed yet (its pending time), the minutes to red, else
/// for a green player the minutes to amber; nothing without a crossing in the horizon.
pub fn forecast_text(band: Band, f: &Forecast) -> Option<String> {
    let minutes = |m: f64| format!("{:.0}", m.round().max(1.0));
    match (band, f.to_red_min, f.to_amber_min) {
        (Band::Red, _, _) => None,
        (_, Some(m), _) if m <= 0.0 => Some("at the red threshold".into()),
        (_, Some(m), _) => Some(format!("red in ~{} min", minutes(m))),
        (Band::Green, None, Some(m)) if m <= 0.0 => Some("at the amber threshold".into()),
        (Band::Green, None, Some(m)) => Some(format!("amber in ~{} min", minutes(m))),
        _ => None,
    }
}

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
    /// Its forecast in words ([`forecast_text`]).
    pub forecast_text: Option<String>,
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
    /// The forecast in words ([`forecast_text`]).
    pub forecast_text: Option<String>,
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
                forecast_text: forecast_text(m.risk.band, &m.forecast),
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
                forecast_text: forecast_text(a.band, &a.forecast),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn f(red: Option<f64>, amber: Option<f64>) -> Forecast {
        Forecast {
            to_amber_min: amber,
            to_red_min: red,
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
        // Amber already: the amber forecast is no news.
        assert_eq!(forecast_text(Band::Amber, &f(None, Some(0.0))), None);
        assert_eq!(
            forecast_text(Band::Green, &f(None, Some(12.0))).as_deref(),
            Some("amber in ~12 min")
        );
        assert_eq!(forecast_text(Band::Green, &f(None, None)), None);
    }
}

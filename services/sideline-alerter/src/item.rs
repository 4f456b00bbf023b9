//! One alert lifecycle event as the alerter sees it, decoded from `sideline.alerts.v1`
//! (`sideline.v1.Alert`), with the words people read.

use serde::{Deserialize, Serialize};
use sideline_wire::pb;

// The engine's own vocabulary, so the alerter and the engine cannot drift apart.
pub use sideline_engine::alerts::{Lifecycle as State, Resolution, Severity};

/// A score term that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermLine {
    /// What it means.
    pub label: String,
    /// Points it adds.
    pub points: f64,
}

/// One alert lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Stable episode id.
    pub id: String,
    /// Kind (`strain_risk`, `strain_risk_rising`, `sprint_spike`, `fatigue`, `device`,
    /// `pipeline_lag`).
    pub kind: String,
    /// Severity now.
    pub severity: Severity,
    /// Lifecycle state.
    pub state: State,
    /// For `Resolved`: why.
    pub resolution: Option<Resolution>,
    /// Player id.
    pub player: String,
    /// Team id.
    pub team: String,
    /// Session id.
    pub session: String,
    /// Event time of this event, µs since the epoch.
    pub t_us: i64,
    /// When the episode's condition began, µs.
    pub since_us: i64,
    /// The triggering value and its threshold.
    pub value: f64,
    /// Threshold.
    pub threshold: f64,
    /// Score band at the time (`green`, `amber`, `red`).
    pub band: String,
    /// Terms that fired.
    pub terms: Vec<TermLine>,
    /// Minutes to red by the forecast, when within its horizon.
    pub to_red_min: Option<f64>,
    /// Minutes to red at the longer window's rate (the other end of the range).
    #[serde(default)]
    pub to_red_long_rate_min: Option<f64>,
    /// Minutes left to the session's planned full time, when known.
    #[serde(default)]
    pub full_time_in_min: Option<f64>,
    /// The score's completeness (0–1) for score alerts; `None` when not given.
    #[serde(default)]
    pub completeness: Option<f64>,
    /// The band is a floor: unknown score terms could lift it ("at least amber").
    #[serde(default)]
    pub band_floor: bool,
    /// The engine's one line.
    pub summary: String,
    /// Parameter set.
    pub params_version: String,
}

/// Why a record is not an alert the alerter can use.
#[derive(Debug, thiserror::Error)]
pub enum BadAlert {
    /// Not a `sideline.v1.Alert`.
    #[error("not a sideline.v1.Alert: {0}")]
    Decode(String),
    /// A field is missing or unknown.
    #[error("alert field {0} is missing or unknown")]
    Field(&'static str),
}

impl BadAlert {
    /// A short stable reason for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            BadAlert::Decode(_) => "malformed",
            BadAlert::Field(_) => "missing_field",
        }
    }
}

impl Item {
    /// Decode a record value of `sideline.alerts.v1`.
    pub fn decode(bytes: &[u8]) -> Result<Item, BadAlert> {
        let a = <pb::Alert as prost::Message>::decode(bytes)
            .map_err(|e| BadAlert::Decode(e.to_string()))?;
        Item::from_pb(&a)
    }

    /// From the wire form.
    pub fn from_pb(a: &pb::Alert) -> Result<Item, BadAlert> {
        use pb::alert::{Kind, Resolution as R, Severity as S, State as St};
        let kind = match a.kind() {
            Kind::Unspecified => return Err(BadAlert::Field("kind")),
            k => sideline_wire::convert::alert_kind_name(k),
        };
        let severity = match a.severity() {
            S::Info => Severity::Info,
            S::Warning => Severity::Warning,
            S::Critical => Severity::Critical,
            S::Unspecified => return Err(BadAlert::Field("severity")),
        };
        let state = match a.state() {
            St::Firing => State::Firing,
            St::Updated => State::Updated,
            St::Resolved => State::Resolved,
            St::Unspecified => return Err(BadAlert::Field("state")),
        };
        let resolution = match a.resolution() {
            R::Unspecified => None,
            R::Cleared => Some(Resolution::Cleared),
            R::Superseded => Some(Resolution::Superseded),
            R::SessionEnded => Some(Resolution::SessionEnded),
        };
        for (name, v) in [
            ("id", &a.id),
            ("player_id", &a.player_id),
            ("team_id", &a.team_id),
        ] {
            if v.is_empty() {
                return Err(BadAlert::Field(name));
            }
        }
        let band = match a.band() {
            pb::Band::Red => "red",
            pb::Band::Amber => "amber",
            _ => "green",
        };
        Ok(Item {
            id: a.id.clone(),
            kind: kind.into(),
            severity,
            state,
            resolution,
            player: a.player_id.clone(),
            team: a.team_id.clone(),
            session: a.session_id.clone(),
            t_us: a.t_us,
            since_us: a.since_us,
            value: a.value,
            threshold: a.threshold,
            band: band.into(),
            terms: a
                .terms
                .iter()
                .filter(|t| t.state() == pb::term::State::Fired)
                .map(|t| TermLine {
                    label: t.label.clone(),
                    points: t.points,
                })
                .collect(),
            to_red_min: a.forecast.as_ref().and_then(|f| f.to_red_min),
            to_red_long_rate_min: a.forecast.as_ref().and_then(|f| f.to_red_long_rate_min),
            full_time_in_min: a.forecast.as_ref().and_then(|f| f.full_time_in_min),
            completeness: a.completeness.filter(|c| (0.0..=1.0).contains(c)),
            band_floor: a.band_floor,
            summary: a.summary.clone(),
            params_version: a.params_version.clone(),
        })
    }

    /// What happened, in a few words ("strain-risk RED", "red forecast in ~6 min").
    pub fn headline(&self) -> String {
        match self.kind.as_str() {
            "strain_risk" if self.band_floor => {
                format!("strain-risk AT LEAST {}", self.band.to_uppercase())
            }
            "strain_risk" => format!("strain-risk {}", self.band.to_uppercase()),
            "strain_risk_rising" => match self.to_red_min {
                Some(m) => format!("strain-risk rising: red in ~{m:.0} min"),
                None => "strain-risk rising".into(),
            },
            "sprint_spike" => "sprint burst".into(),
            "fatigue" => "fatigue markers".into(),
            "device" => "device signal".into(),
            "pipeline_lag" => "pipeline lag".into(),
            other => other.replace('_', " "),
        }
    }

    /// How much: the value against its threshold, in the kind's unit; for the score, how
    /// much of it could be judged when not all.
    pub fn how_much(&self) -> String {
        let value = self.value_line();
        match self.completeness {
            Some(c) if c < 1.0 => format!("{value}; {:.0} % of the score known", 100.0 * c),
            _ => value,
        }
    }

    fn value_line(&self) -> String {
        match self.kind.as_str() {
            "strain_risk" => format!("score {:.1} (threshold {:.1})", self.value, self.threshold),
            "strain_risk_rising" if self.value >= 0.0 => format!(
                "red forecast in {:.0} min (warning lead {:.0} min)",
                self.value, self.threshold
            ),
            "sprint_spike" => format!(
                "{:.0} m sprinting in the last minute (limit {:.0} m)",
                self.value, self.threshold
            ),
            "device" if self.value >= 0.0 => format!("{:.0} s without a good signal", self.value),
            _ => format!("{:.1} (threshold {:.1})", self.value, self.threshold),
        }
    }

    /// The forecast, for people ("red in 8–15 min" at the last 5 and 10 minutes' rates), when
    /// there is one worth saying.
    pub fn forecast(&self) -> Option<String> {
        if self.band == "red" {
            return None;
        }
        let f = sideline_engine::forecast::Forecast {
            to_amber_min: None,
            to_red_min: self.to_red_min,
            to_red_long_rate_min: self.to_red_long_rate_min,
            full_time_in_min: self.full_time_in_min,
        };
        let d = sideline_engine::params::RiskParams::default();
        f.red_text(d.forecast_trend_s, d.forecast_trend_long_s)
    }

    /// The terms that fired, "label +points", biggest first.
    pub fn term_lines(&self) -> Vec<String> {
        let mut t = self.terms.clone();
        t.sort_by(|a, b| b.points.total_cmp(&a.points));
        t.iter()
            .map(|t| format!("{} +{:.1}", t.label, t.points))
            .collect()
    }
}

/// `HH:MM:SS` UTC of a µs timestamp.
pub fn clock(t_us: i64) -> String {
    let s = t_us.div_euclid(1_000_000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An item for tests.
    pub fn item(id: &str, player: &str, kind: &str, sev: Severity, state: State, t_s: i64) -> Item {
        Item {
            id: id.into(),
            kind: kind.into(),
            severity: sev,
            state,
            resolution: (state == State::Resolved).then_some(Resolution::Cleared),
            player: player.into(),
            team: "home".into(),
            session: "s1".into(),
            t_us: t_s * 1_000_000,
            since_us: t_s * 1_000_000 - 30_000_000,
            value: 5.2,
            threshold: 5.0,
            band: if sev == Severity::Critical {
                "red"
            } else {
                "amber"
            }
            .into(),
            terms: vec![
                TermLine {
                    label: "previous hamstring injury".into(),
                    points: 1.0,
                },
                TermLine {
                    label: "7-day rise in high-speed distance (m)".into(),
                    points: 1.8,
                },
            ],
            to_red_min: Some(4.0),
            to_red_long_rate_min: Some(7.0),
            full_time_in_min: None,
            completeness: Some(1.0),
            band_floor: false,
            summary: format!("{player}: {kind}"),
            params_version: "v1".into(),
        }
    }

    #[test]
    fn the_wire_form_decodes_and_unknown_enums_are_refused() {
        let mut a = pb::Alert {
            id: "a1".into(),
            kind: pb::alert::Kind::StrainRisk as i32,
            severity: pb::alert::Severity::Critical as i32,
            state: pb::alert::State::Updated as i32,
            player_id: "home-07".into(),
            team_id: "home".into(),
            band: pb::Band::Red as i32,
            value: 5.3,
            ..Default::default()
        };
        let bytes = prost::Message::encode_to_vec(&a);
        let i = Item::decode(&bytes).unwrap();
        assert_eq!((i.severity, i.state), (Severity::Critical, State::Updated));
        assert_eq!(i.headline(), "strain-risk RED");
        assert_eq!(i.completeness, None, "not given is not 'all known'");
        // An amber reached with unknowns is said to be a floor, with how much was known.
        a.severity = pb::alert::Severity::Warning as i32;
        a.band = pb::Band::Amber as i32;
        a.threshold = 3.0;
        a.completeness = Some(0.62);
        a.band_floor = true;
        let i = Item::from_pb(&a).unwrap();
        assert_eq!(i.headline(), "strain-risk AT LEAST AMBER");
        assert_eq!(
            i.how_much(),
            "score 5.3 (threshold 3.0); 62 % of the score known"
        );
        a.kind = 0;
        assert_eq!(Item::from_pb(&a).unwrap_err().reason(), "missing_field");
        assert_eq!(Item::decode(b"\xff\xff").unwrap_err().reason(), "malformed");
    }

    #[test]
    fn clock_is_utc_hours_minutes_seconds() {
        assert_eq!(clock(1_768_057_200_000_000 + 3_723_000_000), "16:02:03");
    }
}

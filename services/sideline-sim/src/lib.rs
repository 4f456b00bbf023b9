//! # sideline-sim
//!
//! A deterministic synthetic football match for tests, benchmarks and the demo: 22 players ×
//! 90 minutes (two halves and a 15-minute break with pods silent), 10 Hz position with device
//! speed, 100 Hz tri-axial accelerometer, 1 Hz heart rate, batched per device as pods send
//! them. The same seed always gives the same samples.
//!
//! Scripted scenarios (with `scenarios: true`): home #7 is an at-risk player whose second half
//! drives his strain-risk score from green to red; away #5's pod drops out for 3 minutes;
//! home #2 has 2 minutes of poor satellite fixes. Every pod also produces an occasional
//! Doppler glitch (about one per 10 minutes) that the engine must reject.
//!
//! # Layout
//!
//! - [`roles`]: positional activity profiles.
//! - [`athlete`]: kinematics, accelerometer and heart-rate models of one player.
//! - [`squad`]: the squads, their profiles, baselines and scripts.
//! - [`offline`]: the whole match through the engine, no brokers (the reference run).
//! - this file: [`MatchSim`], which steps everyone and emits device batches.

pub mod athlete;
pub mod gnss;
pub mod offline;
pub mod roles;
pub mod squad;
pub mod stoppages;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sideline_engine::{Batch, Micros};

pub use squad::SimPlayer;

use athlete::{Athlete, Step};

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchConfig {
    /// Random seed; same seed, same match.
    pub seed: u64,
    /// Event time of kick-off, µs since the epoch.
    pub start: Micros,
    /// Minutes per half.
    pub half_min: f64,
    /// Half-time break, minutes (pods silent).
    pub break_min: f64,
    /// Milliseconds of samples per device batch (divides 1000).
    pub batch_ms: u32,
    /// Home team id.
    pub home: String,
    /// Away team id.
    pub away: String,
    /// Session id.
    pub session: String,
    /// Include the scripted scenarios.
    pub scenarios: bool,
    /// Three substitutes per team, streaming from kick-off on the bench and warming up before
    /// they come on at 60′, 70′ and 80′ for the numbers 10, 11 and 9 (who then sit on the
    /// bench, still streaming); the lineup is [`MatchSim::lineup`].
    pub substitutions: bool,
    /// Send raw GNSS instead of the clean fixes: latitude/longitude without device speed,
    /// with the [`gnss::GnssNoise`] error model and missing fixes.
    pub gnss: Option<gnss::GnssNoise>,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            seed: 7,
            // 2026-01-10T15:00:00Z
            start: 1_768_057_200_000_000,
            half_min: 45.0,
            break_min: 15.0,
            batch_ms: 1000,
            home: "home".into(),
            away: "away".into(),
            session: "sim-match".into(),
            scenarios: true,
            substitutions: false,
            gnss: None,
        }
    }
}

/// The match in progress.
#[derive(Debug)]
pub struct MatchSim {
    cfg: MatchConfig,
    players: Vec<SimPlayer>,
    athletes: Vec<Athlete>,
    seq: Vec<u64>,
    /// 100 ms steps of playing time done.
    step: u64,
    steps_total: u64,
    scratch: Step,
    degrader: Option<gnss::Degrader>,
    /// Minutes of play when the ball is out: (from, to), in order.
    stoppages: Vec<(f64, f64)>,
    next_stoppage: usize,
}

const STEP_US: Micros = 100_000;

impl MatchSim {
    /// Set up both squads at their positions.
    pub fn new(cfg: MatchConfig) -> Self {
        let mut players = squad::squads(&cfg.home, &cfg.away, cfg.scenarios);
        if cfg.substitutions {
            squad::add_substitutes(&mut players, &cfg.home, &cfg.away);
        }
        let athletes = players
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let rng = ChaCha8Rng::seed_from_u64(
                    cfg.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
                );
                let hr_rest = p.profile.hr_rest.unwrap_or(50.0);
                let hr_max = p.profile.hr_max.unwrap_or(190.0);
                let mut a = Athlete::new(
                    p.role,
                    (p.shirt - 1) as usize,
                    i >= 11,
                    hr_rest,
                    hr_max,
                    p.script,
                    rng,
                    (i as Micros * 3_700) % 50_000,
                );
                if let Some(v) = p.profile.vmax_mps {
                    a = a.with_vmax(v);
                }
                a
            })
            .collect();
        let n = players.len();
        let steps_total = (cfg.half_min * 2.0 * 60.0 * 10.0).round() as u64;
        MatchSim {
            seq: vec![0; players.len()],
            players,
            athletes,
            step: 0,
            steps_total,
            scratch: Step::default(),
            degrader: cfg.gnss.map(|g| gnss::Degrader::new(g, n, cfg.seed)),
            stoppages: stoppages::schedule(cfg.seed, cfg.half_min),
            next_stoppage: 0,
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MatchConfig {
        &self.cfg
    }

    /// The players (roster, profiles, baselines, scripts).
    pub fn players(&self) -> &[SimPlayer] {
        &self.players
    }

    /// Minutes of play done.
    pub fn minute(&self) -> f64 {
        self.step as f64 / 600.0
    }

    /// Total minutes of play.
    pub fn total_minutes(&self) -> f64 {
        self.steps_total as f64 / 600.0
    }

    /// True when the final whistle has gone.
    pub fn finished(&self) -> bool {
        self.step >= self.steps_total
    }

    /// Who came on and went off, and when: `(player, event time, on)` — what staff post with
    /// `sideline roster pitch` (empty without [`MatchConfig::substitutions`]).
    pub fn lineup(&self) -> Vec<(String, Micros, bool)> {
        let mut out = Vec::new();
        for p in &self.players {
            let Some((on, off)) = p.script.on_pitch_min else {
                continue;
            };
            let at = |minute: f64| self.event_time((minute * 600.0).round() as u64);
            if on > 0.0 {
                out.push((p.player.clone(), at(on), true));
            }
            if off < self.total_minutes() {
                out.push((p.player.clone(), at(off), false));
            }
        }
        out
    }

    /// Event time at the start of play step `step` (the break shifts the second half).
    fn event_time(&self, step: u64) -> Micros {
        let half_steps = (self.cfg.half_min * 600.0).round() as u64;
        let brk = if step >= half_steps {
            (self.cfg.break_min * 60e6) as Micros
        } else {
            0
        };
        self.cfg.start + step as Micros * STEP_US + brk
    }

    /// Event time of the end of what has been generated so far.
    pub fn now(&self) -> Micros {
        self.event_time(self.step)
    }

    /// Path length each player actually ran while his pod streamed, m, by player id: the
    /// truth against which distances are judged.
    pub fn true_distances(&self) -> Vec<(String, f64)> {
        self.players
            .iter()
            .zip(&self.athletes)
            .map(|(p, a)| (p.player.clone(), a.true_distance_m))
            .collect()
    }

    /// The stoppages: minutes of play (from, to) when the ball is out.
    pub fn stoppages(&self) -> &[(f64, f64)] {
        &self.stoppages
    }

    fn in_play(&mut self, minute: f64) -> bool {
        while self
            .stoppages
            .get(self.next_stoppage)
            .is_some_and(|&(_, to)| to <= minute)
        {
            self.next_stoppage += 1;
        }
        self.stoppages
            .get(self.next_stoppage)
            .is_none_or(|&(from, _)| minute < from)
    }

    /// Speed glitches injected so far, over all pods.
    pub fn injected_artefacts(&self) -> u64 {
        self.athletes.iter().map(|a| a.injected_artefacts).sum()
    }

    /// The next `batch_ms` of play as device batches (position, IMU and heart rate separately,
    /// as pods publish them per stream), or `None` at full time.
    pub fn next_batches(&mut self) -> Option<Vec<Batch>> {
        if self.finished() {
            return None;
        }
        let steps = (u64::from(self.cfg.batch_ms) / 100).max(1);
        let n = self.players.len();
        let mut pos = vec![Vec::new(); n];
        let mut imu = vec![Vec::new(); n];
        let mut hr = vec![Vec::new(); n];
        for _ in 0..steps {
            if self.finished() {
                break;
            }
            let t0 = self.event_time(self.step);
            let minute = self.minute();
            let in_play = self.in_play(minute);
            for i in 0..n {
                self.athletes[i].set_in_play(in_play);
                self.athletes[i].step(t0, minute, &mut self.scratch);
                let fix = self.scratch.position.take();
                let fix = match (&mut self.degrader, fix) {
                    (Some(d), Some(f)) => d.fix(i, f.t, self.athletes[i].true_xy(), f),
                    (_, f) => f,
                };
                pos[i].extend(fix);
                imu[i].append(&mut self.scratch.imu);
                hr[i].extend(self.scratch.hr.take());
            }
            self.step += 1;
        }
        let mut out = Vec::with_capacity(3 * n);
        for (i, p) in self.players.iter().enumerate() {
            for samples in [
                std::mem::take(&mut pos[i]),
                std::mem::take(&mut imu[i]),
                std::mem::take(&mut hr[i]),
            ] {
                if samples.is_empty() {
                    continue;
                }
                self.seq[i] += 1;
                out.push(Batch {
                    device: p.device.clone(),
                    team: p.team.clone(),
                    session: self.cfg.session.clone(),
                    seq: self.seq[i],
                    samples,
                });
            }
        }
        Some(out)
    }
}

impl Iterator for MatchSim {
    type Item = Vec<Batch>;
    fn next(&mut self) -> Option<Vec<Batch>> {
        self.next_batches()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideline_engine::Reading;

    fn short(seed: u64) -> MatchConfig {
        MatchConfig {
            seed,
            half_min: 1.0,
            break_min: 0.5,
            ..MatchConfig::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_match_and_another_seed_does_not() {
        let a: Vec<_> = MatchSim::new(short(1)).collect();
        let b: Vec<_> = MatchSim::new(short(1)).collect();
        let c: Vec<_> = MatchSim::new(short(2)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn the_start_time_shifts_the_match_and_changes_nothing_else() {
        let a: Vec<_> = MatchSim::new(short(1)).flatten().collect();
        let shift = 123_456_789;
        let mut later = short(1);
        later.start += shift;
        let b: Vec<_> = MatchSim::new(later).flatten().collect();
        assert_eq!(a.len(), b.len());
        for (x, mut y) in a.into_iter().zip(b) {
            for s in &mut y.samples {
                s.t -= shift;
            }
            assert_eq!(x, y);
        }
    }

    #[test]
    fn every_pod_streams_10_hz_position_100_hz_imu_and_1_hz_heart_rate() {
        let mut counts = std::collections::HashMap::<(String, &str), usize>::new();
        let mut sim = MatchSim::new(short(3));
        let mut seqs = std::collections::HashMap::<String, u64>::new();
        for batches in sim.by_ref() {
            for b in batches {
                let last = seqs.insert(b.device.clone(), b.seq).unwrap_or(0);
                assert_eq!(b.seq, last + 1, "sequence numbers count batches per device");
                for s in &b.samples {
                    let k = match s.reading {
                        Reading::Position(_) => "pos",
                        Reading::Imu(_) => "imu",
                        Reading::HeartRate(_) => "hr",
                    };
                    *counts.entry((b.device.clone(), k)).or_default() += 1;
                }
            }
        }
        assert_eq!(seqs.len(), 22);
        for dev in seqs.keys() {
            // Two minutes of play.
            assert_eq!(counts[&(dev.clone(), "pos")], 1200, "{dev}");
            assert_eq!(counts[&(dev.clone(), "imu")], 12_000, "{dev}");
            assert_eq!(counts[&(dev.clone(), "hr")], 120, "{dev}");
        }
    }

    #[test]
    fn the_half_time_break_is_a_gap_in_event_time() {
        let mut sim = MatchSim::new(short(4));
        let mut times = Vec::new();
        for batches in sim.by_ref() {
            times.extend(
                batches
                    .iter()
                    .filter(|b| b.device == "pod-h01")
                    .flat_map(|b| b.samples.iter().map(|s| s.t)),
            );
        }
        times.sort_unstable();
        let gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(gap >= 30_000_000, "{gap}");
    }
}

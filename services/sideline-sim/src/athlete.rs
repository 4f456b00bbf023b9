//! One simulated athlete: kinematics at 10 Hz, accelerometer at 100 Hz, heart rate at 1 Hz.
//!
//! Movement is a chain of bouts (stand, walk, jog, run, high-speed, sprint) chosen with
//! role-dependent weights. Speed follows the bout's target under a speed-dependent acceleration
//! limit (max acceleration falls with speed, Sonderegger 2016) and a deceleration limit; the
//! heading turns towards a moving target point around the role's anchor, more slowly at speed.
//! The accelerometer is a stride model: step frequency and impact amplitude grow with speed;
//! fatigue lowers the vertical share. Heart rate follows intensity with first-order lags.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use sideline_engine::sample::{Coord, Position, Reading};
use sideline_engine::{Micros, Sample};

use crate::roles::Role;

/// Pitch half-length and half-width, m.
pub const HALF_L: f64 = 52.5;
/// Pitch half-width, m.
pub const HALF_W: f64 = 34.0;
const G: f64 = 9.806_65;

/// Scripted behaviour of one athlete.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Script {
    /// From this match minute on, HSR and sprint bouts become more frequent…
    pub overload_from_min: Option<f64>,
    /// …by these factors (HSR, sprint).
    pub overload: (f64, f64),
    /// Sprint targets are capped at this fraction of Vmax (1.0 = no cap).
    pub sprint_cap: f64,
    /// Pod silent between these match minutes.
    pub dropout_min: Option<(f64, f64)>,
    /// Poor fixes (HDOP 8, 3 satellites) between these match minutes.
    pub poor_fix_min: Option<(f64, f64)>,
    /// Extra neuromuscular fatigue (0–1) reached by full time, growing from the overload.
    pub extra_fatigue: f64,
    /// On the pitch only between these match minutes (a substitute comes on, a starter goes
    /// off); the pod streams throughout: the bench, and a warm-up in the 10 minutes before a
    /// substitute comes on (jogging with strides above 5.5 m/s).
    pub on_pitch_min: Option<(f64, f64)>,
}

/// Bout weights while the ball is out of play (a judgement: walking back into shape, some
/// jogging, no high-speed running).
const STOPPAGE: [f64; 6] = [35.0, 52.0, 13.0, 0.0, 0.0, 0.0];
/// In play, run, HSR and sprint bouts are this much more likely than the role's weights say:
/// the weights were calibrated on a match without stoppages, and about 40 % of the time the
/// ball is now out (calibrated so the per-role totals stay in the published ranges).
const IN_PLAY_BOOST: f64 = 1.45;
/// Recovery between the efforts of a repeated high-intensity bout, s (a judgement inside
/// Carling et al. 2012's ≤ 20 s).
const REPEAT_RECOVERY_S: (f64, f64) = (4.0, 14.0);

/// Bout weights on the bench (stand, walk, jog, run, HSR, sprint): sitting and standing.
const BENCH: [f64; 6] = [70.0, 28.0, 2.0, 0.0, 0.0, 0.0];
/// Bout weights of a substitute's warm-up: jogging, runs and strides (a judgement).
const WARM_UP: [f64; 6] = [8.0, 22.0, 45.0, 15.0, 8.0, 0.0];

/// Kinematic and physiological state of one athlete.
#[derive(Debug, Clone)]
pub struct Athlete {
    role: Role,
    vmax: f64,
    hr_rest: f64,
    hr_max: f64,
    /// Mirror the pitch (away team attacks towards −x).
    side: f64,
    anchor: (f64, f64),
    script: Script,
    rng: ChaCha8Rng,
    x: f64,
    y: f64,
    heading: f64,
    v: f64,
    a: f64,
    target_v: f64,
    target_xy: (f64, f64),
    bout_left: f64,
    stride_phase: f64,
    /// 100-ms steps taken (heart rate every tenth: independent of the start time's phase).
    steps: u64,
    hr: f64,
    /// Device clock offset from the 10 Hz grid, µs (pods are not frame-aligned).
    offset: Micros,
    /// Speed spikes injected (the engine should reject them).
    pub injected_artefacts: u64,
    /// The ball is in play (set by the match before each step; stoppages change the bouts).
    pub in_play: bool,
    /// Efforts still to come in a repeated high-intensity bout, and whether the next bout is
    /// the recovery before one.
    repeat: (u8, bool),
    /// Kind of the current bout (0 stand … 5 sprint).
    kind: usize,
    /// Path length actually run while the pod streamed, m: the truth a filter is judged by.
    pub true_distance_m: f64,
}

/// Samples of one 100 ms step.
#[derive(Debug, Default)]
pub struct Step {
    /// The 10 Hz fix (None while the pod is silent).
    pub position: Option<Sample>,
    /// Ten accelerometer readings.
    pub imu: Vec<Sample>,
    /// A heart-rate reading on whole seconds.
    pub hr: Option<Sample>,
}

fn gauss(rng: &mut ChaCha8Rng, sd: f64) -> f64 {
    Normal::new(0.0, sd).map_or(0.0, |n| n.sample(rng))
}

impl Athlete {
    /// A new athlete at its anchor.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        role: Role,
        slot: usize,
        away: bool,
        hr_rest: f64,
        hr_max: f64,
        script: Script,
        rng: ChaCha8Rng,
        offset: Micros,
    ) -> Self {
        let side = if away { -1.0 } else { 1.0 };
        let (ax, ay) = role.anchor(slot);
        let anchor = (ax * HALF_L * side, ay * HALF_W * side);
        Athlete {
            role,
            vmax: role.vmax(),
            hr_rest,
            hr_max,
            side,
            anchor,
            script,
            rng,
            x: anchor.0,
            y: anchor.1,
            heading: 0.0,
            v: 0.0,
            a: 0.0,
            target_v: 0.0,
            target_xy: anchor,
            bout_left: 0.0,
            stride_phase: 0.0,
            steps: 0,
            hr: hr_rest + 30.0,
            offset,
            injected_artefacts: 0,
            in_play: true,
            repeat: (0, false),
            kind: 0,
            true_distance_m: 0.0,
        }
    }

    /// Reference max speed, m/s.
    pub fn vmax(&self) -> f64 {
        self.vmax
    }

    /// Override the max speed (from the athlete profile).
    pub fn with_vmax(mut self, vmax: f64) -> Self {
        self.vmax = vmax;
        self
    }

    fn fatigue(&self, minute: f64) -> f64 {
        // Mild general decline in the second half; scripted overload adds its own.
        let general = ((minute - 45.0) / 45.0).clamp(0.0, 1.0) * 0.35;
        let extra = match self.script.overload_from_min {
            Some(m0) => {
                ((minute - m0) / (90.0 - m0).max(1.0)).clamp(0.0, 1.0) * self.script.extra_fatigue
            }
            None => 0.0,
        };
        (general + extra).min(1.0)
    }

    /// Off the pitch at `minute` by the script: `Some(warming_up)`.
    fn off_pitch(&self, minute: f64) -> Option<bool> {
        let (on, off) = self.script.on_pitch_min?;
        (minute < on || minute >= off).then_some(minute < on && minute >= on - 10.0)
    }

    fn next_bout(&mut self, minute: f64) {
        let mut w = self.role.weights();
        let playing = self.off_pitch(minute).is_none();
        if let Some(warming_up) = self.off_pitch(minute) {
            // Beside the pitch, on the near touchline.
            w = if warming_up { WARM_UP } else { BENCH };
            let tx = self.side * gauss(&mut self.rng, 15.0).clamp(-30.0, 30.0);
            self.target_xy = (tx, -(HALF_W + 3.0));
        } else if !self.in_play {
            w = STOPPAGE;
        } else {
            for wi in &mut w[3..] {
                *wi *= IN_PLAY_BOOST;
            }
        }
        if !(playing && self.in_play) {
            self.repeat = (0, false);
        }
        // Second-half decline of high-intensity running (Mohr 2003: −35 to −45 % by 76–90′),
        // of which the rising share of stoppages gives about a third (in play 66 % → 56 %,
        // Linke 2018): 0.70 × 0.56 / 0.66 ≈ 0.6.
        let decline = 1.0 - 0.30 * ((minute - 45.0) / 45.0).clamp(0.0, 1.0);
        w[4] *= decline;
        w[5] *= decline;
        if self.script.overload_from_min.is_some_and(|m| minute >= m) {
            w[4] *= self.script.overload.0 / decline;
            w[5] *= self.script.overload.1 / decline;
        }
        // A repeated high-intensity bout: after a high-speed effort, sometimes a short
        // recovery and another effort, twice (Carling et al. 2012: 1.1 ± 1.1 bouts of ≥ 3
        // efforts per player per match, full backs the most).
        if playing
            && self.in_play
            && self.kind >= 4
            && self.repeat.0 == 0
            && self.rng.random::<f64>() < self.role.repeat_chance()
        {
            self.repeat = (2, true);
        }
        let forced = match self.repeat {
            (n, true) if n > 0 => {
                self.repeat.1 = false;
                Some(if self.rng.random::<bool>() { 1 } else { 2 })
            }
            (n, false) if n > 0 => {
                self.repeat = (n - 1, n > 1);
                Some(if self.rng.random::<f64>() * (w[4] + w[5]) < w[4] {
                    4
                } else {
                    5
                })
            }
            _ => None,
        };
        let total: f64 = w.iter().sum();
        let mut pick = self.rng.random::<f64>() * total;
        let mut kind = 0;
        for (i, wi) in w.iter().enumerate() {
            if pick < *wi {
                kind = i;
                break;
            }
            pick -= wi;
            kind = i;
        }
        let kind = forced.unwrap_or(kind);
        self.kind = kind;
        let cap = if self.script.sprint_cap > 0.0 {
            self.script.sprint_cap
        } else {
            0.97
        };
        let (vlo, vhi, dlo, dhi) = match kind {
            0 => (0.0, 0.3, 3.0, 12.0),
            1 => (0.9, 1.8, 6.0, 30.0),
            2 => (2.2, 3.8, 4.0, 14.0),
            3 => (4.2, 5.4, 2.0, 7.0),
            4 => (5.7, 6.9, 1.5, 4.0),
            _ => (7.4, (self.vmax * cap).max(7.5), 2.0, 4.5),
        };
        self.target_v = self.rng.random_range(vlo..=vhi);
        self.bout_left = self.rng.random_range(dlo..=dhi);
        if forced.is_some() && kind < 4 {
            self.bout_left = self
                .rng
                .random_range(REPEAT_RECOVERY_S.0..=REPEAT_RECOVERY_S.1);
        }
        if self.off_pitch(minute).is_none() && (kind >= 3 || self.rng.random::<f64>() < 0.3) {
            // A new place to go: around the anchor, pushed forward or back with play.
            let phase = if self.rng.random::<bool>() {
                12.0
            } else {
                -12.0
            };
            let tx = (self.anchor.0 + phase * self.side + gauss(&mut self.rng, 14.0))
                .clamp(-HALF_L + 1.0, HALF_L - 1.0);
            let ty =
                (self.anchor.1 + gauss(&mut self.rng, 10.0)).clamp(-HALF_W + 1.0, HALF_W - 1.0);
            self.target_xy = (tx, ty);
        }
    }

    /// The ball goes out of or back into play: the current bout ends either way (a stoppage
    /// stops the run; a restart starts a new one).
    pub fn set_in_play(&mut self, in_play: bool) {
        if in_play != self.in_play {
            self.in_play = in_play;
            self.bout_left = 0.0;
        }
    }

    /// True position on the pitch, m (x along, y across; no measurement noise).
    pub fn true_xy(&self) -> (f64, f64) {
        (self.x, self.y)
    }

    /// Advance 100 ms from step start `t0` (µs, on the grid) at match minute `minute`.
    pub fn step(&mut self, t0: Micros, minute: f64, out: &mut Step) {
        const DT: f64 = 0.1;
        let step_no = self.steps;
        self.steps += 1;
        out.position = None;
        out.imu.clear();
        out.hr = None;
        let silent = self
            .script
            .dropout_min
            .is_some_and(|(a, b)| minute >= a && minute < b);
        self.bout_left -= DT;
        if self.bout_left <= 0.0 {
            self.next_bout(minute);
        }
        // Speed: towards target under acceleration limits (m/s²).
        let a_max = 6.0 * (1.0 - self.v / (self.vmax * 1.03)).max(0.0) + 0.3;
        let a_cmd = 2.2 * (self.target_v - self.v);
        let v0 = self.v;
        self.a = a_cmd.clamp(-5.5, a_max);
        self.v = (self.v + self.a * DT).clamp(0.0, self.vmax);
        // Heading: turn towards the target point, slower at speed.
        let (dx, dy) = (self.target_xy.0 - self.x, self.target_xy.1 - self.y);
        if dx.hypot(dy) < 2.0 {
            self.target_xy = (
                (self.anchor.0 + gauss(&mut self.rng, 10.0)).clamp(-HALF_L + 1.0, HALF_L - 1.0),
                (self.anchor.1 + gauss(&mut self.rng, 8.0)).clamp(-HALF_W + 1.0, HALF_W - 1.0),
            );
        }
        let want = dy.atan2(dx);
        let mut diff = want - self.heading;
        while diff > std::f64::consts::PI {
            diff -= std::f64::consts::TAU;
        }
        while diff < -std::f64::consts::PI {
            diff += std::f64::consts::TAU;
        }
        let turn = (3.5 - 0.3 * self.v).max(0.8) * DT;
        self.heading += diff.clamp(-turn, turn);
        let vm = 0.5 * (v0 + self.v);
        let (x0, y0) = (self.x, self.y);
        self.x = (self.x + vm * self.heading.cos() * DT).clamp(-HALF_L, HALF_L);
        self.y = (self.y + vm * self.heading.sin() * DT).clamp(-HALF_W, HALF_W);

        let t = t0 + self.offset;
        let fatigue = self.fatigue(minute);
        // Heart rate: lag towards an intensity-driven target, +4 bpm drift over the match.
        let intensity = (vm / self.vmax).clamp(0.0, 1.0).powf(0.7);
        let hr_target = self.hr_rest
            + (self.hr_max - self.hr_rest) * (0.48 + 0.47 * intensity)
            + 4.0 * minute / 90.0;
        let tau = if hr_target > self.hr { 25.0 } else { 45.0 };
        self.hr += (hr_target - self.hr) * (DT / tau);
        if silent {
            return;
        }
        self.true_distance_m += (self.x - x0).hypot(self.y - y0);
        let poor = self
            .script
            .poor_fix_min
            .is_some_and(|(a, b)| minute >= a && minute < b);
        let mut speed = (self.v + gauss(&mut self.rng, 0.06)).max(0.0);
        if self.rng.random::<f64>() < 1.0 / 6000.0 {
            speed += 5.0; // a Doppler glitch
            self.injected_artefacts += 1;
        }
        let noise = if poor { 1.5 } else { 0.05 };
        out.position = Some(Sample {
            t,
            reading: Reading::Position(Position {
                coord: Coord::Xy {
                    x: self.x + gauss(&mut self.rng, noise),
                    y: self.y + gauss(&mut self.rng, noise),
                },
                speed: Some(speed as f32),
                satellites: Some(if poor { 3 } else { 11 }),
                hdop: Some(if poor { 8.0 } else { 0.9 }),
            }),
        });
        // Accelerometer, 10 readings at 100 Hz.
        let step_hz = if vm < 0.5 { 0.0 } else { 1.4 + 0.28 * vm };
        let amp = if vm < 0.5 { 0.05 } else { 0.3 + 0.45 * vm };
        let vertical = 1.0 - 0.15 * fatigue;
        let lateral = 1.0 + 0.3 * fatigue;
        for k in 0..10 {
            self.stride_phase = (self.stride_phase + std::f64::consts::TAU * step_hz * 0.01)
                % (2.0 * std::f64::consts::TAU);
            let s = self.stride_phase.sin().max(0.0);
            let az = 1.0 + amp * vertical * (s * s - 0.25) + gauss(&mut self.rng, 0.03);
            let ax = self.a / G
                + 0.3 * amp * (self.stride_phase + 0.6).sin()
                + gauss(&mut self.rng, 0.03);
            let ay =
                0.25 * amp * lateral * (0.5 * self.stride_phase).sin() + gauss(&mut self.rng, 0.03);
            out.imu
                .push(Sample::imu(t + k * 10_000, ax as f32, ay as f32, az as f32));
        }
        if step_no.is_multiple_of(10) {
            let bpm = (self.hr + gauss(&mut self.rng, 1.5)).clamp(40.0, 220.0);
            out.hr = Some(Sample::hr(t, bpm as f32));
        }
    }
}

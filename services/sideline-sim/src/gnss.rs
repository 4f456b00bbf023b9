//! Raw 10 Hz GNSS as a pod without Doppler speed would send it: latitude/longitude only, with
//! correlated position error, jitter and missing fixes — the input on which a position-only
//! speed filter is judged against the simulated truth.
//!
//! The error model, per horizontal axis, is the sum of
//!
//! - an Ornstein–Uhlenbeck (first-order Gauss–Markov) process: stationary single-frequency
//!   GPS position error is strongly autocorrelated and an OU process describes it better than
//!   white noise (Schumayer et al. 2020, Sensors 20:6050, doi 10.3390/s20216050). Its standard
//!   deviation, 0.62 m per axis, is the one whose horizontal error has the third quartile
//!   1.04 m measured for a 10 Hz sports receiver against a geodetic reference (Catapult
//!   Optimeye S5; Gløersen et al. 2018, Front Physiol 9:1425, doi 10.3389/fphys.2018.01425):
//!   a circular Gaussian error's magnitude is Rayleigh, Q3 = σ·√(2 ln 4) ≈ 1.665 σ. Its
//!   correlation time, 20 s, is a judgement (the paper's correlograms stay well above zero for
//!   tens of seconds; a shorter time is the harder case for a filter);
//! - white jitter of 0.03 m per axis (a judgement: the fix-to-fix scatter of a receiver whose
//!   position solution is already smoothed; it sets the walking-band over-read);
//!
//! and fixes go missing in runs (mean 3 fixes, 14 % of all: the share on the raw recording the
//! issue describes). Device speed is removed, HDOP and satellites are kept.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use sideline_engine::sample::{Coord, Reading};
use sideline_engine::{Micros, Sample};

/// The error model's parameters (see the module's sources).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GnssNoise {
    /// Standard deviation of the correlated error per axis, m.
    pub ou_sd_m: f64,
    /// Correlation time of the correlated error, s.
    pub ou_tau_s: f64,
    /// Standard deviation of the fix-to-fix jitter per axis, m.
    pub white_sd_m: f64,
    /// Share of fixes missing, 0–1.
    pub missing: f64,
    /// Mean length of a run of missing fixes.
    pub missing_run: f64,
    /// Latitude and longitude of the centre spot, degrees.
    pub origin: (f64, f64),
}

impl Default for GnssNoise {
    fn default() -> Self {
        GnssNoise {
            ou_sd_m: 0.62,
            ou_tau_s: 60.0,
            white_sd_m: 0.03,
            missing: 0.14,
            missing_run: 3.0,
            // Ullevaal Stadion, Oslo.
            origin: (59.948_8, 10.734_3),
        }
    }
}

/// WGS84 semi-major axis, m, and first eccentricity squared.
const WGS84_A: f64 = 6_378_137.0;
const WGS84_E2: f64 = 6.694_379_990_14e-3;

/// Per-pod error state.
#[derive(Debug, Clone)]
struct PodError {
    ou: (f64, f64),
    last_t: Option<Micros>,
    missing_left: u32,
}

/// Turns true positions into raw GNSS fixes, one error state per pod.
#[derive(Debug, Clone)]
pub struct Degrader {
    noise: GnssNoise,
    rng: ChaCha8Rng,
    pods: Vec<PodError>,
    /// Metres per degree of latitude and of longitude at the origin.
    m_per_deg: (f64, f64),
}

fn gauss(rng: &mut ChaCha8Rng, sd: f64) -> f64 {
    Normal::new(0.0, sd).map_or(0.0, |n| n.sample(rng))
}

impl Degrader {
    /// A degrader for `pods` pods; its own random stream, so the match itself is unchanged.
    pub fn new(noise: GnssNoise, pods: usize, seed: u64) -> Self {
        let (sl, cl) = noise.origin.0.to_radians().sin_cos();
        let w = 1.0 - WGS84_E2 * sl * sl;
        // Meridian and prime-vertical radii of curvature, m.
        let m = WGS84_A * (1.0 - WGS84_E2) / w.powf(1.5);
        let n = WGS84_A / w.sqrt();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e55_5f6e_6f69_7365);
        let pods = (0..pods)
            .map(|_| PodError {
                ou: (
                    gauss(&mut rng, noise.ou_sd_m),
                    gauss(&mut rng, noise.ou_sd_m),
                ),
                last_t: None,
                missing_left: 0,
            })
            .collect();
        Degrader {
            noise,
            rng,
            pods,
            m_per_deg: (m.to_radians(), (n * cl).to_radians()),
        }
    }

    /// The raw fix pod `pod` reports at `t` for the true position `(x, y)` (m east and north
    /// of the centre spot), or `None` when the fix is missing. `fix` is the pod's clean fix
    /// (its quality fields are kept).
    pub fn fix(
        &mut self,
        pod: usize,
        t: Micros,
        (x, y): (f64, f64),
        fix: Sample,
    ) -> Option<Sample> {
        let nz = self.noise;
        let e = &mut self.pods[pod];
        // The OU error advances by the time since this pod's last fix, missing or not.
        let dt = e.last_t.map_or(0.0, |lt| (t - lt) as f64 / 1e6);
        e.last_t = Some(t);
        let rho = (-dt / nz.ou_tau_s.max(1e-9)).exp();
        let step_sd = nz.ou_sd_m * (1.0 - rho * rho).max(0.0).sqrt();
        e.ou.0 = rho * e.ou.0 + gauss(&mut self.rng, step_sd);
        e.ou.1 = rho * e.ou.1 + gauss(&mut self.rng, step_sd);
        let e = &mut self.pods[pod];
        if e.missing_left > 0 {
            e.missing_left -= 1;
            return None;
        }
        // Runs of geometric length with mean `missing_run`, started so that the long-run
        // share of missing fixes is `missing`: p_start = missing / (run · (1 − missing)).
        let run = nz.missing_run.max(1.0);
        let p_start = nz.missing / (run * (1.0 - nz.missing).max(1e-9));
        if self.rng.random::<f64>() < p_start {
            let mut len = 1;
            while self.rng.random::<f64>() < 1.0 - 1.0 / run {
                len += 1;
            }
            self.pods[pod].missing_left = len - 1;
            return None;
        }
        let (ox, oy) = self.pods[pod].ou;
        let east = x + ox + gauss(&mut self.rng, nz.white_sd_m);
        let north = y + oy + gauss(&mut self.rng, nz.white_sd_m);
        let Reading::Position(mut p) = fix.reading else {
            return Some(fix);
        };
        p.coord = Coord::LatLon {
            lat: nz.origin.0 + north / self.m_per_deg.0,
            lon: nz.origin.1 + east / self.m_per_deg.1,
        };
        p.speed = None;
        Some(Sample {
            t: fix.t,
            reading: Reading::Position(p),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideline_engine::geo::LocalPlane;
    use sideline_engine::sample::Position;

    fn clean(t: Micros) -> Sample {
        Sample {
            t,
            reading: Reading::Position(Position {
                coord: Coord::Xy { x: 0.0, y: 0.0 },
                speed: Some(1.0),
                satellites: Some(11),
                hdop: Some(0.9),
            }),
        }
    }

    #[test]
    fn fixes_are_lat_lon_without_speed_and_14_percent_go_missing() {
        let mut d = Degrader::new(GnssNoise::default(), 1, 1);
        let n = 100_000;
        let mut kept = 0;
        for i in 0..n {
            let t = i * 100_000;
            if let Some(s) = d.fix(0, t, (0.0, 0.0), clean(t)) {
                kept += 1;
                let Reading::Position(p) = s.reading else {
                    panic!()
                };
                assert!(matches!(p.coord, Coord::LatLon { .. }));
                assert_eq!(p.speed, None);
                assert_eq!(p.hdop, Some(0.9));
            }
        }
        let missing = 1.0 - kept as f64 / n as f64;
        assert!((missing - 0.14).abs() < 0.01, "{missing}");
    }

    #[test]
    fn the_error_has_the_published_spread_and_is_correlated_over_seconds() {
        let noise = GnssNoise {
            missing: 0.0,
            ..GnssNoise::default()
        };
        let plane = LocalPlane::new(noise.origin.0, noise.origin.1);
        let mut d = Degrader::new(noise, 1, 2);
        let mut err = Vec::new();
        for i in 0..200_000 {
            let t = i * 100_000;
            let s = d.fix(0, t, (30.0, -20.0), clean(t)).unwrap();
            let Reading::Position(Position {
                coord: Coord::LatLon { lat, lon },
                ..
            }) = s.reading
            else {
                panic!()
            };
            let (e, n) = plane.project(lat, lon);
            err.push((e - 30.0, n + 20.0));
        }
        // Horizontal error's third quartile near 1.04 m (Gløersen 2018).
        let mut h: Vec<f64> = err.iter().map(|(e, n)| e.hypot(*n)).collect();
        h.sort_by(f64::total_cmp);
        let q3 = h[h.len() * 3 / 4];
        assert!((q3 - 1.04).abs() < 0.15, "Q3 {q3}");
        // Fix-to-fix steps are far smaller than the error itself: it is correlated.
        let step: f64 = err
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).powi(2))
            .sum::<f64>()
            / (err.len() - 1) as f64;
        assert!(step.sqrt() < 0.1, "{}", step.sqrt());
    }
}

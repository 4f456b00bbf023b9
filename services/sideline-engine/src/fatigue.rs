//! Within-session fatigue markers, descriptive (they are not validated injury predictors).
//!
//! - **Post-peak decrement** (Mohr et al. 2003; Bradley & Noakes 2013): HSR in the 5 min after
//!   the most intense rolling 5-min window, relative to the session's average 5-min HSR, minus 1.
//!   Population norm −8 to −12 %; the score flags worse than −20 %.
//! - **Block declines**: HSR, accelerations+decelerations, load per metre and vertical share of
//!   each 15-min block of on-field time against the player's own first block (Mohr 2003:
//!   −35 to −45 % HSR by the last 15 min; Akenhead 2013; Barrett 2016; Cormack 2013).
//! - **Neuromuscular markers**: load per metre and vertical share over the recent window against
//!   the first block (Barrett 2016: load per metre rises late in halves; Cormack 2013: vertical
//!   share falls when fatigued).
//!
//! Blocks run on on-field time, so substitutes are compared with their own first minutes. So
//! does the post-peak window: the 5 min after a peak are 5 min of on-field time, so a peak
//! just before half-time is compared with the first minutes of the second half, not with the
//! break. A peak in the first 20 on-field minutes is kept and its decrement given once 20 min
//! have been played (the session average means nothing earlier).
//!
//! Load per metre needs the accelerometer: a block counts as covered when ≥ 90 % of its
//! on-field seconds carry accelerometer load (a judgement: a pod whose IMU stream starts or
//! stops mid-block). An uncovered block has no load per metre, and the baseline for the
//! load-per-metre change is the first covered block, not the first block (a stream that
//! starts late used to give a first-block load of 0 and a change of +∞).

use serde::{Deserialize, Serialize};

use crate::params::FatigueParams;
use crate::window::{Bucket, Field, MICRO, MM, Sums};

/// Accumulated quantities of one block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockStats {
    /// On-field seconds.
    pub on_s: u32,
    dist_mm: u64,
    hsr_mm: u64,
    accdec: u64,
    load_u: u64,
    up_u: u64,
    d1_u: u64,
    /// On-field seconds with accelerometer load.
    #[serde(default)]
    imu_s: u32,
}

impl BlockStats {
    fn add(&mut self, b: &Bucket) {
        self.dist_mm += u64::from(b[Field::Distance as usize]);
        self.hsr_mm += u64::from(b[Field::Hsr as usize]);
        self.accdec += u64::from(b[Field::AccDec as usize]);
        self.load_u += u64::from(b[Field::Load as usize]);
        self.up_u += u64::from(b[Field::LoadUp as usize]);
        self.d1_u += u64::from(b[Field::Load1d as usize]);
        if b[Field::Load as usize] > 0 {
            self.imu_s += 1;
        }
    }

    /// Whether the accelerometer covered the block (≥ 90 % of its seconds).
    fn imu_covered(&self) -> bool {
        self.on_s > 0 && u64::from(self.imu_s) * 10 >= u64::from(self.on_s) * 9
    }

    fn summary(&self, index: u32, first: Option<&BlockStats>) -> BlockSummary {
        let hsr_m = self.hsr_mm as f64 / MM;
        BlockSummary {
            index,
            hsr_m,
            distance_m: self.dist_mm as f64 / MM,
            accdec: self.accdec as u32,
            load_per_m: if self.imu_covered() {
                load_per_m(self.load_u, self.dist_mm, 1.0)
            } else {
                None
            },
            vertical_share: vertical_share(self.up_u, self.d1_u),
            hsr_change: first.and_then(|f| change(hsr_m, f.hsr_mm as f64 / MM, 20.0)),
        }
    }
}

/// One completed block, for reports and the live view.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlockSummary {
    /// 0-based block number.
    pub index: u32,
    /// Distance, m.
    pub distance_m: f64,
    /// HSR distance, m.
    pub hsr_m: f64,
    /// Accelerations + decelerations.
    pub accdec: u32,
    /// Accelerometer load per metre, AU/m.
    pub load_per_m: Option<f64>,
    /// Vertical share of uniaxial load.
    pub vertical_share: Option<f64>,
    /// HSR vs the first block (fraction).
    pub hsr_change: Option<f64>,
}

/// The markers as the score and the outputs read them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FatigueMarkers {
    /// Highest rolling 5-min HSR so far, m.
    pub peak_window_hsr_m: f64,
    /// Post-peak decrement (fraction), once 5 min have passed since the peak.
    pub post_peak_decrement: Option<f64>,
    /// Last completed block's HSR vs the first block (fraction).
    pub last_block_hsr_change: Option<f64>,
    /// Recent load per metre vs the first block (fraction).
    pub load_per_m_change: Option<f64>,
    /// Recent vertical share vs the first block (fraction).
    pub vertical_share_change: Option<f64>,
    /// Completed blocks.
    pub blocks: Vec<BlockSummary>,
}

fn load_per_m(load_u: u64, dist_mm: u64, min_m: f64) -> Option<f64> {
    let m = dist_mm as f64 / MM;
    (m >= min_m).then(|| load_u as f64 / MICRO / m)
}

fn vertical_share(up_u: u64, d1_u: u64) -> Option<f64> {
    (d1_u > 0).then(|| up_u as f64 / d1_u as f64)
}

fn change(now: f64, base: f64, min_base: f64) -> Option<f64> {
    (base >= min_base).then(|| now / base - 1.0)
}

/// Most blocks kept (4 h of on-field time at 15-min blocks).
const MAX_BLOCKS: usize = 16;

/// Fatigue state of a player.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FatigueState {
    cur: BlockStats,
    first: Option<BlockStats>,
    blocks: Vec<BlockSummary>,
    completed: u32,
    on_field_s: u64,
    session_hsr_mm: u64,
    peak_mm: u64,
    /// The first block the accelerometer covered: the load-per-metre baseline.
    #[serde(default)]
    lpm_base: Option<BlockStats>,
    /// After the newest peak: on-field seconds and their HSR so far (`None`: the post-peak
    /// window is complete, or there is no peak).
    #[serde(default)]
    after_peak: Option<(u32, u64)>,
    /// A complete post-peak window's HSR, mm, waiting for enough on-field time.
    #[serde(default)]
    post_hsr_mm: Option<u64>,
    post_peak_decrement: Option<f64>,
}

impl FatigueState {
    /// Account one closed second with bucket `b`; `peak_sums` are the sums over the peak
    /// window ending at this second.
    pub fn on_second(&mut self, p: &FatigueParams, b: &Bucket, on_field: bool, peak_sums: &Sums) {
        self.session_hsr_mm += u64::from(b[Field::Hsr as usize]);
        if on_field {
            self.on_field_s += 1;
            self.cur.on_s += 1;
            self.cur.add(b);
            if self.cur.on_s >= p.block_s {
                let done = self.cur;
                self.cur = BlockStats::default();
                if self.first.is_none() {
                    self.first = Some(done);
                }
                if self.lpm_base.is_none() && done.imu_covered() {
                    self.lpm_base = Some(done);
                }
                let s = done.summary(self.completed, self.first.as_ref());
                if self.blocks.len() == MAX_BLOCKS {
                    self.blocks.remove(0);
                }
                self.blocks.push(s);
                self.completed += 1;
            }
        }
        let window_hsr = peak_sums[Field::Hsr as usize];
        if window_hsr > self.peak_mm {
            // A new peak ends at this second: its post-peak window starts after it.
            self.peak_mm = window_hsr;
            self.after_peak = Some((0, 0));
            self.post_hsr_mm = None;
        } else if on_field && let Some((n, hsr)) = self.after_peak.as_mut() {
            *n += 1;
            *hsr += u64::from(b[Field::Hsr as usize]);
            if *n >= p.peak_window_s {
                self.post_hsr_mm = Some(*hsr);
                self.after_peak = None;
            }
        }
        if let Some(post) = self.post_hsr_mm
            && self.on_field_s >= u64::from(p.post_peak_min_on_field_s)
        {
            // Session average HSR per peak window, over on-field time.
            let windows = self.on_field_s as f64 / f64::from(p.peak_window_s);
            let avg = self.session_hsr_mm as f64 / MM / windows;
            if avg >= 10.0 {
                self.post_peak_decrement = Some(post as f64 / MM / avg - 1.0);
                self.post_hsr_mm = None;
            }
        }
    }

    /// Current markers; `nm_sums` are the sums over the recent neuromuscular window.
    pub fn markers(&self, p: &FatigueParams, nm_sums: &Sums) -> FatigueMarkers {
        let min_m = p.nm_min_distance_m;
        let first = self.first.as_ref();
        let recent_lpm = load_per_m(
            nm_sums[Field::Load as usize],
            nm_sums[Field::Distance as usize],
            min_m,
        );
        let recent_vs = vertical_share(
            nm_sums[Field::LoadUp as usize],
            nm_sums[Field::Load1d as usize],
        );
        let first_lpm = self
            .lpm_base
            .as_ref()
            .and_then(|f| load_per_m(f.load_u, f.dist_mm, min_m))
            .filter(|l| *l > 0.0);
        let first_vs = first.and_then(|f| vertical_share(f.up_u, f.d1_u));
        FatigueMarkers {
            peak_window_hsr_m: self.peak_mm as f64 / MM,
            post_peak_decrement: self.post_peak_decrement,
            last_block_hsr_change: if self.completed >= 2 {
                self.blocks.last().and_then(|b| b.hsr_change)
            } else {
                None
            },
            load_per_m_change: recent_lpm.zip(first_lpm).map(|(r, f)| r / f - 1.0),
            vertical_share_change: recent_vs
                .zip(first_vs)
                .and_then(|(r, f)| change(r, f, 1e-9)),
            blocks: self.blocks.clone(),
        }
    }

    /// On-field seconds so far.
    pub fn on_field_s(&self) -> u64 {
        self.on_field_s
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<BlockSummary>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{FIELDS, IncrementalWindows, WindowStore};

    fn bucket(hsr_m: f64) -> Bucket {
        let mut b = [0u32; FIELDS];
        b[Field::Distance as usize] = 5_000;
        b[Field::Hsr as usize] = (hsr_m * MM) as u32;
        b
    }

    #[test]
    fn post_peak_decrement_compares_the_five_minutes_after_the_peak_with_the_average() {
        let p = FatigueParams::default();
        let mut f = FatigueState::default();
        let mut w = IncrementalWindows::with_lengths(&[300]);
        // 20 min: 1 m/s HSR, then 5 min at 3 m/s (the peak), then 5 min at 0.5 m/s.
        // (A peak in the first 20 on-field minutes is not evaluated: see the next test.)
        let rates: Vec<f64> = std::iter::repeat_n(1.0, 1200)
            .chain(std::iter::repeat_n(3.0, 300))
            .chain(std::iter::repeat_n(0.5, 300))
            .collect();
        for r in &rates {
            let b = bucket(*r);
            w.push(&b);
            f.on_second(&p, &b, true, &w.sums(0));
        }
        // Session HSR = 1200 + 900 + 150 = 2250 m over 1800 s → 375 m per 5 min.
        // Post-peak window = 150 m → 150/375 − 1 = −0.6.
        let d = f.markers(&p, &w.sums(0)).post_peak_decrement.unwrap();
        assert!((d + 0.6).abs() < 1e-9, "{d}");
    }

    #[test]
    fn no_post_peak_decrement_is_claimed_in_the_first_twenty_minutes() {
        let p = FatigueParams::default();
        let mut f = FatigueState::default();
        let mut w = IncrementalWindows::with_lengths(&[300]);
        let rates = std::iter::repeat_n(3.0, 300).chain(std::iter::repeat_n(0.0, 600));
        for r in rates {
            let b = bucket(r);
            w.push(&b);
            f.on_second(&p, &b, true, &w.sums(0));
        }
        assert_eq!(f.markers(&p, &w.sums(0)).post_peak_decrement, None);
    }

    /// Feed (HSR m/s, seconds, on field) runs; the markers at the end.
    fn play(runs: &[(f64, usize, bool)]) -> FatigueMarkers {
        let p = FatigueParams::default();
        let mut f = FatigueState::default();
        let mut w = IncrementalWindows::with_lengths(&[300]);
        for &(r, n, on) in runs {
            for _ in 0..n {
                let b = if on { bucket(r) } else { [0; FIELDS] };
                w.push(&b);
                f.on_second(&p, &b, on, &w.sums(0));
            }
        }
        f.markers(&p, &w.sums(0))
    }

    #[test]
    fn a_peak_in_the_first_twenty_minutes_gets_its_decrement_once_twenty_are_played() {
        // 5 min at 3 m/s (the peak), 5 min at 0.5, then 15 min at 1 m/s.
        let m = play(&[(3.0, 300, true), (0.5, 300, true), (1.0, 900, true)]);
        // Evaluated at 20 min: session HSR then 900 + 150 + 600 = 1650 m over 1200 s → 412.5 m
        // per 5 min; the post-peak window is 150 m → 150/412.5 − 1.
        let d = m.post_peak_decrement.expect("evaluated at 20 min");
        assert!((d - (150.0 / 412.5 - 1.0)).abs() < 1e-9, "{d}");
    }

    #[test]
    fn the_post_peak_window_is_on_field_time_so_half_time_is_not_in_it() {
        // 20 min at 1 m/s, the peak (5 min at 3 m/s) just before the break, 15 min off the
        // field, then 5 min at 2 m/s and 5 more at 1 m/s.
        let m = play(&[
            (1.0, 1200, true),
            (3.0, 300, true),
            (0.0, 900, false),
            (2.0, 300, true),
            (1.0, 300, true),
        ]);
        // The post-peak window is the first 5 min after the break: 600 m. Session HSR when it
        // completes: 1200 + 900 + 600 = 2700 m over 1800 on-field s → 450 m per 5 min.
        let d = m.post_peak_decrement.unwrap();
        assert!((d - (600.0 / 450.0 - 1.0)).abs() < 1e-9, "{d}");
        // (Clock time would have compared the peak with the empty break: −100 %.)
        assert!(d > 0.0);
    }

    #[test]
    fn an_accelerometer_that_starts_late_gives_no_infinite_load_per_metre_change() {
        let p = FatigueParams::default();
        let mut f = FatigueState::default();
        let mut w = IncrementalWindows::with_lengths(&[300]);
        // 20 min without accelerometer, then 40 min with a steady 2 AU per second at 5 m/s.
        for sec in 0..3600 {
            let mut b = bucket(0.0);
            if sec >= 1200 {
                b[Field::Load as usize] = 2_000_000;
                b[Field::Load1d as usize] = 3_000_000;
                b[Field::LoadUp as usize] = 1_000_000;
            }
            w.push(&b);
            f.on_second(&p, &b, true, &w.sums(0));
        }
        let m = f.markers(&p, &w.sums(0));
        // Blocks 0 (no IMU) and 1 (a third covered) have no load per metre; block 2 is the
        // baseline, and the recent load per metre equals it.
        assert_eq!(m.blocks[0].load_per_m, None);
        assert_eq!(m.blocks[1].load_per_m, None);
        assert!((m.blocks[2].load_per_m.unwrap() - 0.4).abs() < 1e-9);
        let c = m
            .load_per_m_change
            .expect("compared with the first covered block");
        assert!(c.abs() < 1e-9, "{c}");
    }

    #[test]
    fn blocks_run_on_on_field_time_and_compare_with_the_first() {
        let p = FatigueParams::default();
        let mut f = FatigueState::default();
        let mut w = IncrementalWindows::with_lengths(&[300]);
        for (r, n, on) in [
            (1.0, 900, true),
            (0.0, 600, false),
            (1.0, 900, true),
            (0.5, 900, true),
        ] {
            for _ in 0..n {
                let b = if on { bucket(r) } else { [0; FIELDS] };
                w.push(&b);
                f.on_second(&p, &b, on, &w.sums(0));
            }
        }
        let m = f.markers(&p, &w.sums(0));
        assert_eq!(m.blocks.len(), 3);
        assert_eq!(m.blocks[1].hsr_change, Some(0.0));
        assert!((m.last_block_hsr_change.unwrap() + 0.5).abs() < 1e-9);
    }
}

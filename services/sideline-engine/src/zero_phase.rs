//! Post-session, zero-phase speed filtering: the offline counterpart of the live filter in
//! [`crate::speed`], for `sideline reprocess`. With the whole session at hand there is no need
//! to be causal: each device's own speeds are first cleared of artefacts (above
//! `speed.max_speed_mps`: replaced by the interpolation of the valid neighbours), then smoothed
//! forwards and backwards with the live filter's time constant `speed.ema_tau_s`, so peaks and
//! threshold crossings stay where they happened (no lag; a forward-backward first-order
//! filter, the `filtfilt` idea of Gustafsson 1996). The caller then turns the engine's own
//! causal smoothing off (`ema_tau_s = 0`) so speeds are not smoothed twice.

use std::collections::BTreeMap;

use crate::params::SpeedParams;
use crate::sample::{Batch, Reading};

/// Zero-phase filtering of every device's own speeds across `batches` (see the module docs).
/// Positions without a device speed are left to the engine.
pub fn filter_batches(batches: &mut [Batch], sp: &SpeedParams) {
    let mut by_device: BTreeMap<String, Vec<(i64, usize, usize)>> = BTreeMap::new();
    for (bi, b) in batches.iter().enumerate() {
        for (si, s) in b.samples.iter().enumerate() {
            if let Reading::Position(p) = &s.reading
                && p.speed.is_some()
            {
                by_device
                    .entry(b.device.clone())
                    .or_default()
                    .push((s.t, bi, si));
            }
        }
    }
    for (_, mut idx) in by_device {
        idx.sort_unstable();
        let speed = |batches: &[Batch], (_, b, s): (i64, usize, usize)| match batches[b].samples[s]
            .reading
        {
            Reading::Position(p) => p.speed.map_or(0.0, f64::from),
            _ => 0.0,
        };
        let mut v: Vec<f64> = idx.iter().map(|&i| speed(batches, i)).collect();
        let t: Vec<i64> = idx.iter().map(|i| i.0).collect();
        despike(&mut v, sp.max_speed_mps);
        if sp.ema_tau_s > 0.0 {
            ema(&mut v, &t, sp.ema_tau_s, false);
            ema(&mut v, &t, sp.ema_tau_s, true);
        }
        for (k, &(_, b, s)) in idx.iter().enumerate() {
            if let Reading::Position(p) = &mut batches[b].samples[s].reading {
                p.speed = Some(v[k] as f32);
            }
        }
    }
}

/// Replace impossible speeds by the interpolation of their valid neighbours.
pub fn despike(v: &mut [f64], max: f64) {
    let ok: Vec<usize> = (0..v.len())
        .filter(|&i| v[i].is_finite() && v[i] <= max)
        .collect();
    if ok.is_empty() {
        return;
    }
    let mut j = 0;
    for i in 0..v.len() {
        while j + 1 < ok.len() && ok[j + 1] <= i {
            j += 1;
        }
        if ok.binary_search(&i).is_ok() {
            continue;
        }
        let (a, b) = if ok[j] > i {
            (ok[j], ok[j])
        } else {
            (ok[j], ok.get(j + 1).copied().unwrap_or(ok[j]))
        };
        v[i] = if a == b {
            v[a]
        } else {
            v[a] + (v[b] - v[a]) * (i - a) as f64 / (b - a) as f64
        };
    }
}

/// First-order exponential smoothing over time (α = 1 − e^(−Δt/τ)), forwards or backwards; a
/// gap of more than 1 s restarts it.
pub fn ema(v: &mut [f64], t: &[i64], tau_s: f64, backwards: bool) {
    let n = v.len();
    let order: Vec<usize> = if backwards {
        (0..n).rev().collect()
    } else {
        (0..n).collect()
    };
    let mut prev: Option<(i64, f64)> = None;
    for i in order {
        let y = match prev {
            Some((tp, yp)) if (t[i] - tp).abs() <= 1_000_000 => {
                let dt = (t[i] - tp).abs() as f64 * 1e-6;
                let a = 1.0 - (-dt / tau_s).exp();
                yp + a * (v[i] - yp)
            }
            _ => v[i],
        };
        v[i] = y;
        prev = Some((t[i], y));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_phase_smoothing_has_no_lag_and_spikes_go() {
        // A symmetric bump: the forward-backward filter keeps its peak where it was.
        let t: Vec<i64> = (0..41).map(|i| i * 100_000).collect();
        let mut v: Vec<f64> = (0..41)
            .map(|i| 8.0 - (i as f64 - 20.0).abs() * 0.3)
            .collect();
        v[5] = 40.0;
        despike(&mut v, 12.5);
        assert!((v[5] - (v[4] + v[6]) / 2.0).abs() < 1e-9);
        let mut once = v.clone();
        ema(&mut once, &t, 0.3, false);
        ema(&mut v, &t, 0.3, false);
        ema(&mut v, &t, 0.3, true);
        let peak = |x: &[f64]| {
            (0..x.len())
                .max_by(|a, b| x[*a].total_cmp(&x[*b]))
                .unwrap_or(0)
        };
        assert!(peak(&once) > 20, "a causal filter lags");
        assert_eq!(peak(&v), 20);
    }
}

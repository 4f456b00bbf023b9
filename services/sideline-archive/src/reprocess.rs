//! `sideline reprocess`: a stored session re-run through the same engine, with another
//! parameter set if wanted, written beside the live figures as `source = 'reconciled'` metric
//! rows (with their parameter version), and the differences per player.
//!
//! The session's samples are read back from the archive in the order Kafka delivered them
//! (partition, offset, index in the batch), regrouped into the original device batches, and fed
//! to the engine in event-time order, ticking once per second of event time as the live
//! processor does. With the live parameter set and the same athlete profiles and baselines the
//! reconciled totals equal the live ones (a test holds it to that).
//!
//! `zero_phase`: post-session speed filtering. Each player's device speeds are first cleared of
//! artefacts (above `max_speed_mps`: replaced by the neighbours' interpolation), then smoothed
//! forwards and backwards with the live filter's time constant (no lag: peaks and threshold
//! crossings stay where they happened), and the engine's own causal smoothing is turned off.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType, UInt32Type,
    UInt64Type,
};
use sideline_engine::sample::{Coord, Imu, Position};
use sideline_engine::{
    AthleteProfile, Baseline, Batch, Engine, Params, PlayerMetrics, Reading, Sample,
};

use crate::metric_rows::{MetricRows, Source};
use crate::query::{self, QueryError};
use crate::schema::{Origin, PartKey, Rows, Table};
use crate::store::{ArchiveError, Part, Store};

/// Why reprocessing failed.
#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    /// Reading the archive failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Writing the reconciled rows failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Nothing archived for that session.
    #[error("no samples archived for session {0:?}")]
    NoSession(String),
}

/// A session's samples as the original device batches, with each device's wearer.
#[derive(Debug, Default)]
pub struct StoredSession {
    /// Batches in delivery order.
    pub batches: Vec<Batch>,
    /// Device → (player, team).
    pub wearers: BTreeMap<String, (String, String)>,
}

fn esc(s: &str) -> String {
    s.replace('\'', "''")
}

/// Read a session's samples back (all teams, or one).
pub async fn load(
    root: &Path,
    session: &str,
    team: Option<&str>,
) -> Result<StoredSession, ReprocessError> {
    let ctx = query::context(root).await?;
    let team_filter = team.map_or(String::new(), |t| format!(" AND team = '{}'", esc(t)));
    let sql = format!(
        "SELECT kafka_partition, kafka_offset, device, player, team, seq, t, stream, x_m, y_m, \
         lat_deg, lon_deg, speed_mps, satellites, hdop, ax_g, ay_g, az_g, hr_bpm \
         FROM samples WHERE session = '{}'{team_filter} \
         ORDER BY kafka_partition, kafka_offset, idx",
        esc(session)
    );
    let batches = query::run(&ctx, &sql).await?;
    let mut s = StoredSession::default();
    let mut current: Option<((i32, i64), Batch)> = None;
    for rb in &batches {
        rows_into(rb, session, &mut s, &mut current);
    }
    if let Some((_, b)) = current {
        s.batches.push(b);
    }
    if s.batches.is_empty() {
        return Err(ReprocessError::NoSession(session.to_string()));
    }
    Ok(s)
}

fn rows_into(
    rb: &RecordBatch,
    session: &str,
    s: &mut StoredSession,
    current: &mut Option<((i32, i64), Batch)>,
) {
    let c = |i: usize| rb.column(i);
    let part = c(0).as_primitive::<Int32Type>();
    let off = c(1).as_primitive::<Int64Type>();
    let (device, player, team) = (
        c(2).as_string::<i32>(),
        c(3).as_string::<i32>(),
        c(4).as_string::<i32>(),
    );
    let seq = c(5).as_primitive::<UInt64Type>();
    let t = c(6).as_primitive::<TimestampMicrosecondType>();
    let stream = c(7).as_string::<i32>();
    let f64at = |i: usize, r: usize| {
        let a = c(i).as_primitive::<Float64Type>();
        (!a.is_null(r)).then(|| a.value(r))
    };
    let f32at = |i: usize, r: usize| {
        let a = c(i).as_primitive::<Float32Type>();
        (!a.is_null(r)).then(|| a.value(r))
    };
    let sats = c(13).as_primitive::<UInt32Type>();
    for r in 0..rb.num_rows() {
        let key = (part.value(r), off.value(r));
        if current.as_ref().is_none_or(|(k, _)| *k != key) {
            if let Some((_, b)) = current.take() {
                s.batches.push(b);
            }
            *current = Some((
                key,
                Batch {
                    device: device.value(r).to_string(),
                    team: team.value(r).to_string(),
                    session: session.to_string(),
                    seq: seq.value(r),
                    samples: Vec::new(),
                },
            ));
            s.wearers.insert(
                device.value(r).to_string(),
                (player.value(r).to_string(), team.value(r).to_string()),
            );
        }
        let reading = match stream.value(r) {
            "position" => {
                let coord = match (f64at(8, r), f64at(9, r), f64at(10, r), f64at(11, r)) {
                    (Some(x), Some(y), _, _) => Coord::Xy { x, y },
                    (_, _, Some(lat), Some(lon)) => Coord::LatLon { lat, lon },
                    _ => continue,
                };
                Reading::Position(Position {
                    coord,
                    speed: f32at(12, r),
                    satellites: (!sats.is_null(r)).then(|| sats.value(r).min(255) as u8),
                    hdop: f32at(14, r),
                })
            }
            "imu" => Reading::Imu(Imu {
                ax: f32at(15, r).unwrap_or(0.0),
                ay: f32at(16, r).unwrap_or(0.0),
                az: f32at(17, r).unwrap_or(0.0),
            }),
            _ => match f32at(18, r) {
                Some(bpm) => Reading::HeartRate(bpm),
                None => continue,
            },
        };
        if let Some((_, b)) = current.as_mut() {
            b.samples.push(Sample {
                t: t.value(r),
                reading,
            });
        }
    }
}

/// What to re-run with.
#[derive(Debug, Clone)]
pub struct Rerun {
    /// Parameter set.
    pub params: Params,
    /// Athlete profiles.
    pub profiles: Vec<AthleteProfile>,
    /// Baselines by player.
    pub baselines: BTreeMap<String, Baseline>,
    /// Post-session zero-phase speed filtering.
    pub zero_phase: bool,
}

/// Run the stored session through the engine; every per-second snapshot, in order.
pub fn run(session: &StoredSession, how: &Rerun) -> Vec<PlayerMetrics> {
    let mut params = how.params.clone();
    let mut batches: Vec<Batch> = session.batches.clone();
    if how.zero_phase {
        zero_phase(&mut batches, &params);
        params.speed.ema_tau_s = 0.0;
    }
    let mut e: Engine = Engine::new(params, false);
    for (device, (player, team)) in &session.wearers {
        e.assign(device, player, team);
    }
    for p in &how.profiles {
        e.set_profile(p.clone());
    }
    for (player, b) in &how.baselines {
        e.set_baseline(player, b.clone());
    }
    // Event-time order, as the pods sent them; ticks once per second of event time.
    batches.sort_by_key(|b| b.samples.iter().map(|s| s.t).min().unwrap_or(i64::MAX));
    let mut out = sideline_engine::Outputs::default();
    let mut next_tick = i64::MIN;
    for b in &batches {
        let t = b.samples.iter().map(|s| s.t).min().unwrap_or(0);
        if t >= next_tick {
            e.tick(t, &mut out);
            next_tick = t - t.rem_euclid(1_000_000) + 1_000_000;
        }
        e.ingest_batch(b, &mut out);
    }
    e.finish(&mut out);
    out.metrics
}

/// Zero-phase speed filtering of every player's device speeds (see the module docs).
fn zero_phase(batches: &mut [Batch], params: &Params) {
    let sp = &params.speed;
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
fn despike(v: &mut [f64], max: f64) {
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
fn ema(v: &mut [f64], t: &[i64], tau_s: f64, backwards: bool) {
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

/// Write the reconciled snapshots beside the live ones (`source = 'reconciled'`). Returns the
/// rows written.
pub fn write(root: &Path, snapshots: &[PlayerMetrics]) -> Result<usize, ReprocessError> {
    write_metrics(root, snapshots, Source::Reconciled)
}

/// Commit snapshots straight into the `metrics` table (no Kafka offsets: reprocessing, and
/// the synthetic history). Returns the rows written.
pub fn write_metrics(
    root: &Path,
    snapshots: &[PlayerMetrics],
    source: Source,
) -> Result<usize, ReprocessError> {
    let mut store = Store::open(root)?;
    let mut by_part: BTreeMap<PartKey, MetricRows> = BTreeMap::new();
    for m in snapshots {
        let key = PartKey::new(&m.team, &m.session, m.t);
        by_part.entry(key).or_default().push(
            &sideline_wire::convert::metrics(m),
            source,
            Origin {
                partition: -1,
                offset: -1,
            },
        );
    }
    let mut parts = Vec::new();
    for (key, rows) in by_part {
        let mut r = Rows::Metrics(Box::new(rows));
        parts.push(Part {
            table: Table::Metrics,
            key,
            batch: r.finish().map_err(ArchiveError::from)?,
        });
    }
    store.commit(&parts, &[])?;
    Ok(snapshots.len())
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

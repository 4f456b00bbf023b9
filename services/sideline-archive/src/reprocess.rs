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
//! `zero_phase`: post-session speed filtering with the engine's
//! [`sideline_engine::zero_phase`] (artefacts interpolated, then the live filter's time
//! constant forwards and backwards: no lag), the engine's own causal smoothing turned off.

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
        sideline_engine::zero_phase::filter_batches(&mut batches, &params.speed);
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

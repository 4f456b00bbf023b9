//! The archive's tables and their Arrow schemas, and the builders that turn wire records into
//! rows. Units are in the column names (`_m` metres, `_mps` m/s, `_g` g, `_s` seconds,
//! `_min` minutes); times are `Timestamp(µs, UTC)`.
//!
//! Every table is partitioned Hive-style by `team`, `date` (UTC date of the event time) and
//! `session`; those three columns live in the directory names, not in the files. Every row
//! carries the Kafka partition and offset it came from (`kafka_partition`, `kafka_offset`),
//! which makes loss and duplication checkable in SQL.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Builder, Float64Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sideline_engine::risk::TermId;
use sideline_wire::pb;

/// The archived tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row per sample (position, IMU or heart rate).
    Samples,
    /// One row per player per second of event time (`PlayerMetrics`).
    Metrics,
    /// One row per alert lifecycle event.
    Alerts,
    /// One row per acknowledgement (who, when).
    Acks,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 4] = [Table::Samples, Table::Metrics, Table::Alerts, Table::Acks];

    /// Directory and SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Samples => "samples",
            Table::Metrics => "metrics",
            Table::Alerts => "alerts",
            Table::Acks => "acks",
        }
    }

    /// Memory one buffered row takes in its column builders, bytes, rounded up (what bounds
    /// the buffer: `archive.max_buffer_mb`). A metrics row has ~150 columns, a sample ~20;
    /// checked against the builders' real size in a test.
    pub fn row_bytes(self) -> usize {
        match self {
            Table::Samples => 160,
            Table::Metrics => 1_200,
            Table::Alerts => 2_000,
            Table::Acks => 300,
        }
    }

    /// The file schema (without the partition columns).
    pub fn schema(self) -> SchemaRef {
        let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let s = DataType::Utf8;
        let (f64t, f32t, u32t, u64t) = (
            DataType::Float64,
            DataType::Float32,
            DataType::UInt32,
            DataType::UInt64,
        );
        let mut v = match self {
            Table::Samples => vec![
                f("player", s.clone(), false),
                f("device", s.clone(), false),
                f("seq", u64t.clone(), false),
                f("idx", u32t.clone(), false),
                f("t", ts(), false),
                f("stream", s.clone(), false),
                f("x_m", f64t.clone(), true),
                f("y_m", f64t.clone(), true),
                f("lat_deg", f64t.clone(), true),
                f("lon_deg", f64t.clone(), true),
                f("speed_mps", f32t.clone(), true),
                f("satellites", u32t.clone(), true),
                f("hdop", f32t.clone(), true),
                f("ax_g", f32t.clone(), true),
                f("ay_g", f32t.clone(), true),
                f("az_g", f32t.clone(), true),
                f("hr_bpm", f32t.clone(), true),
                f("received_at", ts(), true),
            ],
            Table::Metrics => {
                let mut v = vec![
                    f("player", s.clone(), false),
                    f("t", ts(), false),
                    f("params_version", s.clone(), false),
                    f("source", s.clone(), false),
                    f("signal", s.clone(), false),
                ];
                for n in METRIC_F64 {
                    v.push(f(n, f64t.clone(), false));
                }
                for n in METRIC_U32 {
                    v.push(f(n, u32t.clone(), false));
                }
                for n in METRIC_OPT_F64 {
                    v.push(f(n, f64t.clone(), true));
                }
                for l in WINDOWS_MIN {
                    for w in WINDOW_F64 {
                        v.push(f(&format!("w{l}_{w}"), f64t.clone(), true));
                    }
                }
                v.push(f("risk_band", s.clone(), false));
                // The terms as JSON text: files written before 2026-12-07 only (null since;
                // the typed columns below instead).
                v.push(f("risk_terms", s.clone(), true));
                for n in METRIC_U64 {
                    v.push(f(n, u64t.clone(), false));
                }
                // Each risk term typed (null in files written before 2026-12-07, and where the
                // snapshot has no such term).
                for id in TermId::ALL {
                    let id = id.as_str();
                    v.push(f(&format!("{id}_state"), s.clone(), true));
                    for part in TERM_F64 {
                        v.push(f(&format!("{id}_{part}"), f64t.clone(), true));
                    }
                }
                v
            }
            Table::Alerts => vec![
                f("id", s.clone(), false),
                f("player", s.clone(), false),
                f("t", ts(), false),
                f("since", ts(), false),
                f("kind", s.clone(), false),
                f("severity", s.clone(), false),
                f("state", s.clone(), false),
                f("resolution", s.clone(), true),
                f("value", f64t.clone(), false),
                f("threshold", f64t.clone(), false),
                f("band", s.clone(), false),
                f("summary", s.clone(), false),
                f("params_version", s.clone(), false),
                f("terms", s.clone(), false),
                f("to_amber_min", f64t.clone(), true),
                f("to_red_min", f64t.clone(), true),
            ],
            Table::Acks => vec![
                f("alert_id", s.clone(), false),
                f("player", s.clone(), false),
                f("kind", s.clone(), false),
                f("severity", s.clone(), false),
                f("by", s.clone(), false),
                f("at", ts(), false),
                f("since", ts(), false),
            ],
        };
        v.push(f("kafka_partition", DataType::Int32, false));
        v.push(f("kafka_offset", DataType::Int64, false));
        Arc::new(Schema::new(v))
    }
}

/// The `f64` parts of each risk term's columns (`<term>_points`, …), after `<term>_state`
/// (`fired`, `clear` or `unknown`).
pub const TERM_F64: [&str; 3] = ["points", "value", "threshold"];

/// The schema metadata key naming a metrics file's layout, and the compact layout's value:
/// floats rounded ([`crate::resolution`]), terms typed, rows sorted by player and time, and
/// BYTE_STREAM_SPLIT for floats. Files without it were written before 2026-12-07.
pub const LAYOUT_KEY: &str = "sideline.metrics.layout";
/// See [`LAYOUT_KEY`].
pub const LAYOUT_COMPACT: &str = "compact-1";

/// `f64` metric columns, always present.
pub(crate) const METRIC_F64: [&str; 21] = [
    "minutes",
    "distance_m",
    "walk_m",
    "jog_m",
    "run_m",
    "moderate_m",
    "hsr_m",
    "v24_m",
    "sprint_m",
    "hmld_m",
    "max_speed_mps",
    "sprint_effort_m",
    "vmax_ref_mps",
    "load",
    "load_x",
    "load_y",
    "load_z",
    "hr_high_s",
    "trimp_edwards",
    "trimp_banister",
    "risk_score",
];
/// Count metric columns.
const METRIC_U32: [&str; 9] = [
    "sprints",
    "hs_efforts",
    "vmax85",
    "vmax90",
    "vmax95",
    "accelerations",
    "decelerations",
    "accelerations_moderate",
    "decelerations_moderate",
];
/// Optional `f64` metric columns (null: not known yet).
/// Nullable `f64` metric columns. Columns added later go at the end: files written before
/// them read as null there (the table's schema is fixed; DataFusion fills what a file lacks).
pub(crate) const METRIC_OPT_F64: [&str; 16] = [
    "load_per_min",
    "load_per_m",
    "vertical_share",
    "hr_bpm",
    "hr_max_bpm",
    "peak_window_hsr_m",
    "post_peak_decrement",
    "last_block_hsr_change",
    "load_per_m_change",
    "vertical_share_change",
    "to_amber_min",
    "to_red_min",
    // The score's completeness (share of its possible points known); null before 2026-12.
    "risk_completeness",
    // Minutes and metres off the pitch by the lineup, and repeated high-intensity bouts;
    // null before 2026-12-07.
    "off_pitch_min",
    "off_pitch_m",
    "rhi_bouts",
];
/// Data-quality counters.
const METRIC_U64: [&str; 5] = ["artefacts", "gaps", "late", "duplicates", "forced_releases"];
/// Rolling windows archived, minutes (others the parameter set may add are not).
pub const WINDOWS_MIN: [u32; 4] = [1, 3, 5, 10];
/// Per-window columns (`w<min>_<name>`).
pub(crate) const WINDOW_F64: [&str; 5] = [
    "distance_m",
    "hsr_m",
    "sprint_m",
    "peak_hsr_m",
    "peak_sprint_m",
];

/// Where a row came from in Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// The partition directory of a row: team, UTC date, session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartKey {
    /// Team id.
    pub team: String,
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    /// Session id.
    pub session: String,
}

impl PartKey {
    /// From ids and an event time, µs.
    pub fn new(team: &str, session: &str, t_us: i64) -> Self {
        PartKey {
            team: team.to_string(),
            date: date_of(t_us),
            session: session.to_string(),
        }
    }

    /// The Hive-style relative directory, values percent-encoded.
    pub fn dir(&self) -> String {
        format!(
            "team={}/date={}/session={}",
            escape(&self.team),
            self.date,
            escape(&self.session)
        )
    }
}

/// UTC date of an event time, µs.
pub fn date_of(t_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(t_us)
        .map(|d| d.date_naive().format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// Percent-encode everything but letters, digits, `-`, `_` and `.` (so an id cannot make a
/// path or confuse the `key=value` directory names).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        out = format!("%{}", out.len());
    }
    out
}

/// Rows of one table being built.
#[derive(Debug)]
pub enum Rows {
    /// Samples.
    Samples(Box<SampleRows>),
    /// Metrics.
    Metrics(Box<MetricRows>),
    /// Alerts.
    Alerts(Box<AlertRows>),
    /// Acknowledgements.
    Acks(Box<AckRows>),
}

impl Rows {
    /// Empty rows for `table`.
    pub fn new(table: Table) -> Self {
        match table {
            Table::Samples => Rows::Samples(Box::default()),
            Table::Metrics => Rows::Metrics(Box::default()),
            Table::Alerts => Rows::Alerts(Box::default()),
            Table::Acks => Rows::Acks(Box::default()),
        }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        match self {
            Rows::Samples(r) => r.len,
            Rows::Metrics(r) => r.len,
            Rows::Alerts(r) => r.len,
            Rows::Acks(r) => r.len,
        }
    }

    /// No rows?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record batch (the builders are left empty); a metrics batch's float buffers are
    /// kept in `spare` for the next rows.
    pub fn finish_into(
        &mut self,
        spare: &mut crate::metric_rows::Spare,
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        match self {
            Rows::Metrics(r) => r.finish_into(spare),
            other => other.finish(),
        }
    }

    /// The record batch (the builders are left empty).
    pub fn finish(&mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        match self {
            Rows::Samples(r) => r.finish(),
            Rows::Metrics(r) => r.finish(),
            Rows::Alerts(r) => r.finish(),
            Rows::Acks(r) => r.finish(),
        }
    }
}

/// Sample rows.
#[derive(Debug, Default)]
pub struct SampleRows {
    pub(crate) len: usize,
    player: StringBuilder,
    device: StringBuilder,
    seq: UInt64Builder,
    idx: UInt32Builder,
    t: TimestampMicrosecondBuilder,
    stream: StringBuilder,
    x: Float64Builder,
    y: Float64Builder,
    lat: Float64Builder,
    lon: Float64Builder,
    speed: Float32Builder,
    sats: UInt32Builder,
    hdop: Float32Builder,
    ax: Float32Builder,
    ay: Float32Builder,
    az: Float32Builder,
    hr: Float32Builder,
    received: TimestampMicrosecondBuilder,
    kp: Int32Builder,
    ko: Int64Builder,
}

impl SampleRows {
    /// Append every sample of `b` (`player` as keyed on the topic).
    pub fn push(&mut self, b: &pb::SampleBatch, player: &str, o: Origin) {
        use pb::position::Coord;
        use pb::sample::Reading;
        for (i, s) in b.samples.iter().enumerate() {
            let Some(reading) = &s.reading else { continue };
            self.len += 1;
            self.player.append_value(player);
            self.device.append_value(&b.device_id);
            self.seq.append_value(b.seq);
            self.idx.append_value(i as u32);
            self.t.append_value(s.t_us);
            let (mut xy, mut ll, mut pos, mut imu, mut hr) = (None, None, None, None, None);
            let stream = match reading {
                Reading::Position(p) => {
                    match &p.coord {
                        Some(Coord::Xy(c)) => xy = Some((c.x_m, c.y_m)),
                        Some(Coord::Latlon(c)) => ll = Some((c.lat_deg, c.lon_deg)),
                        None => {}
                    }
                    pos = Some(p);
                    "position"
                }
                Reading::Imu(m) => {
                    imu = Some((m.ax_g, m.ay_g, m.az_g));
                    "imu"
                }
                Reading::HeartRate(h) => {
                    hr = Some(h.bpm);
                    "hr"
                }
            };
            self.stream.append_value(stream);
            self.x.append_option(xy.map(|c| c.0));
            self.y.append_option(xy.map(|c| c.1));
            self.lat.append_option(ll.map(|c| c.0));
            self.lon.append_option(ll.map(|c| c.1));
            self.speed.append_option(pos.and_then(|p| p.speed_mps));
            self.sats.append_option(pos.and_then(|p| p.satellites));
            self.hdop.append_option(pos.and_then(|p| p.hdop));
            self.ax.append_option(imu.map(|m| m.0));
            self.ay.append_option(imu.map(|m| m.1));
            self.az.append_option(imu.map(|m| m.2));
            self.hr.append_option(hr);
            self.received
                .append_option((b.received_at_us != 0).then_some(b.received_at_us));
            self.kp.append_value(o.partition);
            self.ko.append_value(o.offset);
        }
    }

    fn finish(&mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        self.len = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.player.finish()),
            Arc::new(self.device.finish()),
            Arc::new(self.seq.finish()),
            Arc::new(self.idx.finish()),
            Arc::new(self.t.finish().with_timezone("UTC")),
            Arc::new(self.stream.finish()),
            Arc::new(self.x.finish()),
            Arc::new(self.y.finish()),
            Arc::new(self.lat.finish()),
            Arc::new(self.lon.finish()),
            Arc::new(self.speed.finish()),
            Arc::new(self.sats.finish()),
            Arc::new(self.hdop.finish()),
            Arc::new(self.ax.finish()),
            Arc::new(self.ay.finish()),
            Arc::new(self.az.finish()),
            Arc::new(self.hr.finish()),
            Arc::new(self.received.finish().with_timezone("UTC")),
            Arc::new(self.kp.finish()),
            Arc::new(self.ko.finish()),
        ];
        RecordBatch::try_new(Table::Samples.schema(), cols)
    }
}

pub use crate::ack_rows::AckRows;
pub use crate::metric_rows::{AlertRows, MetricRows};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_directories_cannot_escape_or_confuse() {
        assert_eq!(escape("home"), "home");
        assert_eq!(escape("../x"), "..%2Fx");
        assert_eq!(escape("a=b c"), "a%3Db%20c");
        assert_eq!(escape(".."), "%2");
        assert_eq!(escape(""), "%0");
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_764_460_800_000_000), "2025-11-30");
        assert_eq!(
            PartKey::new("home", "s 1", 0).dir(),
            "team=home/date=1970-01-01/session=s%201"
        );
    }
}

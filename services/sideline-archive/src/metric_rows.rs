//! Row builders for the `metrics` and `alerts` tables (see [`crate::schema`] for the columns).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float64Array, Float64Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::buffer::MutableBuffer;
use arrow::datatypes::DataType;
use std::sync::LazyLock;

use arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
use serde::Serialize;
use sideline_engine::risk::TermId;
use sideline_wire::pb;

use crate::resolution::{self, Resolution};
use crate::schema::{
    LAYOUT_COMPACT, LAYOUT_KEY, METRIC_F64, METRIC_OPT_F64, Origin, Table, WINDOW_F64, WINDOWS_MIN,
};

/// Which figures a metrics row holds: computed live, or re-computed after the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// From `sideline process` (or the demo).
    Live,
    /// From `sideline reprocess`.
    Reconciled,
}

impl Source {
    /// Column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Live => "live",
            Source::Reconciled => "reconciled",
        }
    }
}

/// The resolution of each rounded column group, by position (see [`crate::resolution`]).
struct Resolutions {
    f64s: [Resolution; 21],
    opts: [Resolution; 16],
    windows: [Resolution; 5],
}

static RESOLUTIONS: LazyLock<Resolutions> = LazyLock::new(|| Resolutions {
    f64s: METRIC_F64.map(resolution::of_column),
    opts: METRIC_OPT_F64.map(resolution::of_column),
    windows: WINDOW_F64.map(resolution::of_column),
});

/// The float columns' value buffers of finished metrics rows, emptied but keeping their memory,
/// for the next rows: most of a metrics row is floats, and buffers allocated afresh after each
/// commit cost their pages' faults again (a fifth of the decoding thread's time).
#[derive(Debug, Default)]
pub struct Spare(Vec<Vec<f64>>);

impl Spare {
    /// A builder over a spare buffer, or a new one.
    fn builder(&mut self) -> Float64Builder {
        match self.0.pop() {
            Some(v) => Float64Builder::new_from_buffer(MutableBuffer::from(v), None),
            None => Float64Builder::new(),
        }
    }

    /// Keep the value buffers of `batch`'s float columns (those no one else holds).
    fn keep(&mut self, batch: RecordBatch) {
        let cols: Vec<ArrayRef> = batch.columns().to_vec();
        drop(batch);
        for c in cols {
            if c.data_type() != &DataType::Float64 {
                continue;
            }
            let data = c.to_data();
            drop(c);
            let (_, values, _) = Float64Array::from(data).into_parts();
            if let Ok(mut v) = values.into_inner().into_vec::<f64>() {
                v.clear();
                self.0.push(v);
            }
        }
    }

    /// Take `other`'s buffers too.
    pub fn absorb(&mut self, other: Spare) {
        self.0.extend(other.0);
    }

    /// Buffers held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// None held?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Memory held, bytes.
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|v| v.capacity() * 8).sum()
    }
}

/// The builders of one risk term's typed columns.
#[derive(Debug, Default)]
struct TermCols {
    state: StringBuilder,
    parts: [Float64Builder; 3],
}

/// Metric rows, in the compact layout ([`crate::schema::LAYOUT_COMPACT`]) unless made with
/// [`MetricRows::legacy`].
#[derive(Debug, Default)]
pub struct MetricRows {
    /// Write as before 2026-12-07 (JSON terms, exact floats, arrival order): only for the
    /// benchmark's before/after and the test that old files stay readable.
    legacy: bool,
    typed: [TermCols; 16],
    pub(crate) len: usize,
    player: StringBuilder,
    t: TimestampMicrosecondBuilder,
    version: StringBuilder,
    source: StringBuilder,
    signal: StringBuilder,
    f64s: [Float64Builder; 21],
    u32s: [UInt32Builder; 9],
    opts: [Float64Builder; 16],
    windows: [[Float64Builder; 5]; 4],
    band: StringBuilder,
    terms: StringBuilder,
    /// Reused buffer for the terms' JSON.
    json: Vec<u8>,
    u64s: [UInt64Builder; 5],
    kp: Int32Builder,
    ko: Int64Builder,
}

fn band(b: i32) -> &'static str {
    match pb::Band::try_from(b) {
        Ok(pb::Band::Green) => "green",
        Ok(pb::Band::Amber) => "amber",
        Ok(pb::Band::Red) => "red",
        _ => "unknown",
    }
}

/// One risk term as written in the `risk_terms` / `terms` JSON column (fields in name order).
#[derive(Serialize)]
struct TermJson<'a> {
    block: &'a str,
    id: &'a str,
    points: f64,
    state: &'static str,
    threshold: Option<f64>,
    value: Option<f64>,
}

/// The terms as a JSON array, written straight into a reused buffer (this runs once per
/// player-second: no intermediate `serde_json::Value` per row).
fn terms_json<'b>(terms: &[pb::Term], buf: &'b mut Vec<u8>) -> &'b str {
    buf.clear();
    let rows = terms.iter().map(|t| TermJson {
        block: &t.block,
        id: &t.id,
        points: t.points,
        state: match t.state() {
            pb::term::State::Fired => "fired",
            pb::term::State::Clear => "clear",
            pb::term::State::Unknown => "unknown",
            pb::term::State::Unspecified => "unspecified",
        },
        threshold: t.threshold,
        value: t.value,
    });
    // Writing plain structs to memory cannot fail; an empty string would only hide a bug.
    if serde_json::to_writer(&mut *buf, &rows.collect::<Vec<_>>()).is_err() {
        buf.clear();
    }
    std::str::from_utf8(buf).unwrap_or_default()
}

impl MetricRows {
    /// Rows in the compact layout whose float columns reuse `spare`'s buffers.
    pub fn with_spare(spare: &mut Spare) -> Self {
        let mut r = MetricRows::default();
        let floats = r
            .f64s
            .iter_mut()
            .chain(r.opts.iter_mut())
            .chain(r.windows.iter_mut().flatten())
            .chain(r.typed.iter_mut().flat_map(|t| t.parts.iter_mut()));
        for b in floats {
            *b = spare.builder();
        }
        r
    }

    /// Rows written as before 2026-12-07 (see the `legacy` field).
    pub fn legacy() -> Self {
        MetricRows {
            legacy: true,
            ..MetricRows::default()
        }
    }

    fn round(&self, r: Resolution, v: f64) -> f64 {
        if self.legacy {
            v
        } else {
            resolution::stored(r, v)
        }
    }

    /// The typed term columns of one row.
    fn push_terms(&mut self, terms: &[pb::Term]) {
        let ids = TermId::ALL;
        for (i, cols) in self.typed.iter_mut().enumerate() {
            let id = ids[i].as_str();
            // Terms come in score order; look further only if this one is elsewhere.
            let t = match terms.get(i) {
                Some(t) if t.id == id => Some(t),
                _ => terms.iter().find(|t| t.id == id),
            };
            match t {
                None => {
                    cols.state.append_null();
                    for b in &mut cols.parts {
                        b.append_null();
                    }
                }
                Some(t) => {
                    cols.state.append_value(match t.state() {
                        pb::term::State::Fired => "fired",
                        pb::term::State::Clear => "clear",
                        _ => "unknown",
                    });
                    let rel = Resolution::Relative;
                    let vals = [Some(t.points), t.value, t.threshold];
                    for (b, v) in cols.parts.iter_mut().zip(vals) {
                        b.append_option(
                            v.filter(|v| v.is_finite())
                                .map(|v| resolution::stored(rel, v)),
                        );
                    }
                }
            }
        }
    }

    /// Append one snapshot.
    pub fn push(&mut self, m: &pb::PlayerMetrics, source: Source, o: Origin) {
        self.len += 1;
        // Borrowed, not cloned: this runs once per player-second.
        let (d_tot, d_hr, d_fat, d_risk) = Default::default();
        let tot: &pb::Totals = m.totals.as_ref().unwrap_or(&d_tot);
        let hr: &pb::HeartRateTotals = tot.hr.as_ref().unwrap_or(&d_hr);
        let fat: &pb::Fatigue = m.fatigue.as_ref().unwrap_or(&d_fat);
        let risk: &pb::Risk = m.risk.as_ref().unwrap_or(&d_risk);
        let fc = m.forecast.unwrap_or_default();
        let q = m.quality.unwrap_or_default();
        let axis = |i: usize| tot.load_axes.get(i).copied().unwrap_or(0.0);
        let vmax = |i: usize| tot.vmax_exposures.get(i).copied().unwrap_or(0);
        self.player.append_value(&m.player_id);
        self.t.append_value(m.t_us);
        self.version.append_value(&m.params_version);
        self.source.append_value(source.as_str());
        let signal = m.status.as_ref().map(|s| s.signal());
        self.signal.append_value(match signal {
            Some(pb::device_status::Signal::Ok) => "ok",
            Some(pb::device_status::Signal::PoorFix) => "poor_fix",
            Some(pb::device_status::Signal::NoSignal) => "no_signal",
            _ => "unknown",
        });
        let f64s = [
            tot.minutes,
            tot.distance_m,
            tot.walk_m,
            tot.jog_m,
            tot.run_m,
            tot.moderate_m,
            tot.hsr_m,
            tot.v24_m,
            tot.sprint_m,
            tot.hmld_m,
            tot.max_speed_mps,
            tot.sprint_effort_m,
            tot.vmax_ref_mps,
            tot.load,
            axis(0),
            axis(1),
            axis(2),
            hr.high_s,
            hr.trimp_edwards,
            hr.trimp_banister,
            risk.score,
        ];
        let res = &*RESOLUTIONS;
        for (i, v) in f64s.into_iter().enumerate() {
            let v = self.round(res.f64s[i], v);
            self.f64s[i].append_value(v);
        }
        let u32s = [
            tot.sprints,
            tot.hs_efforts,
            vmax(0),
            vmax(1),
            vmax(2),
            tot.accelerations,
            tot.decelerations,
            tot.accelerations_moderate,
            tot.decelerations_moderate,
        ];
        for (b, v) in self.u32s.iter_mut().zip(u32s) {
            b.append_value(v);
        }
        let opts = [
            tot.load_per_min,
            tot.load_per_m,
            tot.vertical_share,
            hr.current_bpm,
            hr.max_bpm,
            Some(fat.peak_window_hsr_m),
            fat.post_peak_decrement,
            fat.last_block_hsr_change,
            fat.load_per_m_change,
            fat.vertical_share_change,
            fc.to_amber_min,
            fc.to_red_min,
            risk.completeness,
            Some(tot.off_pitch_min),
            Some(tot.off_pitch_m),
            Some(f64::from(tot.rhi_bouts)),
        ];
        for (i, v) in opts.into_iter().enumerate() {
            let v = v.map(|v| self.round(res.opts[i], v));
            self.opts[i].append_option(v);
        }
        for (bs, min) in self.windows.iter_mut().zip(WINDOWS_MIN) {
            let w = m.windows.iter().find(|w| w.length_s == min * 60);
            let vals = w.map(|w| {
                [
                    w.distance_m,
                    w.hsr_m,
                    w.sprint_m,
                    w.peak_hsr_m,
                    w.peak_sprint_m,
                ]
            });
            for (i, b) in bs.iter_mut().enumerate() {
                let v = vals.map(|v| {
                    if self.legacy {
                        v[i]
                    } else {
                        resolution::stored(res.windows[i], v[i])
                    }
                });
                b.append_option(v);
            }
        }
        self.band.append_value(band(risk.band));
        if self.legacy {
            self.terms
                .append_value(terms_json(&risk.terms, &mut self.json));
        } else {
            self.terms.append_null();
        }
        if self.legacy {
            self.push_terms(&[]);
        } else {
            self.push_terms(&risk.terms);
        }
        let u64s = [q.artefacts, q.gaps, q.late, q.duplicates, q.forced_releases];
        for (b, v) in self.u64s.iter_mut().zip(u64s) {
            b.append_value(v);
        }
        self.kp.append_value(o.partition);
        self.ko.append_value(o.offset);
    }

    pub(crate) fn finish(&mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        self.finish_into(&mut Spare::default())
    }

    /// The record batch (sorted, in the compact layout), the buffers of the unsorted one kept
    /// in `spare`.
    pub(crate) fn finish_into(
        &mut self,
        spare: &mut Spare,
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        self.len = 0;
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.player.finish()),
            Arc::new(self.t.finish().with_timezone("UTC")),
            Arc::new(self.version.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.signal.finish()),
        ];
        cols.extend(
            self.f64s
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        cols.extend(
            self.u32s
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        cols.extend(
            self.opts
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        for bs in &mut self.windows {
            cols.extend(bs.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        }
        cols.push(Arc::new(self.band.finish()));
        cols.push(Arc::new(self.terms.finish()));
        cols.extend(
            self.u64s
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        for t in &mut self.typed {
            cols.push(Arc::new(t.state.finish()));
            cols.extend(t.parts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        }
        cols.push(Arc::new(self.kp.finish()));
        cols.push(Arc::new(self.ko.finish()));
        if self.legacy {
            return RecordBatch::try_new(Table::Metrics.schema(), cols);
        }
        let schema = Table::Metrics
            .schema()
            .as_ref()
            .clone()
            .with_metadata([(LAYOUT_KEY.to_string(), LAYOUT_COMPACT.to_string())].into());
        let batch = RecordBatch::try_new(Arc::new(schema), cols)?;
        // Sorted by player, then time: each player's slowly changing figures side by side.
        let order = lexsort_to_indices(
            &[
                SortColumn {
                    values: batch.column(0).clone(),
                    options: None,
                },
                SortColumn {
                    values: batch.column(1).clone(),
                    options: None,
                },
            ],
            None,
        )?;
        let sorted = take_record_batch(&batch, &order)?;
        drop(order);
        spare.keep(batch);
        Ok(sorted)
    }
}

/// Alert rows.
#[derive(Debug, Default)]
pub struct AlertRows {
    pub(crate) len: usize,
    id: StringBuilder,
    player: StringBuilder,
    t: TimestampMicrosecondBuilder,
    since: TimestampMicrosecondBuilder,
    kind: StringBuilder,
    severity: StringBuilder,
    state: StringBuilder,
    resolution: StringBuilder,
    value: Float64Builder,
    threshold: Float64Builder,
    band: StringBuilder,
    summary: StringBuilder,
    version: StringBuilder,
    terms: StringBuilder,
    /// Reused buffer for the terms' JSON.
    json: Vec<u8>,
    amber: Float64Builder,
    red: Float64Builder,
    kp: Int32Builder,
    ko: Int64Builder,
}

impl AlertRows {
    /// Append one lifecycle event.
    pub fn push(&mut self, a: &pb::Alert, o: Origin) {
        use pb::alert::{Resolution, Severity, State};
        self.len += 1;
        self.id.append_value(&a.id);
        self.player.append_value(&a.player_id);
        self.t.append_value(a.t_us);
        self.since.append_value(a.since_us);
        self.kind
            .append_value(sideline_wire::convert::alert_kind_name(a.kind()));
        self.severity.append_value(match a.severity() {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
            Severity::Unspecified => "unspecified",
        });
        self.state.append_value(match a.state() {
            State::Firing => "firing",
            State::Updated => "updated",
            State::Resolved => "resolved",
            State::Unspecified => "unspecified",
        });
        self.resolution.append_option(match a.resolution() {
            Resolution::Cleared => Some("cleared"),
            Resolution::Superseded => Some("superseded"),
            Resolution::SessionEnded => Some("session_ended"),
            Resolution::Unspecified => None,
        });
        self.value.append_value(a.value);
        self.threshold.append_value(a.threshold);
        self.band.append_value(band(a.band));
        self.summary.append_value(&a.summary);
        self.version.append_value(&a.params_version);
        self.terms
            .append_value(terms_json(&a.terms, &mut self.json));
        let fc = a.forecast.unwrap_or_default();
        self.amber.append_option(fc.to_amber_min);
        self.red.append_option(fc.to_red_min);
        self.kp.append_value(o.partition);
        self.ko.append_value(o.offset);
    }

    pub(crate) fn finish(&mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        self.len = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.player.finish()),
            Arc::new(self.t.finish().with_timezone("UTC")),
            Arc::new(self.since.finish().with_timezone("UTC")),
            Arc::new(self.kind.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.state.finish()),
            Arc::new(self.resolution.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.threshold.finish()),
            Arc::new(self.band.finish()),
            Arc::new(self.summary.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.terms.finish()),
            Arc::new(self.amber.finish()),
            Arc::new(self.red.finish()),
            Arc::new(self.kp.finish()),
            Arc::new(self.ko.finish()),
        ];
        RecordBatch::try_new(Table::Alerts.schema(), cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(i: i64) -> pb::PlayerMetrics {
        pb::PlayerMetrics {
            player_id: format!("p{}", i % 3),
            t_us: 1_000_000 * (100 - i),
            totals: Some(pb::Totals {
                distance_m: 12.5 * i as f64,
                load_per_min: Some(0.25 * i as f64),
                ..Default::default()
            }),
            risk: Some(pb::Risk {
                score: i as f64,
                terms: vec![pb::Term {
                    id: TermId::ALL[0].as_str().into(),
                    points: 1.5,
                    state: pb::term::State::Fired as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Finished rows hand back every float column's buffer, emptied; rows built on them
    /// write into that very memory (no copy, no new pages) and give the same batch as rows
    /// built afresh.
    #[test]
    fn float_buffers_are_reused_and_change_nothing() {
        let o = |i: i64| Origin {
            partition: 0,
            offset: i,
        };
        let mut first = MetricRows::default();
        for i in 0..5_000 {
            first.push(&snapshot(i), Source::Live, o(i));
        }
        let mut spare = Spare::default();
        first.finish_into(&mut spare).unwrap();
        assert_eq!(spare.len(), 21 + 16 + 20 + 16 * 3);
        assert!(
            spare
                .0
                .iter()
                .all(|v| v.is_empty() && v.capacity() >= 5_000)
        );
        let ptrs: Vec<*const f64> = spare.0.iter().map(|v| v.as_ptr()).collect();
        let mut reused = MetricRows::with_spare(&mut spare);
        assert!(spare.is_empty());
        let mut fresh = MetricRows::default();
        for i in 0..3_000 {
            reused.push(&snapshot(i), Source::Live, o(i));
            fresh.push(&snapshot(i), Source::Live, o(i));
        }
        assert!(ptrs.contains(&reused.f64s[0].values_slice().as_ptr()));
        assert!(ptrs.contains(&reused.typed[15].parts[2].values_slice().as_ptr()));
        assert_eq!(reused.finish().unwrap(), fresh.finish().unwrap());
    }

    #[test]
    fn terms_are_a_json_array_with_nulls_for_missing_values() {
        let fired = pb::Term {
            id: "b_hsr_z".into(),
            block: "B".into(),
            points: 2.5,
            state: pb::term::State::Fired as i32,
            value: Some(1.75),
            threshold: Some(1.5),
            label: "not written".into(),
        };
        let unknown = pb::Term {
            id: "d_days\"since".into(),
            block: "D".into(),
            state: pb::term::State::Unknown as i32,
            value: Some(f64::NAN),
            ..Default::default()
        };
        let mut buf = Vec::new();
        assert_eq!(
            terms_json(&[fired, unknown], &mut buf),
            r#"[{"block":"B","id":"b_hsr_z","points":2.5,"state":"fired","threshold":1.5,"value":1.75},{"block":"D","id":"d_days\"since","points":0.0,"state":"unknown","threshold":null,"value":null}]"#
        );
        assert_eq!(terms_json(&[], &mut buf), "[]");
    }
}

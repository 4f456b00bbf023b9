//! Decoding a stream of `PlayerMetrics` records into one reused message.
//!
//! `pb::PlayerMetrics::decode` builds a fresh message per record: about fifty heap
//! allocations, most of them the sixteen risk terms' `id`, `block` and `label` strings, all
//! freed again a moment later. A reader that only looks at each record once (the archiver,
//! at one record per player-second) can keep the previous record's strings and vectors and
//! decode into them. [`MetricsDecoder`] does that and nothing else: what it returns equals
//! `pb::PlayerMetrics::decode` of the same bytes, field for field (the tests compare them
//! over a whole simulated match and over records that leave fields out).
//!
//! How: before each record, every string and vector is emptied but keeps its capacity, and
//! everything else is reset to its default (so a field added to the schema later is reset
//! without anyone remembering it here). The top-level fields that hold allocations
//! (`totals`, `fatigue`, `risk`) are pre-filled with emptied messages and set back to `None`
//! if the record does not carry them; the risk terms are decoded into the previous record's
//! term slots. Everything else goes through prost's generated `merge_field`.
//!
//! [`MetricsDecoder::skipping_term_text`] also leaves each term's `block` and `label` empty
//! (skipped, not copied): for readers that key terms by `id` and do not show them to people.

use prost::Message;
use prost::bytes::Buf;
use prost::encoding::{
    DecodeContext, WireType, check_wire_type, decode_key, merge_loop, skip_field,
};

use crate::pb;

/// Field numbers of `PlayerMetrics` (proto/sideline/v1/metrics.proto) handled here.
const TOTALS: u32 = 7;
const FATIGUE: u32 = 9;
const RISK: u32 = 10;
/// `Risk.terms`.
const RISK_TERMS: u32 = 4;
/// `Term.block` and `Term.label`.
const TERM_BLOCK: u32 = 2;
const TERM_LABEL: u32 = 7;

/// Decodes `PlayerMetrics` records into one reused message (see the module doc).
#[derive(Debug, Default)]
pub struct MetricsDecoder {
    m: pb::PlayerMetrics,
    /// Emptied messages kept for the next record when this one left the field out.
    spare_totals: Option<pb::Totals>,
    spare_fatigue: Option<pb::Fatigue>,
    spare_risk: Option<pb::Risk>,
    /// Term slots filled in this record.
    terms_used: usize,
    /// Leave the terms' `block` and `label` empty.
    skip_term_text: bool,
}

fn emptied_string(s: &mut String) -> String {
    let mut s = std::mem::take(s);
    s.clear();
    s
}

fn emptied_vec<T>(v: &mut Vec<T>) -> Vec<T> {
    let mut v = std::mem::take(v);
    v.clear();
    v
}

fn emptied_totals(t: Option<pb::Totals>) -> pb::Totals {
    let Some(mut t) = t else {
        return pb::Totals::default();
    };
    pb::Totals {
        vmax_exposures: emptied_vec(&mut t.vmax_exposures),
        load_axes: emptied_vec(&mut t.load_axes),
        vmax_band_m: emptied_vec(&mut t.vmax_band_m),
        ..pb::Totals::default()
    }
}

fn emptied_fatigue(f: Option<pb::Fatigue>) -> pb::Fatigue {
    let Some(mut f) = f else {
        return pb::Fatigue::default();
    };
    pb::Fatigue {
        blocks: emptied_vec(&mut f.blocks),
        ..pb::Fatigue::default()
    }
}

/// The risk message emptied, its term slots kept as they are (they are emptied one by one
/// when reused).
fn emptied_risk(r: Option<pb::Risk>) -> pb::Risk {
    let Some(mut r) = r else {
        return pb::Risk::default();
    };
    pb::Risk {
        blocks: emptied_vec(&mut r.blocks),
        terms: std::mem::take(&mut r.terms),
        ..pb::Risk::default()
    }
}

fn empty_term(t: &mut pb::Term) {
    *t = pb::Term {
        id: emptied_string(&mut t.id),
        block: emptied_string(&mut t.block),
        label: emptied_string(&mut t.label),
        ..pb::Term::default()
    };
}

impl MetricsDecoder {
    /// A decoder that leaves each risk term's `block` and `label` empty (the archive keys
    /// terms by `id` and does not store their words).
    pub fn skipping_term_text() -> Self {
        MetricsDecoder {
            skip_term_text: true,
            ..MetricsDecoder::default()
        }
    }

    /// Decode one record; the result is valid until the next call.
    ///
    /// # Errors
    ///
    /// The bytes are not a valid `PlayerMetrics` (as `pb::PlayerMetrics::decode` would say).
    pub fn decode(&mut self, mut buf: &[u8]) -> Result<&pb::PlayerMetrics, prost::DecodeError> {
        self.reset();
        let mut seen = [false; 3];
        let ctx = DecodeContext::default();
        while buf.has_remaining() {
            let (tag, wire_type) = decode_key(&mut buf)?;
            match tag {
                TOTALS => seen[0] = true,
                FATIGUE => seen[1] = true,
                RISK => {
                    seen[2] = true;
                    self.merge_risk(wire_type, &mut buf, ctx.clone())?;
                    continue;
                }
                _ => {}
            }
            self.m.merge_field(tag, wire_type, &mut buf, ctx.clone())?;
        }
        if let Some(r) = self.m.risk.as_mut() {
            r.terms.truncate(self.terms_used);
        }
        if !seen[0] {
            self.spare_totals = self.m.totals.take();
        }
        if !seen[1] {
            self.spare_fatigue = self.m.fatigue.take();
        }
        if !seen[2] {
            self.spare_risk = self.m.risk.take();
        }
        Ok(&self.m)
    }

    /// Empty the message, keeping its allocations (see the module doc).
    fn reset(&mut self) {
        let m = &mut self.m;
        let totals = emptied_totals(m.totals.take().or(self.spare_totals.take()));
        let fatigue = emptied_fatigue(m.fatigue.take().or(self.spare_fatigue.take()));
        let risk = emptied_risk(m.risk.take().or(self.spare_risk.take()));
        *m = pb::PlayerMetrics {
            player_id: emptied_string(&mut m.player_id),
            team_id: emptied_string(&mut m.team_id),
            session_id: emptied_string(&mut m.session_id),
            params_version: emptied_string(&mut m.params_version),
            windows: emptied_vec(&mut m.windows),
            totals: Some(totals),
            fatigue: Some(fatigue),
            risk: Some(risk),
            ..pb::PlayerMetrics::default()
        };
        self.terms_used = 0;
    }

    /// `PlayerMetrics.risk`, with the terms decoded into reused slots.
    fn merge_risk(
        &mut self,
        wire_type: WireType,
        buf: &mut &[u8],
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        check_wire_type(WireType::LengthDelimited, wire_type)?;
        let risk = self.m.risk.get_or_insert_with(pb::Risk::default);
        let used = &mut self.terms_used;
        let skip_text = self.skip_term_text;
        merge_loop(risk, buf, ctx, |risk, buf, ctx| {
            let (tag, wire_type) = decode_key(buf)?;
            if tag != RISK_TERMS {
                return risk.merge_field(tag, wire_type, buf, ctx);
            }
            if *used == risk.terms.len() {
                risk.terms.push(pb::Term::default());
            }
            let slot = &mut risk.terms[*used];
            empty_term(slot);
            *used += 1;
            if !skip_text {
                return prost::encoding::message::merge(wire_type, slot, buf, ctx);
            }
            check_wire_type(WireType::LengthDelimited, wire_type)?;
            // A term holds no messages: no deeper recursion to count.
            merge_loop(slot, buf, ctx, |t, buf, ctx| {
                let (tag, wire_type) = decode_key(buf)?;
                match tag {
                    TERM_BLOCK | TERM_LABEL => skip_field(wire_type, tag, buf, ctx),
                    _ => t.merge_field(tag, wire_type, buf, ctx),
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(id: &str, points: f64, value: Option<f64>) -> pb::Term {
        pb::Term {
            id: id.into(),
            block: "B".into(),
            points,
            state: pb::term::State::Fired as i32,
            value,
            threshold: Some(1.5),
            label: format!("label of {id}"),
        }
    }

    fn full() -> pb::PlayerMetrics {
        pb::PlayerMetrics {
            player_id: "p-long-player-id-0001".into(),
            team_id: "first-team".into(),
            session_id: "2026-12-07-match".into(),
            t_us: 1_000_000,
            params_version: "v9".into(),
            status: Some(pb::DeviceStatus {
                signal: 1,
                last_fix_age_s: Some(0.1),
            }),
            totals: Some(pb::Totals {
                distance_m: 1234.5,
                vmax_exposures: vec![1, 2, 3],
                load_axes: vec![0.1, 0.2, 0.7],
                vmax_band_m: vec![5.0, 6.0],
                hr: Some(pb::HeartRateTotals {
                    zone_s: vec![1.0, 2.0],
                    current_bpm: Some(150.0),
                    ..Default::default()
                }),
                sprints: 4,
                ..Default::default()
            }),
            windows: vec![
                pb::WindowValues {
                    length_s: 60,
                    hsr_m: 12.0,
                    ..Default::default()
                },
                pb::WindowValues {
                    length_s: 300,
                    hsr_m: 40.0,
                    ..Default::default()
                },
            ],
            fatigue: Some(pb::Fatigue {
                peak_window_hsr_m: 80.0,
                post_peak_decrement: Some(0.2),
                blocks: vec![pb::Block {
                    index: 1,
                    hsr_m: 100.0,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            risk: Some(pb::Risk {
                score: 2.5,
                band: pb::Band::Amber as i32,
                blocks: vec![1.0, 1.5],
                terms: vec![
                    term("a_age", 0.5, None),
                    term("b_hsr_z", 1.0, Some(2.1)),
                    term("c_decrement", 1.0, Some(0.3)),
                ],
                completeness: Some(0.8),
                ceiling: 8.0,
                band_floor: true,
            }),
            forecast: Some(pb::Forecast {
                to_red_min: Some(12.0),
                ..Default::default()
            }),
            quality: Some(pb::Quality {
                gaps: 3,
                ..Default::default()
            }),
        }
    }

    /// Records that each leave something out that the one before had.
    fn variants() -> Vec<pb::PlayerMetrics> {
        let f = full();
        let mut fewer_terms = f.clone();
        if let Some(r) = fewer_terms.risk.as_mut() {
            r.terms.truncate(1);
            r.terms[0].label.clear();
            r.terms[0].value = None;
        }
        let mut no_totals = f.clone();
        no_totals.totals = None;
        no_totals.windows.clear();
        let mut no_risk = f.clone();
        no_risk.risk = None;
        no_risk.fatigue = None;
        let mut empty_risk = f.clone();
        empty_risk.risk = Some(pb::Risk::default());
        let mut short_strings = f.clone();
        short_strings.player_id = "p".into();
        short_strings.params_version.clear();
        short_strings.status = None;
        vec![
            f.clone(),
            fewer_terms,
            f.clone(),
            no_totals,
            f.clone(),
            no_risk,
            empty_risk,
            f.clone(),
            short_strings,
            pb::PlayerMetrics::default(),
            f,
        ]
    }

    #[test]
    fn each_record_decodes_as_a_fresh_decode_would() {
        let mut d = MetricsDecoder::default();
        let all = variants();
        // Every order of neighbours: each record after each other one.
        for a in &all {
            for b in &all {
                for m in [a, b] {
                    let bytes = m.encode_to_vec();
                    let fresh = pb::PlayerMetrics::decode(bytes.as_slice()).unwrap();
                    assert_eq!(d.decode(&bytes).unwrap(), &fresh);
                    assert_eq!(&fresh, m);
                }
            }
        }
    }

    #[test]
    fn skipping_term_text_leaves_only_block_and_label_empty() {
        let mut d = MetricsDecoder::skipping_term_text();
        let all = variants();
        for a in &all {
            for m in [a, &all[0]] {
                let mut want = m.clone();
                for t in want.risk.iter_mut().flat_map(|r| r.terms.iter_mut()) {
                    t.block.clear();
                    t.label.clear();
                }
                assert_eq!(d.decode(&m.encode_to_vec()).unwrap(), &want);
            }
        }
        let full = full().encode_to_vec();
        assert!(d.decode(&full[..full.len() - 3]).is_err());
        assert!(
            d.decode(&full).unwrap().risk.as_ref().unwrap().terms[1]
                .label
                .is_empty()
        );
    }

    #[test]
    fn a_field_sent_twice_merges_as_protobuf_says() {
        // Concatenated encodings merge: repeated fields append, scalars take the last.
        let a = full();
        let mut b = full();
        b.t_us = 7;
        if let Some(r) = b.risk.as_mut() {
            r.terms.truncate(2);
        }
        let mut bytes = a.encode_to_vec();
        bytes.extend(b.encode_to_vec());
        let fresh = pb::PlayerMetrics::decode(bytes.as_slice()).unwrap();
        let mut d = MetricsDecoder::default();
        assert_eq!(d.decode(&bytes).unwrap(), &fresh);
        assert_eq!(fresh.risk.as_ref().map(|r| r.terms.len()), Some(5));
    }

    #[test]
    fn broken_records_are_errors_and_the_next_one_decodes() {
        let good = full().encode_to_vec();
        let mut d = MetricsDecoder::default();
        for cut in [1, 10, good.len() / 2, good.len() - 1] {
            let bad = &good[..cut];
            assert_eq!(
                d.decode(bad).is_err(),
                pb::PlayerMetrics::decode(bad).is_err(),
                "cut at {cut}"
            );
            assert_eq!(d.decode(&good).unwrap(), &full());
        }
        assert!(d.decode(&[0xff, 0xff, 0xff]).is_err());
        assert_eq!(d.decode(&good).unwrap(), &full());
    }
}

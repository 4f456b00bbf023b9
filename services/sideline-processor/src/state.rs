//! Engine state on the compacted topic `sideline.state.v1`: one record per player (key = player
//! id), written to the same partition number as the player's input, holding the player's whole
//! engine (windows, filters, efforts, de-duplication windows, alert rules) and the input offset
//! it covers: every record of that partition below the offset is already in the state.
//!
//! Restore rule (the Quix changelog recipe): consume the partition from its committed offset;
//! for each player, skip records below the offset his snapshot covers. Snapshots are written
//! before the offsets they cover are committed, so every snapshot covers at least the committed
//! offset, and a restored player never counts a record twice or misses one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use sideline_engine::PlayerEngine;
use sideline_kafka::KafkaConfig;

/// Version of the snapshot format; a snapshot of another format is not restored (counted).
pub const FORMAT: u32 = 2;

/// One player's snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateRecord {
    /// Snapshot format.
    pub format: u32,
    /// Input offset covered (records of the partition below it are in the state).
    pub covers: i64,
    /// The engine.
    pub engine: PlayerEngine,
}

#[derive(Serialize)]
struct StateRef<'a> {
    format: u32,
    covers: i64,
    engine: &'a PlayerEngine,
}

/// Why a snapshot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not decodable.
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] postcard::Error),
    /// Another format.
    #[error("snapshot format {0}, this build reads {FORMAT}")]
    Format(u32),
}

/// Encode a player's engine as a snapshot covering `covers`.
pub fn encode(covers: i64, engine: &PlayerEngine) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(&StateRef {
        format: FORMAT,
        covers,
        engine,
    })
}

/// Decode a snapshot.
pub fn decode(bytes: &[u8]) -> Result<StateRecord, StateError> {
    let r: StateRecord = postcard::from_bytes(bytes)?;
    if r.format != FORMAT {
        return Err(StateError::Format(r.format));
    }
    Ok(r)
}

/// What reading a partition's state found.
#[derive(Debug, Default)]
pub struct PartitionState {
    /// Latest snapshot per player.
    pub players: HashMap<String, StateRecord>,
    /// Records that could not be used.
    pub unusable: u64,
}

/// Read every snapshot of `partition` of the state topic (blocking; called while a partition is
/// being assigned, before its records are consumed).
pub fn read_partition(
    cfg: &KafkaConfig,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<PartitionState, KafkaError> {
    let c: BaseConsumer = cfg
        .client_config(
            &format!(
                "sideline-processor-restore-{}-{partition}",
                std::process::id()
            ),
            &[
                ("group.id", "sideline-processor-restore"),
                ("enable.auto.commit", "false"),
                ("fetch.wait.max.ms", "20"),
            ],
        )
        .map_err(|e| KafkaError::ClientCreation(e.to_string()))?
        .create()?;
    let (low, high) = c.fetch_watermarks(topic, partition, timeout)?;
    let mut out = PartitionState::default();
    if high <= low {
        return Ok(out);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
    c.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    let mut next = low;
    while next < high {
        if Instant::now() > deadline {
            return Err(KafkaError::ClientCreation(format!(
                "state of partition {partition} not read within {timeout:?}"
            )));
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                next = m.offset() + 1;
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                match m.payload() {
                    None | Some([]) => {
                        out.players.remove(&key);
                    }
                    Some(v) => match decode(v) {
                        Ok(r) => {
                            out.players.insert(key, r);
                        }
                        Err(error) => {
                            out.unusable += 1;
                            tracing::warn!(message = "Snapshot not usable; the player starts from the committed offset.", player = %key, %error);
                        }
                    },
                }
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideline_engine::{Params, Sample};

    #[test]
    fn a_snapshot_round_trips_and_continues_exactly() {
        let p = Params::default();
        let mut a: PlayerEngine = PlayerEngine::new(&p, p.version_tag().into(), "p", "t", "s");
        let mut out = Vec::new();
        let t0 = 1_700_000_000_000_000;
        for k in 0..600 {
            a.ingest(
                &p,
                Sample::xy(
                    t0 + k * 100_000,
                    0.0,
                    0.0,
                    Some(6.0 + (k % 30) as f32 * 0.1),
                ),
                &mut out,
            )
            .unwrap();
        }
        let bytes = encode(42, &a).unwrap();
        assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
        let r = decode(&bytes).unwrap();
        assert_eq!(r.covers, 42);
        let mut b = r.engine;
        let (mut oa, mut ob) = (Vec::new(), Vec::new());
        for k in 600..1200 {
            let s = Sample::xy(t0 + k * 100_000, 0.0, 0.0, Some(7.5));
            a.ingest(&p, s, &mut oa).unwrap();
            b.ingest(&p, s, &mut ob).unwrap();
        }
        a.finish(&p, &mut oa);
        b.finish(&p, &mut ob);
        assert_eq!(oa, ob);
    }

    /// One bad record on the state topic must not crash-loop the processor: a snapshot with
    /// any single byte changed either decodes to an engine that goes on working (a bucket
    /// value or a speed is off, which nothing can tell) or is refused with an error (a ring
    /// index outside its ring, running sums that disagree with their buckets, bad lengths).
    #[test]
    fn a_corrupt_snapshot_is_refused_or_harmless_never_a_panic() {
        let p = Params::default();
        let mut a: PlayerEngine = PlayerEngine::new(&p, p.version_tag().into(), "p", "t", "s");
        let mut out = Vec::new();
        let t0 = 1_700_000_000_000_000;
        for k in 0..900 {
            let v = Some(3.0 + (k % 70) as f32 * 0.12);
            a.ingest(
                &p,
                Sample::xy(t0 + k * 100_000, k as f64 * 0.4, 0.0, v),
                &mut out,
            )
            .unwrap();
        }
        let bytes = encode(42, &a).unwrap();
        let (mut refused, mut used) = (0, 0);
        // Every 53rd byte, three ways: spread over the whole snapshot, a few seconds in all.
        for i in (0..bytes.len()).step_by(53) {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                match decode(&bad) {
                    Err(_) => refused += 1,
                    Ok(r) => {
                        used += 1;
                        let mut e = r.engine;
                        let mut o = Vec::new();
                        for k in 900..960 {
                            let s = Sample::xy(t0 + k * 100_000, 1.0, 0.0, Some(7.5));
                            let _ = e.ingest(&p, s, &mut o);
                        }
                        e.finish(&p, &mut o);
                    }
                }
            }
        }
        assert!(refused > 0 && used > 0, "refused {refused}, used {used}");
    }

    #[test]
    fn a_ring_index_outside_its_ring_is_refused() {
        let p = Params::default();
        let mut a: PlayerEngine = PlayerEngine::new(&p, p.version_tag().into(), "p", "t", "s");
        let mut out = Vec::new();
        for k in 0..100 {
            a.ingest(
                &p,
                Sample::xy(1_700_000_000_000_000 + k * 100_000, 0.0, 0.0, Some(5.0)),
                &mut out,
            )
            .unwrap();
        }
        // The same engine through JSON, its window ring's head moved past the end, then
        // as a snapshot: refused at decode.
        let mut v = serde_json::to_value(&a).unwrap();
        let mut found = 0;
        fn heads(v: &mut serde_json::Value, found: &mut usize) {
            match v {
                serde_json::Value::Object(m) => {
                    if m.contains_key("slots") && m.contains_key("head") {
                        let cap = m["slots"].as_array().map_or(0, Vec::len);
                        m.insert("head".into(), (cap + 3).into());
                        *found += 1;
                    }
                    m.values_mut().for_each(|x| heads(x, found));
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(|x| heads(x, found)),
                _ => {}
            }
        }
        heads(&mut v, &mut found);
        assert!(found > 0, "no ring in the engine");
        assert!(serde_json::from_value::<PlayerEngine>(v).is_err());
    }

    #[test]
    fn another_format_is_refused() {
        let p = Params::default();
        let a: PlayerEngine = PlayerEngine::new(&p, p.version_tag().into(), "p", "t", "s");
        let mut bytes = encode(1, &a).unwrap();
        bytes[0] = 9; // the format varint
        assert!(matches!(decode(&bytes), Err(StateError::Format(9))));
    }
}

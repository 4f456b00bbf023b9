//! Kafka helpers for tests: create topics, read a topic back from the beginning (all at once,
//! or incrementally with [`TopicReader`]), and whether a consumer group has committed to the
//! end of a topic.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// One record read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: HashMap<String, Vec<u8>>,
    /// The record's timestamp (producer's create time), ms since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl Record {
    /// The key as UTF-8.
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }

    /// A header as UTF-8.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// How long [`read_topic`] waits, without progress, for partitions not yet read to their end.
const PATIENCE: Duration = Duration::from_secs(60);

/// Read every record of `topic` (all partitions, from the beginning) until `want` records have
/// been read, or every partition has been read to its end and nothing new arrived for `idle`.
///
/// Reading to the end of each partition comes first: an idle time alone ended reads early
/// when a busy broker was slow to answer the fetch of some partitions (seen as players with
/// no snapshot at all after the heavy malformed flood). A partition not read to its end after
/// [`PATIENCE`] without progress is reported and the records read so far are returned.
pub fn read_topic(brokers: &str, topic: &str, want: usize, idle: Duration) -> Vec<Record> {
    read_topic_until(brokers, topic, idle, |out| out.len() >= want)
}

/// [`read_topic`], done when `enough` says so of the records read (counted in units other
/// than records: the batches coalesced records hold, say).
pub fn read_topic_until(
    brokers: &str,
    topic: &str,
    idle: Duration,
    mut enough: impl FnMut(&[Record]) -> bool,
) -> Vec<Record> {
    let c = reader_consumer(brokers);
    let parts = partitions(&c, topic).len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut last = Instant::now();
    // Partitions read to their end at least once (a record since does not undo that).
    let mut ended: HashSet<i32> = HashSet::new();
    while !enough(&out) {
        let all_ended = ended.len() >= parts as usize;
        if all_ended && last.elapsed() >= idle {
            break;
        }
        if !all_ended && last.elapsed() >= PATIENCE.max(idle) {
            let missing: Vec<i32> = (0..parts).filter(|p| !ended.contains(p)).collect();
            eprintln!(
                "reading {topic}: partitions {missing:?} not read to their end after {:?} without progress; returning the {} records read",
                last.elapsed(),
                out.len()
            );
            break;
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Ok(m)) => {
                last = Instant::now();
                out.push(record(&m));
            }
            // Transient (e.g. just after a broker restart): keep reading until `idle`.
            Some(Err(e)) => eprintln!("reading {topic}: {e} (retrying)"),
            None => {}
        }
    }
    out
}

fn record(m: &rdkafka::message::BorrowedMessage<'_>) -> Record {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    Record {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
        timestamp_ms: m.timestamp().to_millis(),
    }
}

fn reader_consumer(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("sideline-test-reader-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap()
}

/// Partitions of `topic`, retrying for a minute while a busy broker answers slowly.
fn partitions(c: &BaseConsumer, topic: &str) -> Vec<i32> {
    let t0 = Instant::now();
    loop {
        match c.fetch_metadata(Some(topic), Duration::from_secs(10)) {
            Ok(md) => return md.topics()[0].partitions().iter().map(|p| p.id()).collect(),
            Err(e) if t0.elapsed() < PATIENCE => eprintln!("metadata of {topic}: {e}; retrying"),
            Err(e) => panic!("metadata of {topic}: {e}"),
        }
    }
}

/// The high watermark of each partition of `topic` now, retrying for a minute.
fn high_watermarks(c: &BaseConsumer, topic: &str, parts: &[i32]) -> HashMap<i32, i64> {
    let t0 = Instant::now();
    parts
        .iter()
        .map(|&p| {
            loop {
                match c.fetch_watermarks(topic, p, Duration::from_secs(10)) {
                    Ok((_, high)) => break (p, high),
                    Err(e) if t0.elapsed() < PATIENCE => {
                        eprintln!("watermarks of {topic}/{p}: {e}; retrying")
                    }
                    Err(e) => panic!("watermarks of {topic}/{p}: {e}"),
                }
            }
        })
        .collect()
}

/// A topic read from the beginning, incrementally: each [`TopicReader::catch_up`] reads what
/// was appended since the previous one, up to the end each partition had when it was called.
/// For tests that wait until an output appears: polling with it costs one read of the new
/// records, not of the whole topic, and needs no idle time to know it has read everything.
pub struct TopicReader {
    c: BaseConsumer,
    topic: String,
    parts: Vec<i32>,
    /// Next offset to read, per partition.
    next: HashMap<i32, i64>,
    records: Vec<Record>,
}

impl TopicReader {
    /// A reader at the beginning of every partition of `topic`.
    pub fn new(brokers: &str, topic: &str) -> TopicReader {
        let c = reader_consumer(brokers);
        let parts = partitions(&c, topic);
        let mut tpl = TopicPartitionList::new();
        for &p in &parts {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        c.assign(&tpl).unwrap();
        TopicReader {
            c,
            topic: topic.to_string(),
            next: parts.iter().map(|&p| (p, 0)).collect(),
            parts,
            records: Vec::new(),
        }
    }

    /// Read every record appended up to now (each partition to the high watermark it has at
    /// this call); returns how many were new. Panics after a minute without progress.
    pub fn catch_up(&mut self) -> usize {
        let high = high_watermarks(&self.c, &self.topic, &self.parts);
        let before = self.records.len();
        let mut ended: HashSet<i32> = HashSet::new();
        // Partitions with a record read in this call: only their end-of-log events count (an
        // earlier one may still be queued ahead of records appended since).
        let mut moved: HashSet<i32> = HashSet::new();
        let mut progress = Instant::now();
        loop {
            let behind: Vec<i32> = self
                .parts
                .iter()
                .copied()
                .filter(|p| !ended.contains(p) && self.next[p] < high[p])
                .collect();
            if behind.is_empty() {
                return self.records.len() - before;
            }
            assert!(
                progress.elapsed() < PATIENCE,
                "reading {}: partitions {behind:?} not read to {high:?} after {PATIENCE:?} without progress (at {:?})",
                self.topic,
                self.next
            );
            match self.c.poll(Duration::from_millis(100)) {
                // The end of the log after records of this call: at or past the mark
                // (offsets compacted away or never used count as read).
                Some(Err(KafkaError::PartitionEOF(p))) if moved.contains(&p) => {
                    ended.insert(p);
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Ok(m)) => {
                    progress = Instant::now();
                    moved.insert(m.partition());
                    self.next.insert(m.partition(), m.offset() + 1);
                    self.records.push(record(&m));
                }
                Some(Err(e)) => eprintln!("reading {}: {e} (retrying)", self.topic),
                None => {}
            }
        }
    }

    /// Every record read so far, in the order read (per partition, in offset order).
    pub fn records(&self) -> &[Record] {
        &self.records
    }
}

/// Whether consumer group `group` has committed, on every partition of `topic`, the offset at
/// the end of the log (it has consumed, and made durable, everything on it now). A group that
/// has committed nothing on a non-empty partition has not.
pub fn group_at_end(brokers: &str, group: &str, topic: &str) -> bool {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let parts = partitions(&c, topic);
    let high = high_watermarks(&c, topic, &parts);
    let mut tpl = TopicPartitionList::new();
    for &p in &parts {
        tpl.add_partition(topic, p);
    }
    let Ok(committed) = c.committed_offsets(tpl, Duration::from_secs(10)) else {
        return false;
    };
    parts.iter().all(|&p| {
        let at = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => 0,
        };
        at >= high[&p]
    })
}

/// Produce records and wait until Kafka has them.
pub fn produce(brokers: &str, topic: &str, records: &[(String, Option<Vec<u8>>)]) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (k, v) in records {
        let mut r: BaseRecord<'_, String, Vec<u8>> = BaseRecord::to(topic).key(k);
        if let Some(v) = v {
            r = r.payload(v);
        }
        p.send(r).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(20)).unwrap();
}

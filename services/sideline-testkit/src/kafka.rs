//! Kafka helpers for tests: create topics, read a topic back from the beginning.

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
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("sideline-test-reader-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    // A broker busy with a whole pipeline may answer slowly: retry for a minute.
    let t0 = Instant::now();
    let md = loop {
        match c.fetch_metadata(Some(topic), Duration::from_secs(10)) {
            Ok(md) => break md,
            Err(e) if t0.elapsed() < Duration::from_secs(60) => {
                eprintln!("read_topic {topic}: {e}; retrying");
            }
            Err(e) => panic!("read_topic {topic}: {e}"),
        }
    };
    let parts = md.topics()[0].partitions().len() as i32;
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
    while out.len() < want {
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
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers,
                    timestamp_ms: m.timestamp().to_millis(),
                });
            }
            // Transient (e.g. just after a broker restart): keep reading until `idle`.
            Some(Err(e)) => eprintln!("reading {topic}: {e} (retrying)"),
            None => {}
        }
    }
    out
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

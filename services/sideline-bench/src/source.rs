//! The bench's Kafka side: one consumer, with no group and no commits (every bench instance
//! reads everything), assigned every partition of the metrics and alerts topics from
//! `bench.history_h` ago, and of the roster and acks topics from their start; and a producer
//! writing the page's acknowledgements to the acks topic (keyed by alert id), retried until
//! Kafka takes them. A record that does not decode is counted and skipped.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sideline_kafka::KafkaConfig;
use sideline_wire::pb;
use sideline_wire::roster::Roster;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::http::AckMade;
use crate::metrics::BenchMetrics;
use crate::model::{AlertItem, Snapshot};
use crate::view::{Person, SquadView};

/// Which topic a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Metrics,
    Alerts,
    Roster,
    Acks,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Metrics => "metrics",
            Role::Alerts => "alerts",
            Role::Roster => "roster",
            Role::Acks => "acks",
        }
    }
}

/// Where each of the topics starts: the metrics and alerts `history` ago, the rest at their
/// start.
fn start_offsets(
    c: &StreamConsumer,
    kafka: &KafkaConfig,
    history: Duration,
) -> Result<TopicPartitionList, rdkafka::error::KafkaError> {
    let timeout = Duration::from_secs(10);
    let t = &kafka.topics;
    let since_ms = (crate::http::now_us() / 1000) - history.as_millis() as i64;
    let mut timed = TopicPartitionList::new();
    let mut out = TopicPartitionList::new();
    for (topic, from_time) in [
        (&t.metrics, true),
        (&t.alerts, true),
        (&t.roster, false),
        (&t.acks, false),
    ] {
        let md = c.fetch_metadata(Some(topic), timeout)?;
        if md.topics().iter().all(|m| m.partitions().is_empty()) {
            // Not created yet (the other services create the topics at their start): wait
            // for all four rather than follow some and never the others.
            return Ok(TopicPartitionList::new());
        }
        for p in md.topics().iter().flat_map(|m| m.partitions()) {
            if from_time {
                timed.add_partition_offset(topic, p.id(), Offset::Offset(since_ms))?;
            } else {
                out.add_partition_offset(topic, p.id(), Offset::Beginning)?;
            }
        }
    }
    let found = c.offsets_for_times(timed, timeout)?;
    for e in found.elements() {
        // A partition with nothing that recent has no offset for the time: read its end.
        let at = match e.offset() {
            Offset::Offset(o) if o >= 0 => Offset::Offset(o),
            _ => Offset::End,
        };
        out.add_partition_offset(e.topic(), e.partition(), at)?;
    }
    Ok(out)
}

/// Follow the topics into `view` until `stop`; `ready` is told once reading has started.
pub async fn follow(
    kafka: KafkaConfig,
    history: Duration,
    view: Arc<RwLock<SquadView>>,
    alerts: broadcast::Sender<AlertItem>,
    metrics: BenchMetrics,
    ready: impl Fn(bool),
    stop: CancellationToken,
) -> Result<(), rdkafka::error::KafkaError> {
    let consumer: StreamConsumer = kafka
        .client_config(
            &format!("sideline-bench-{}", std::process::id()),
            &[
                (
                    "group.id",
                    &format!("sideline-bench-{}", std::process::id()),
                ),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
            ],
        )
        .map_err(|e| rdkafka::error::KafkaError::ClientCreation(e.to_string()))?
        .create()?;
    // The topics may not exist yet (the processor creates them): retry until they do.
    let mut delay = Duration::from_millis(500);
    let tpl = loop {
        match start_offsets(&consumer, &kafka, history) {
            Ok(tpl) if tpl.count() > 0 => break tpl,
            Ok(_) => tracing::warn!(message = "The topics do not all exist yet; retrying."),
            Err(error) => {
                tracing::warn!(message = "Kafka not ready for the bench; retrying.", %error)
            }
        }
        ready(false);
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    };
    consumer.assign(&tpl)?;
    ready(true);
    tracing::info!(
        message = "Bench following its topics.",
        partitions = tpl.count(),
        history_h = history.as_secs() / 3600
    );
    let t = kafka.topics.clone();
    let mut roster = Roster::default();
    let mut stream = consumer.stream();
    loop {
        let m = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            m = stream.next() => m,
        };
        let m = match m {
            Some(Ok(m)) => m,
            Some(Err(error)) => {
                tracing::warn!(message = "Kafka consumer error.", %error);
                ready(false);
                continue;
            }
            None => return Ok(()),
        };
        ready(true);
        let role = match m.topic() {
            x if x == t.metrics => Role::Metrics,
            x if x == t.alerts => Role::Alerts,
            x if x == t.roster => Role::Roster,
            _ => Role::Acks,
        };
        let as_of_us = m
            .timestamp()
            .to_millis()
            .map_or_else(crate::http::now_us, |ms| ms * 1000);
        let ok = apply(
            role,
            m.key(),
            m.payload(),
            as_of_us,
            &view,
            &alerts,
            &mut roster,
        );
        let result = if ok { "ok" } else { "bad" };
        metrics
            .records
            .with_label_values(&[role.label(), result])
            .inc();
        if !ok {
            tracing::warn!(
                message = "Record skipped: it does not decode.",
                topic = m.topic(),
                partition = m.partition(),
                offset = m.offset()
            );
        }
    }
}

/// Apply one record; `false` if it does not decode.
fn apply(
    role: Role,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    as_of_us: i64,
    view: &RwLock<SquadView>,
    alerts: &broadcast::Sender<AlertItem>,
    roster: &mut Roster,
) -> bool {
    let mut v = view.write().unwrap_or_else(|p| p.into_inner());
    match role {
        Role::Metrics => match payload.map(pb::PlayerMetrics::decode) {
            Some(Ok(m)) => {
                v.snapshot(Snapshot::from_pb(&m), as_of_us);
                true
            }
            _ => false,
        },
        Role::Alerts => match payload.map(pb::Alert::decode) {
            Some(Ok(a)) => match AlertItem::from_pb(&a) {
                Some(item) => {
                    v.alert(item.clone());
                    let _ = alerts.send(item);
                    true
                }
                None => false,
            },
            _ => false,
        },
        Role::Acks => match payload.map(pb::AlertAck::decode) {
            Some(Ok(a)) if !a.alert_id.is_empty() => {
                v.record_ack(&a.alert_id, &a.by, a.at_us);
                true
            }
            // A deleted key (compaction tombstone) is not an error.
            None => true,
            _ => false,
        },
        Role::Roster => {
            let Some(key) = key else { return false };
            if roster.apply(key, payload).is_err() {
                return false;
            }
            if let Some(player) = std::str::from_utf8(key)
                .ok()
                .and_then(|k| k.strip_prefix("player:"))
            {
                match roster.athlete(player) {
                    Some(p) => v.set_person(
                        player,
                        Person {
                            name: p.display_name.clone(),
                            number: p.squad_number,
                            position: p.position.clone(),
                        },
                    ),
                    None => v.remove_person(player),
                }
            }
            true
        }
    }
}

/// Write the page's acknowledgements to the acks topic until `stop`; each is retried until
/// Kafka takes it (the page already shows it; the alerter hears of it when it lands).
pub async fn write_acks(
    producer: FutureProducer,
    topic: String,
    mut rx: mpsc::Receiver<AckMade>,
    metrics: BenchMetrics,
    stop: CancellationToken,
) {
    loop {
        let made = tokio::select! {
            _ = stop.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        let a = &made.alert;
        let value = pb::AlertAck {
            alert_id: a.id.clone(),
            kind: a.kind.clone(),
            severity: a.severity.clone(),
            player_id: a.player.clone(),
            team_id: a.team.clone(),
            session_id: a.session.clone(),
            by: made.by.clone(),
            at_us: made.at_us,
            since_us: a.since,
        }
        .encode_to_vec();
        let written = send_retrying(&producer, &topic, &a.id, &value, &stop, |ok| {
            let result = if ok { "ok" } else { "failed" };
            metrics.acks_written.with_label_values(&[result]).inc();
        })
        .await;
        if !written {
            return;
        }
        tracing::info!(message = "Acknowledgement written.", alert = %a.id, by = %made.by);
    }
}

/// Put lineup changes posted on the page (`POST /api/pitch`) on the roster topic, each
/// retried until Kafka takes it (`sideline_bench_lineup_written_total{result}`).
pub async fn write_lineup(
    producer: FutureProducer,
    topic: String,
    mut rx: mpsc::Receiver<crate::http::RecordBatch>,
    metrics: BenchMetrics,
    stop: CancellationToken,
) {
    loop {
        let records = tokio::select! {
            _ = stop.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        for (key, value) in records {
            let written = send_retrying(&producer, &topic, &key, &value, &stop, |ok| {
                let result = if ok { "ok" } else { "failed" };
                metrics.lineup_written.with_label_values(&[result]).inc();
            })
            .await;
            if !written {
                return;
            }
            tracing::info!(message = "Lineup change written.", %key);
        }
    }
}

/// Send one record until Kafka takes it (backing off 0.5 s … 30 s), telling `attempt` of each
/// try's result; `false` if stopped first.
async fn send_retrying(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: &[u8],
    stop: &CancellationToken,
    attempt: impl Fn(bool),
) -> bool {
    let mut delay = Duration::from_millis(500);
    loop {
        let rec = FutureRecord::to(topic).key(key).payload(value);
        match producer.send(rec, Duration::from_secs(5)).await {
            Ok(_) => {
                attempt(true);
                return true;
            }
            Err((error, _)) => {
                attempt(false);
                tracing::warn!(message = "Record not written yet; retrying.", %topic, %key, %error);
                tokio::select! {
                    _ = stop.cancelled() => return false,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_records_are_refused_and_names_follow_the_roster() {
        let view = RwLock::new(SquadView::default());
        let (tx, _rx) = broadcast::channel(4);
        let mut roster = Roster::default();
        for role in [Role::Metrics, Role::Alerts, Role::Acks] {
            assert!(
                !apply(role, None, Some(b"\xff\xff"), 0, &view, &tx, &mut roster),
                "{role:?}"
            );
        }
        assert!(!apply(
            Role::Roster,
            Some(b"nonsense"),
            Some(b"x"),
            0,
            &view,
            &tx,
            &mut roster
        ));
        let profile = sideline_engine::AthleteProfile {
            player: "home-07".into(),
            display_name: Some("Ada Hart".into()),
            squad_number: Some(7),
            ..Default::default()
        };
        let value = sideline_wire::convert::profile_to_pb(&profile).encode_to_vec();
        assert!(apply(
            Role::Roster,
            Some(b"player:home-07"),
            Some(&value),
            0,
            &view,
            &tx,
            &mut roster
        ));
        let cfg = sideline_sim::MatchConfig {
            half_min: 1.0,
            break_min: 0.0,
            ..sideline_sim::MatchConfig::default()
        };
        let mut last = None;
        sideline_sim::offline::run_match(cfg, sideline_engine::Params::default(), |m| {
            if &*m.player == "home-07" {
                last = Some(sideline_wire::convert::metrics(m).encode_to_vec());
            }
        });
        assert!(apply(
            Role::Metrics,
            None,
            last.as_deref(),
            5,
            &view,
            &tx,
            &mut roster
        ));
        let v = view.read().unwrap();
        let key = v.pick(None, None).unwrap();
        let rows = v.squad(&key);
        assert_eq!(rows[0].person.name.as_deref(), Some("Ada Hart"));
        assert_eq!(rows[0].person.number, Some(7));
        drop(v);
        // The profile deleted: the name goes.
        assert!(apply(
            Role::Roster,
            Some(b"player:home-07"),
            None,
            0,
            &view,
            &tx,
            &mut roster
        ));
        let v = view.read().unwrap();
        assert_eq!(v.squad(&key)[0].person.name, None);
    }
}

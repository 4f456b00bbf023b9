//! One MQTT message → Kafka (or the demo's in-process bus, through [`RecordSink`]). Nothing here acknowledges MQTT: the caller does, in receive order,
//! once [`Pipeline::handle`] has returned, i.e. once Kafka has acknowledged the record (to the
//! samples topic, or with its reason to the dead-letter topic).
//!
//! At every limit: a payload over `max_payload_bytes` is dead-lettered with its first 64 KiB;
//! a batch that does not validate is dead-lettered with the reason of its first problem and up
//! to 20 located problems in a header; a device missing from the roster is dead-lettered
//! (`unknown_device`), and one whose team is not its wearer's team on the roster too
//! (`team_mismatch`); a record Kafka will never take (e.g. over the broker's size limit) is
//! dead-lettered (`kafka_rejected`); while Kafka is unreachable a record is retried with
//! back-off forever — the message stays unacknowledged, so after `max_inflight` such messages
//! the broker stops sending (backpressure) instead of the service buffering without limit; a
//! fatal producer error (e.g. the broker lost our idempotence state) rebuilds the producer and
//! sends again. Only when the dead-letter topic itself refuses a record is a message counted as
//! dropped (`sideline_ingest_messages_dropped_total`) and logged as an error.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message as _;
use sideline_bus::{Record, RecordSink, SinkError};
use sideline_mqtt::Message;
use sideline_wire::roster::Roster;
use sideline_wire::validate::{DecodeError, Limits, decode_batch, detect};
use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;
use crate::sources::Source;

/// How much of an oversize payload is kept in the dead-letter record.
const DLQ_PAYLOAD_KEEP: usize = 64 * 1024;

/// Where a message ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// On the samples topic.
    Accepted {
        /// Samples in the batch.
        samples: usize,
    },
    /// On the dead-letter topic.
    Rejected {
        /// Reason code.
        reason: &'static str,
    },
    /// Nowhere: the dead-letter topic refused it (counted and logged).
    Dropped {
        /// Reason code.
        reason: &'static str,
    },
    /// Not finished before shutdown: left unacknowledged for the broker to redeliver.
    Abandoned,
}

/// Everything `handle` needs (cheap to clone: the sink, roster and sources are shared).
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Where records go: Kafka ([`sideline_kafka::sink::ProducerSlot`]) or the demo's bus.
    pub sink: Arc<dyn RecordSink>,
    /// Samples topic.
    pub samples_topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Validation limits.
    pub limits: Limits,
    /// Largest payload.
    pub max_payload_bytes: usize,
    /// Check the payload's device/team against the topic.
    pub check_topic: bool,
    /// Device → player, and the teams' sessions.
    pub roster: Arc<RwLock<Roster>>,
    /// Hour (UTC) at which an unscheduled session day starts.
    pub session_day_start_utc_h: u8,
    /// Metrics.
    pub metrics: IngestMetrics,
    /// Cancelled when in-flight work must be abandoned (after the drain timeout).
    pub abort: CancellationToken,
    /// Feeds in vendors' shapes ([`crate::sources`]); MQTT messages on their topics are
    /// decoded by their shape instead of as `SampleBatch`es.
    pub sources: Arc<Vec<Arc<Source>>>,
}

pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// `sideline/v1/{team}/{device}/{stream}` → (team, device).
fn parse_topic(topic: &str) -> Option<(&str, &str)> {
    let mut p = topic.split('/');
    match (p.next(), p.next(), p.next(), p.next(), p.next(), p.next()) {
        (Some("sideline"), Some("v1"), Some(team), Some(device), Some(_stream), None)
            if !team.is_empty() && !device.is_empty() =>
        {
            Some((team, device))
        }
        _ => None,
    }
}

pub(crate) enum Rejection {
    Reason(&'static str, String),
}

impl Pipeline {
    /// The pipeline `cfg` describes, writing to `sink` (topics from `cfg.kafka.topics`).
    pub fn from_config(
        cfg: &crate::IngestConfig,
        sink: Arc<dyn RecordSink>,
        roster: Arc<RwLock<Roster>>,
        metrics: &IngestMetrics,
    ) -> Self {
        Pipeline {
            sink,
            samples_topic: cfg.kafka.topics.samples.clone(),
            dlq_topic: cfg.kafka.topics.dlq.clone(),
            limits: Limits {
                max_samples: cfg.ingest.max_samples,
                max_id_len: 64,
                max_future_s: cfg.ingest.max_future_s,
                max_past_s: (cfg.ingest.max_past_s > 0.0).then_some(cfg.ingest.max_past_s),
            },
            max_payload_bytes: cfg.ingest.max_payload_bytes,
            check_topic: cfg.ingest.check_topic,
            roster,
            session_day_start_utc_h: cfg.ingest.session_day_start_utc_h,
            metrics: metrics.clone(),
            abort: CancellationToken::new(),
            sources: Arc::new(crate::sources::compile(&cfg.sources).unwrap_or_default()),
        }
    }

    /// Put one message on Kafka (samples or dead-letter topic).
    pub async fn handle(&self, m: &Message) -> Outcome {
        for src in self.sources.iter() {
            if let Some(device) = src.matches(&m.topic) {
                return self
                    .handle_source(src, &m.topic, &m.payload, device.as_deref())
                    .await;
            }
        }
        let received = Instant::now();
        let now = now_us();
        self.metrics.received.inc();
        self.metrics.received_bytes.inc_by(m.payload.len() as u64);
        match self.route(m, now) {
            Ok((key, value, samples, newest)) => {
                match self
                    .produce(&self.samples_topic, &key, &value, Vec::new())
                    .await
                {
                    Ok(()) => {
                        self.metrics.produced.with_label_values(&["samples"]).inc();
                        self.metrics.accepted.inc();
                        self.metrics.accepted_samples.inc_by(samples as u64);
                        self.metrics
                            .ack_latency
                            .observe(received.elapsed().as_secs_f64());
                        self.metrics
                            .event_latency
                            .observe(((now_us() - newest) as f64 / 1e6).max(0.0));
                        Outcome::Accepted { samples }
                    }
                    Err(ProduceEnd::Abandoned) => Outcome::Abandoned,
                    Err(ProduceEnd::Rejected(e)) => {
                        self.dead_letter(m, "kafka_rejected", &e, now).await
                    }
                }
            }
            Err(Rejection::Reason(reason, detail)) => {
                self.dead_letter(m, reason, &detail, now).await
            }
        }
    }

    /// Validate and route: (key, value, samples, newest event time) or why not.
    fn route(&self, m: &Message, now: i64) -> Result<(String, Vec<u8>, usize, i64), Rejection> {
        let topic = parse_topic(&m.topic);
        if self.check_topic && topic.is_none() {
            return Err(Rejection::Reason(
                "bad_topic",
                format!(
                    "{:?} is not sideline/v1/{{team}}/{{device}}/{{stream}}",
                    m.topic
                ),
            ));
        }
        if m.payload.len() > self.max_payload_bytes {
            return Err(Rejection::Reason(
                "payload_too_large",
                format!("{} bytes > {}", m.payload.len(), self.max_payload_bytes),
            ));
        }
        let (pb, batch) = decode_batch(&m.payload, &self.limits, Some(now))
            .map_err(|e: DecodeError| Rejection::Reason(e.kind().as_str(), e.to_string()))?;
        if self.check_topic
            && let Some((team, device)) = topic
            && (team != pb.team_id || device != pb.device_id)
        {
            return Err(Rejection::Reason(
                "topic_mismatch",
                format!(
                    "topic says {team}/{device}, payload says {}/{}",
                    pb.team_id, pb.device_id
                ),
            ));
        }
        self.assign(pb, &batch, now)
    }

    /// The roster's player, team and session for a valid batch: its record's key and value,
    /// samples and newest event time, or why not.
    pub(crate) fn assign(
        &self,
        mut pb: sideline_wire::pb::SampleBatch,
        batch: &sideline_engine::Batch,
        now: i64,
    ) -> Result<(String, Vec<u8>, usize, i64), Rejection> {
        let first = batch.samples.iter().map(|s| s.t).min().unwrap_or(now);
        let newest = batch.samples.iter().map(|s| s.t).max().unwrap_or(now);
        let player = {
            let roster = match self.roster.read() {
                Ok(r) => r,
                Err(poisoned) => poisoned.into_inner(),
            };
            roster.lookup(&pb.device_id, first).map(|a| {
                let session =
                    roster
                        .schedule()
                        .session(&a.team, first, self.session_day_start_utc_h);
                (a.player.clone(), a.team.clone(), session)
            })
        };
        let Some((player, team, session)) = player else {
            return Err(Rejection::Reason(
                "unknown_device",
                format!("{} is not on the roster", pb.device_id),
            ));
        };
        // The team is the roster's: a pod that names another team (misconfigured, or moved
        // between squads without a roster change) would route or hide its player's alerts.
        if !team.is_empty() && pb.team_id != team {
            return Err(Rejection::Reason(
                "team_mismatch",
                format!(
                    "{} says team {:?}; the roster puts it on {player} of team {team:?}",
                    pb.device_id, pb.team_id
                ),
            ));
        }
        pb.player_id = player.clone();
        pb.received_at_us = now;
        // The club's session, not the pod's: a pod rebooting mid-match with a new id of its
        // own stays in its player's session (his totals and risk history go on).
        pb.device_session_id = std::mem::replace(&mut pb.session_id, session);
        Ok((player, pb.encode_to_vec(), batch.samples.len(), newest))
    }

    async fn dead_letter(
        &self,
        m: &Message,
        reason: &'static str,
        detail: &str,
        now: i64,
    ) -> Outcome {
        self.dead_letter_raw(&m.topic, &m.payload, reason, detail, now)
            .await
    }

    /// Put `payload` (received on `topic`: an MQTT topic or a source's address) on the
    /// dead-letter topic with its reason.
    pub(crate) async fn dead_letter_raw(
        &self,
        topic: &str,
        payload: &[u8],
        reason: &'static str,
        detail: &str,
        now: i64,
    ) -> Outcome {
        let keep = payload.len().min(DLQ_PAYLOAD_KEEP);
        let truncated = if keep < payload.len() {
            "true"
        } else {
            "false"
        };
        let format = match detect(payload) {
            sideline_wire::validate::PayloadFormat::Json => "json",
            sideline_wire::validate::PayloadFormat::Protobuf => "protobuf",
        };
        let detail: String = detail.chars().take(4000).collect();
        let now_s = now.to_string();
        let size = payload.len().to_string();
        let headers: Vec<(String, Bytes)> = [
            (sideline_wire::dlq::REASON, reason),
            (sideline_wire::dlq::DETAIL, detail.as_str()),
            (sideline_wire::dlq::MQTT_TOPIC, topic),
            (sideline_wire::dlq::RECEIVED_AT_US, now_s.as_str()),
            (sideline_wire::dlq::FORMAT, format),
            (sideline_wire::dlq::PAYLOAD_BYTES, size.as_str()),
            (sideline_wire::dlq::TRUNCATED, truncated),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Bytes::copy_from_slice(v.as_bytes())))
        .collect();
        let key = parse_topic(topic).map_or("unknown", |(_, d)| d).to_string();
        match self
            .produce(&self.dlq_topic, &key, &payload[..keep], headers)
            .await
        {
            Ok(()) => {
                self.metrics.produced.with_label_values(&["dlq"]).inc();
                self.metrics.rejected.with_label_values(&[reason]).inc();
                Outcome::Rejected { reason }
            }
            Err(ProduceEnd::Abandoned) => Outcome::Abandoned,
            Err(ProduceEnd::Rejected(error)) => {
                self.metrics.dropped.with_label_values(&[reason]).inc();
                tracing::error!(message = "The dead-letter topic refused a message; it is dropped.", reason, %error, topic = %topic);
                Outcome::Dropped { reason }
            }
        }
    }

    /// Produce until the log acknowledges, refuses for good, or work is abandoned.
    pub(crate) async fn produce(
        &self,
        topic: &str,
        key: &str,
        value: &[u8],
        headers: Vec<(String, Bytes)>,
    ) -> Result<(), ProduceEnd> {
        let record = Record {
            topic: topic.to_string(),
            key: key.to_string(),
            value: Bytes::copy_from_slice(value),
            headers,
        };
        let mut delay = Duration::from_millis(100);
        loop {
            let sent = tokio::select! {
                _ = self.abort.cancelled() => return Err(ProduceEnd::Abandoned),
                r = self.sink.send(record.clone()) => r,
            };
            match sent {
                Ok(()) => return Ok(()),
                Err(SinkError::Reject(error)) => return Err(ProduceEnd::Rejected(error)),
                Err(SinkError::Retry { class, detail }) => {
                    self.metrics
                        .produce_retries
                        .with_label_values(&[class])
                        .inc();
                    tracing::debug!(message = "Produce failed; retrying.", error = %detail, delay_ms = delay.as_millis() as u64);
                }
            }
            tokio::select! {
                _ = self.abort.cancelled() => return Err(ProduceEnd::Abandoned),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

pub(crate) enum ProduceEnd {
    Rejected(String),
    Abandoned,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideline_bus::MemoryBus;
    use sideline_engine::{Batch, Sample};
    use sideline_mqtt::AckHandle;
    use sideline_wire::topic::{Encoding, encode, topic_for};

    fn message(topic: &str, payload: Vec<u8>) -> Message {
        let p = rumqttc::Publish::new(topic, rumqttc::QoS::AtLeastOnce, payload.clone());
        Message {
            topic: topic.into(),
            payload: payload.into(),
            needs_ack: true,
            duplicate: false,
            ack: AckHandle::V4(p),
            connection: 1,
        }
    }

    fn pipeline(bus: &MemoryBus) -> Pipeline {
        let roster = Roster::from_toml(
            "[[devices]]\ndevice = \"pod-1\"\nplayer = \"home-07\"\nteam = \"home\"\n",
        )
        .unwrap();
        Pipeline {
            sink: Arc::new(bus.clone()),
            samples_topic: "samples".into(),
            dlq_topic: "dlq".into(),
            limits: Limits::default(),
            max_payload_bytes: 1 << 20,
            check_topic: true,
            roster: Arc::new(RwLock::new(roster)),
            session_day_start_utc_h: 4,
            metrics: IngestMetrics::new(&prometheus::Registry::new()).unwrap(),
            abort: CancellationToken::new(),
            sources: Arc::default(),
        }
    }

    /// The session is the club's: the schedule's while one is in force, else the team's
    /// session day; what the pod calls it is kept aside. A pod rebooting mid-match with a new
    /// session id and its counter from 1 stays in the same session.
    #[tokio::test]
    async fn the_session_comes_from_the_schedule_never_from_the_pod() {
        let bus = MemoryBus::new(16);
        let mut samples = bus.subscribe("samples");
        let p = pipeline(&bus);
        let now = now_us();
        let send = |session: &str, seq: u64, t: i64| {
            let b = Batch {
                device: "pod-1".into(),
                team: "home".into(),
                session: session.into(),
                seq,
                samples: vec![Sample::xy(t, 1.0, 2.0, Some(3.0))],
            };
            message(&topic_for(&b), encode(&b, Encoding::Protobuf))
        };
        let mut stamped = Vec::new();
        for (session, seq) in [("boot-1", 40), ("boot-2", 1)] {
            let out = p.handle(&send(session, seq, now - 5_000_000)).await;
            assert!(matches!(out, Outcome::Accepted { .. }), "{out:?}");
            let r = samples.recv().await.unwrap();
            let pb = sideline_wire::pb::SampleBatch::decode(r.value.as_ref()).unwrap();
            assert_eq!(pb.device_session_id, session);
            stamped.push(pb.session_id);
        }
        let day = sideline_wire::schedule::session_day("home", now - 5_000_000, 4);
        assert_eq!(stamped, [day.clone(), day]);

        // The match is scheduled from a minute ago: the same pod's data is the match's.
        let entry = format!(
            "[[devices]]\ndevice = \"pod-1\"\nplayer = \"home-07\"\nteam = \"home\"\n\
             [[sessions]]\nteam = \"home\"\nsession = \"cup-final\"\nstart_us = {}\n",
            now - 60_000_000
        );
        *p.roster.write().unwrap() = Roster::from_toml(&entry).unwrap();
        let out = p.handle(&send("boot-3", 2, now - 1_000_000)).await;
        assert!(matches!(out, Outcome::Accepted { .. }), "{out:?}");
        let r = samples.recv().await.unwrap();
        let pb = sideline_wire::pb::SampleBatch::decode(r.value.as_ref()).unwrap();
        assert_eq!(
            (pb.session_id.as_str(), pb.device_session_id.as_str()),
            ("cup-final", "boot-3")
        );
    }

    #[tokio::test]
    async fn the_same_pipeline_runs_over_the_in_process_bus() {
        let bus = MemoryBus::new(16);
        let (mut samples, mut dlq) = (bus.subscribe("samples"), bus.subscribe("dlq"));
        let p = pipeline(&bus);
        let now = now_us();
        let b = Batch {
            device: "pod-1".into(),
            team: "home".into(),
            session: "m1".into(),
            seq: 1,
            samples: vec![Sample::xy(now - 1_000_000, 1.0, 2.0, Some(3.0))],
        };
        let out = p
            .handle(&message(&topic_for(&b), encode(&b, Encoding::Json)))
            .await;
        assert!(matches!(out, Outcome::Accepted { samples: 1 }), "{out:?}");
        let r = samples.recv().await.unwrap();
        assert_eq!(r.key, "home-07");
        let pb = sideline_wire::pb::SampleBatch::decode(r.value.as_ref()).unwrap();
        assert_eq!(pb.player_id, "home-07");

        // Garbage goes to the dead-letter topic with its reason.
        let out = p
            .handle(&message(
                "sideline/v1/home/pod-1/position",
                b"{nope".to_vec(),
            ))
            .await;
        assert!(
            matches!(
                out,
                Outcome::Rejected {
                    reason: "malformed"
                }
            ),
            "{out:?}"
        );
        let r = dlq.recv().await.unwrap();
        assert_eq!(r.value.as_ref(), b"{nope");
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == sideline_wire::dlq::REASON && v.as_ref() == b"malformed")
        );

        // A pod that names another team than its wearer's on the roster (topic and payload
        // agreeing) speaks for nobody: dead-lettered, never routed to the away team.
        let away = Batch {
            team: "away".into(),
            seq: 2,
            ..b.clone()
        };
        let out = p
            .handle(&message(&topic_for(&away), encode(&away, Encoding::Json)))
            .await;
        assert!(
            matches!(
                out,
                Outcome::Rejected {
                    reason: "team_mismatch"
                }
            ),
            "{out:?}"
        );
        assert!(
            dlq.recv()
                .await
                .unwrap()
                .headers
                .iter()
                .any(|(k, v)| k == sideline_wire::dlq::REASON && v.as_ref() == b"team_mismatch")
        );
    }

    #[tokio::test]
    async fn with_no_consumer_a_message_is_held_not_lost() {
        let bus = MemoryBus::new(16);
        let p = pipeline(&bus);
        let b = Batch {
            device: "pod-1".into(),
            team: "home".into(),
            session: "m1".into(),
            seq: 2,
            samples: vec![Sample::xy(now_us() - 1_000_000, 1.0, 2.0, None)],
        };
        let msg = message(&topic_for(&b), encode(&b, Encoding::Protobuf));
        let held = tokio::time::timeout(std::time::Duration::from_millis(400), p.handle(&msg));
        assert!(
            held.await.is_err(),
            "finished with nowhere to put the record"
        );
        let retries = p
            .metrics
            .produce_retries
            .with_label_values(&["no_consumer"])
            .get();
        assert!(retries >= 1, "{retries}");
        // Once a consumer is there, the same message goes through.
        let mut rx = bus.subscribe("samples");
        assert!(matches!(p.handle(&msg).await, Outcome::Accepted { .. }));
        assert_eq!(rx.recv().await.unwrap().key, "home-07");
    }

    #[test]
    fn topics_are_parsed_strictly() {
        assert_eq!(
            parse_topic("sideline/v1/home/pod-1/imu"),
            Some(("home", "pod-1"))
        );
        assert_eq!(parse_topic("sideline/v1/home/pod-1"), None);
        assert_eq!(parse_topic("sideline/v1/home/pod-1/imu/x"), None);
        assert_eq!(parse_topic("sideline/v2/home/pod-1/imu"), None);
        assert_eq!(parse_topic("sideline/v1//pod-1/imu"), None);
    }
}

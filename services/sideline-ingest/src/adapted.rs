//! A message in a vendor's shape ([`crate::sources`]) → one record per device on the samples
//! topic, each validated and routed exactly like a pod's own batch (roster, team, session).
//!
//! At every limit: a payload over `max_payload_bytes`, or one the shape cannot read (not JSON,
//! a field that is there but unreadable, a bad time), is dead-lettered whole with the located
//! reason. Records without a device id or without a reading (a ball, a referee, a battery
//! message) are skipped and counted (`sideline_ingest_source_skipped_total`), as are devices
//! not on the roster when the shape says the feed carries everyone (`skip_unknown`); otherwise
//! an unknown device, like a record that fails validation or that Kafka refuses, puts the
//! message on the dead-letter topic once, with every such record's reason, while its good
//! records go on. The message counts as handled (MQTT acknowledgement, the WebSocket
//! source's watermark) only when all of that is on the log.

use std::time::Instant;

use sideline_wire::adapter::{Context, decode};
use sideline_wire::validate::validate;

use crate::pipeline::{Outcome, Pipeline, ProduceEnd, Rejection, now_us};
use crate::sources::Source;

impl Pipeline {
    /// Put the records of one message from `src` on Kafka. `topic` is where it came from (MQTT
    /// topic or the source's address, for the dead-letter record); `device` the topic's
    /// `{device}` capture.
    pub async fn handle_source(
        &self,
        src: &Source,
        topic: &str,
        payload: &[u8],
        device: Option<&str>,
    ) -> Outcome {
        let received = Instant::now();
        let now = now_us();
        let m = &self.metrics;
        m.received.inc();
        m.received_bytes.inc_by(payload.len() as u64);
        m.source_messages.with_label_values(&[&src.name]).inc();
        if payload.len() > self.max_payload_bytes {
            let detail = format!("{} bytes > {}", payload.len(), self.max_payload_bytes);
            return self
                .dead_letter_raw(topic, payload, "payload_too_large", &detail, now)
                .await;
        }
        let ctx = Context {
            source: &src.name,
            device_prefix: &src.device_prefix,
            topic_device: device,
            received_us: now,
        };
        let decoded = match decode(&src.shape, &ctx, payload) {
            Ok(d) => d,
            Err(e) => {
                let detail = format!("source {}: {}", src.name, e.detail);
                return self
                    .dead_letter_raw(topic, payload, e.kind.as_str(), &detail, now)
                    .await;
            }
        };
        let skip = |reason: &str, n: usize| {
            if n > 0 {
                m.source_skipped
                    .with_label_values(&[src.name.as_str(), reason])
                    .inc_by(n as u64);
            }
        };
        skip("no_device", decoded.no_device);
        skip("no_reading", decoded.no_reading);
        let mut problems: Vec<(&'static str, String)> = Vec::new();
        let mut records = Vec::new();
        for mut pb in decoded.batches {
            let first = pb.samples.iter().map(|s| s.t_us).min().unwrap_or(now);
            let team = {
                let roster = match self.roster.read() {
                    Ok(r) => r,
                    Err(poisoned) => poisoned.into_inner(),
                };
                roster.lookup(&pb.device_id, first).map(|a| a.team.clone())
            };
            let Some(team) = team else {
                if src.shape.skip_unknown {
                    skip("unknown_device", 1);
                } else {
                    let d = format!("{} is not on the roster", pb.device_id);
                    problems.push(("unknown_device", d));
                }
                continue;
            };
            pb.team_id = team;
            let device = pb.device_id.clone();
            let routed = validate(&pb, &self.limits, Some(now))
                .map_err(|e| Rejection::Reason(e.kind().as_str(), e.to_string()))
                .and_then(|batch| self.assign(pb, &batch, now));
            match routed {
                Ok(r) => records.push(r),
                Err(Rejection::Reason(reason, d)) => {
                    problems.push((reason, format!("{device}: {d}")))
                }
            }
        }
        let sends = records
            .iter()
            .map(|(key, value, _, _)| self.produce(&self.samples_topic, key, value, Vec::new()));
        let mut samples = 0;
        let mut newest = None;
        for (sent, (_, _, n, t)) in futures::future::join_all(sends)
            .await
            .into_iter()
            .zip(&records)
        {
            match sent {
                Ok(()) => {
                    m.produced.with_label_values(&["samples"]).inc();
                    m.accepted_samples.inc_by(*n as u64);
                    m.source_records.with_label_values(&[&src.name]).inc();
                    samples += n;
                    newest = newest.max(Some(*t));
                }
                Err(ProduceEnd::Abandoned) => return Outcome::Abandoned,
                Err(ProduceEnd::Rejected(e)) => problems.push(("kafka_rejected", e)),
            }
        }
        if let Some(&(reason, _)) = problems.first() {
            let detail: Vec<String> = problems
                .iter()
                .take(20)
                .map(|(r, d)| format!("{r}: {d}"))
                .collect();
            let detail = format!("source {}: {}", src.name, detail.join("; "));
            let out = self
                .dead_letter_raw(topic, payload, reason, &detail, now)
                .await;
            if samples == 0 || out == Outcome::Abandoned {
                return out;
            }
        }
        m.accepted.inc();
        m.ack_latency.observe(received.elapsed().as_secs_f64());
        if let Some(t) = newest {
            m.event_latency
                .observe(((now_us() - t) as f64 / 1e6).max(0.0));
        }
        Outcome::Accepted { samples }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, RwLock};

    use prost::Message as _;
    use sideline_bus::MemoryBus;
    use sideline_wire::adapter::shapes::{Fix, league};
    use sideline_wire::pb;
    use sideline_wire::roster::Roster;
    use sideline_wire::validate::Limits;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::metrics::IngestMetrics;
    use crate::sources::{SourceConfig, compile};

    fn pipeline(bus: &MemoryBus, source: &str) -> (Pipeline, Arc<Source>) {
        let roster = Roster::from_toml(
            "[[devices]]\ndevice = \"lg-p7\"\nplayer = \"home-07\"\nteam = \"home\"\n\
             [[devices]]\ndevice = \"lg-p9\"\nplayer = \"home-09\"\nteam = \"home\"\n",
        )
        .unwrap();
        #[derive(serde::Deserialize)]
        struct F {
            sources: Vec<SourceConfig>,
        }
        let cfg = toml::from_str::<F>(source).unwrap().sources;
        let sources = compile(&cfg).unwrap();
        let p = Pipeline {
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
            sources: Arc::new(sources.clone()),
        };
        (p, Arc::clone(&sources[0]))
    }

    const LEAGUE: &str = "[[sources]]\nname = \"league\"\nprofile = \"league\"\nmqtt_topic = \"feed/{device}\"\ndevice_prefix = \"lg-\"\n";

    fn skipped(p: &Pipeline, reason: &str) -> u64 {
        p.metrics
            .source_skipped
            .with_label_values(&["league", reason])
            .get()
    }

    /// A frame of both teams: our two players go on the samples topic keyed by player, with
    /// the roster's team and the club's session; the opponent is skipped and counted.
    #[tokio::test]
    async fn a_multi_player_frame_becomes_one_record_per_rostered_player() {
        let bus = MemoryBus::new(16);
        let mut samples = bus.subscribe("samples");
        let (p, src) = pipeline(&bus, LEAGUE);
        let t = now_us() - 2_000_000;
        let fix = |id, x| Fix {
            id,
            x,
            y: 1.0,
            speed: Some(2.0),
        };
        let frame = league(
            "fx",
            11,
            t,
            &[fix("p7", 1.0), fix("p9", 2.0)],
            &[fix("a1", 3.0)],
        );
        let out = p.handle_source(&src, "ws:league", &frame, None).await;
        assert_eq!(out, Outcome::Accepted { samples: 2 });
        let mut keys = Vec::new();
        for _ in 0..2 {
            let r = samples.recv().await.unwrap();
            let b = pb::SampleBatch::decode(r.value.as_ref()).unwrap();
            assert_eq!(
                (b.team_id.as_str(), b.seq, b.device_session_id.as_str()),
                ("home", 11, "league")
            );
            keys.push(r.key);
        }
        keys.sort();
        assert_eq!(keys, ["home-07", "home-09"]);
        assert_eq!(skipped(&p, "unknown_device"), 1);
        assert_eq!(
            p.metrics
                .source_records
                .with_label_values(&["league"])
                .get(),
            2
        );
    }

    /// A record that fails validation puts the message on the dead-letter topic once, with the
    /// device and reason; the frame's good records still go on. A message the shape cannot read
    /// is dead-lettered whole. MQTT topics of the source are routed to it by `handle`.
    #[tokio::test]
    async fn bad_records_are_dead_lettered_with_their_device_and_good_ones_go_on() {
        let bus = MemoryBus::new(16);
        let mut samples = bus.subscribe("samples");
        let mut dlq = bus.subscribe("dlq");
        let (p, src) = pipeline(&bus, LEAGUE);
        let t = now_us() - 2_000_000;
        let frame = league(
            "fx",
            12,
            t,
            &[
                Fix {
                    id: "p7",
                    x: 1.0,
                    y: 1.0,
                    speed: Some(2.0),
                },
                Fix {
                    id: "p9",
                    x: 1.0,
                    y: 1.0,
                    speed: Some(-5.0),
                },
            ],
            &[],
        );
        assert_eq!(
            p.handle_source(&src, "ws:league", &frame, None).await,
            Outcome::Accepted { samples: 1 }
        );
        assert_eq!(samples.recv().await.unwrap().key, "home-07");
        let d = dlq.recv().await.unwrap();
        let h = |k: &str| {
            d.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| String::from_utf8_lossy(v).to_string())
        };
        assert_eq!(
            h(sideline_wire::dlq::REASON).as_deref(),
            Some("out_of_range")
        );
        let detail = h(sideline_wire::dlq::DETAIL).unwrap();
        assert!(
            detail.contains("lg-p9") && detail.contains("source league"),
            "{detail}"
        );
        assert_eq!(
            h(sideline_wire::dlq::MQTT_TOPIC).as_deref(),
            Some("ws:league")
        );

        let m = sideline_mqtt::Message {
            topic: "feed/x".into(),
            payload: b"{\"ix\": 1, \"hm\": 5}".to_vec().into(),
            needs_ack: true,
            duplicate: false,
            ack: sideline_mqtt::AckHandle::V4(rumqttc::Publish::new(
                "feed/x",
                rumqttc::QoS::AtLeastOnce,
                Vec::new(),
            )),
            connection: 1,
        };
        assert_eq!(
            p.handle(&m).await,
            Outcome::Rejected {
                reason: "malformed"
            }
        );
        assert_eq!(dlq.recv().await.unwrap().topic, "dlq");
        assert_eq!(
            p.metrics
                .source_messages
                .with_label_values(&["league"])
                .get(),
            2
        );
    }

    /// A heart-rate strap's 0x2A37 notification, the strap named by the topic.
    #[tokio::test]
    async fn a_strap_notification_on_its_topic_becomes_a_heart_rate_record() {
        let bus = MemoryBus::new(16);
        let mut samples = bus.subscribe("samples");
        let (p, _) = pipeline(
            &bus,
            "[[sources]]\nname = \"straps\"\nprofile = \"ble-hrm\"\nmqtt_topic = \"hr/{device}/2a37\"\ndevice_prefix = \"lg-\"\n",
        );
        let m = sideline_mqtt::Message {
            topic: "hr/p9/2a37".into(),
            payload: sideline_wire::adapter::ble::encode(171, &[351]).into(),
            needs_ack: true,
            duplicate: false,
            ack: sideline_mqtt::AckHandle::V4(rumqttc::Publish::new(
                "hr/p9/2a37",
                rumqttc::QoS::AtLeastOnce,
                Vec::new(),
            )),
            connection: 1,
        };
        assert_eq!(p.handle(&m).await, Outcome::Accepted { samples: 1 });
        let r = samples.recv().await.unwrap();
        assert_eq!(r.key, "home-09");
        let b = pb::SampleBatch::decode(r.value.as_ref()).unwrap();
        assert!(
            matches!(&b.samples[0].reading, Some(pb::sample::Reading::HeartRate(h)) if h.bpm == 171.0 && h.rr_ms == [351])
        );
    }
}

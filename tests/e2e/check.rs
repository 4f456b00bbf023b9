//! What the pipeline should give (the offline engine on the same batches) and what it gave,
//! compared: nothing lost, nothing counted twice, every alert delivered once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use sideline_engine::{Engine, Params};
use sideline_sim::MatchConfig;
use sideline_wire::{convert, pb};

use sideline_testkit::kafka::{Record, TopicReader, group_at_end};

use super::common;
use super::feed::{Windows, samples};
use super::{Pipeline, Post};

/// The offline engine's results on the batches a test sends.
pub struct Expected {
    /// Each player's final totals.
    pub totals: BTreeMap<String, pb::Totals>,
    /// Each player's last reported second, µs.
    pub last_t: BTreeMap<String, i64>,
    /// Alert ids with their player.
    pub alert_ids: BTreeMap<String, String>,
    /// Samples sent.
    pub samples: u64,
}

impl Expected {
    /// Windows of the synthetic match `cfg`, through an engine with the match's roster,
    /// profiles and baselines (what the pipeline gets from its topics).
    pub fn synthetic(cfg: &MatchConfig, windows: &Windows) -> Expected {
        let sim = sideline_sim::MatchSim::new(cfg.clone());
        Self::run(
            sideline_sim::offline::engine_for(&sim, Params::default()),
            windows,
        )
    }

    /// Any batches, with the roster `(device, player, team)`, default profiles.
    pub fn batches(roster: &[(String, String, String)], windows: &Windows) -> Expected {
        let mut e: Engine = Engine::new(Params::default(), false);
        for (d, p, t) in roster {
            e.assign(d, p, t);
        }
        Self::run(e, windows)
    }

    /// The engine `e` on `windows`, ticked at each window's time, as the pipeline would.
    fn run(mut e: Engine, windows: &Windows) -> Expected {
        let (mut out, mut alerts, mut last) = (
            sideline_engine::Outputs::default(),
            Vec::new(),
            BTreeMap::new(),
        );
        let mut keep = |out: &mut sideline_engine::Outputs| {
            alerts.append(&mut out.alerts);
            for m in out.metrics.drain(..) {
                last.insert(m.player.to_string(), m);
            }
        };
        for (t, batches) in windows {
            for b in batches {
                e.ingest_batch(b, &mut out);
            }
            e.tick(*t, &mut out);
            keep(&mut out);
        }
        e.finish(&mut out);
        keep(&mut out);
        Expected {
            totals: last
                .iter()
                .map(|(p, m)| (p.clone(), convert::metrics(m).totals.unwrap()))
                .collect(),
            last_t: last.iter().map(|(p, m)| (p.clone(), m.t)).collect(),
            alert_ids: alerts
                .iter()
                .map(|a| (a.id.to_string(), a.player.to_string()))
                .collect(),
            samples: samples(windows),
        }
    }
}

/// What came out of the pipeline.
pub struct Outcome {
    /// Every snapshot on the metrics topic.
    pub metrics: Vec<pb::PlayerMetrics>,
    /// Every event on the alerts topic.
    pub alerts: Vec<pb::Alert>,
    /// Alerts the chat must have had (see [`must_reach_chat`]).
    pub must_reach_chat: BTreeSet<String>,
    /// Every chat POST.
    pub posts: Vec<Post>,
    /// Rows in the archive's samples table.
    pub archive_rows: u64,
    /// Distinct (device, seq, idx) in it.
    pub archive_distinct: u64,
    /// From the call to [`Pipeline::outcome`] until the archive held every sample.
    pub archived: Duration,
    /// From the call to [`Pipeline::outcome`] until every output was complete (the last
    /// seconds wait for the partitions' idle hold, `processor.idle_advance_s`) and in the
    /// chat.
    pub caught_up: Duration,
}

/// Players whose figures may be shifted in time (a device clock off): their alerts are not
/// compared by id, their totals still are.
#[derive(Default)]
pub struct Allow {
    /// Players with a shifted clock.
    pub shifted: Vec<String>,
    /// Device alerts from this event time on are allowed though the offline run lacks them
    /// (a pod whose clock runs ahead streams on after its teammates stop: they look silent).
    pub device_alerts_from: Option<i64>,
}

/// The figures a fault test reports.
#[derive(Debug)]
pub struct Figures {
    /// Samples sent but missing from the archive.
    pub lost_samples: u64,
    /// Extra archive rows repeating a sample (at-least-once delivery; distinct rows = input).
    pub duplicate_rows: u64,
    /// Seconds reported more than once on the metrics topic (identical copies).
    pub repeated_seconds: usize,
    /// Chat entries delivered in more than one distinct message (must be 0).
    pub chat_duplicates: usize,
    /// Chat messages POSTed again with the same Idempotency-Key (a receiver drops them).
    pub chat_resends: usize,
    /// Seconds from the end of the feed until the archive held every sample.
    pub archived_s: f64,
    /// Seconds from the end of the feed until every output was complete.
    pub caught_up_s: f64,
}

impl Pipeline {
    /// The pipeline's main counters, for a failure message.
    async fn counts(&self) -> String {
        let mut counts = String::new();
        for (role, name) in [
            ("ingest", "sideline_ingest_messages_received_total"),
            ("ingest", "sideline_ingest_samples_accepted_total"),
            ("ingest", "sideline_ingest_messages_rejected_total"),
            ("ingest", "sideline_ingest_messages_dropped_total"),
            ("ingest", "sideline_ingest_mqtt_spilled_messages_total"),
            ("ingest", "sideline_ingest_mqtt_errors_total"),
            ("process", "sideline_processor_samples_total"),
            ("process", "sideline_processor_metrics_produced_total"),
            ("process", "sideline_processor_late_samples_total"),
        ] {
            counts += &format!("{name} {}\n", self.metric(role, name).await);
        }
        counts
    }

    /// Wait (up to `timeout`) until every player's last second is on the metrics topic, the
    /// archive holds every sample and the chat has every expected alert, then until every
    /// service has drained (so that anything that would come twice has come); gather the
    /// outputs. Every wait is on a condition, polled.
    pub async fn outcome(&self, want: &Expected, timeout: Duration) -> Outcome {
        let t0 = Instant::now();
        let brokers = self.kafka.brokers();
        let topics = self.kafka_config.topics.clone();
        let (mut rows, mut distinct) = self.archived_samples().await;
        while distinct < want.samples {
            if t0.elapsed() >= timeout {
                panic!(
                    "after {timeout:?} the archive holds {distinct} of {} samples\n{}{}",
                    want.samples,
                    self.counts().await,
                    self.tails()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            (rows, distinct) = self.archived_samples().await;
        }
        let archived = t0.elapsed();
        let mut metrics_topic = TopicReader::new(&brokers, &topics.metrics);
        let mut latest: HashMap<String, i64> = HashMap::new();
        loop {
            let seen = metrics_topic.records().len();
            tokio::task::block_in_place(|| metrics_topic.catch_up());
            for m in decode_metrics(&metrics_topic.records()[seen..]) {
                let t = latest.entry(m.player_id).or_insert(m.t_us);
                *t = (*t).max(m.t_us);
            }
            // (player, his latest second on the topic, the last one wanted), µs.
            let behind: Vec<_> = want
                .last_t
                .iter()
                .filter(|(p, t)| latest.get(p.as_str()).is_none_or(|m| m < *t))
                .map(|(p, t)| (p.clone(), latest.get(p.as_str()).copied(), *t))
                .collect();
            if behind.is_empty() {
                break;
            }
            if t0.elapsed() >= timeout {
                panic!(
                    "after {timeout:?} players still lack their last second (player, latest, wanted): {behind:?}\n{}{}",
                    self.counts().await,
                    self.tails()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let last_seconds = t0.elapsed();
        // Every output of the processor acknowledged: the alerts topic is complete.
        self.until_drained(&[Role::Process], t0, timeout).await;
        let mut alerts_topic = TopicReader::new(&brokers, &topics.alerts);
        tokio::task::block_in_place(|| alerts_topic.catch_up());
        let ids = must_reach_chat(&decode_alerts(alerts_topic.records()));
        loop {
            let got = delivered(&self.chat.lock().unwrap());
            if ids.iter().all(|id| got.contains_key(id)) {
                break;
            }
            assert!(
                t0.elapsed() < timeout,
                "after {timeout:?} alerts not in the chat: {:?}\n{}",
                ids.iter()
                    .filter(|i| !got.contains_key(*i))
                    .collect::<Vec<_>>(),
                self.tails()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let caught_up = t0.elapsed();
        // Anything that would come twice (a re-sent chat message, a re-archived row, a
        // re-reported second) is in flight until every consumer has drained: wait for that.
        self.until_drained(&[Role::Process, Role::Alert, Role::Archive], t0, timeout)
            .await;
        eprintln!(
            "outcome after the feed: archive complete {:.1} s, last seconds {:.1} s, chat {:.1} s, drained {:.1} s",
            archived.as_secs_f64(),
            last_seconds.as_secs_f64(),
            caught_up.as_secs_f64(),
            t0.elapsed().as_secs_f64()
        );
        let (rows, distinct) = if self.services.contains_key("archive") {
            self.archived_samples().await
        } else {
            (rows, distinct)
        };
        tokio::task::block_in_place(|| {
            metrics_topic.catch_up();
            alerts_topic.catch_up();
        });
        Outcome {
            metrics: decode_metrics(metrics_topic.records()),
            alerts: decode_alerts(alerts_topic.records()),
            must_reach_chat: ids,
            posts: self.chat.lock().unwrap().clone(),
            archive_rows: rows,
            archive_distinct: distinct,
            archived,
            caught_up,
        }
    }

    /// Rows of the archive's samples table, and distinct (device, seq, idx) among them.
    async fn archived_samples(&self) -> (u64, u64) {
        let r = self
            .sql(
                "SELECT (SELECT count(*) FROM samples) AS n, \
                 (SELECT count(*) FROM (SELECT DISTINCT device, seq, idx FROM samples)) AS d",
            )
            .await;
        (r[0][0].parse().unwrap(), r[0][1].parse().unwrap())
    }

    /// Wait until each of `roles` has drained: consumed its input to the end and made durable
    /// everything it will produce from it (see [`Self::drained`]).
    async fn until_drained(&self, roles: &[Role], t0: Instant, timeout: Duration) {
        for role in roles {
            loop {
                if self.drained(*role).await {
                    break;
                }
                assert!(
                    t0.elapsed() < timeout,
                    "after {timeout:?} {role:?} has not drained\n{}{}",
                    self.counts().await,
                    self.tails()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Whether `role` has drained: the processor has read every partition to its end and
    /// every output it produced is acknowledged; the alerter's group has committed the end of
    /// the alerts topic (it commits once its outbox holds what it read) and its outbox is
    /// empty; the archiver's group has committed the end of every topic it archives (it
    /// commits once the rows are in the archive) and buffers nothing.
    async fn drained(&self, role: Role) -> bool {
        let brokers = self.kafka.brokers();
        let t = &self.kafka_config.topics;
        match role {
            Role::Process => {
                self.processor_at_end().await
                    && self
                        .metric("process", "sideline_processor_pending_outputs")
                        .await
                        == 0.0
            }
            Role::Alert => {
                self.metric("alert", "sideline_alerter_outbox_pending")
                    .await
                    == 0.0
                    && tokio::task::block_in_place(|| {
                        group_at_end(&brokers, "sideline-alerter", &t.alerts)
                    })
            }
            Role::Archive if !self.services.contains_key("archive") => true,
            Role::Archive => {
                self.metric("archive", "sideline_archive_buffered_rows")
                    .await
                    == 0.0
                    && tokio::task::block_in_place(|| {
                        [&t.samples, &t.metrics, &t.alerts]
                            .iter()
                            .all(|topic| group_at_end(&brokers, "sideline-archive", topic))
                    })
            }
        }
    }
}

/// A service the outcome waits on.
#[derive(Debug, Clone, Copy)]
enum Role {
    Process,
    Alert,
    Archive,
}

fn decode_metrics(records: &[Record]) -> Vec<pb::PlayerMetrics> {
    records
        .iter()
        .map(|r| {
            <pb::PlayerMetrics as prost::Message>::decode(r.value.as_deref().unwrap()).unwrap()
        })
        .collect()
}

fn decode_alerts(records: &[Record]) -> Vec<pb::Alert> {
    records
        .iter()
        .map(|r| <pb::Alert as prost::Message>::decode(r.value.as_deref().unwrap()).unwrap())
        .collect()
}

/// The alerter's group wait (its default): an alert raised and closed within it (by its
/// event times) is never sent, by design (as Alertmanager's `group_wait`).
const GROUP_WAIT_US: i64 = 5_000_000;

/// Alerts that the chat must receive: every one that stayed open longer than the group wait
/// by its event times (1 s margin), whenever the alerter learnt of it — also one raised and
/// cleared while the alerter was down — but a "rising" warning, which red may supersede
/// silently.
fn must_reach_chat(alerts: &[pb::Alert]) -> BTreeSet<String> {
    let mut opened: BTreeMap<&str, (i64, Option<i64>, i32)> = BTreeMap::new();
    for a in alerts {
        let e = opened.entry(&a.id).or_insert((a.t_us, None, a.kind));
        if a.state == pb::alert::State::Resolved as i32 {
            e.1 = Some(a.t_us);
        }
    }
    opened
        .into_iter()
        .filter(|(_, (f, r, kind))| {
            *kind != pb::alert::Kind::StrainRiskRising as i32
                && r.is_none_or(|r| r - f > GROUP_WAIT_US + 1_000_000)
        })
        .map(|(id, _)| id.to_string())
        .collect()
}

/// Each alert id in the chat with the distinct messages (by Idempotency-Key) of each entry.
fn delivered(posts: &[Post]) -> HashMap<String, HashMap<String, HashSet<String>>> {
    let mut out: HashMap<String, HashMap<String, HashSet<String>>> = HashMap::new();
    for p in posts {
        for a in p.body["alerts"].as_array().into_iter().flatten() {
            let id = a["fingerprint"].as_str().unwrap_or_default().to_string();
            let entry = a["idempotencyKey"].as_str().unwrap_or_default().to_string();
            out.entry(id)
                .or_default()
                .entry(entry)
                .or_default()
                .insert(p.key.clone());
        }
    }
    out
}

impl Outcome {
    /// Compare with the offline run; panic on any loss or double count; the figures.
    pub fn check(&self, want: &Expected, allow: &Allow) -> Figures {
        // Totals: every player, equal to the offline engine's.
        let latest = common::latest(&self.metrics);
        let mut bad = Vec::new();
        for (p, t) in &want.totals {
            match latest.get(p) {
                Some(m) if m.totals.as_ref() == Some(t) => {}
                Some(m) => bad.push(format!("{p}:\n  pipeline {:?}\n  offline  {t:?}", m.totals)),
                None => bad.push(format!("{p}: no metrics")),
            }
        }
        assert!(bad.is_empty(), "totals differ:\n{}", bad.join("\n"));
        let extra: Vec<_> = latest
            .keys()
            .filter(|p| !want.totals.contains_key(*p))
            .collect();
        assert!(extra.is_empty(), "players the input lacks: {extra:?}");

        // A second reported twice carries the same figures (a replay after a restart).
        let mut first: HashMap<(&str, i64), &pb::PlayerMetrics> = HashMap::new();
        let mut repeated_seconds = 0;
        for m in &self.metrics {
            if let Some(prev) = first.insert((m.player_id.as_str(), m.t_us), m) {
                repeated_seconds += 1;
                assert_eq!(prev, m, "a second reported twice with different figures");
            }
        }

        // Alerts: the offline run's ids, no others (but session-end resolutions of them),
        // and one id per (player, kind, since).
        let got: BTreeSet<&str> = self.alerts.iter().map(|a| a.id.as_str()).collect();
        let compared = |p: &str| !allow.shifted.iter().any(|s| s == p);
        let missing: Vec<_> = want
            .alert_ids
            .iter()
            .filter(|(id, p)| compared(p) && !got.contains(id.as_str()))
            .collect();
        assert!(missing.is_empty(), "alerts missing: {missing:?}");
        let unexpected: Vec<_> = self
            .alerts
            .iter()
            .filter(|a| compared(&a.player_id) && !want.alert_ids.contains_key(&a.id))
            .filter(|a| {
                !(a.kind == pb::alert::Kind::Device as i32
                    && allow.device_alerts_from.is_some_and(|t| a.since_us >= t))
            })
            .map(|a| (&a.id, &a.summary))
            .collect();
        assert!(
            unexpected.is_empty(),
            "alerts the offline run lacks: {unexpected:?}"
        );
        let mut ids: HashMap<(&str, i32, i64), HashSet<&str>> = HashMap::new();
        for a in &self.alerts {
            ids.entry((&a.player_id, a.kind, a.since_us))
                .or_default()
                .insert(&a.id);
        }
        assert!(
            ids.values().all(|s| s.len() == 1),
            "one alert, several ids: {ids:?}"
        );

        // Chat: every alert that stayed open past the group wait delivered, nothing that is
        // not on the topic, each entry in one message only.
        let chat = delivered(&self.posts);
        for id in &self.must_reach_chat {
            assert!(chat.contains_key(id), "alert {id} never reached the chat");
        }
        for id in chat.keys() {
            assert!(
                got.contains(id.as_str()),
                "chat has {id}, which is not on the topic"
            );
        }
        let chat_duplicates = chat
            .values()
            .flat_map(|e| e.values())
            .filter(|msgs| msgs.len() > 1)
            .count();
        assert_eq!(
            chat_duplicates, 0,
            "an alert entry delivered in two messages"
        );
        let keys: HashSet<&str> = self.posts.iter().map(|p| p.key.as_str()).collect();
        assert!(
            keys.iter().all(|k| !k.is_empty()),
            "a POST without Idempotency-Key"
        );

        // Archive: every sample, once after de-duplication by (device, seq, idx).
        assert_eq!(
            self.archive_distinct, want.samples,
            "archive distinct samples vs samples sent"
        );
        Figures {
            lost_samples: want.samples - self.archive_distinct.min(want.samples),
            duplicate_rows: self.archive_rows - self.archive_distinct,
            repeated_seconds,
            chat_duplicates,
            chat_resends: self.posts.len() - keys.len(),
            archived_s: self.archived.as_secs_f64(),
            caught_up_s: self.caught_up.as_secs_f64(),
        }
    }
}

/// Print a fault test's figures (one line, `E2E <scenario>: …`, collected into BENCHMARKS.md)
/// and append it to `$SIDELINE_E2E_REPORT` when set.
pub fn report(scenario: &str, f: &Figures) {
    let line = format!(
        "E2E {scenario}: lost {} samples; {} duplicate archive rows (0 after dedup); {} seconds \
         re-reported identically; {} chat duplicates ({} re-sent POSTs); every sample archived \
         {:.1} s and every output out {:.1} s after the feed ended",
        f.lost_samples,
        f.duplicate_rows,
        f.repeated_seconds,
        f.chat_duplicates,
        f.chat_resends,
        f.archived_s,
        f.caught_up_s
    );
    note(&line);
}

/// Print a figure line and append it to `$SIDELINE_E2E_REPORT` when set (`make test` prints
/// that file at the end).
pub fn note(line: &str) {
    eprintln!("{line}");
    if let Ok(p) = std::env::var("SIDELINE_E2E_REPORT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
}

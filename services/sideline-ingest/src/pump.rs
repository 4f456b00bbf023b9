//! The MQTT side of ingest: subscribe, hand each message to the [`Pipeline`], acknowledge in
//! receive order once its record is on the log, and drain on shutdown.
//!
//! - [`pump`]: the loop (one `select!` over finished work, queued acknowledgements, new
//!   messages and shutdown).
//! - [`Inflight`]: how much is being handled, and whether one more message may start.
//! - [`AckQueue`]: acknowledgements in arrival order, sent as the client has room, those of an
//!   earlier connection dropped.
//! - [`Mqtt`]: the client and its polling task, started and closed.
//! - `mirror_status`: the polling task's connection status into readiness and metrics.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use sideline_common::{CancellationToken, Health};
use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{ConnectionStatus, QoS, connect, run_event_loop};
use tokio::sync::mpsc;

use crate::metrics::IngestMetrics;
use crate::pipeline::{Outcome, Pipeline};
use crate::{IngestConfig, IngestError};

/// How long after the broker gave our MQTT session to another client (same client id) the
/// service stays not ready: longer than the longest reconnect back-off, so two instances that
/// share an id and keep taking the session from each other are never ready.
const TAKEN_OVER_WINDOW: Duration = Duration::from_secs(60);

/// Messages in the hand-off channel between the MQTT polling task and the loop.
const HANDOFF: usize = 16;

/// The transport-independent part of ingest: subscribe, hand each MQTT message to `pipeline`
/// (whose sink is Kafka, or the demo's in-process bus), acknowledge in receive order once its
/// record is on the log, and drain on `shutdown`. Background tasks stop with `tasks`.
pub async fn pump(
    cfg: &IngestConfig,
    client_id: &str,
    pipeline: Pipeline,
    metrics: &IngestMetrics,
    health: &Health,
    shutdown: &CancellationToken,
    tasks: &CancellationToken,
) -> Result<(), IngestError> {
    let mut mqtt = Mqtt::start(cfg, client_id)?;
    mirror_status(
        Arc::clone(&mqtt.status),
        health.clone(),
        metrics.clone(),
        tasks.clone(),
    );
    tracing::info!(message = "Ingest running.", subscription = %cfg.subscribe.filter(), samples_topic = %pipeline.samples_topic);

    let mut pending = FuturesOrdered::new();
    let mut inflight = Inflight::new(cfg.ingest.max_inflight, cfg.ingest.max_backlog_bytes());
    let mut acks = AckQueue::default();
    let (status, client) = (Arc::clone(&mqtt.status), mqtt.client.clone());
    // Never wait for room in the client's request channel here: the polling task may itself
    // be waiting for us.
    let flush = |acks: &mut AckQueue<sideline_mqtt::AckHandle>| {
        let stale = acks.flush(
            |c| status.may_ack(c),
            status.connects.load(Ordering::Relaxed),
            |a| client.try_ack(a),
        );
        metrics.stale_acks.inc_by(stale);
    };
    let mut draining = false;
    let drain_deadline = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
    tokio::pin!(drain_deadline);
    loop {
        tokio::select! {
            biased;
            Some((m, outcome)) = pending.next(), if !pending.is_empty() => {
                let m: sideline_mqtt::Message = m;
                inflight.done(sideline_mqtt::message_bytes(&m));
                inflight.show(metrics);
                if outcome != Outcome::Abandoned && m.needs_ack {
                    acks.push(m.connection, m.ack);
                    flush(&mut acks);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(5)), if !acks.is_empty() => flush(&mut acks),
            // Draining takes nothing new: what is not handled stays unacknowledged in the
            // broker's session and is sent again on the next connection.
            m = mqtt.rx.recv(), if inflight.admits() && !draining => match m {
                Some(m) => {
                    inflight.start(sideline_mqtt::message_bytes(&m));
                    inflight.show(metrics);
                    let p = &pipeline;
                    pending.push_back(async move {
                        let outcome = p.handle(&m).await;
                        (m, outcome)
                    });
                }
                None => break,
            },
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                // No unsubscribe: the session (subscription and all) outlives this process,
                // so the broker queues what devices publish until the next instance connects
                // with the same client id.
                tracing::info!(message = "Draining in-flight messages.", inflight = pending.len());
                drain_deadline.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(cfg.ingest.drain_timeout_s));
            }
            _ = &mut drain_deadline, if draining => {
                tracing::warn!(message = "Drain timeout: abandoning in-flight messages (the broker redelivers them).", inflight = pending.len());
                pipeline.abort.cancel();
                while pending.next().await.is_some() {}
                inflight = Inflight::new(inflight.max, inflight.max_bytes);
                inflight.show(metrics);
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(200)), if draining => {
                if pending.is_empty() && acks.is_empty() {
                    break;
                }
            }
        }
    }
    mqtt.close().await;
    Ok(())
}

/// Messages (and their bytes) being handled, against the limits: `ingest.max_inflight`
/// messages and `max_backlog_mb` bytes, except that one message is always let in (a single
/// message larger than the byte limit must not stop ingest for ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inflight {
    n: usize,
    bytes: usize,
    max: usize,
    max_bytes: usize,
}

impl Inflight {
    /// Nothing in flight, under these limits.
    pub fn new(max: usize, max_bytes: usize) -> Self {
        Inflight {
            n: 0,
            bytes: 0,
            max,
            max_bytes,
        }
    }

    /// Whether one more message may start now.
    pub fn admits(&self) -> bool {
        self.n < self.max && (self.n == 0 || self.bytes < self.max_bytes)
    }

    /// A message of `bytes` started.
    pub fn start(&mut self, bytes: usize) {
        self.n += 1;
        self.bytes += bytes;
    }

    /// A message of `bytes` finished (handled, refused or abandoned).
    pub fn done(&mut self, bytes: usize) {
        self.n = self.n.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
    }

    /// Into the in-flight gauges.
    fn show(&self, metrics: &IngestMetrics) {
        metrics.inflight.set(self.n as i64);
        metrics
            .memory_bytes
            .with_label_values(&["inflight"])
            .set(self.bytes as i64);
    }
}

/// Acknowledgements waiting to be sent, in the order their messages arrived (MQTT requires
/// that order), each with the connection that delivered its message.
#[derive(Debug)]
pub struct AckQueue<T> {
    q: VecDeque<(u64, T)>,
}

impl<T> Default for AckQueue<T> {
    fn default() -> Self {
        AckQueue { q: VecDeque::new() }
    }
}

impl<T> AckQueue<T> {
    /// Queue the acknowledgement of a message delivered on `connection`.
    pub fn push(&mut self, connection: u64, ack: T) {
        self.q.push_back((connection, ack));
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Send, in order, what may go now: `may_ack(connection)` says whether its connection is
    /// the live one, `current` is the newest connection's number, `send` queues one in the
    /// client (false: no room). Stops at the first that cannot go yet: no room, or its
    /// connection is the newest but down (it goes once that connection is back). One from an
    /// earlier connection is dropped (the broker re-sent its message, and that copy is the
    /// one to acknowledge). Returns how many were dropped.
    pub fn flush(
        &mut self,
        may_ack: impl Fn(u64) -> bool,
        current: u64,
        mut send: impl FnMut(&T) -> bool,
    ) -> u64 {
        let mut stale = 0;
        while let Some((connection, a)) = self.q.front() {
            if !may_ack(*connection) {
                if *connection == current {
                    break;
                }
                stale += 1;
            } else if !send(a) {
                break;
            }
            self.q.pop_front();
        }
        stale
    }
}

/// The MQTT client and the task polling its connection.
/// The native topics' filter and each MQTT source's (shared like it when a group is set).
fn subscriptions(cfg: &IngestConfig, qos: QoS) -> Vec<(String, QoS)> {
    let mut out = vec![(cfg.subscribe.filter(), qos)];
    for s in cfg.sources.iter().filter(|s| !s.mqtt_topic.is_empty()) {
        if let Ok(p) = crate::sources::TopicPattern::parse(&s.mqtt_topic) {
            let f = match cfg.subscribe.share_group.as_str() {
                "" => p.filter(),
                g => format!("$share/{g}/{}", p.filter()),
            };
            out.push((f, qos));
        }
    }
    out
}

struct Mqtt {
    client: sideline_mqtt::Client,
    rx: mpsc::Receiver<sideline_mqtt::Message>,
    status: Arc<ConnectionStatus>,
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl Mqtt {
    /// Connect (manual acknowledgements, Receive Maximum `max_inflight`) and subscribe; a
    /// dedicated polling task hands messages over a short channel, what waits beyond it is in
    /// that task's backlog, bounded in messages and bytes (then the spool).
    fn start(cfg: &IngestConfig, client_id: &str) -> Result<Self, IngestError> {
        let max_inflight = cfg.ingest.max_inflight;
        let (client, el) = connect(
            &cfg.mqtt,
            client_id,
            ConnectOptions {
                manual_acks: true,
                request_capacity: 2 * max_inflight + 64,
                receive_maximum: Some(max_inflight.min(65_535) as u16),
            },
        )?;
        let (tx, rx) = mpsc::channel(max_inflight.clamp(1, HANDOFF));
        let status = Arc::new(ConnectionStatus::default());
        let qos = if cfg.subscribe.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_event_loop(
            el,
            client.clone(),
            subscriptions(cfg, qos),
            Some(tx),
            Arc::clone(&status),
            (
                Duration::from_millis(cfg.mqtt.reconnect_min_ms),
                Duration::from_millis(cfg.mqtt.reconnect_max_ms),
            ),
            cfg.ingest.backlog(),
            stop.clone(),
        ));
        Ok(Mqtt {
            client,
            rx,
            status,
            task,
            stop,
        })
    }

    /// Let the last acknowledgements reach the broker, disconnect cleanly, stop polling.
    async fn close(self) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.status.closing.store(true, Ordering::Relaxed);
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Mirror the MQTT polling task's connection status into readiness and metrics every 250 ms,
/// until `stop`.
fn mirror_status(
    status: Arc<ConnectionStatus>,
    health: Health,
    metrics: IngestMetrics,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let (mut connects, mut errors, mut full, mut refused) = (0, 0, 0, 0);
        let mut taken_over = 0;
        let (mut spilled, mut spool_errors) = (0, 0);
        loop {
            let connected = status.connected.load(Ordering::Relaxed);
            // Ready only once the subscription is granted: until then the broker drops
            // what devices publish (nothing matches it), so a caller that waits for
            // readiness before starting devices loses nothing.
            let subscribed = connected && status.subscribed.load(Ordering::Relaxed);
            // Not ready while another instance with our client id keeps taking the session.
            health.set(
                "mqtt",
                subscribed && !status.taken_over_within(TAKEN_OVER_WINDOW),
            );
            metrics.mqtt_connected.set(i64::from(connected));
            metrics.mqtt_subscribed.set(i64::from(subscribed));
            let (c, e, f, r) = (
                status.connects.load(Ordering::Relaxed),
                status.errors.load(Ordering::Relaxed),
                status.channel_full.load(Ordering::Relaxed),
                status.refused.load(Ordering::Relaxed),
            );
            metrics.mqtt_connects.inc_by(c - connects);
            metrics.mqtt_errors.inc_by(e - errors);
            metrics.mqtt_channel_full.inc_by(f - full);
            metrics.mqtt_refused.inc_by(r - refused);
            (connects, errors, full, refused) = (c, e, f, r);
            let t = status.taken_over.load(Ordering::Relaxed);
            metrics.mqtt_taken_over.inc_by(t - taken_over);
            taken_over = t;
            let (s, se) = (
                status.spilled.load(Ordering::Relaxed),
                status.spool_errors.load(Ordering::Relaxed),
            );
            metrics.spilled.inc_by(s - spilled);
            metrics.spool_errors.inc_by(se - spool_errors);
            (spilled, spool_errors) = (s, se);
            metrics
                .spool_bytes
                .set(status.spool_bytes.load(Ordering::Relaxed) as i64);
            metrics
                .memory_bytes
                .with_label_values(&["backlog"])
                .set(status.backlog_bytes.load(Ordering::Relaxed) as i64);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_is_always_let_in_then_the_limits_hold() {
        let mut f = Inflight::new(3, 1_000);
        assert!(f.admits());
        f.start(5_000); // larger than the byte limit on its own
        assert!(!f.admits(), "over the bytes");
        f.done(5_000);
        for _ in 0..3 {
            assert!(f.admits());
            f.start(10);
        }
        assert!(!f.admits(), "three messages in flight");
        f.done(10);
        assert!(f.admits());
        f.done(10);
        f.done(10);
        assert_eq!(f, Inflight::new(3, 1_000));
    }

    #[test]
    fn acknowledgements_go_in_order_and_wait_for_room() {
        let mut q = AckQueue::default();
        for id in 1..=4 {
            q.push(1, id);
        }
        let mut sent = Vec::new();
        let mut room = 2;
        let stale = q.flush(
            |c| c == 1,
            1,
            |a| {
                if room == 0 {
                    return false;
                }
                room -= 1;
                sent.push(*a);
                true
            },
        );
        assert_eq!((sent.clone(), stale), (vec![1, 2], 0));
        q.flush(
            |c| c == 1,
            1,
            |a| {
                sent.push(*a);
                true
            },
        );
        assert_eq!(sent, vec![1, 2, 3, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn while_disconnected_they_wait_and_after_a_reconnect_the_old_ones_are_dropped() {
        let mut q = AckQueue::default();
        q.push(1, "a");
        q.push(1, "b");
        let mut sent = Vec::new();
        // Connection 1 is down: nothing goes, nothing is dropped.
        let stale = q.flush(
            |_| false,
            1,
            |a| {
                sent.push(*a);
                true
            },
        );
        assert_eq!((stale, sent.len()), (0, 0));
        // Connection 2 is up: the broker re-sent a and b; these copies are dropped, and a
        // message delivered on 2 is acknowledged.
        q.push(2, "c");
        let stale = q.flush(
            |c| c == 2,
            2,
            |a| {
                sent.push(*a);
                true
            },
        );
        assert_eq!((stale, sent), (2, vec!["c"]));
    }
}

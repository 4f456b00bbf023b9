//! The polling task: one per connection, nothing else runs in it. It subscribes again on every
//! ConnAck, reconnects with exponential back-off and jitter, and hands messages to a bounded
//! channel.
//!
//! It never blocks on that channel: the same poll both reads messages and writes the caller's
//! requests (acknowledgements, pings), so a task waiting for channel space would stop the
//! acknowledgements that free the space — a deadlock. When the channel is full, messages wait
//! in a local overflow queue while polling continues. Normally the broker's in-flight window
//! (MQTT 5 Receive Maximum, or Mosquitto's `max_inflight_messages`) keeps the overflow empty.
//! A broker may ignore its window (Mosquitto 2.0 does once acknowledgements flow: see
//! BENCHMARKS.md); past the overflow's cap, messages go to the disk [`crate::spool::Spool`] if there is
//! one, in arrival order, and polling goes on, so keep-alives are still answered. Only when
//! there is no spool, or it is full or failing, does the task stop reading from the socket
//! until the caller catches up, and say so in the log — and a pause longer than the
//! keep-alive costs the connection, after which the broker re-sends every unacknowledged
//! message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::QoS;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backlog::{Backlog, Queue};
use crate::client::{Client, Event, EventLoop, Message};

/// Connection state and counters, shared with metrics and health checks.
#[derive(Debug, Default)]
pub struct ConnectionStatus {
    /// Currently connected (a ConnAck since the last error).
    pub connected: AtomicBool,
    /// ConnAcks received.
    pub connects: AtomicU64,
    /// Connection errors (each followed by a back-off).
    pub errors: AtomicU64,
    /// ConnAcks where the broker had kept our session.
    pub sessions_resumed: AtomicU64,
    /// Messages that found the hand-off channel full and waited in the overflow queue.
    pub channel_full: AtomicU64,
    /// Our QoS 1 publishes the broker acknowledged (a re-sent one may count twice).
    pub acked: AtomicU64,
    /// Every subscription has been granted (SubAck) on the current connection. Only from then
    /// on is a message published by anyone sure to reach us: the broker drops what matches no
    /// subscription, so a service is not ready before this (a task with no subscriptions never
    /// sets it).
    pub subscribed: AtomicBool,
    /// Subscriptions the broker refused (each is also logged as an error).
    pub refused: AtomicU64,
    /// Messages written to the disk spool.
    pub spilled: AtomicU64,
    /// Size of the spool's file now, bytes.
    pub spool_bytes: AtomicU64,
    /// Bytes (topics and payloads) of the messages waiting in memory in the backlog.
    pub backlog_bytes: AtomicU64,
    /// Spool writes or reads that failed (each is logged as an error).
    pub spool_errors: AtomicU64,
    /// Set by the owner just before [`Client::disconnect`]: the end of the connection is then
    /// expected, so the task logs it at debug level (not as a lost connection) and stops.
    pub closing: AtomicBool,
    /// Times the broker gave our session to another client with the same client id: told by
    /// an MQTT 5 DISCONNECT with reason 0x8E, or — Mosquitto 2.0 and 3.1.1 brokers just close
    /// the connection — by [`TAKEN_OVER_CLOSES`] silent closes of a connection that had been
    /// made within [`TAKEN_OVER_SPAN`], each followed by a successful reconnect (a broker that
    /// goes down refuses the reconnect instead).
    pub taken_over: AtomicU64,
    /// When that last happened, ms since the Unix epoch (0: never).
    pub taken_over_at_ms: AtomicU64,
}

/// Silent closes by the broker, within [`TAKEN_OVER_SPAN`], that count as a take-over.
pub const TAKEN_OVER_CLOSES: usize = 3;
/// See [`TAKEN_OVER_CLOSES`].
pub const TAKEN_OVER_SPAN: Duration = Duration::from_secs(60);

/// Milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ConnectionStatus {
    /// Whether a message delivered on `connection` ([`Message::connection`]) should be
    /// acknowledged now: only on the connection that delivered it. After a reconnect the broker
    /// re-sends every message left unacknowledged in the session (same packet id, DUP set); that
    /// copy is the one to acknowledge. Acknowledging the old copy too would acknowledge the
    /// packet id twice, and the second acknowledgement can complete a newer message that reuses
    /// the id before it is handled. While disconnected nothing may be acknowledged (a queued
    /// acknowledgement would go out on the next connection). One acknowledgement already queued
    /// in the client when the connection drops can still go out on the next one.
    pub fn may_ack(&self, connection: u64) -> bool {
        self.connected.load(Ordering::Relaxed)
            && self.connects.load(Ordering::Relaxed) == connection
    }

    /// Whether the session was taken over by another client within the last `window`: while
    /// it keeps happening, the service is not ready (two instances share one client id and
    /// take the session from each other).
    pub fn taken_over_within(&self, window: Duration) -> bool {
        let at = self.taken_over_at_ms.load(Ordering::Relaxed);
        at != 0 && unix_ms().saturating_sub(at) < window.as_millis() as u64
    }
}

/// Run until `stop` is cancelled: poll, resubscribe to `subscriptions` on each ConnAck, send
/// messages to `tx` (if any; publishers pass `None`), holding what `tx` has no room for in
/// `backlog` (a number: that many in memory; see [`Backlog`]).
#[allow(clippy::too_many_arguments)]
pub async fn run_event_loop(
    mut el: EventLoop,
    client: Client,
    subscriptions: Vec<(String, QoS)>,
    tx: Option<mpsc::Sender<Message>>,
    status: Arc<ConnectionStatus>,
    backoff: (Duration, Duration),
    backlog: impl Into<Backlog>,
    stop: CancellationToken,
) {
    let (min, max) = backoff;
    let mut delay = min;
    let mut queue = Queue::new(backlog.into());
    let mut warned = false;
    // Subscriptions still to be queued since the last ConnAck: the client's request queue may
    // be full of acknowledgements just then, so they are retried after every event until
    // queued (a subscription that never made it would silently stop the flow).
    let mut unsubscribed: Vec<(String, QoS)> = Vec::new();
    // SubAcks still awaited on this connection (one per subscription request).
    let mut awaiting = 0usize;
    // When the broker last closed an established connection without a word (newest last).
    let mut closes: std::collections::VecDeque<std::time::Instant> = Default::default();
    loop {
        if !unsubscribed.is_empty() {
            unsubscribed.retain(|(filter, qos)| match client.try_subscribe(filter, *qos) {
                Ok(()) => false,
                Err(error) => {
                    tracing::debug!(message = "MQTT subscribe not queued yet; retrying.", %filter, %error);
                    true
                }
            });
        }
        let ev = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            permit = async { tx.as_ref()?.reserve().await.ok() }, if queue.has_next() => {
                match (permit, queue.pop(&status)) {
                    (Some(p), Some(m)) => p.send(m),
                    _ => break, // receiver gone
                }
                status.backlog_bytes.store(queue.held_bytes() as u64, Ordering::Relaxed);
                continue;
            }
            ev = el.poll(), if queue.can_take() => ev,
        };
        match ev {
            Ok(Event::Connected { session_present }) => {
                delay = min;
                status.connected.store(true, Ordering::Relaxed);
                status.connects.fetch_add(1, Ordering::Relaxed);
                if session_present {
                    status.sessions_resumed.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(message = "MQTT connected.", session_present);
                status.subscribed.store(false, Ordering::Relaxed);
                unsubscribed = subscriptions.clone();
                awaiting = subscriptions.len();
            }
            Ok(Event::SubAck { refused }) => {
                if !refused.is_empty() {
                    status.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        message = "The broker refused a subscription; nothing matching it will be received.",
                        reasons = ?refused
                    );
                } else if awaiting > 0 {
                    awaiting -= 1;
                    if awaiting == 0 {
                        status.subscribed.store(true, Ordering::Relaxed);
                        tracing::info!(
                            message = "MQTT subscriptions granted.",
                            count = subscriptions.len()
                        );
                    }
                }
            }
            Ok(Event::Message(mut m)) => {
                let Some(tx) = &tx else { continue };
                m.connection = status.connects.load(Ordering::Relaxed);
                if !queue.is_empty() {
                    queue.push(m, &status);
                } else {
                    match tx.try_send(m) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(m)) => {
                            status.channel_full.fetch_add(1, Ordering::Relaxed);
                            queue.push(m, &status);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
                status
                    .backlog_bytes
                    .store(queue.held_bytes() as u64, Ordering::Relaxed);
                let paused = !queue.can_take();
                if paused && !warned {
                    warned = true;
                    tracing::error!(
                        message = "The broker sends more unacknowledged messages than can be held; reading paused until the backlog clears.",
                        held = queue.held(),
                        spooled = queue.spooled(),
                    );
                }
            }
            Ok(Event::PubAck) => {
                status.acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Other) => {}
            Err(error) => {
                status.subscribed.store(false, Ordering::Relaxed);
                let was = status.connected.swap(false, Ordering::Relaxed);
                if status.closing.load(Ordering::Relaxed) {
                    tracing::debug!(message = "MQTT connection closed.", %error);
                    break;
                }
                status.errors.fetch_add(1, Ordering::Relaxed);
                let now = std::time::Instant::now();
                if was && error.is_closed_by_broker() {
                    closes.push_back(now);
                }
                while closes
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > TAKEN_OVER_SPAN)
                {
                    closes.pop_front();
                }
                let flapping = closes.len() >= TAKEN_OVER_CLOSES;
                if error.is_session_taken_over() || flapping {
                    closes.clear();
                    status.taken_over.fetch_add(1, Ordering::Relaxed);
                    status.taken_over_at_ms.store(unix_ms(), Ordering::Relaxed);
                    tracing::error!(
                        message = "Another client connected with this service's MQTT client id and the broker gave it the session; not ready. Give every instance its own mqtt.client_id.",
                        told_by_broker = error.is_session_taken_over(),
                        retry_in_ms = max.as_millis() as u64,
                    );
                    // Wait the longest back-off before taking the session back.
                    delay = max;
                } else if was {
                    tracing::warn!(message = "MQTT connection lost; reconnecting.", %error);
                } else {
                    tracing::debug!(message = "MQTT connect failed; retrying.", %error, delay_ms = delay.as_millis() as u64);
                }
                let jitter = Duration::from_millis(
                    u64::from(std::process::id() % 97) + (delay.as_millis() as u64 / 10),
                );
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(delay + jitter) => {}
                }
                delay = (delay * 2).min(max);
            }
        }
    }
    status.connected.store(false, Ordering::Relaxed);
    status.subscribed.store(false, Ordering::Relaxed);
}

//! The polling task: one per connection, nothing else runs in it. It subscribes again on every
//! ConnAck, reconnects with exponential back-off and jitter, and hands messages to a bounded
//! channel.
//!
//! It never blocks on that channel: the same poll both reads messages and writes the caller's
//! requests (acknowledgements, pings), so a task waiting for channel space would stop the
//! acknowledgements that free the space — a deadlock. When the channel is full, messages wait
//! in a local overflow queue while polling continues. Normally the broker's in-flight window
//! (MQTT 5 Receive Maximum, or Mosquitto's `max_inflight_messages`) keeps the overflow small;
//! Mosquitto 2.0 does not hold that window once acknowledgements flow, so the overflow can
//! reach `overflow_cap`. Then the task *refuses* what comes next: the message is neither handed
//! on nor acknowledged, and is counted ([`ConnectionStatus::refused`]). Polling goes on, so the
//! keep-alive is answered and the connection stays up however long the caller is stalled
//! (stopping to poll instead cost the connection after 1.5 keep-alives, and every
//! unacknowledged message came again while the caller was still behind). Once the overflow
//! and the channel are empty (and [`DRAIN_GRACE`] later, for the caller's last
//! acknowledgements), the task drops the connection on purpose and connects again
//! ([`ConnectionStatus::backlog_reconnects`]): the broker re-sends every message left
//! unacknowledged, the refused ones among them, under the persistent session. Nothing is lost;
//! messages the caller had taken but not yet acknowledged come twice (the caller's
//! de-duplication, and [`ConnectionStatus::may_ack`], handle them). A QoS 0 message that
//! arrives while refusing cannot be re-sent and is dropped ([`ConnectionStatus::dropped_qos0`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::QoS;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
    /// Messages refused (neither handed on nor acknowledged) because the overflow was full;
    /// the broker re-sends them after the next reconnect.
    pub refused: AtomicU64,
    /// Connections dropped on purpose once a backlog with refused messages had cleared.
    pub backlog_reconnects: AtomicU64,
    /// QoS 0 messages that arrived while refusing: never re-sent, so dropped (at most once).
    pub dropped_qos0: AtomicU64,
}

/// How long the channel and the overflow must stay empty after a refusal before the
/// connection is dropped to have the refused messages re-sent: time for the caller to
/// acknowledge what it took last (an acknowledgement not sent by then is lost with the
/// connection, and that message comes twice).
pub const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// Refusing since a full overflow: every new message is refused until the backlog clears and
/// the connection is dropped.
struct Refusal {
    since: Instant,
    refused: u64,
    drained_at: Option<Instant>,
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
}

/// Run until `stop` is cancelled: poll, resubscribe to `subscriptions` on each ConnAck, send
/// messages to `tx` (if any; publishers pass `None`), holding at most `overflow_cap` more
/// locally while `tx` is full.
#[allow(clippy::too_many_arguments)]
pub async fn run_event_loop(
    mut el: EventLoop,
    client: Client,
    subscriptions: Vec<(String, QoS)>,
    tx: Option<mpsc::Sender<Message>>,
    status: Arc<ConnectionStatus>,
    backoff: (Duration, Duration),
    overflow_cap: usize,
    stop: CancellationToken,
) {
    let (min, max) = backoff;
    let mut delay = min;
    let mut overflow: VecDeque<Message> = VecDeque::new();
    let cap = overflow_cap.max(1);
    let mut refusal: Option<Refusal> = None;
    // Subscriptions still to be queued since the last ConnAck: the client's request queue may
    // be full of acknowledgements just then, so they are retried after every event until
    // queued (a subscription that never made it would silently stop the flow).
    let mut unsubscribed: Vec<(String, QoS)> = Vec::new();
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
        if let Some(r) = &mut refusal {
            let drained =
                overflow.is_empty() && tx.as_ref().is_none_or(|t| t.capacity() == t.max_capacity());
            let now = Instant::now();
            match (drained, r.drained_at) {
                (false, _) => r.drained_at = None,
                (true, None) => r.drained_at = Some(now),
                (true, Some(at)) if now.duration_since(at) >= DRAIN_GRACE => {
                    tracing::warn!(
                        message = "Backlog cleared; reconnecting to MQTT so that the broker re-sends the refused messages.",
                        refused = r.refused,
                        refusing_ms = now.duration_since(r.since).as_millis() as u64
                    );
                    el.drop_connection();
                    status.connected.store(false, Ordering::Relaxed);
                    status.backlog_reconnects.fetch_add(1, Ordering::Relaxed);
                    refusal = None;
                    continue;
                }
                (true, Some(_)) => {}
            }
        }
        let ev = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            permit = async { tx.as_ref()?.reserve().await.ok() }, if !overflow.is_empty() => {
                match (permit, overflow.pop_front()) {
                    (Some(p), Some(m)) => p.send(m),
                    _ => break, // receiver gone
                }
                continue;
            }
            // While refusing, look at the backlog at least this often.
            _ = tokio::time::sleep(DRAIN_GRACE / 4), if refusal.is_some() => continue,
            ev = el.poll() => ev,
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
                unsubscribed = subscriptions.clone();
                // Whatever was refused on the last connection comes again on this one.
                refusal = None;
            }
            Ok(Event::Message(mut m)) => {
                let Some(tx) = &tx else { continue };
                m.connection = status.connects.load(Ordering::Relaxed);
                if refusal.is_none() && overflow.len() >= cap {
                    tracing::warn!(
                        message = "The broker sends more unacknowledged messages than allowed; refusing the excess (re-sent after a reconnect) until the backlog clears.",
                        held = overflow.len()
                    );
                    refusal = Some(Refusal {
                        since: Instant::now(),
                        refused: 0,
                        drained_at: None,
                    });
                }
                if let Some(r) = &mut refusal {
                    if m.needs_ack {
                        r.refused += 1;
                        status.refused.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // QoS 0 is never re-sent: at most once means this one is gone.
                        status.dropped_qos0.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                if !overflow.is_empty() {
                    overflow.push_back(m);
                } else {
                    match tx.try_send(m) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(m)) => {
                            status.channel_full.fetch_add(1, Ordering::Relaxed);
                            overflow.push_back(m);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
            }
            Ok(Event::PubAck) => {
                status.acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Other) => {}
            Err(error) => {
                let was = status.connected.swap(false, Ordering::Relaxed);
                status.errors.fetch_add(1, Ordering::Relaxed);
                if was {
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
}

//! The polling task: one per connection, nothing else runs in it (blocking here would stall
//! keep-alives). It subscribes again on every ConnAck, reconnects with exponential back-off and
//! jitter, and hands messages to a bounded channel. When the channel is full the task waits,
//! which stops reading from the socket — the last line of backpressure; normally the broker's
//! in-flight window (MQTT 5 Receive Maximum, or Mosquitto's `max_inflight_messages`) keeps
//! unacknowledged messages below the channel's capacity.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

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
    /// Times the hand-off channel was full.
    pub channel_full: AtomicU64,
}

/// Run until `stop` is cancelled: poll, resubscribe to `subscriptions` on each ConnAck, send
/// messages to `tx` (if any; publishers pass `None`).
pub async fn run_event_loop(
    mut el: EventLoop,
    client: Client,
    subscriptions: Vec<(String, QoS)>,
    tx: Option<mpsc::Sender<Message>>,
    status: Arc<ConnectionStatus>,
    backoff: (Duration, Duration),
    stop: CancellationToken,
) {
    let (min, max) = backoff;
    let mut delay = min;
    loop {
        let ev = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
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
                for (filter, qos) in &subscriptions {
                    if let Err(error) = client.try_subscribe(filter, *qos) {
                        tracing::error!(message = "MQTT subscribe could not be queued.", %filter, %error);
                    }
                }
            }
            Ok(Event::Message(m)) => {
                if let Some(tx) = &tx {
                    let m = match tx.try_send(m) {
                        Ok(()) => continue,
                        Err(mpsc::error::TrySendError::Full(m)) => m,
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    };
                    status.channel_full.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        r = tx.send(m) => if r.is_err() { break },
                    }
                }
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

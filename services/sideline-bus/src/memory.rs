//! [`MemoryBus`]: topics in memory for a single process (`sideline demo`).
//!
//! Every subscriber of a topic gets every record of it, in the order they were sent, through
//! a bounded queue. A full queue makes `send` wait (backpressure reaches the producer, as a
//! slow Kafka would), and a topic with no subscriber refuses to take records (`Retry`: the
//! producer keeps them), so nothing is dropped silently. Nothing survives the process: this
//! is the demo's bus, not a durable log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::{Record, RecordSink, SendFuture, SinkError};

/// An in-process bus.
#[derive(Debug, Clone)]
pub struct MemoryBus {
    topics: Arc<Mutex<HashMap<String, Vec<mpsc::Sender<Record>>>>>,
    capacity: usize,
}

impl MemoryBus {
    /// A bus whose subscriber queues hold `capacity` records each.
    pub fn new(capacity: usize) -> Self {
        MemoryBus {
            topics: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// Receive every record sent to `topic` from now on.
    pub fn subscribe(&self, topic: &str) -> mpsc::Receiver<Record> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let mut t = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        t.entry(topic.to_string()).or_default().push(tx);
        rx
    }

    fn senders(&self, topic: &str) -> Vec<mpsc::Sender<Record>> {
        let mut t = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let subs = t.entry(topic.to_string()).or_default();
        subs.retain(|s| !s.is_closed());
        subs.clone()
    }
}

impl RecordSink for MemoryBus {
    fn send(&self, record: Record) -> SendFuture<'_> {
        Box::pin(async move {
            let subs = self.senders(&record.topic);
            if subs.is_empty() {
                return Err(SinkError::Retry {
                    class: "no_consumer",
                    detail: format!("no consumer of {} yet", record.topic),
                });
            }
            let mut delivered = 0;
            for s in &subs {
                if s.send(record.clone()).await.is_ok() {
                    delivered += 1;
                }
            }
            if delivered == 0 {
                Err(SinkError::Retry {
                    class: "no_consumer",
                    detail: format!("every consumer of {} has gone", record.topic),
                })
            } else {
                Ok(())
            }
        })
    }

    fn reachable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rec(topic: &str, key: &str, v: u8) -> Record {
        Record {
            topic: topic.into(),
            key: key.into(),
            value: bytes::Bytes::from(vec![v]),
            headers: vec![],
        }
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_record_in_order() {
        let bus = MemoryBus::new(16);
        let (mut a, mut b) = (bus.subscribe("t"), bus.subscribe("t"));
        let mut other = bus.subscribe("u");
        for v in 0..10 {
            bus.send(rec("t", "k", v)).await.unwrap();
        }
        for rx in [&mut a, &mut b] {
            for v in 0..10 {
                assert_eq!(rx.recv().await.unwrap().value[0], v);
            }
        }
        assert!(other.try_recv().is_err());
    }

    #[tokio::test]
    async fn no_consumer_means_retry_not_loss() {
        let bus = MemoryBus::new(4);
        let e = bus.send(rec("t", "k", 1)).await.unwrap_err();
        assert!(matches!(
            e,
            SinkError::Retry {
                class: "no_consumer",
                ..
            }
        ));
        let rx = bus.subscribe("t");
        drop(rx);
        assert!(bus.send(rec("t", "k", 1)).await.is_err());
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_sender_wait() {
        let bus = MemoryBus::new(2);
        let mut rx = bus.subscribe("t");
        bus.send(rec("t", "k", 1)).await.unwrap();
        bus.send(rec("t", "k", 2)).await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(100), bus.send(rec("t", "k", 3)));
        assert!(third.await.is_err(), "sent into a full queue");
        assert_eq!(rx.recv().await.unwrap().value[0], 1);
        bus.send(rec("t", "k", 3)).await.unwrap();
    }
}

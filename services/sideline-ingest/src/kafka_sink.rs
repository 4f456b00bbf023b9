//! The Kafka side of ingest: a producer that is rebuilt after a fatal error, as a
//! [`RecordSink`] (acknowledged means acknowledged by Kafka with `acks=all`).

use std::sync::RwLock;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use sideline_bus::{Record, RecordSink, SendFuture, SinkError};
use sideline_kafka::producer::{DeliveryTimeout, producer};
use sideline_kafka::{Failure, KafkaConfig, classify};

/// A producer that can be rebuilt after a fatal error.
pub struct ProducerSlot {
    cfg: KafkaConfig,
    client_id: String,
    probe_topic: String,
    inner: RwLock<(u64, FutureProducer)>,
}

impl std::fmt::Debug for ProducerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerSlot")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ProducerSlot {
    /// Build the first producer; `probe_topic` is asked for when checking reachability.
    pub fn new(
        cfg: &KafkaConfig,
        client_id: &str,
        probe_topic: &str,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let p = producer(cfg, client_id, DeliveryTimeout::Never)?;
        Ok(ProducerSlot {
            cfg: cfg.clone(),
            client_id: client_id.to_string(),
            probe_topic: probe_topic.to_string(),
            inner: RwLock::new((0, p)),
        })
    }

    /// The current producer and its generation.
    pub fn get(&self) -> (u64, FutureProducer) {
        match self.inner.read() {
            Ok(g) => (g.0, g.1.clone()),
            Err(poisoned) => {
                let g = poisoned.into_inner();
                (g.0, g.1.clone())
            }
        }
    }

    /// Replace generation `seen` with a new producer (no-op if someone already did).
    pub fn recreate(&self, seen: u64) {
        let mut g = match self.inner.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if g.0 != seen {
            return;
        }
        match producer(&self.cfg, &self.client_id, DeliveryTimeout::Never) {
            Ok(p) => {
                tracing::warn!(
                    message = "Kafka producer rebuilt after a fatal error.",
                    generation = seen + 1
                );
                *g = (seen + 1, p);
            }
            Err(error) => tracing::error!(message = "Kafka producer could not be rebuilt.", %error),
        }
    }
}

impl RecordSink for ProducerSlot {
    fn send(&self, record: Record) -> SendFuture<'_> {
        Box::pin(async move {
            let (generation, producer) = self.get();
            let mut headers = OwnedHeaders::new();
            for (k, v) in &record.headers {
                headers = headers.insert(Header {
                    key: k.as_str(),
                    value: Some(v.as_ref()),
                });
            }
            let r = FutureRecord::to(&record.topic)
                .key(&record.key)
                .payload(record.value.as_ref())
                .headers(headers);
            let error = match producer.send(r, Timeout::Never).await {
                Ok(_) => return Ok(()),
                Err((e, _)) => e,
            };
            match classify(&error) {
                Failure::Reject => Err(SinkError::Reject(error.to_string())),
                Failure::RecreateProducer => {
                    self.recreate(generation);
                    Err(SinkError::Retry {
                        class: "recreate",
                        detail: error.to_string(),
                    })
                }
                Failure::Retry => Err(SinkError::Retry {
                    class: "retry",
                    detail: error.to_string(),
                }),
            }
        })
    }

    fn reachable(&self) -> bool {
        sideline_kafka::probe::answers(self.get().1.client(), &self.probe_topic)
    }
}

impl ProducerSlot {
    /// Wait up to `timeout` for records still queued in the producer.
    pub fn flush(&self, timeout: Duration) {
        let _ = self.get().1.flush(timeout);
    }
}

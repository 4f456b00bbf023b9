//! The one Kafka sink of the services that produce (ingest and the processor): a producer
//! that is rebuilt after a fatal error ([`crate::Failure::RecreateProducer`]: an idempotent
//! producer that lost its sequence, was fenced, or whose broker forgot its id never produces
//! again), with two ways in:
//!
//! - [`ProducerSlot::queue`]: queue a record and get its acknowledgement as a future (the
//!   processor keeps many in flight and commits behind them); a full local queue is handed
//!   back for the caller to wait on its own acknowledgements;
//! - as a [`RecordSink`] (ingest): `send` returns once Kafka acknowledged the record with
//!   `acks=all`.
//!
//! Either way a failure is classified once ([`ProducerSlot::failed`]), and a fatal one
//! rebuilds the producer for whoever sends next.

use std::sync::RwLock;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use sideline_bus::{Record, RecordSink, SendFuture, SinkError};

use crate::producer::{DeliveryTimeout, Ordering, producer};
use crate::{Failure, KafkaConfig, classify};

/// Why [`ProducerSlot::queue`] did not queue a record.
pub enum QueueError<'a> {
    /// The producer's local queue is full: the record back, to try again once
    /// acknowledgements have made room.
    Full(FutureRecord<'a, str, [u8]>),
    /// Any other error, classified (a fatal one has already rebuilt the producer).
    Failed(KafkaError, Failure),
}

/// A producer that can be rebuilt after a fatal error.
pub struct ProducerSlot {
    cfg: KafkaConfig,
    ordering: Ordering,
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
        ordering: Ordering,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let p = producer(cfg, client_id, DeliveryTimeout::Never, ordering)?;
        Ok(ProducerSlot {
            cfg: cfg.clone(),
            ordering,
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
        match producer(
            &self.cfg,
            &self.client_id,
            DeliveryTimeout::Never,
            self.ordering,
        ) {
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
            match self.failed(generation, &error) {
                Failure::Reject => Err(SinkError::Reject(error.to_string())),
                Failure::RecreateProducer => Err(SinkError::Retry {
                    class: "recreate",
                    detail: error.to_string(),
                }),
                Failure::Retry => Err(SinkError::Retry {
                    class: "retry",
                    detail: error.to_string(),
                }),
            }
        })
    }

    fn reachable(&self) -> bool {
        self.answers()
    }
}

impl ProducerSlot {
    /// Wait up to `timeout` for records still queued in the producer.
    pub fn flush(&self, timeout: Duration) {
        let _ = self.get().1.flush(timeout);
    }

    /// Whether the broker answers now (blocking: see [`crate::probe`]).
    pub fn answers(&self) -> bool {
        crate::probe::answers(self.get().1.client(), &self.probe_topic)
    }

    /// A produce by generation `generation` failed with `error`: what it calls for, the
    /// producer rebuilt first if it is unusable.
    pub fn failed(&self, generation: u64, error: &KafkaError) -> Failure {
        let f = classify(error);
        if f == Failure::RecreateProducer {
            self.recreate(generation);
        }
        f
    }

    /// Queue `record` without waiting for Kafka: its acknowledgement comes as the future, with
    /// the producer generation that sent it (for [`ProducerSlot::failed`]).
    pub fn queue<'a>(
        &self,
        record: FutureRecord<'a, str, [u8]>,
    ) -> Result<(u64, DeliveryFuture), QueueError<'a>> {
        let (generation, producer) = self.get();
        match producer.send_result(record) {
            Ok(fut) => Ok((generation, fut)),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                Err(QueueError::Full(back))
            }
            Err((error, _)) => {
                let f = self.failed(generation, &error);
                Err(QueueError::Failed(error, f))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn slot() -> ProducerSlot {
        let cfg = KafkaConfig {
            brokers: "127.0.0.1:9".into(),
            ..KafkaConfig::default()
        };
        ProducerSlot::new(&cfg, "sink-test", "t", Ordering::Idempotent).unwrap()
    }

    #[test]
    fn a_fatal_error_rebuilds_the_producer_once_a_transient_one_does_not() {
        let s = slot();
        assert_eq!(s.get().0, 0);
        let transient = KafkaError::MessageProduction(RDKafkaErrorCode::BrokerTransportFailure);
        assert_eq!(s.failed(0, &transient), Failure::Retry);
        assert_eq!(s.get().0, 0);
        let fatal = KafkaError::MessageProduction(RDKafkaErrorCode::OutOfOrderSequenceNumber);
        assert_eq!(s.failed(0, &fatal), Failure::RecreateProducer);
        assert_eq!(s.get().0, 1);
        // A second sender of the same failed generation does not rebuild again.
        assert_eq!(s.failed(0, &fatal), Failure::RecreateProducer);
        assert_eq!(s.get().0, 1);
    }

    #[test]
    fn queueing_hands_back_an_acknowledgement_of_the_current_generation() {
        let s = slot();
        let rec = FutureRecord::<str, [u8]>::to("t").key("k").payload(b"v");
        let Ok((generation, _fut)) = s.queue(rec) else {
            panic!("not queued")
        };
        assert_eq!(generation, 0);
    }
}

//! Rebalances. On assignment the partitions' state is read from the state topic *before* the
//! partitions are assigned, and handed to the main loop, which installs it before it touches
//! any record (it drains this channel first on every message). Assigning the group's list as
//! is starts each partition at its committed offset. On revocation the main loop drops those
//! players (never snapshotting them again: the new owner does).

use std::time::Duration;

use prometheus::{IntCounter, IntGaugeVec};
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use sideline_kafka::KafkaConfig;
use tokio::sync::mpsc::UnboundedSender;

use crate::state::{PartitionState, read_partition};

/// What the consumer thread tells the main loop.
#[derive(Debug)]
pub enum RebalanceEvent {
    /// These partitions are ours now, with their state.
    Assigned(Vec<(i32, PartitionState)>),
    /// These partitions are no longer ours.
    Revoked(Vec<i32>),
    /// Reading the state of a partition failed (its players restart without state).
    RestoreFailed(i32),
}

/// The consumer's context.
pub struct ProcessorContext {
    /// Kafka settings (for the state reader).
    pub kafka: KafkaConfig,
    /// Samples topic.
    pub samples_topic: String,
    /// State topic.
    pub state_topic: String,
    /// Time allowed per partition.
    pub restore_timeout: Duration,
    /// To the main loop.
    pub tx: UnboundedSender<RebalanceEvent>,
    /// Consumer lag by partition, from librdkafka's statistics (no extra broker requests and
    /// nothing blocks the main loop).
    pub lag: IntGaugeVec,
    /// Offset commits that failed (asynchronous ones report here).
    pub commit_failures: IntCounter,
    /// Partitions revoked by a rebalance.
    pub revoked: IntCounter,
}

impl ClientContext for ProcessorContext {
    /// Reaching a partition's end is how the loop learns it is idle (it arrives as an error
    /// by librdkafka's design): not worth an error line. Everything else is logged.
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            return;
        }
        tracing::error!(message = "Kafka client error.", %error, %reason);
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.samples_topic) else {
            return;
        };
        for (_, p) in topic.partitions.iter().filter(|(_, p)| p.partition >= 0) {
            let label = p.partition.to_string();
            if !p.desired {
                let _ = self.lag.remove_label_values(&[&label]);
                continue;
            }
            // The next record handed to us versus the end of the log.
            let lag = if p.hi_offset >= 0 && p.app_offset >= 0 {
                p.hi_offset - p.app_offset
            } else {
                p.consumer_lag
            };
            if lag >= 0 {
                self.lag.with_label_values(&[&label]).set(lag);
            }
        }
    }
}

impl ConsumerContext for ProcessorContext {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(error) = result {
            self.commit_failures.inc();
            tracing::warn!(message = "Offset commit failed; the next checkpoint commits again.", %error);
        }
    }

    fn rebalance(&self, c: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let parts: Vec<i32> = tpl
            .elements_for_topic(&self.samples_topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut restored = Vec::new();
                for p in parts {
                    let mut attempt = 0;
                    loop {
                        match read_partition(
                            &self.kafka,
                            &self.state_topic,
                            p,
                            self.restore_timeout,
                        ) {
                            Ok(state) => {
                                restored.push((p, state));
                                break;
                            }
                            Err(error) if attempt < 3 => {
                                attempt += 1;
                                tracing::warn!(message = "Reading partition state failed; retrying.", partition = p, %error);
                                std::thread::sleep(Duration::from_secs(1));
                            }
                            Err(error) => {
                                tracing::error!(message = "Partition state unreadable: its players restart from the committed offset WITHOUT their state.", partition = p, %error);
                                let _ = self.tx.send(RebalanceEvent::RestoreFailed(p));
                                restored.push((p, PartitionState::default()));
                                break;
                            }
                        }
                    }
                }
                tracing::info!(message = "Partitions assigned.", partitions = ?restored.iter().map(|r| r.0).collect::<Vec<_>>());
                let _ = self.tx.send(RebalanceEvent::Assigned(restored));
                if let Err(error) = c.assign(tpl) {
                    tracing::error!(message = "Assigning partitions failed.", %error);
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(message = "Partitions revoked.", partitions = ?parts);
                self.revoked.inc_by(parts.len() as u64);
                let _ = self.tx.send(RebalanceEvent::Revoked(parts));
                if let Err(error) = c.unassign() {
                    tracing::error!(message = "Unassigning partitions failed.", %error);
                }
            }
            other => {
                tracing::error!(message = "Rebalance error; dropping the assignment.", error = ?other);
                self.revoked.inc_by(parts.len() as u64);
                let _ = self.tx.send(RebalanceEvent::Revoked(parts));
                let _ = c.unassign();
            }
        }
    }
}

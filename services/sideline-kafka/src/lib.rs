//! # sideline-kafka
//!
//! What Sideline's services share about Kafka: the client settings (with librdkafka security
//! settings passed through from configuration), the topic contract (names, keys, partitions,
//! retention, cleanup policy) and its creation at start-up, producers configured for
//! at-least-once without duplicates (idempotent, `acks=all`), and a classification of errors
//! into retryable, fatal-for-the-producer and permanent-for-the-record.
//!
//! # Layout
//!
//! - [`config`]: `[kafka]` configuration and librdkafka client settings.
//! - [`topics`]: the topic contract and `ensure_topics`.
//! - [`producer`]: producer construction.
//! - [`sink`]: the producer both ingest and the processor produce through, rebuilt after a
//!   fatal error.
//! - [`probe`]: is Kafka answering (for `/readyz`).
//! - [`error`]: error classes.
//! - [`follow`]: following a compacted topic.
//! - [`watchdog`]: rejoining the group when a partition makes no committed progress.

pub mod config;
pub mod error;
pub mod follow;
pub mod probe;
pub mod producer;
pub mod sink;
pub mod topics;
pub mod watchdog;

pub use config::{KafkaConfig, TopicNames};
pub use error::{Failure, classify};
pub use topics::{TopicSpec, ensure_topics};

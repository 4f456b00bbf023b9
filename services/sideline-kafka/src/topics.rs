//! The topic contract (`deploy/README.md`) and its enforcement at start-up. tansu and many
//! managed clusters do not auto-create topics, so every service checks its topics first and
//! creates the missing ones when allowed; a topic with fewer partitions than the contract is
//! reported (keys would hash differently across a resize).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;

/// One topic of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// Topic configs (cleanup policy, retention).
    pub configs: Vec<(&'static str, String)>,
}

const DAY_MS: i64 = 86_400_000;

fn spec(
    name: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&'static str, String)],
) -> TopicSpec {
    TopicSpec {
        name: name.to_string(),
        partitions,
        replication,
        configs: configs.to_vec(),
    }
}

/// Every topic of the contract, with its settings.
pub fn contract(cfg: &KafkaConfig) -> Vec<TopicSpec> {
    let t = &cfg.topics;
    let (p, r) = (cfg.partitions, cfg.replication);
    let delete = |days: i64| {
        vec![
            ("cleanup.policy", "delete".to_string()),
            ("retention.ms", (days * DAY_MS).to_string()),
        ]
    };
    let compact = vec![("cleanup.policy", "compact".to_string())];
    vec![
        spec(&t.samples, p, r, &delete(7)),
        spec(&t.dlq, 3.min(p), r, &delete(30)),
        spec(&t.metrics, p, r, &delete(7)),
        spec(&t.alerts, 3.min(p), r, &delete(30)),
        // Keyed by alert id and compacted: the bench and the alerter read it whole at start.
        spec(&t.acks, 1, r, &compact),
        spec(&t.state, p, r, &compact),
        spec(&t.roster, 1, r, &compact),
        spec(&t.baselines, 3.min(p), r, &compact),
    ]
}

/// Problems with topics at start-up.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// Could not read metadata or create topics.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A topic is missing and creation is disabled.
    #[error("topic {0} does not exist and kafka.create_topics is false")]
    Missing(String),
    /// A topic has fewer partitions than the contract.
    #[error("topic {name} has {actual} partitions, the contract says {expected}")]
    Partitions {
        /// Topic.
        name: String,
        /// Found.
        actual: i32,
        /// Expected.
        expected: i32,
    },
    /// Creation was refused.
    #[error("creating topic {0} failed: {1}")]
    Create(String, String),
}

/// Check (and, if `create`, create) `specs`. Returns the names created.
pub async fn ensure_topics(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[TopicSpec],
    create: bool,
    timeout: Duration,
) -> Result<Vec<String>, TopicError> {
    let md = admin.inner().fetch_metadata(None, timeout)?;
    let mut missing = Vec::new();
    for s in specs {
        match md
            .topics()
            .iter()
            .find(|t| t.name() == s.name && t.error().is_none())
        {
            Some(t) if (t.partitions().len() as i32) < s.partitions => {
                return Err(TopicError::Partitions {
                    name: s.name.clone(),
                    actual: t.partitions().len() as i32,
                    expected: s.partitions,
                });
            }
            Some(_) => {}
            None if create => missing.push(s),
            None => return Err(TopicError::Missing(s.name.clone())),
        }
    }
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let new: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|s| {
            let mut n = NewTopic::new(
                &s.name,
                s.partitions,
                TopicReplication::Fixed(s.replication),
            );
            for (k, v) in &s.configs {
                n = n.set(k, v);
            }
            n
        })
        .collect();
    let results = admin
        .create_topics(&new, &AdminOptions::new().operation_timeout(Some(timeout)))
        .await?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(name) => created.push(name),
            // Another instance created it between our check and our request.
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "topic already exists")
            }
            Err((name, code)) => return Err(TopicError::Create(name, code.to_string())),
        }
    }
    for name in &created {
        tracing::info!(message = "Created topic.", topic = %name);
    }
    Ok(created)
}

/// Check/create the contract's topics, retrying with back-off while Kafka is unreachable (a
/// service waits for Kafka rather than crash-looping). `Ok(false)` if `stop` came first; a
/// client that cannot be created (bad settings) is an error at once.
pub async fn ensure_contract_until_ready(
    cfg: &KafkaConfig,
    client_id: &str,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<bool, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = cfg
        .client_config(client_id, &[])
        .map_err(|e| KafkaError::ClientCreation(e.to_string()))?
        .create()?;
    let specs = contract(cfg);
    let mut delay = Duration::from_millis(200);
    loop {
        match ensure_topics(&admin, &specs, cfg.create_topics, Duration::from_secs(10)).await {
            Ok(_) => return Ok(true),
            Err(error) => {
                tracing::warn!(message = "Kafka topics not ready; retrying.", %error, delay_ms = delay.as_millis() as u64)
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(false),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_keeps_player_keyed_topics_co_partitioned() {
        let c = contract(&KafkaConfig::default());
        let parts = |n: &str| c.iter().find(|s| s.name == n).unwrap().partitions;
        assert_eq!(parts("sideline.samples.v1"), parts("sideline.metrics.v1"));
        assert_eq!(parts("sideline.samples.v1"), parts("sideline.state.v1"));
        let policy = |n: &str| {
            c.iter()
                .find(|s| s.name == n)
                .unwrap()
                .configs
                .iter()
                .find(|(k, _)| *k == "cleanup.policy")
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(policy("sideline.state.v1"), "compact");
        assert_eq!(policy("sideline.roster.v1"), "compact");
        assert_eq!(policy("sideline.acks.v1"), "compact");
        assert_eq!(policy("sideline.samples.v1"), "delete");
    }
}

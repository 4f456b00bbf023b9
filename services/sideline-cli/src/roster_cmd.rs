//! `sideline roster publish`: put a roster file on the compacted roster topic, where ingest and
//! the processor follow it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use sideline_kafka::KafkaConfig;
use sideline_wire::roster::Roster;

/// `sideline roster …`.
#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Publish a roster file's assignments and profiles to the roster topic.
    Publish(PublishArgs),
}

/// Arguments of `sideline roster publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Roster file (TOML).
    #[arg(long)]
    pub file: PathBuf,
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Roster topic.
    #[arg(long, default_value = "sideline.roster.v1")]
    pub topic: String,
}

/// Run a roster command.
pub async fn run(c: &RosterCommand) -> Result<()> {
    let RosterCommand::Publish(a) = c;
    let roster = Roster::from_toml(
        &std::fs::read_to_string(&a.file)
            .with_context(|| format!("reading {}", a.file.display()))?,
    )?;
    let records = roster.records();
    publish(&a.brokers, &a.topic, "sideline-roster", &records).await?;
    eprintln!("published {} roster records to {}", records.len(), a.topic);
    Ok(())
}

/// Put keyed records on a (compacted) topic and wait for every acknowledgement: the roster
/// here, the baselines from `sideline baselines`.
pub async fn publish(
    brokers: &str,
    topic: &str,
    client_id: &str,
    records: &[(String, Vec<u8>)],
) -> Result<()> {
    let cfg = KafkaConfig {
        brokers: brokers.to_string(),
        ..KafkaConfig::default()
    };
    let producer: FutureProducer = sideline_kafka::producer::producer(
        &cfg,
        client_id,
        sideline_kafka::producer::DeliveryTimeout::Millis(30_000),
    )?;
    for (k, v) in records {
        producer
            .send(
                FutureRecord::to(topic).key(k).payload(v),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .map_err(|(e, _)| e)
            .with_context(|| format!("publishing {k} to {topic}"))?;
    }
    producer.flush(Duration::from_secs(10))?;
    Ok(())
}

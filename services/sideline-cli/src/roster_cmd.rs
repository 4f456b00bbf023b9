//! `sideline roster publish`: put a roster file on the compacted roster topic, where ingest and
//! the processor follow it. `sideline roster acl`: the Mosquitto ACL that lets each pod of the
//! roster publish only under its own team and device id (`deploy/mosquitto/README.md`).

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
    /// Print the Mosquitto ACL for a roster file's pods (each under its latest team).
    Acl(AclArgs),
}

/// Arguments of `sideline roster acl`.
#[derive(Debug, Args)]
pub struct AclArgs {
    /// Roster file (TOML).
    #[arg(long)]
    pub file: PathBuf,
    /// The ingest service's MQTT user.
    #[arg(long, default_value = "sideline-ingest")]
    pub ingest_user: String,
}

/// The Mosquitto ACL for `roster`: `ingest_user` reads every device topic; each pod (user name
/// = device id) may publish only under its latest team and its own id, any stream.
pub fn acl_text(roster: &Roster, ingest_user: &str) -> String {
    let mut out = format!(
        "# Mosquitto ACL for Sideline, made by `sideline roster acl` from the roster.\n\
         # Reload Mosquitto after every roster change (a pod moved to another squad).\n\
         user {ingest_user}\ntopic read sideline/v1/#\n"
    );
    let mut devices: Vec<_> = roster.devices().collect();
    devices.sort_by(|a, b| a.device.cmp(&b.device));
    for d in devices {
        out.push_str(&format!(
            "\nuser {}\ntopic write sideline/v1/{}/{}/+\n",
            d.device, d.team, d.device
        ));
    }
    out
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
    let a = match c {
        RosterCommand::Publish(a) => a,
        RosterCommand::Acl(a) => {
            let roster = Roster::from_toml(
                &std::fs::read_to_string(&a.file)
                    .with_context(|| format!("reading {}", a.file.display()))?,
            )?;
            print!("{}", acl_text(&roster, &a.ingest_user));
            return Ok(());
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated blocks are the ones the shipped example has (the deploy test runs that
    /// example on a real Mosquitto): a pod moved to another squad follows its latest team.
    #[test]
    fn the_acl_gives_each_pod_its_latest_team_as_the_tested_example_does() {
        let roster = Roster::from_toml(
            "[[devices]]\ndevice = \"pod-b\"\nplayer = \"b\"\nteam = \"away\"\n\
             [[devices]]\ndevice = \"pod-a\"\nplayer = \"x\"\nteam = \"away\"\n\
             [[devices]]\ndevice = \"pod-a\"\nplayer = \"a\"\nteam = \"home\"\nvalid_from_us = 5\n",
        )
        .unwrap();
        let acl = acl_text(&roster, "sideline-ingest");
        let example = include_str!("../../../deploy/mosquitto/acl");
        let lines = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.starts_with("user ") || l.starts_with("topic "))
                .map(str::to_string)
                .collect()
        };
        let generated = lines(&acl);
        assert_eq!(generated.len(), 6, "{acl}");
        for pair in generated.chunks(2) {
            let block = pair.join("\n");
            assert!(example.contains(&block), "{block} is not in the example");
        }
        assert!(acl.find("user pod-a").unwrap() < acl.find("user pod-b").unwrap());
    }
}

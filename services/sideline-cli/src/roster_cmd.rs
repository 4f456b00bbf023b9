//! `sideline roster publish`: put a roster file on the compacted roster topic, where ingest and
//! the processor follow it. `sideline roster acl`: the Mosquitto ACL that lets each pod of the
//! roster publish only under its own team and device id (`deploy/mosquitto/README.md`).
//! `sideline roster pitch`: a substitution or a lineup (who starts on the bench), as lineup
//! changes on the roster topic ([`sideline_wire::lineup`]).

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
    /// Post a substitution (`--off home-07 --on home-12`, now) or the substitutes' bench
    /// (`--off home-12 --off home-14 --at start`) to the roster topic.
    Pitch(PitchArgs),
}

/// Arguments of `sideline roster pitch`.
#[derive(Debug, Args)]
pub struct PitchArgs {
    /// Team id.
    #[arg(long)]
    pub team: String,
    /// Session id (as on the bench page).
    #[arg(long)]
    pub session: String,
    /// Players who came on the pitch.
    #[arg(long)]
    pub on: Vec<String>,
    /// Players who went off it (or, with `--at start`, start on the bench).
    #[arg(long)]
    pub off: Vec<String>,
    /// When: `now` (default), `start` (from the session's start: the bench before kick-off)
    /// or an RFC 3339 time such as 2026-12-06T15:47:10Z.
    #[arg(long, default_value = "now")]
    pub at: String,
    /// Who posts it (shown with the change).
    #[arg(long, default_value = "")]
    pub by: String,
    /// Withdraw these changes (posted in error) instead of posting them.
    #[arg(long)]
    pub withdraw: bool,
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Roster topic.
    #[arg(long, default_value = "sideline.roster.v1")]
    pub topic: String,
}

/// The lineup changes `a` asks for, as roster-topic records (empty values withdraw).
pub fn pitch_records(a: &PitchArgs, now_us: i64) -> Result<Vec<(String, Vec<u8>)>> {
    let at_us = match a.at.as_str() {
        "now" => now_us,
        "start" => 0,
        t => chrono::DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("--at {t:?}: now, start or an RFC 3339 time"))?
            .timestamp_micros(),
    };
    if a.on.is_empty() && a.off.is_empty() {
        anyhow::bail!("name the players: --on and/or --off");
    }
    let mut out = Vec::new();
    for (players, on) in [(&a.off, false), (&a.on, true)] {
        for p in players {
            let c = sideline_wire::lineup::PitchChange {
                team: a.team.clone(),
                session: a.session.clone(),
                player: p.clone(),
                at_us,
                on,
                by: a.by.clone(),
            };
            if let Some(why) = c.problem() {
                anyhow::bail!(why);
            }
            out.push((c.key(), if a.withdraw { Vec::new() } else { c.encode() }));
        }
    }
    Ok(out)
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
        RosterCommand::Pitch(a) => {
            let now = crate::publish::now_us();
            let records = pitch_records(a, now)?;
            publish(&a.brokers, &a.topic, "sideline-roster", &records).await?;
            for (k, v) in &records {
                eprintln!("{} {k}", if v.is_empty() { "withdrew" } else { "posted" });
            }
            return Ok(());
        }
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
        sideline_kafka::producer::Ordering::Idempotent,
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

    #[test]
    fn a_substitution_is_two_changes_at_one_time_and_bad_input_is_refused() {
        let a = PitchArgs {
            team: "home".into(),
            session: "m1".into(),
            on: vec!["home-12".into()],
            off: vec!["home-07".into()],
            at: "2026-12-06T15:47:10Z".into(),
            by: "Dr Lee".into(),
            withdraw: false,
            brokers: String::new(),
            topic: String::new(),
        };
        let r = pitch_records(&a, 0).unwrap();
        let at: i64 = 1_796_572_030_000_000;
        assert_eq!(r[0].0, format!("pitch:home:m1:home-07:{at}"));
        assert_eq!(r[1].0, format!("pitch:home:m1:home-12:{at}"));
        let (c, on) =
            sideline_wire::lineup::PitchChange::from_record(&r[1].0, Some(&r[1].1)).unwrap();
        assert_eq!((on, c.by.as_str()), (Some(true), "Dr Lee"));
        let start = PitchArgs {
            at: "start".into(),
            on: vec![],
            withdraw: true,
            ..a
        };
        let r = pitch_records(&start, 5).unwrap();
        assert_eq!(r, [("pitch:home:m1:home-07:0".to_string(), Vec::new())]);
        for (at, off) in [("yesterday", "p"), ("now", "bad id")] {
            let bad = PitchArgs {
                at: at.into(),
                off: vec![off.into()],
                ..start_args()
            };
            assert!(pitch_records(&bad, 0).is_err(), "{at} {off}");
        }
        assert!(pitch_records(&start_args(), 0).is_err(), "no players");
    }

    fn start_args() -> PitchArgs {
        PitchArgs {
            team: "home".into(),
            session: "m1".into(),
            on: vec![],
            off: vec![],
            at: "now".into(),
            by: String::new(),
            withdraw: false,
            brokers: String::new(),
            topic: String::new(),
        }
    }

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

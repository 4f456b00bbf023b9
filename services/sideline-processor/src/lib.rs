//! # sideline-processor
//!
//! Where the engine meets Kafka. A consumer group reads `sideline.samples.v1` (keyed by
//! player, so each player lives in one partition); one engine per player turns samples into a
//! `PlayerMetrics` per second of event time (`sideline.metrics.v1`) and alert lifecycle events
//! (`sideline.alerts.v1`), and per-player gauges on `/metrics`. More instances in the group
//! split the partitions.
//!
//! State survives: every few seconds each changed player's engine is snapshotted to the
//! compacted `sideline.state.v1` with the input offset it covers; offsets are committed only
//! after outputs and snapshots are acknowledged (without the loop waiting: see [`commits`]);
//! a partition's state is restored before its
//! records are consumed, and records a snapshot already covers are skipped (see [`state`]).
//! Duplicate deliveries are removed by (device, seq) inside each player's engine.
//!
//! # Layout
//!
//! - [`config`]: configuration (`default.toml` documents every key).
//! - [`core`]: the sans-I/O core (records, ticks, silence, outputs as values), shared with
//!   `sideline demo`.
//! - [`processor`]: the Kafka shell around it (produce, checkpoint, commit, rebalance).
//! - [`commits`]: checkpoints committed once their outputs are acknowledged.
//! - [`flow`]: a partition's flow clock (a player's silence, upstream stalls not counted).
//! - [`context`]: the rebalance hook (restore before assign).
//! - [`state`]: snapshots and reading them back.
//! - [`metrics`]: every exported metric.
//! - [`watchdog`]: (from `sideline-kafka`) rejoins the group when a partition makes no
//!   committed progress.
//! - this file: [`run`] (restarts from the last checkpoint after a failed output), the
//!   set-up of one run, and the `select!` loop.

pub mod commits;
pub mod config;
pub mod context;
pub mod core;
pub mod flow;
pub mod metrics;
pub mod processor;
pub mod state;
pub use sideline_kafka::watchdog;

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use sideline_common::service::Service;
use sideline_common::{CancellationToken, Health};
use sideline_engine::{AthleteProfile, Baseline, Engine, Params};
use sideline_kafka::follow::follow_compacted;
use sideline_kafka::sink::ProducerSlot;
use sideline_wire::convert::{baseline_from_pb, profile_from_pb};
use sideline_wire::pb;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::core::{Core, Timing};
pub use config::ProcessorConfig;
use context::{ProcessorContext, RebalanceEvent};
use metrics::ProcessorMetrics;
use processor::{Processor, Topics};

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// Metric registration failed (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A Kafka client could not be created (bad settings: fatal).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The parameter file is invalid (fatal).
    #[error("{0}")]
    Params(#[from] sideline_engine::params::ParamsError),
    /// Reading a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// An output could not be delivered: the processor stops without committing past it, so
    /// that a restart produces it again (fatal for this run; the supervisor restarts it).
    #[error("{0}; stopped without committing past it (a restart produces it again)")]
    Output(#[from] processor::OutputError),
}

/// Profile and baseline updates from the compacted topics.
enum Update {
    Profile(AthleteProfile),
    Baseline(String, Baseline),
    /// A lineup change (`None`: withdrawn).
    Pitch(sideline_wire::lineup::PitchChange, Option<bool>),
    /// A session's planned full time (`None`: not known, or the session withdrawn).
    FullTime(String, Option<sideline_engine::Micros>),
}

/// Load the engine parameters named in the configuration.
pub fn params(cfg: &ProcessorConfig) -> Result<Params, ProcessorError> {
    if cfg.processor.params_file.as_os_str().is_empty() {
        Ok(Params::default())
    } else {
        Ok(Params::from_toml(&std::fs::read_to_string(
            &cfg.processor.params_file,
        )?)?)
    }
}

/// The longest pause between two in-process restarts after failed outputs.
const MAX_RESTART_PAUSE: Duration = Duration::from_secs(30);

/// Run until `shutdown`, then checkpoint and return.
///
/// An output Kafka refuses stops the loop without committing past it; the processor then
/// starts again in-process from its last checkpoint (a new consumer joins the group and
/// restores the players' state; the producer, rebuilt if the error was fatal to it, carries
/// on), after a pause that doubles with each failure in a row up to [`MAX_RESTART_PAUSE`].
/// Anything else that stops it (bad settings, parameters) is returned.
pub async fn run(
    cfg: ProcessorConfig,
    http: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ProcessorError> {
    let svc = Service::new(&["kafka", "profiles", "baselines"]);
    let metrics = ProcessorMetrics::new(&svc.registry)?;
    let health = svc.health.clone();
    let server = svc.serve_admin(http);
    let result = async {
        let params = params(&cfg)?;
        let slot = Arc::new(ProducerSlot::new(
            &cfg.kafka,
            "sideline-processor",
            &cfg.kafka.topics.samples,
            sideline_kafka::producer::Ordering::OneInFlight,
        )?);
        let mut pause = Duration::from_secs(1);
        loop {
            match serve(&cfg, &params, &slot, metrics.clone(), &health, &shutdown).await {
                Err(ProcessorError::Output(error)) if !shutdown.is_cancelled() => {
                    metrics.restarts.inc();
                    tracing::warn!(message = "Restarting from the last checkpoint.", %error, pause_s = pause.as_secs());
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(MAX_RESTART_PAUSE);
                }
                other => return other,
            }
        }
    }
    .await;
    server.stop().await;
    result
}

/// Follow the roster (athlete profiles) and baselines topics for as long as `tasks` runs;
/// each is marked in `health` once read to its end.
fn follow_updates(
    cfg: &ProcessorConfig,
    health: &Health,
    tasks: &CancellationToken,
) -> mpsc::UnboundedReceiver<Update> {
    let t = &cfg.kafka.topics;
    let (up_tx, up_rx) = mpsc::unbounded_channel();
    for (topic, component) in [
        (t.roster.clone(), "profiles"),
        (t.baselines.clone(), "baselines"),
    ] {
        let (k, tx, stop, health) = (
            cfg.kafka.clone(),
            up_tx.clone(),
            tasks.clone(),
            health.clone(),
        );
        tokio::spawn(async move {
            let on_record = |key: &[u8], value: Option<&[u8]>| {
                if let Some(u) = decode_update(component, key, value) {
                    let _ = tx.send(u);
                }
            };
            let h = health.clone();
            let id = format!("sideline-processor-{component}-{}", std::process::id());
            if let Err(error) = follow_compacted(
                &k,
                &topic,
                &id,
                on_record,
                move || h.set(component, true),
                stop,
            )
            .await
            {
                tracing::error!(message = "Compacted topic cannot be followed.", %topic, %error);
            }
        });
    }
    up_rx
}

/// A record of the roster (`profiles`) or baselines topic as an update, if it is one.
fn decode_update(component: &str, key: &[u8], value: Option<&[u8]>) -> Option<Update> {
    if component == "profiles" && key.starts_with(b"pitch:") {
        let key = String::from_utf8_lossy(key);
        return match sideline_wire::lineup::PitchChange::from_record(&key, value) {
            Ok((c, on)) => Some(Update::Pitch(c, on)),
            Err(why) => {
                tracing::warn!(message = "Lineup record refused.", %key, %why);
                None
            }
        };
    }
    if component == "profiles"
        && let Some(rest) = String::from_utf8_lossy(key).strip_prefix("session:")
    {
        let (_, session) = rest.split_once(':')?;
        let full_time = match value.filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => {
                let s = pb::ScheduledSession::decode(v).ok()?;
                (s.session_id == session && s.full_time_us > 0).then_some(s.full_time_us)
            }
        };
        return Some(Update::FullTime(session.to_string(), full_time));
    }
    let v = value.filter(|v| !v.is_empty())?;
    if component == "profiles" {
        String::from_utf8_lossy(key).strip_prefix("player:")?;
        let p = pb::AthleteProfile::decode(v).ok()?;
        Some(Update::Profile(profile_from_pb(&p)))
    } else {
        let b = pb::Baseline::decode(v).ok()?;
        Some(Update::Baseline(b.player_id.clone(), baseline_from_pb(&b)))
    }
}

/// The samples consumer: a group member with manual commits, partition-end events, and the
/// rebalance hook that restores state before assignment.
fn consumer(
    cfg: &ProcessorConfig,
    metrics: &ProcessorMetrics,
    rb_tx: mpsc::UnboundedSender<RebalanceEvent>,
) -> Result<StreamConsumer<ProcessorContext>, ProcessorError> {
    let t = &cfg.kafka.topics;
    let ctx = ProcessorContext {
        kafka: cfg.kafka.clone(),
        samples_topic: t.samples.clone(),
        state_topic: t.state.clone(),
        restore_timeout: Duration::from_secs(cfg.processor.restore_timeout_s),
        tx: rb_tx,
        lag: metrics.lag.clone(),
        commit_failures: metrics.commit_failures.clone(),
        revoked: metrics.partitions_revoked.clone(),
    };
    let consumer: StreamConsumer<ProcessorContext> = cfg
        .kafka
        .client_config(
            &format!("sideline-processor-{}", std::process::id()),
            &[
                ("group.id", cfg.processor.group_id.as_str()),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                ("fetch.wait.max.ms", "20"),
                ("session.timeout.ms", "10000"),
                ("heartbeat.interval.ms", "1000"),
                // Reaching the end of a partition is what lets a quiet partition's event time
                // follow the wall clock (never while it is still catching up).
                ("enable.partition.eof", "true"),
                ("statistics.interval.ms", "5000"),
            ],
        )?
        .create_with_context(ctx)?;
    consumer.subscribe(&[t.samples.as_str()])?;
    Ok(consumer)
}

/// One run: topics, profiles and baselines read, then the loop until `shutdown` or an
/// output failure.
async fn serve(
    cfg: &ProcessorConfig,
    params: &Params,
    slot: &Arc<ProducerSlot>,
    metrics: ProcessorMetrics,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<(), ProcessorError> {
    if !sideline_kafka::topics::ensure_contract_until_ready(
        &cfg.kafka,
        "sideline-processor-admin",
        shutdown,
    )
    .await?
    {
        return Ok(());
    }
    health.set("kafka", true);
    let t = &cfg.kafka.topics;
    let tasks = CancellationToken::new();
    let _stop_tasks = tasks.clone().drop_guard();

    // Athlete profiles and baselines, followed for as long as we run; both read to their
    // end before the first sample, applying what arrives.
    let mut up_rx = follow_updates(cfg, health, &tasks);
    let mut engine: Engine = Engine::new(params.clone(), false);
    while !(health.get("profiles") && health.get("baselines")) {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            Some(u) = up_rx.recv() => apply(&mut engine, u),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    while let Ok(u) = up_rx.try_recv() {
        apply(&mut engine, u);
    }

    let (rb_tx, rb_rx) = mpsc::unbounded_channel::<RebalanceEvent>();
    let consumer = consumer(cfg, &metrics, rb_tx)?;
    let topics = Topics {
        samples: t.samples.clone(),
        metrics: t.metrics.clone(),
        alerts: t.alerts.clone(),
        state: t.state.clone(),
        dlq: t.dlq.clone(),
    };
    let core = Core::new(
        engine,
        metrics,
        cfg.processor.player_gauges,
        Timing {
            idle_advance: Duration::from_secs(cfg.processor.idle_advance_s),
            session_idle: Duration::from_secs(cfg.processor.session_idle_s),
            forget_after: Duration::from_secs(cfg.processor.forget_after_s),
            pace: 1.0,
        },
    );
    let mut proc = Processor::new(core, slot.clone(), topics);

    // Kafka reachability for /readyz.
    {
        let (slot, health) = (slot.clone(), health.clone());
        sideline_kafka::probe::spawn(
            move || slot.answers(),
            move |ok| health.set("kafka", ok),
            tasks.clone(),
        );
    }
    // Safety net against coordinators that orphan a dead member's partitions.
    let watchdog = watchdog::Watchdog::spawn(
        &cfg.kafka,
        &cfg.processor.group_id,
        &[t.samples.as_str()],
        Duration::from_secs(cfg.processor.orphan_grace_s),
        &tasks,
    );
    tracing::info!(message = "Processor running.", group = %cfg.processor.group_id, topic = %t.samples);
    let result = drive(
        cfg,
        &mut proc,
        &consumer,
        Inputs {
            rebalances: rb_rx,
            updates: up_rx,
            watchdog,
        },
        shutdown,
    )
    .await;
    consumer.unsubscribe();
    // Whatever ended it, this run's partitions and their series are gone.
    proc.core.release_all();
    match &result {
        Ok(()) => tracing::info!(message = "Processor stopped."),
        Err(error) => tracing::error!(message = "Processor stopped on an error.", %error),
    }
    result
}

/// What the loop listens to besides the consumer and its timers.
struct Inputs {
    rebalances: mpsc::UnboundedReceiver<RebalanceEvent>,
    updates: mpsc::UnboundedReceiver<Update>,
    watchdog: watchdog::Watchdog,
}

/// The `select!` loop, then the final checkpoint.
async fn drive(
    cfg: &ProcessorConfig,
    proc: &mut Processor,
    consumer: &StreamConsumer<ProcessorContext>,
    mut inputs: Inputs,
    shutdown: &CancellationToken,
) -> Result<(), ProcessorError> {
    let samples = cfg.kafka.topics.samples.as_str();
    let mut tick = tokio::time::interval(Duration::from_millis(cfg.processor.tick_interval_ms));
    let mut checkpoint =
        tokio::time::interval(Duration::from_secs(cfg.processor.checkpoint_interval_s));
    for i in [&mut tick, &mut checkpoint] {
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(ev) = inputs.rebalances.recv() => proc.rebalance(ev),
            Some(u) = inputs.updates.recv() => apply(&mut proc.core.engine, u),
            _ = checkpoint.tick() => proc.checkpoint(consumer).await?,
            () = inputs.watchdog.rejoin() => {
                proc.checkpoint_sync(consumer).await?;
                proc.core.metrics.rejoins.inc();
                consumer.unsubscribe();
                consumer.subscribe(&[samples])?;
            }
            _ = tick.tick() => proc.tick().await?,
            r = proc.next_delivery(), if proc.pending() > 0 => {
                r?;
                proc.commit_ready(consumer);
            }
            m = consumer.recv() => match m {
                Ok(m) => {
                    // A rebalance that happened inside this poll is applied before its records.
                    while let Ok(ev) = inputs.rebalances.try_recv() {
                        proc.rebalance(ev);
                    }
                    proc.record(&m).await?;
                }
                Err(KafkaError::PartitionEOF(p)) => proc.at_end(p),
                Err(error) => {
                    tracing::warn!(message = "Consume failed; retrying.", %error);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }
    tracing::info!(message = "Final checkpoint.");
    proc.checkpoint_sync(consumer).await?;
    Ok(())
}

fn apply(engine: &mut Engine, u: Update) {
    match u {
        Update::Profile(p) => engine.set_profile(p),
        Update::Baseline(player, b) => engine.set_baseline(&player, b),
        Update::Pitch(c, on) => engine.set_pitch(&c.session, &c.player, c.at_us, on),
        Update::FullTime(session, at) => engine.set_full_time(&session, at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideline_wire::lineup::PitchChange;

    /// A lineup record of the roster topic reaches the engine; its withdrawal (an empty value)
    /// too; a malformed one is refused, not applied.
    #[test]
    fn lineup_records_on_the_roster_topic_reach_the_engine() {
        let mut engine: Engine = Engine::new(Params::default(), true);
        let c = PitchChange {
            team: "home".into(),
            session: "m1".into(),
            player: "home-12".into(),
            at_us: 3_600_000_000,
            on: true,
            by: "Dr Lee".into(),
        };
        let u = decode_update("profiles", c.key().as_bytes(), Some(&c.encode())).unwrap();
        assert!(matches!(&u, Update::Pitch(got, Some(true)) if *got == c));
        apply(&mut engine, u);
        // His engine for the session, made after the change, has it: off before his entry.
        let mut out = sideline_engine::Outputs::default();
        let s = |t| sideline_engine::Sample::xy(t, 0.0, 0.0, Some(1.0));
        engine
            .ingest("home-12", "home", "m1", s(0), &mut out)
            .unwrap();
        assert!(!engine.player("home-12").unwrap().on_pitch(1_000_000));
        assert!(engine.player("home-12").unwrap().on_pitch(3_600_000_000));
        let gone = decode_update("profiles", c.key().as_bytes(), None).unwrap();
        apply(&mut engine, gone);
        assert!(engine.player("home-12").unwrap().on_pitch(1_000_000));
        assert!(decode_update("profiles", b"pitch:home:m1", None).is_none());
        let other = PitchChange {
            player: "home-13".into(),
            ..c.clone()
        };
        assert!(decode_update("profiles", c.key().as_bytes(), Some(&other.encode())).is_none());
    }

    /// A scheduled session's planned full time reaches the engine's forecast.
    #[test]
    fn a_session_s_full_time_on_the_roster_topic_reaches_the_engine() {
        let s = pb::ScheduledSession {
            team_id: "home".into(),
            session_id: "m1".into(),
            start_us: 1,
            full_time_us: 6_300_000_000,
            ..Default::default()
        };
        let u = decode_update("profiles", b"session:home:m1", Some(&s.encode_to_vec())).unwrap();
        assert!(matches!(&u, Update::FullTime(x, Some(6_300_000_000)) if x == "m1"));
        let gone = decode_update("profiles", b"session:home:m1", None).unwrap();
        assert!(matches!(&gone, Update::FullTime(x, None) if x == "m1"));
    }
}

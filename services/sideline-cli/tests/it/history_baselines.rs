//! From weeks of history to the live score, on a real Kafka-protocol broker (tansu): nine weeks
//! of synthetic sessions are written to the archive (`sideline history`), `sideline baselines
//! --publish` (a real process: DataFusion over the archive) puts each player's baseline on the
//! compacted topic, and a real processor scores the next match with them. Checked: what was
//! published is what the baseline functions give on the archive's daily loads; with nine
//! weeks every history term of every player is known (none left *unknown*); and every
//! snapshot's score, term by term, and every alert equal the engine's offline run with the
//! same baselines.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;

use common::*;
use prost::Message as _;
use sideline_archive::baselines;
use sideline_engine::Baseline;
use sideline_sim::MatchConfig;
use sideline_testkit::Tansu;
use sideline_wire::{convert, pb};

const WEEKS: u32 = 9;
const DATE: &str = "2026-03-10";

/// Every numeric field of two baselines within a relative 1e-9 (sums may add up in another
/// order), every other field equal.
fn assert_close(player: &str, got: &Baseline, want: &Baseline) {
    let (g, w) = (
        serde_json::to_value(got).unwrap(),
        serde_json::to_value(want).unwrap(),
    );
    for (k, wv) in w.as_object().unwrap() {
        let gv = &g[k];
        let same = match (gv.as_f64(), wv.as_f64()) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            _ => gv == wv,
        };
        assert!(same, "{player}.{k}: published {gv}, computed {wv}");
    }
}

/// The history terms: those that read the baseline.
const HISTORY_TERMS: [&str; 6] = [
    "b_hsr_z",
    "b_week_rise",
    "b_v24_week",
    "c_no_vmax_exposure",
    "c_low_chronic",
    "d_volume",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weeks_of_history_give_the_live_score_its_history_terms() {
    let kafka = Tansu::start();
    let brokers = kafka.brokers();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let today = baselines::day_of(DATE).unwrap();

    // Nine weeks, two sessions a week (10-minute halves: long enough for every player,
    // keepers too, to run at high speed in some sessions and not others).
    let (sessions, rows) =
        sideline_cli::history_cmd::generate(&archive, WEEKS, today, 10.0).unwrap();
    assert_eq!(sessions, 2 * WEEKS);
    assert!(rows > 0);

    let cfg = config(&brokers, "history");
    create_topics(&cfg.kafka).await;
    let out = Command::new(env!("CARGO_BIN_EXE_sideline"))
        .args([
            "baselines",
            "--days",
            "1",
            "--as-of",
            DATE,
            "--publish",
            &brokers,
        ])
        .arg("--archive")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Published = the baseline functions on the archive's daily loads.
    let loads = baselines::daily_loads(&archive, chrono_tz::UTC)
        .await
        .unwrap();
    assert_eq!(loads.len(), 22);
    let published: BTreeMap<String, Baseline> = sideline_testkit::kafka::read_topic(
        &brokers,
        &cfg.kafka.topics.baselines,
        22,
        Duration::from_secs(20),
    )
    .into_iter()
    .map(|r| {
        let b = pb::Baseline::decode(r.value.unwrap().as_slice()).unwrap();
        assert_eq!(b.as_of, DATE);
        (b.player_id.clone(), convert::baseline_from_pb(&b))
    })
    .collect();
    assert_eq!(published.len(), 22);
    for ((_, player), days) in &loads {
        let want = baselines::baseline(days, today, &sideline_engine::Params::default().history);
        let got = &published[player];
        assert_close(player, got, &want);
        // Nine weeks are enough for every term: nothing left unknown.
        let fields = serde_json::to_value(got).unwrap();
        let missing: Vec<_> = fields
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.clone())
            .collect();
        assert!(missing.is_empty(), "{player}: {missing:?} unknown");
        assert_eq!(got.days_of_history, Some(63), "{player}");
    }

    // The next match, scored live by the processor with those baselines.
    let mcfg = MatchConfig {
        start: today * 86_400_000_000 + 19 * 3_600_000_000,
        half_min: 3.0,
        break_min: 1.0,
        session: format!("{DATE}-match"),
        ..MatchConfig::default()
    };
    let (batches, sim) = match_batches(&mcfg);
    produce_roster(&brokers, &cfg.kafka, &sim);
    let samples: usize = batches.iter().map(|(_, b)| b.samples.len()).sum();
    let svc = start(cfg.clone()).await;
    produce_batches(
        &test_producer(&brokers),
        &cfg.kafka.topics.samples,
        &batches,
    );
    wait_metric(
        &svc,
        "sideline_processor_samples_total",
        samples as f64,
        Duration::from_secs(300),
    )
    .await;
    // The oracle: the engine offline, given the same baselines.
    let mut offline_risk: HashMap<(String, i64), pb::Risk> = HashMap::new();
    let mut seconds = BTreeSet::new();
    let sim = sideline_sim::MatchSim::new(mcfg.clone());
    let mut engine = sideline_sim::offline::engine_for(&sim, sideline_engine::Params::default());
    for (p, b) in &published {
        engine.set_baseline(p, b.clone());
    }
    let run = sideline_sim::offline::run_engine(sim, engine, |m| {
        seconds.insert((m.player.to_string(), m.t));
        let risk = convert::metrics(m).risk.unwrap();
        offline_risk.insert((m.player.to_string(), m.t), risk);
    });
    let off = Offline {
        last: run.last,
        alerts: run.alerts,
        seconds,
    };
    // The final seconds close once the partitions are idle (idle advance + lateness).
    wait_last_seconds(
        &brokers,
        &cfg.kafka.topics.metrics,
        &off.last,
        Duration::from_secs(60),
    )
    .await;
    let outputs = svc.outputs_expected().await;
    svc.shutdown().await;
    let metrics = read_metrics(&brokers, &cfg.kafka.topics.metrics);
    let alerts = read_alerts(&brokers, &cfg.kafka.topics.alerts);
    assert_same_as_offline(&off, &metrics, &alerts, outputs);
    let mut compared = 0;
    for m in &metrics {
        let Some(want) = offline_risk.get(&(m.player_id.clone(), m.t_us)) else {
            continue;
        };
        assert_eq!(
            m.risk.as_ref(),
            Some(want),
            "{} at {}: live score differs from offline",
            m.player_id,
            m.t_us
        );
        compared += 1;
    }
    assert!(compared >= 22 * 6 * 60, "{compared} snapshots compared");

    // At full time every player's history terms are known, and the 7-day z-score is the one
    // his published baseline gives: (previous 6 days + today − mean) / SD.
    let last = latest(&metrics);
    for (player, m) in &last {
        let risk = m.risk.as_ref().unwrap();
        let term = |id: &str| risk.terms.iter().find(|t| t.id == id).unwrap();
        for id in HISTORY_TERMS {
            assert_ne!(
                term(id).state,
                pb::term::State::Unknown as i32,
                "{player}: {id} unknown"
            );
        }
        let b = &published[player];
        let hsr = m.totals.as_ref().unwrap().hsr_m;
        let z = (b.hsr_prev6d_m.unwrap() + hsr - b.hsr_7d_mean_m.unwrap()) / b.hsr_7d_sd_m.unwrap();
        let got = term("b_hsr_z").value.unwrap();
        assert!((got - z).abs() < 1e-9, "{player}: z {got}, by hand {z}");
    }
}

//! The whole pipeline on real brokers, undisturbed: Mosquitto, tansu and Prometheus, with
//! `sideline ingest`, `process`, `alert` and `archive` as separate processes, fed over MQTT
//! with a synthetic match. The outputs must equal the offline engine's on the same batches:
//! every player's totals, every alert (delivered to the chat once), every sample in the
//! archive exactly once; and Prometheus must be scraping all four. (The real ZXY excerpt runs
//! through the deployment as shipped, `tests/deploy.rs`, with the same totals check.)

use crate::e2e;

use std::time::Duration;

use e2e::check::{Allow, report};
use e2e::feed::{self, Feed};
use e2e::{Expected, Pipeline, Setup};
use sideline_sim::{MatchConfig, MatchSim};

/// The synthetic match (2 × 45 min, 1-min break); the tests play minutes 27:00–34:00, which
/// take in the scripted pod dropout (30:00–33:00) and its alerts.
fn the_match() -> MatchConfig {
    MatchConfig {
        break_min: 1.0,
        batch_ms: 200,
        ..MatchConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthetic_match_through_every_service_equals_the_offline_engine() {
    let speed = 10.0;
    let (cfg, windows) = feed::synthetic(&the_match(), speed, 27.0, 34.0);
    let want = Expected::synthetic(&cfg, &windows);
    let sim = MatchSim::new(cfg.clone());
    let p = Pipeline::start(Setup {
        roster: sideline_cli::simulate::roster_toml(&sim),
        profiles: vec![sim],
        env: vec![],
        archive: true,
        partitions: e2e::partitions_or(None),
        ingest_config: None,
    })
    .await;
    let mut f = Feed::new(p.mqtt.port, windows, speed);
    f.play(1.0).await;
    f.close().await;
    let out = p.outcome(&want, Duration::from_secs(180)).await;
    let figures = out.check(&want, &Allow::default());
    report("undisturbed synthetic match", &figures);
    assert_eq!(
        figures.duplicate_rows, 0,
        "an undisturbed run duplicated rows"
    );
    assert_eq!(figures.repeated_seconds, 0);
    assert!(!want.alert_ids.is_empty(), "the match should raise alerts");
    // Prometheus scraped every service, and saw the samples.
    for job in ["ingest", "process", "alert", "archive"] {
        let up = p.promql(&format!("up{{job=\"sideline-{job}\"}}")).await;
        assert_eq!(up, Some(1.0), "{job} not up in Prometheus");
    }
    let seen = p
        .promql("sum(sideline_processor_samples_total)")
        .await
        .unwrap_or(0.0);
    assert!(seen > 0.0, "Prometheus saw no processed samples");
    for role in e2e::ROLES {
        assert!(
            p.problems(role).is_empty(),
            "{role}: {:?}",
            p.problems(role)
        );
    }
}

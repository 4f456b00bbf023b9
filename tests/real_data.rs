//! The engine on real tracking data recorded by others, against independent reference figures
//! (`data/reference/PROTOCOL.md`). Every tolerance is stated with its reason; none was widened
//! to make a test pass.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic

use std::path::PathBuf;

use sideline_cli::analyze::{AnalyzeArgs, Format, Summary, summarize};
use sideline_e2e::{data_dir, golden, num, reference};

fn analyze(format: Format, paths: Vec<PathBuf>, pitch: Option<&str>) -> Vec<Summary> {
    let args = AnalyzeArgs {
        format,
        mapping: None,
        params: None,
        pitch: pitch.map(str::to_string),
        json: true,
        timeline: None,
        seed: 0,
        substitutions: false,
        raw_gnss: false,
        paths,
    };
    let a = summarize(&args).expect("analyze");
    assert_eq!(
        a.report.skipped_total(),
        0,
        "no row of the real data should be rejected: {:?}",
        a.report
    );
    a.summaries
}

fn zxy() -> Vec<Summary> {
    analyze(
        Format::Zxy,
        vec![data_dir().join("zxy_alfheim/zxy_tromso_anzhi_2013-11-07_excerpt_long.csv.gz")],
        None,
    )
}

/// Active players: the ZXY system itself measured more than 100 m (tags 1 and 3 never move).
fn active_zxy() -> Vec<(Summary, std::collections::HashMap<String, String>)> {
    let reference = reference("reference_zxy_tromso.csv", |r| r["player"].clone());
    zxy()
        .into_iter()
        .filter_map(|s| {
            let r = reference
                .get(&s.player)
                .unwrap_or_else(|| panic!("no reference for {}", s.player));
            (num(r, "zxy_total_distance_field_m") > 100.0).then(|| (s, r.clone()))
        })
        .collect()
}

#[test]
fn zxy_distances_are_within_one_percent_of_the_zxy_systems_own() {
    // Tolerance 1 %: we integrate the same device speed ZXY integrates; what differs is our
    // causal median + exponential filter and rectangle-rule timing (observed ≤ 0.1 %).
    let active = active_zxy();
    assert_eq!(active.len(), 10, "the excerpt has 10 active players");
    for (s, r) in active {
        let own = num(&r, "zxy_total_distance_field_m");
        let err = s.distance_m / own - 1.0;
        assert!(
            err.abs() <= 0.01,
            "player {}: {} m vs ZXY {} m ({:+.2} %)",
            s.player,
            s.distance_m,
            own,
            err * 100.0
        );
    }
}

#[test]
fn zxy_sprint_counts_equal_the_reference() {
    // Exact: efforts ≥ 7 m/s held ≥ 1 s are clear in this data (2, 3, 2, 1, 0, 1, 0, 3, 0, 0).
    for (s, r) in active_zxy() {
        assert_eq!(
            s.sprints as f64,
            num(&r, "n_sprints_ge7_1s"),
            "player {} sprints",
            s.player
        );
    }
}

#[test]
fn zxy_max_speed_is_within_three_percent_of_the_reference() {
    // Tolerance 3 %: the reference differentiates smoothed positions (Savitzky–Golay), we filter
    // the system's Doppler-like speed causally; peak-speed bias between systems is 2.0–2.4 %
    // (Beato et al. 2018). A heavier live filter (τ ≥ 0.2 s) fails this on short peaks. The
    // reference is one frame's speed, so it is compared with our single-sample peak; the
    // maximum we report is held 0.5 s: at most that peak, and on these 20 Hz tags up to 13 %
    // below it where the peak is a burst shorter than 0.5 s (player 12: 7.08 held, 8.16 peak).
    for (s, r) in active_zxy() {
        let reference = num(&r, "max_speed_ms");
        let err = s.peak_speed_mps / reference - 1.0;
        assert!(
            err.abs() <= 0.03,
            "player {}: {} vs {} m/s ({:+.2} %)",
            s.player,
            s.peak_speed_mps,
            reference,
            err * 100.0
        );
        assert!(
            s.max_speed_mps <= s.peak_speed_mps && s.max_speed_mps >= 0.8 * s.peak_speed_mps,
            "player {}: held {} vs peak {}",
            s.player,
            s.max_speed_mps,
            s.peak_speed_mps
        );
    }
}

#[test]
fn zxy_tags_that_never_move_cover_no_distance() {
    for s in zxy().iter().filter(|s| s.player == "1" || s.player == "3") {
        assert_eq!(s.distance_m, 0.0, "tag {}", s.player);
        assert_eq!(s.sprints, 0);
    }
}

fn metrica_reference()
-> std::collections::HashMap<String, std::collections::HashMap<String, String>> {
    reference("reference_metrica_game3_excerpt.csv", |r| {
        format!("{}-{}", r["team"].to_lowercase(), r["player"])
    })
}

fn check_metrica_distances(summaries: &[Summary]) {
    // Tolerance 2 %: the reference smooths positions with a centred (non-causal) 7-frame
    // Savitzky–Golay filter; we use a causal 0.3 s displacement window, which differs at sharp
    // turns and at the start of each half (observed ≤ 1.0 %).
    let reference = metrica_reference();
    assert_eq!(summaries.len(), 22);
    for s in summaries {
        let r = reference
            .get(&s.player)
            .unwrap_or_else(|| panic!("no reference for {}", s.player));
        let want = num(r, "total_distance_m");
        if want == 0.0 {
            // The away goalkeeper (28) is frozen in this excerpt: a real artefact, 0 m.
            assert_eq!(s.distance_m, 0.0, "{}", s.player);
            continue;
        }
        let err = s.distance_m / want - 1.0;
        assert!(
            err.abs() <= 0.02,
            "{}: {} m vs {} m ({:+.2} %)",
            s.player,
            s.distance_m,
            want,
            err * 100.0
        );
    }
}

#[test]
fn metrica_csv_distances_are_within_two_percent_of_the_reference() {
    // The reference converted with a 106 m pitch (PROTOCOL.md step 1); so do we, to compare
    // like with like. Metrica's own metadata says 105 m, the importer's default.
    let dir = data_dir().join("metrica/game3_excerpt_as_metrica_csv");
    let files = vec![
        dir.join("Sample_Game_3_excerpt_RawTrackingData_Home_Team.csv.gz"),
        dir.join("Sample_Game_3_excerpt_RawTrackingData_Away_Team.csv.gz"),
    ];
    check_metrica_distances(&analyze(Format::MetricaCsv, files, Some("106x68")));
}

#[test]
fn metrica_epts_gives_the_same_figures_as_the_csv_of_the_same_frames() {
    let dir = data_dir().join("metrica");
    let epts = analyze(
        Format::Epts,
        vec![
            dir.join("game3_excerpt_epts/tracking_frames_1-2100.txt.gz"),
            dir.join("game3_excerpt_epts/metadata_codeball_test.xml.gz"),
        ],
        Some("106x68"),
    );
    check_metrica_distances(&epts);
    let csv_dir = dir.join("game3_excerpt_as_metrica_csv");
    let csv = analyze(
        Format::MetricaCsv,
        vec![
            csv_dir.join("Sample_Game_3_excerpt_RawTrackingData_Home_Team.csv.gz"),
            csv_dir.join("Sample_Game_3_excerpt_RawTrackingData_Away_Team.csv.gz"),
        ],
        Some("106x68"),
    );
    for s in &csv {
        let e = epts
            .iter()
            .find(|e| e.player == s.player)
            .unwrap_or_else(|| panic!("{} missing from EPTS", s.player));
        // Same frames, same engine; only the absolute start time differs between the formats.
        assert!(
            (e.distance_m - s.distance_m).abs() < 0.05,
            "{}: {} vs {}",
            s.player,
            e.distance_m,
            s.distance_m
        );
        assert_eq!(e.sprints, s.sprints);
    }
}

#[test]
fn zxy_analysis_matches_its_golden_file() {
    let lines: Vec<String> = zxy()
        .iter()
        .map(|s| serde_json::to_string(s).expect("json"))
        .collect();
    golden("analyze_zxy.jsonl", &(lines.join("\n") + "\n"));
}

/// The ZXY excerpt has a 6-minute hole (two players come back first, before any tick has
/// moved past it): the time-jump quarantine must give the same figures whether the engine is
/// advanced between batches (as the pipeline does) or not (files), and the same as with the
/// quarantine off: a real gap is never refused. (With ticks, the first version refused the
/// two returning samples: the tick moved the clock past the held ones and the batches after
/// them looked "near".)
#[test]
fn a_real_gap_in_the_zxy_excerpt_is_accepted_with_or_without_ticks() {
    use sideline_engine::{Engine, Params};
    let path = data_dir().join("zxy_alfheim/zxy_tromso_anzhi_2013-11-07_excerpt_long.csv.gz");
    let data = sideline_cli::analyze::load_files(Format::Zxy, &[path], None, None).unwrap();
    let windows = sideline_cli::replay::windows(&data, "gap", 0, 200_000);
    let roster = sideline_cli::replay::pods(&data);
    let run = |max_jump_s: f64, ticks: bool| {
        let mut p = Params::default();
        p.stream.max_jump_s = max_jump_s;
        let mut e: Engine = Engine::new(p, false);
        for (d, pl, t) in &roster {
            e.assign(d, pl, t);
        }
        let (mut out, mut last) = (
            sideline_engine::Outputs::default(),
            std::collections::BTreeMap::new(),
        );
        for (t, batches) in &windows {
            for b in batches {
                e.ingest_batch(b, &mut out);
            }
            if ticks {
                e.tick(*t, &mut out);
            }
            for m in out.metrics.drain(..) {
                last.insert(m.player.to_string(), m.totals.clone());
            }
        }
        e.finish(&mut out);
        for m in out.metrics.drain(..) {
            last.insert(m.player.to_string(), m.totals.clone());
        }
        (e.counters(), last)
    };
    let (c0, off) = run(0.0, true);
    assert_eq!(c0.time_jump_samples, 0);
    for ticks in [true, false] {
        let (c, on) = run(60.0, ticks);
        assert_eq!(c.time_jump_samples, 0, "ticks {ticks}: a real gap refused");
        assert_eq!(c.samples, c0.samples, "ticks {ticks}");
        assert!(
            on == off,
            "ticks {ticks}: totals differ with the quarantine on"
        );
    }
}

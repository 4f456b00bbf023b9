//! Vendor live feeds end to end: the real ZXY recording replayed by `sideline replay --as` in
//! three other systems' shapes at once — RTLOC tag-data frames over Mosquitto, Sewio
//! datastreams over a local WebSocket, and a league's tracking feed over a local WebSocket that
//! drops every connection twice mid-match — into ingest's `[[sources]]`, the processor, the
//! alerter and the archive. Each shape's players (devices prefixed `r-`, `s-`, `l-`) must get
//! exactly the offline engine's totals and alerts on what that shape carries (nothing lost,
//! nothing counted twice across the reconnects and backfills, every sample archived once), and
//! totals close to the native path's, within what each shape's precision allows (printed).

use crate::e2e;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::check::{Allow, report};
use e2e::{Expected, Pipeline, Setup};
use sideline_cli::replay_as::{Shape, messages};
use sideline_engine::Batch;
use sideline_testkit::brokers::free_port;
use sideline_wire::adapter::{Context, Shape as Profile, decode};

/// Seconds of the recording played, and how fast.
const SECONDS: u64 = 240;
const SPEED: f64 = 6.0;

/// (shape, profile, device prefix).
const SHAPES: [(Shape, &str, &str); 3] = [
    (Shape::Rtloc, "rtloc", "r-"),
    (Shape::Sewio, "sewio", "s-"),
    (Shape::League, "league", "l-"),
];

fn recording() -> std::path::PathBuf {
    sideline_e2e::data_dir().join("zxy_alfheim/zxy_tromso_anzhi_2013-11-07_excerpt_long.csv.gz")
}

/// What the replay sends in `shape`, read back through its profile: the engine's batches per
/// window, devices prefixed as ingest prefixes them.
fn decoded(
    shape: Shape,
    profile: &str,
    prefix: &str,
    windows: &[(i64, Vec<Batch>)],
) -> Vec<(i64, Vec<Batch>)> {
    let p = Profile::profile(profile).unwrap();
    let ctx = Context {
        source: profile,
        device_prefix: prefix,
        topic_device: None,
        received_us: 0,
    };
    let teams: BTreeMap<String, String> = windows
        .iter()
        .flat_map(|(_, b)| b)
        .map(|b| (format!("{prefix}{}", b.device), b.team.clone()))
        .collect();
    messages(shape, windows, "replay")
        .into_iter()
        .map(|(end, msgs)| {
            let mut out = Vec::new();
            for m in msgs {
                for mut pb in decode(&p, &ctx, &m).unwrap().batches {
                    pb.team_id = teams[&pb.device_id].clone();
                    pb.session_id = "replay".into();
                    out.push(
                        sideline_wire::validate::validate(&pb, &Default::default(), None).unwrap(),
                    );
                }
            }
            (end, out)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_in_three_vendor_shapes_gives_the_offline_engines_results() {
    let mut data = sideline_cli::analyze::load_files(
        sideline_cli::analyze::Format::Zxy,
        &[recording()],
        None,
        None,
    )
    .unwrap();
    sideline_cli::replay::truncate(&mut data, SECONDS);
    let first = data
        .tracks
        .iter()
        .filter_map(|t| t.samples.first())
        .map(|s| s.t)
        .min()
        .unwrap();
    // The replay plays the recording's first second at `start`: a whole second, a little
    // ahead of now so that the replays have started.
    let start = (sideline_cli::publish::now_us() / 1_000_000 + 20) * 1_000_000;
    let shift = (start - first).div_euclid(1_000_000) * 1_000_000;
    let windows = sideline_cli::replay::windows(&data, "replay", shift, 200_000);
    let pods = sideline_cli::replay::pods(&data);

    // The roster: each shape's devices for its own players; one open session.
    let mut roster = String::new();
    let mut assigned = Vec::new();
    let mut merged: BTreeMap<i64, Vec<Batch>> = BTreeMap::new();
    for (shape, profile, prefix) in SHAPES {
        for (d, p, t) in &pods {
            roster.push_str(&format!(
                "[[devices]]\ndevice = \"{prefix}{d}\"\nplayer = \"{prefix}{p}\"\nteam = \"{t}\"\n"
            ));
            assigned.push((format!("{prefix}{d}"), format!("{prefix}{p}"), t.clone()));
        }
        for (end, b) in decoded(shape, profile, prefix, &windows) {
            merged.entry(end).or_default().extend(b);
        }
    }
    roster.push_str(&sideline_wire::schedule::open_sessions_toml(
        pods.iter().map(|(_, _, t)| t.as_str()),
        "replay",
    ));
    let merged: Vec<(i64, Vec<Batch>)> = merged.into_iter().collect();
    let want = Expected::batches(&assigned, &merged);

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("league.token");
    std::fs::write(&token, "league-token-0123456789\n").unwrap();
    let (sewio_port, league_port) = (free_port(), free_port());
    let ingest = format!(
        "[[sources]]\nname = \"rtloc\"\nprofile = \"rtloc\"\nmqtt_topic = \"data/devices/tag-data/frame\"\ndevice_prefix = \"r-\"\n\
         [[sources]]\nname = \"sewio\"\nprofile = \"sewio\"\nwebsocket = \"ws://127.0.0.1:{sewio_port}\"\nprotocol = \"sewio\"\ntoken_file = \"{tok}\"\ndevice_prefix = \"s-\"\n\
         [[sources]]\nname = \"league\"\nprofile = \"league\"\nwebsocket = \"ws://127.0.0.1:{league_port}\"\nprotocol = \"league\"\ntoken_file = \"{tok}\"\nfixture_id = \"replay\"\ndevice_prefix = \"l-\"\nidle_timeout_s = 5\n",
        tok = token.display()
    );
    let p = Pipeline::start(Setup {
        roster,
        profiles: vec![],
        env: vec![(
            "ingest",
            "SIDELINE__INGEST__STATE_DIR".into(),
            dir.path().display().to_string(),
        )],
        archive: true,
        partitions: e2e::partitions_or(Some(3)),
        ingest_config: Some(ingest),
    })
    .await;

    let replay = |shape: &str, extra: &[String]| {
        let log = std::fs::File::create(dir.path().join(format!("replay-{shape}.log"))).unwrap();
        Command::new(sideline_e2e::sideline_bin())
            .args([
                "replay",
                "--format",
                "zxy",
                "--as",
                shape,
                "--speed",
                &SPEED.to_string(),
            ])
            .args([
                "--duration-s",
                &SECONDS.to_string(),
                "--start-us",
                &start.to_string(),
            ])
            .args(["--mqtt", &format!("127.0.0.1:{}", p.mqtt.port)])
            .args(extra)
            .arg(recording())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let tok = token.display().to_string();
    let mut servers = vec![
        replay(
            "sewio",
            &[
                "--serve".into(),
                format!("127.0.0.1:{sewio_port}"),
                "--token-file".into(),
                tok.clone(),
            ],
        ),
        // The league feed drops every connection at 60 s and 150 s of the recording.
        replay(
            "league",
            &[
                "--serve".into(),
                format!("127.0.0.1:{league_port}"),
                "--token-file".into(),
                tok,
                "--drop-at-s".into(),
                "60,150".into(),
                "--heartbeat-s".into(),
                "1".into(),
            ],
        ),
    ];
    let mqtt = replay("rtloc", &[]).wait_with_output().unwrap();
    assert!(mqtt.status.success(), "rtloc replay: {mqtt:?}");

    let out = p.outcome(&want, Duration::from_secs(300)).await;
    let figures = out.check(&want, &Allow::default());
    report("ZXY in three vendor shapes", &figures);
    assert_eq!(figures.repeated_seconds, 0);
    // The league feed was cut twice, asked for the whole feed again each time, and skipped
    // what it had already forwarded.
    let reconnects = p
        .metric(
            "ingest",
            "sideline_ingest_source_reconnects_total{source=\"league\"}",
        )
        .await;
    let duplicates = p
        .metric(
            "ingest",
            "sideline_ingest_source_skipped_total{reason=\"duplicate\",source=\"league\"}",
        )
        .await;
    assert!(reconnects >= 2.0, "league reconnects: {reconnects}");
    assert!(duplicates > 0.0, "no backfilled frame was skipped");
    for s in &mut servers {
        let _ = s.kill();
        let _ = s.wait();
    }

    // Against the native path: how far each shape's precision moves the totals.
    let native = Expected::batches(&pods, &windows);
    for (_, profile, prefix) in SHAPES {
        let mut worst = (0.0f64, 0.0f64, 0i64);
        for (player, n) in &native.totals {
            let got = &want.totals[&format!("{prefix}{player}")];
            let rel = |a: f64, b: f64| {
                if b.abs() < 1.0 {
                    (a - b).abs()
                } else {
                    (a - b).abs() / b
                }
            };
            worst.0 = worst.0.max(rel(got.distance_m, n.distance_m));
            worst.1 = worst.1.max(rel(got.hsr_m, n.hsr_m));
            worst.2 = worst
                .2
                .max((i64::from(got.sprints) - i64::from(n.sprints)).abs());
        }
        e2e::check::note(&format!(
            "ADAPTER {profile}: largest difference from the native path over {} players: distance {:.3} %, HSR {:.2} %, sprints {}",
            native.totals.len(),
            100.0 * worst.0,
            100.0 * worst.1,
            worst.2
        ));
        assert!(
            worst.0 < 0.01,
            "{profile}: distance differs by {:.3} %",
            100.0 * worst.0
        );
    }
}

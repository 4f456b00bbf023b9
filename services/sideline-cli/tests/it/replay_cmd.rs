//! `sideline replay` (the real binary) publishing the bundled ZXY recording to a real
//! Mosquitto: every sample arrives once, in batches ingest would accept now (valid ids, event
//! times shifted to the present, never ahead of the wall clock), from pods named in the roster
//! it prints; `--speed` paces the publishing by the file's own timestamps.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sideline_mqtt::client::ConnectOptions;
use sideline_mqtt::{ConnectionStatus, MqttConfig, QoS, connect, run_event_loop};
use sideline_testkit::Mosquitto;
use sideline_wire::validate::{Limits, decode_pb, validate};
use tokio_util::sync::CancellationToken;

fn zxy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/zxy_alfheim/zxy_tromso_anzhi_2013-11-07_excerpt_long.csv.gz")
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A message: topic, payload, receive time (µs).
type Msg = (String, Vec<u8>, i64);

/// Every message on `sideline/v1/+/+/+`.
struct Received(Arc<std::sync::Mutex<Vec<Msg>>>, CancellationToken);

async fn subscribe(port: u16) -> Received {
    let cfg = MqttConfig {
        port,
        clean_session: true,
        ..MqttConfig::default()
    };
    let (c, el) = connect(
        &cfg,
        "replay-test-sub",
        ConnectOptions {
            manual_acks: false,
            request_capacity: 1000,
            receive_maximum: None,
        },
    )
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(10_000);
    let stop = CancellationToken::new();
    let status = Arc::new(ConnectionStatus::default());
    tokio::spawn(run_event_loop(
        el,
        c,
        vec![("sideline/v1/+/+/+".into(), QoS::AtLeastOnce)],
        Some(tx),
        Arc::clone(&status),
        (Duration::from_millis(50), Duration::from_millis(500)),
        100_000,
        stop.clone(),
    ));
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            g.lock()
                .unwrap()
                .push((m.topic.clone(), m.payload.to_vec(), now_us()));
        }
    });
    // A message published before the subscription is granted is dropped by the broker.
    let t0 = Instant::now();
    while !status.subscribed.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(t0.elapsed() < Duration::from_secs(30), "not subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Received(got, stop)
}

impl Received {
    /// Wait until `want` samples have arrived (then [`check`] holds the count exact).
    async fn until_samples(&self, want: u64) {
        let t0 = Instant::now();
        loop {
            let n: u64 = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter_map(|(_, payload, _)| decode_pb(payload).ok())
                .map(|b| b.samples.len() as u64)
                .sum();
            if n >= want {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{n} of {want} samples arrived"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn replay(port: u16, extra: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_sideline"))
        .args(["replay", "--format", "zxy", "--mqtt"])
        .arg(format!("127.0.0.1:{port}"))
        .args(extra)
        .arg(zxy())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Check what arrived against the file and the printed roster.
fn check(got: &[Msg], roster: &str, want_samples: u64) {
    let devices: HashSet<String> = roster
        .lines()
        .filter_map(|l| l.strip_prefix("device = \""))
        .map(|d| d.trim_end_matches('"').to_string())
        .collect();
    assert!(devices.len() >= 10, "roster: {roster}");
    let mut seqs: HashMap<(String, u64), usize> = HashMap::new();
    let mut samples = 0u64;
    for (topic, payload, received) in got {
        // Protobuf or JSON, told apart as ingest does.
        let pb = decode_pb(payload).unwrap_or_else(|e| panic!("{topic}: {e}"));
        // What ingest does: validated against its clock.
        let b = validate(&pb, &Limits::default(), Some(*received))
            .unwrap_or_else(|e| panic!("{topic}: {e}"));
        assert!(
            devices.contains(&b.device),
            "{} not in the roster",
            b.device
        );
        assert!(topic.contains(&b.device) && topic.starts_with("sideline/v1/"));
        // Never ahead of the wall clock (50 ms of scheduling slack).
        let newest = b.samples.iter().map(|s| s.t).max().unwrap();
        assert!(
            newest <= received + 50_000,
            "{topic}: sample from the future"
        );
        *seqs.entry((b.device.clone(), b.seq)).or_default() += 1;
        samples += b.samples.len() as u64;
    }
    assert!(
        seqs.values().all(|&n| n == 1),
        "a (device, seq) published twice"
    );
    assert_eq!(samples, want_samples);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_replayed_over_mqtt_complete_valid_and_paced() {
    let mqtt = Mosquitto::start();
    let file = std::fs::File::open(zxy()).unwrap();
    let data = sideline_import::zxy::read(
        sideline_import::open::maybe_gzip(std::io::BufReader::new(file)).unwrap(),
        &sideline_import::zxy::ZxyOptions::default(),
    )
    .unwrap();
    let want = data.report.samples;
    let span_s = data
        .tracks
        .iter()
        .flat_map(|t| t.samples.iter().map(|s| s.t))
        .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let span_s = (span_s.1 - span_s.0) as f64 / 1e6;

    let roster = String::from_utf8(replay(mqtt.port, &["--print-roster"]).stdout).unwrap();

    // As fast as possible.
    let sub = subscribe(mqtt.port).await;
    replay(mqtt.port, &["--speed", "0"]);
    sub.until_samples(want).await;
    check(&sub.0.lock().unwrap(), &roster, want);
    sub.1.cancel();

    // Paced: the recording's span at 150× takes about span/150 seconds.
    let sub = subscribe(mqtt.port).await;
    let t0 = Instant::now();
    replay(mqtt.port, &["--speed", "150", "--json"]);
    let took = t0.elapsed().as_secs_f64();
    sub.until_samples(want).await;
    let expect = span_s / 150.0;
    assert!(
        took >= 0.9 * expect && took <= expect + 10.0,
        "{span_s:.0} s at 150× took {took:.1} s"
    );
    check(&sub.0.lock().unwrap(), &roster, want);
    sub.1.cancel();
}

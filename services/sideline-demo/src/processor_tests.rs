//! The demo's processor: the production core fed from bus records at injected instants.

#![allow(clippy::unwrap_used)]

use super::*;
use prost::Message as _;
use sideline_engine::{AlertKind, Micros, Params};

const T0: Micros = 1_768_057_200_000_000;

/// A bus record of `player`'s pod: batch `seq`, 10 Hz samples for 1 s from `from`.
fn record(player: &str, seq: u64, from: Micros) -> Record {
    let b = sideline_engine::Batch {
        device: format!("pod-{player}"),
        team: "home".into(),
        session: "match".into(),
        seq,
        samples: (0..10)
            .map(|k| sideline_engine::Sample::xy(from + k * 100_000, 0.0, 0.0, Some(3.0)))
            .collect(),
    };
    let mut m = sideline_wire::convert::batch(&b);
    m.player_id = player.into();
    Record {
        topic: "sideline.samples.v1".into(),
        key: player.into(),
        value: m.encode_to_vec().into(),
        headers: Vec::new(),
    }
}

/// At 10× (1 s of the recording every 100 ms), a pod that dies while its teammate plays on
/// gets its device alert from the production rules: on the console/chat updates, on the
/// page's stream and in the view's feed; a record that does not decode is counted as a
/// dead letter and changes nothing.
#[test]
fn a_dead_pod_at_ten_times_speed_raises_its_device_alert_everywhere() {
    let registry = prometheus::Registry::new();
    let metrics = ProcessorMetrics::new(&registry).unwrap();
    let view = Arc::new(RwLock::new(SquadView::default()));
    let (page, mut page_rx) = broadcast::channel(64);
    let (updates, mut updates_rx) = broadcast::channel(64);
    let engine = Engine::new(Params::default(), true);
    let mut p = DemoProcessor::new(engine, view.clone(), page, metrics.clone(), updates, 10.0);
    let t0 = Instant::now();
    p.record(
        &Record {
            value: b"\x00garbage".to_vec().into(),
            ..record("a", 0, T0)
        },
        t0,
    );
    for k in 0..150i64 {
        let now = t0 + Duration::from_millis(100 * k as u64);
        p.record(&record("a", k as u64 + 1, T0 + k * 1_000_000), now);
        if k < 20 {
            p.record(&record("b", k as u64 + 1, T0 + k * 1_000_000), now);
        }
        p.at_end(now);
        p.tick(now);
    }
    let Update::Alert(a) = updates_rx.try_recv().unwrap();
    assert_eq!((a.kind, &*a.player), (AlertKind::Device, "b"));
    let item = page_rx.try_recv().unwrap();
    assert_eq!(item.player, "b");
    let v = view.read().unwrap();
    assert_eq!(v.players(), 2);
    assert!(v.alerts(None).iter().any(|f| f.alert.player == "b"));
    assert_eq!(
        metrics.dlq.with_label_values(&["undecodable"]).get(),
        1,
        "the bad record"
    );
    assert!(p.latest().read().unwrap()["a"].t > T0 + 140_000_000);
}

//! Unit tests of [`super::Core`]: records, ticks and restores at injected instants.

#![allow(clippy::unwrap_used)]

use super::*;
use sideline_engine::Params;

const IDLE: Duration = Duration::from_secs(15);
const TICK: Duration = Duration::from_millis(200);

fn timing() -> Timing {
    Timing {
        idle_advance: IDLE,
        session_idle: Duration::from_secs(600),
        forget_after: Duration::from_secs(43_200),
        pace: 1.0,
    }
}

/// A core with auto-enrolment (any player id is a player).
fn processor() -> Core {
    let metrics = ProcessorMetrics::new(&prometheus::Registry::new()).unwrap();
    let engine = Engine::new(Params::default(), true);
    Core::new(engine, metrics, false, timing())
}

/// Partition 0, read to its end at `t0`, its stream time 1 s.
fn at_end_since(p: &mut Core, t0: Instant) {
    let mut part = Part::new(t0, IDLE);
    part.flow = FlowClock::new(t0, IDLE);
    part.flow.end(t0);
    part.stream_time = 1_000_000;
    part.last_advance = t0;
    p.parts.insert(0, part);
}

#[test]
fn an_idle_partition_follows_the_wall_clock() {
    let mut p = processor();
    let t0 = Instant::now();
    p.tick(t0);
    at_end_since(&mut p, t0);
    let mut t = t0;
    let (idle, event_time) = (
        p.metrics.idle.with_label_values(&["0"]),
        p.metrics.event_time.with_label_values(&["0"]),
    );
    for _ in 0..74 {
        t += TICK;
        p.tick(t);
    }
    assert_eq!(
        (idle.get(), event_time.get()),
        (0, 1.0),
        "14.8 s: not idle yet"
    );
    for _ in 74..80 {
        t += TICK;
        p.tick(t);
    }
    // Idle from 15 s: the tick at 15.0 s advances by its 200 ms, and so on to 16.0 s.
    assert_eq!(p.parts[&0].stream_time, 1_000_000 + 1_200_000);
    assert_eq!(p.metrics.self_stalls.get(), 0);
    assert_eq!(idle.get(), 1);
    assert!(
        (event_time.get() - 2.2).abs() < 1e-9,
        "{}",
        event_time.get()
    );
    // Revoked: its series go.
    p.rebalance(RebalanceEvent::Revoked(vec![0]), Instant::now());
    use prometheus::core::Collector;
    for c in [p.metrics.idle.collect(), p.metrics.event_time.collect()] {
        assert!(c.iter().all(|f| f.get_metric().is_empty()), "{c:?}");
    }
}

#[test]
fn the_process_standing_still_is_not_idle_time() {
    let mut p = processor();
    let t0 = Instant::now();
    p.tick(t0);
    at_end_since(&mut p, t0);
    // Frozen for 15.2 s (SIGSTOP): the first tick after it sees the partition "idle".
    p.tick(t0 + Duration::from_millis(15_200));
    assert_eq!(
        p.parts[&0].stream_time, 1_000_000,
        "the freeze advanced stream time"
    );
    assert_eq!(p.metrics.self_stalls.get(), 1);
    // From then on the wall clock counts again.
    p.tick(t0 + Duration::from_millis(15_400));
    assert_eq!(p.parts[&0].stream_time, 1_200_000);
    assert_eq!(p.metrics.self_stalls.get(), 1);
}

/// 10 Hz position samples of `player` from `from` (µs) for `n` tenths of a second.
fn samples(from: Micros, n: i64) -> Vec<sideline_engine::Sample> {
    (0..n)
        .map(|k| sideline_engine::Sample::xy(from + k * 100_000, 0.0, 0.0, Some(3.0)))
        .collect()
}

/// A record of `player`'s pod: batch `seq`, samples from `from` for `n` tenths of a second.
fn record(player: &str, seq: u64, from: Micros, n: i64) -> Vec<u8> {
    let b = sideline_engine::Batch {
        device: format!("pod-{player}"),
        team: "home".into(),
        session: "s".into(),
        seq,
        samples: samples(from, n),
    };
    let mut m = sideline_wire::convert::batch(&b);
    m.player_id = player.into();
    m.encode_to_vec()
}

/// `player`'s snapshot: samples from `T0` for `secs` seconds, covering input offset `covers`.
fn snapshot(player: &str, secs: i64, covers: i64) -> crate::state::StateRecord {
    let p = Params::default();
    let mut pe =
        sideline_engine::PlayerEngine::new(&p, p.version_tag().into(), player, "home", "s");
    let mut out = Vec::new();
    for s in samples(T0, secs * 10) {
        pe.ingest(&p, s, &mut out).unwrap();
    }
    crate::state::StateRecord {
        format: crate::state::FORMAT,
        covers,
        engine: pe,
    }
}

const T0: Micros = 1_768_057_200_000_000;

/// Seen in CI (and reproduced with the processor-kill test): the killed instance's last
/// checkpoints were acknowledged for some players and not others, so the restored snapshots
/// of one partition were 500 s apart. The ticks before the lagging player's first record
/// closed his seconds at the partition's stream time — his partition-mate's newest — and
/// every sample of his replay after that was refused as late (48,730 in one run).
#[test]
fn a_restored_player_is_closed_on_his_own_newest_not_a_partition_mates() {
    let mut p = processor();
    let state = crate::state::PartitionState {
        players: [
            ("home-01".to_string(), snapshot("home-01", 10, 100)),
            ("home-03".to_string(), snapshot("home-03", 500, 5_000)),
        ]
        .into(),
        unusable: 0,
    };
    let t0 = Instant::now();
    p.rebalance(RebalanceEvent::Assigned(vec![(0, state)]), t0);
    // Ticks while the consumer fetches from the committed offset (before home-01's records).
    for k in 1..=5 {
        p.tick(t0 + TICK * k);
    }
    // His records below what his snapshot covers are skipped; then his replay goes on from
    // where the snapshot ends, interleaved with ticks.
    let mut now = t0 + TICK * 5;
    p.record(
        0,
        99,
        b"home-01",
        &record("home-01", 9, T0 + 9_000_000, 10),
        now,
    );
    for (i, off) in (100..160).enumerate() {
        let from = T0 + 10_000_000 + i as i64 * 1_000_000;
        now += Duration::from_millis(20);
        p.record(
            0,
            off,
            b"home-01",
            &record("home-01", 10 + i as u64, from, 10),
            now,
        );
        p.tick(now);
    }
    assert_eq!(p.metrics.replay_skipped.get(), 1);
    assert_eq!(
        p.metrics.late_samples.get(),
        0,
        "his replay was refused as late"
    );
    assert_eq!(p.metrics.samples.get(), 600);
}

/// A player silent for `session_idle` has his session closed: his series leave `/metrics`,
/// his engine stays, and his return brings them back with his totals; silent for
/// `forget_after`, his engine goes and the next checkpoint deletes his state (a tombstone).
#[test]
fn a_silent_player_is_closed_then_forgotten() {
    let mut p = processor();
    p.player_gauges = true;
    p.timing = Timing {
        forget_after: Duration::from_secs(3_600),
        ..timing()
    }
    .effective(p.engine.params());
    let t0 = Instant::now();
    p.tick(t0);
    let mut now = t0;
    for k in 0..30u64 {
        now += TICK;
        for (off, player) in [(2 * k, "home-01"), (2 * k + 1, "home-02")] {
            let from = T0 + k as i64 * 1_000_000;
            p.record(
                0,
                off as i64,
                player.as_bytes(),
                &record(player, k + 1, from, 10),
                now,
            );
        }
        p.tick(now);
    }
    p.at_end(0, now);
    let last_record = now;
    assert_eq!(p.metrics.player.players_shown(), 2);
    // Ticks every 200 ms of wall time for 11 minutes: both sessions close once.
    let close_by = now + Duration::from_secs(660);
    while now < close_by {
        now += TICK;
        p.tick(now);
    }
    assert_eq!(p.metrics.sessions_closed.get(), 2);
    assert_eq!(
        p.metrics.player.players_shown(),
        0,
        "series left after closing"
    );
    assert_eq!(p.engine.players().count(), 2, "engines kept for a return");
    // home-01 comes back, his clock as far on as the wall clock: his series return.
    let back = T0 + 30_000_000 + (now - last_record).as_micros() as i64;
    for k in 0..5u64 {
        now += TICK;
        let from = back + k as i64 * 1_000_000;
        p.record(
            0,
            60 + k as i64,
            b"home-01",
            &record("home-01", 31 + k, from, 10),
            now,
        );
        p.tick(now);
    }
    assert_eq!(p.metrics.late_samples.get(), 0);
    assert_eq!(p.metrics.player.players_shown(), 1);
    p.at_end(0, now);
    // An hour on, home-02 is forgotten (home-01 closed again first).
    let forget_by = now + Duration::from_secs(3_000);
    while now < forget_by {
        now += TICK;
        p.tick(now);
    }
    assert_eq!(p.metrics.players_forgotten.get(), 1);
    assert_eq!(p.metrics.sessions_closed.get(), 3);
    assert!(p.engine.player("home-02").is_none());
    assert!(p.engine.player("home-01").is_some());
    let snaps = p.stage().snaps;
    assert!(
        snaps
            .iter()
            .any(|(part, player, bytes)| *part == 0 && player == "home-02" && bytes.is_empty()),
        "no tombstone for the forgotten player: {:?}",
        snaps
            .iter()
            .map(|(_, p, b)| (p, b.len()))
            .collect::<Vec<_>>()
    );
}

fn core_with(timing: Timing) -> Core {
    let metrics = ProcessorMetrics::new(&prometheus::Registry::new()).unwrap();
    Core::new(Engine::new(Params::default(), true), metrics, false, timing)
}

/// The demo used to advance a player silent for 2 s of wall time to 10 s behind the newest
/// sample of anyone. Now both run the production rule, with the demo's speed-up as the pace:
/// a silent player's seconds close by his own silence × pace, never past his partition's
/// stream time.
#[test]
fn a_silent_players_seconds_close_at_the_recordings_pace_never_past_the_stream() {
    let run = |pace: f64| {
        let mut p = core_with(Timing { pace, ..timing() });
        let t0 = Instant::now();
        let mut newest_b = Micros::MIN;
        // Every 100 ms of wall time, 1 s of a's recording; b stops after 10 s.
        for k in 0..40i64 {
            let now = t0 + Duration::from_millis(100 * k as u64);
            let from = T0 + k * 1_000_000;
            p.record(0, 2 * k, b"a", &record("a", k as u64 + 1, from, 10), now);
            if k < 10 {
                p.record(
                    0,
                    2 * k + 1,
                    b"b",
                    &record("b", k as u64 + 1, from, 10),
                    now,
                );
            }
            p.tick(now);
            let (out, dead) = p.take();
            assert!(dead.is_empty());
            for m in out.metrics.iter().filter(|m| &*m.player == "b") {
                newest_b = newest_b.max(m.t);
            }
        }
        (newest_b - T0, p.parts[&0].stream_time - T0)
    };
    let (b1, stream1) = run(1.0);
    assert!(
        (10_000_000..=14_000_000).contains(&b1),
        "pace 1: b closed to {b1} µs"
    );
    assert!(stream1 >= 39_000_000);
    let (b10, stream10) = run(10.0);
    assert!(
        (35_000_000..=stream10).contains(&b10),
        "pace 10: b closed to {b10} µs, stream at {stream10}"
    );
}

/// The demo used to move everyone on with the wall clock × speed after 2 s without any
/// record. Now an idle partition (read to its end, quiet for `idle_advance`) advances by the
/// wall clock × pace.
#[test]
fn an_idle_partition_advances_at_the_pace() {
    let mut p = core_with(Timing {
        pace: 10.0,
        ..timing()
    });
    let t0 = Instant::now();
    p.tick(t0);
    at_end_since(&mut p, t0);
    let mut t = t0;
    for _ in 0..80 {
        t += TICK;
        p.tick(t);
    }
    assert_eq!(p.parts[&0].stream_time, 1_000_000 + 12_000_000);
}

/// The demo only counted refused records; now both get them as dead letters with a reason
/// and the refused bytes: undecodable, invalid, and late samples.
#[test]
fn refused_input_comes_out_as_dead_letters_with_reasons() {
    let mut p = processor();
    let now = Instant::now();
    p.record(3, 7, b"x", b"\xff\xff not protobuf", now);
    let mut bad = sideline_wire::pb::SampleBatch::decode(&record("a", 1, T0, 10)[..]).unwrap();
    bad.samples[0].reading = None;
    p.record(3, 8, b"a", &bad.encode_to_vec(), now);
    for k in 0..30 {
        p.record(
            3,
            9 + k,
            b"a",
            &record("a", k as u64 + 2, T0 + k * 1_000_000, 10),
            now,
        );
    }
    // A batch from long before what was read: past the allowed lateness.
    p.record(3, 40, b"a", &record("a", 100, T0 + 2_000_000, 5), now);
    let (_, dead) = p.take();
    let got: Vec<(&str, &str, i32, i64)> = dead
        .iter()
        .map(|d| (d.reason, d.key.as_str(), d.partition, d.offset))
        .collect();
    assert_eq!(
        got,
        [
            ("undecodable", "x", 3, 7),
            ("invalid", "a", 3, 8),
            ("late", "a", 3, 40)
        ]
    );
    assert_eq!(dead[0].payload, b"\xff\xff not protobuf");
    let late = sideline_wire::pb::SampleBatch::decode(&dead[2].payload[..]).unwrap();
    assert_eq!(late.samples.len(), 5, "the late samples, for a re-run");
    for (reason, n) in [("undecodable", 1), ("invalid", 1), ("late", 1)] {
        assert_eq!(p.metrics.dlq.with_label_values(&[reason]).get(), n);
    }
    assert_eq!(p.metrics.late_samples.get(), 5);
}

/// A record ingest coalesced (issue 31) is read as its batches, in order: the same samples,
/// outputs and de-duplication as one record per batch; a bad batch inside it is dead-lettered
/// on its own, encoded again, and the others go on.
#[test]
fn a_coalesced_record_is_read_as_its_batches() {
    let batches: Vec<Vec<u8>> = (0..30)
        .map(|k| record("a", k as u64 + 1, T0 + k * 1_000_000, 10))
        .collect();
    let now = Instant::now();
    let mut one = processor();
    for (off, b) in batches.iter().enumerate() {
        one.record(0, off as i64, b"a", b, now);
    }
    one.tick(now);
    let (one_out, one_dead) = one.take();

    let mut co = processor();
    let decoded: Vec<sideline_wire::pb::SampleBatch> = batches
        .iter()
        .map(|b| sideline_wire::pb::SampleBatch::decode(&b[..]).unwrap())
        .collect();
    for (off, group) in decoded.chunks(3).enumerate() {
        let mut parts = group.to_vec();
        if off == 4 {
            // A repeated delivery of the group's first batch, and a broken batch.
            parts.push(group[0].clone());
            let mut bad = group[1].clone();
            bad.samples[0].reading = None;
            bad.seq = 1_000;
            parts.push(bad);
        }
        let outer = sideline_wire::pb::SampleBatch {
            coalesced: parts,
            ..Default::default()
        };
        co.record(0, off as i64, b"a", &outer.encode_to_vec(), now);
    }
    co.tick(now);
    let (co_out, co_dead) = co.take();

    assert_eq!(co.metrics.samples.get(), one.metrics.samples.get());
    assert_eq!(co.metrics.samples.get(), 300);
    assert_eq!(co.metrics.coalesced_batches.get(), 32);
    assert_eq!(co.metrics.duplicate_batches.get(), 1);
    assert_eq!(co_out.metrics, one_out.metrics);
    assert!(one_dead.is_empty());
    assert_eq!(co_dead.len(), 1);
    assert_eq!((co_dead[0].reason, co_dead[0].offset), ("invalid", 4));
    let bad = sideline_wire::pb::SampleBatch::decode(&co_dead[0].payload[..]).unwrap();
    assert_eq!(bad.seq, 1_000, "the broken batch alone, not its record");
}

//! Properties of the whole engine: arrival order within the allowed lateness does not change
//! any output, duplicate deliveries are not counted twice, late samples are refused and counted.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic

use proptest::prelude::*;
use sideline_engine::{Batch, Engine, Micros, Params, PlayerMetrics, Sample};

/// A small deterministic generator (SplitMix64) so cases are reproducible from the seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const T0: Micros = 1_700_000_000_000_000;

/// `secs` seconds of one pod: 10 Hz position with bursts of sprinting, 100 Hz IMU, 1 Hz HR,
/// in 200 ms batches per stream.
fn pod(seed: u64, secs: i64) -> Vec<Batch> {
    let mut r = Rng(seed);
    let mut out = Vec::new();
    let (mut v, mut x) = (2.0f64, 0.0f64);
    let mut seq = 0;
    for chunk in 0..secs * 5 {
        let t_chunk = T0 + chunk * 200_000;
        let (mut pos, mut imu, mut hr) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..2 {
            let t = t_chunk + k * 100_000;
            let target = if (t / 8_000_000) % 3 == 0 { 8.5 } else { 3.0 };
            v = (v + (target - v) * 0.3 + (r.unit() - 0.5) * 0.4).clamp(0.0, 9.5);
            x += v * 0.1;
            pos.push(Sample::xy(t, x, 0.0, Some(v as f32)));
            for j in 0..10 {
                let az = 1.0 + (r.unit() - 0.5) * 0.8 * v / 8.0;
                imu.push(Sample::imu(
                    t + j * 10_000,
                    (r.unit() - 0.5) as f32 * 0.3,
                    0.05,
                    az as f32,
                ));
            }
            if t % 1_000_000 == 0 {
                hr.push(Sample::hr(t, (120.0 + 6.0 * v) as f32));
            }
        }
        for samples in [pos, imu, hr] {
            if !samples.is_empty() {
                seq += 1;
                out.push(Batch {
                    device: "pod-1".into(),
                    team: "t".into(),
                    session: "s".into(),
                    seq,
                    samples,
                });
            }
        }
    }
    out
}

fn feed(batches: &[Batch]) -> (Vec<PlayerMetrics>, Engine) {
    let mut e: Engine = Engine::new(Params::default(), true);
    let mut out = sideline_engine::Outputs::default();
    for b in batches {
        e.ingest_batch(b, &mut out);
    }
    e.finish(&mut out);
    (out.metrics, e)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_arrival_order_within_the_allowed_lateness_gives_identical_outputs(
        seed in any::<u64>(),
        max_delay_ms in 0u64..1_900,
    ) {
        let batches = pod(seed, 90);
        let (in_order, _) = feed(&batches);
        // Each batch is delayed by up to `max_delay_ms` (< the 2 s allowed lateness) after its
        // last sample; batches then arrive in order of arrival time.
        let mut r = Rng(seed ^ 0xDEAD_BEEF);
        let mut arrivals: Vec<(Micros, usize)> = batches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let last = b.samples.iter().map(|s| s.t).max().unwrap();
                (last + (r.unit() * max_delay_ms as f64 * 1000.0) as Micros, i)
            })
            .collect();
        arrivals.sort();
        let shuffled: Vec<Batch> = arrivals.iter().map(|&(_, i)| batches[i].clone()).collect();
        let (out, e) = feed(&shuffled);
        prop_assert_eq!(e.counters().late_samples, 0);
        prop_assert_eq!(out.len(), in_order.len());
        prop_assert_eq!(out, in_order);
    }

    #[test]
    fn redelivered_batches_are_not_counted_twice(
        seed in any::<u64>(),
        dup_every in 2usize..7,
        lag in 0usize..40,
    ) {
        let batches = pod(seed, 60);
        let (once, _) = feed(&batches);
        // At-least-once delivery: some batches come again, `lag` batches later.
        let mut again = Vec::new();
        let mut dups = 0;
        for (i, b) in batches.iter().enumerate() {
            again.push(b.clone());
            if i >= lag && i % dup_every == 0 {
                again.push(batches[i - lag].clone());
                dups += 1;
            }
        }
        let (twice, e) = feed(&again);
        prop_assert_eq!(e.counters().duplicate_batches, dups);
        prop_assert_eq!(twice.last().unwrap().totals.clone(), once.last().unwrap().totals.clone());
        prop_assert_eq!(twice, once);
    }
}

#[test]
fn samples_replayed_under_new_sequence_numbers_are_refused_not_recounted() {
    let batches = pod(42, 30);
    let (once, _) = feed(&batches);
    // A gateway restarts and replays the last 20 batches with fresh sequence numbers.
    let mut replayed = batches.clone();
    let next = batches.last().unwrap().seq;
    for (k, b) in batches[batches.len() - 20..].iter().enumerate() {
        let mut b = b.clone();
        b.seq = next + 1 + k as u64;
        replayed.push(b);
    }
    let (out, e) = feed(&replayed);
    let c = e.counters();
    assert_eq!(c.duplicate_batches, 0);
    assert!(c.duplicate_samples + c.late_samples > 0);
    assert_eq!(out.last().unwrap().totals, once.last().unwrap().totals);
}

#[test]
fn a_sample_later_than_the_allowed_lateness_is_refused_and_reported() {
    let mut batches = pod(7, 20);
    // Hold back one position batch from second 3 until the very end.
    let idx = batches
        .iter()
        .position(|b| b.samples[0].t >= T0 + 3_000_000 && b.samples.len() == 2)
        .unwrap();
    let held = batches.remove(idx);
    let mut e: Engine = Engine::new(Params::default(), true);
    let mut out = sideline_engine::Outputs::default();
    for b in &batches {
        e.ingest_batch(b, &mut out);
    }
    let outcome = e.ingest_batch(&held, &mut out);
    assert_eq!(
        outcome.late,
        vec![0, 1],
        "both samples are reported for dead-lettering"
    );
    assert_eq!(e.counters().late_samples, 2);
}

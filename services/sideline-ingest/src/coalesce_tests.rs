#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex as StdMutex;

use prost::Message as _;
use sideline_wire::pb;

use super::*;

/// A log that records what it is sent, and refuses (for good, or for now) on request.
#[derive(Debug, Default)]
struct Log {
    sent: StdMutex<Vec<Record>>,
    /// Refuse for good any record larger than this.
    reject_over: StdMutex<Option<usize>>,
    /// Fail this many sends transiently.
    fail_next: StdMutex<usize>,
}

impl RecordSink for Log {
    fn send(&self, record: Record) -> SendFuture<'_> {
        Box::pin(async move {
            if let Some(max) = *self.reject_over.lock().unwrap()
                && record.value.len() > max
            {
                return Err(SinkError::Reject("too large".into()));
            }
            {
                let mut f = self.fail_next.lock().unwrap();
                if *f > 0 {
                    *f -= 1;
                    return Err(SinkError::Retry {
                        class: "retry",
                        detail: "broker away".into(),
                    });
                }
            }
            self.sent.lock().unwrap().push(record);
            Ok(())
        })
    }

    fn reachable(&self) -> bool {
        true
    }
}

fn batch(device: &str, seq: u64) -> Bytes {
    pb::SampleBatch {
        device_id: device.into(),
        team_id: "home".into(),
        session_id: "s".into(),
        seq,
        samples: vec![pb::Sample {
            t_us: 1_700_000_000_000_000 + seq as i64 * 200_000,
            reading: Some(pb::sample::Reading::HeartRate(pb::HeartRate {
                bpm: 150.0,
                rr_ms: vec![],
            })),
        }],
        player_id: "p1".into(),
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

fn rec(topic: &str, key: &str, value: Bytes) -> Record {
    Record {
        topic: topic.into(),
        key: key.into(),
        value,
        headers: Vec::new(),
    }
}

/// The (device, seq) of each batch a record holds, in order.
fn batches_in(r: &Record) -> Vec<(String, u64)> {
    let b = pb::SampleBatch::decode(r.value.as_ref()).unwrap();
    if b.coalesced.is_empty() {
        vec![(b.device_id, b.seq)]
    } else {
        assert!(b.samples.is_empty() && b.device_id.is_empty());
        b.coalesced
            .into_iter()
            .map(|c| (c.device_id, c.seq))
            .collect()
    }
}

fn setup(linger_ms: u64, max_bytes: usize) -> (Arc<Log>, Arc<Coalescer>, IngestMetrics) {
    let log = Arc::new(Log::default());
    let metrics = IngestMetrics::new(&prometheus::Registry::new()).unwrap();
    let c = Coalescer::new(
        log.clone(),
        "samples",
        Duration::from_millis(linger_ms),
        max_bytes,
        metrics.clone(),
    );
    (log, Arc::new(c), metrics)
}

#[tokio::test(start_paused = true)]
async fn a_players_batches_within_the_linger_become_one_record_in_order() {
    let (log, c, m) = setup(50, 1 << 20);
    let t0 = Instant::now();
    let sends: Vec<_> = [("pod-a", 1), ("pod-a", 2), ("pod-b", 7), ("pod-a", 3)]
        .into_iter()
        .map(|(d, s)| {
            let c = c.clone();
            let key = if d == "pod-b" { "p2" } else { "p1" };
            tokio::spawn(async move { c.send(rec("samples", key, batch(d, s))).await })
        })
        .collect();
    for s in sends {
        s.await.unwrap().unwrap();
    }
    // Nothing was acknowledged before the linger ended.
    assert!(t0.elapsed() >= Duration::from_millis(50));
    let sent = log.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "one record per player");
    let p1 = sent.iter().find(|r| r.key == "p1").unwrap();
    assert_eq!(
        batches_in(p1),
        vec![
            ("pod-a".into(), 1),
            ("pod-a".into(), 2),
            ("pod-a".into(), 3)
        ]
    );
    // A group of one goes out as the batch itself.
    let p2 = sent.iter().find(|r| r.key == "p2").unwrap();
    assert_eq!(p2.value, batch("pod-b", 7));
    assert_eq!(m.coalesced_batches.get(), 3);
    assert_eq!(m.sample_records.with_label_values(&["one"]).get(), 1);
    assert_eq!(m.sample_records.with_label_values(&["coalesced"]).get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_group_goes_at_once_and_order_holds_across_groups() {
    // Three batches fill a group (each counts its bytes and 6 for its framing).
    let (log, c, _) = setup(10_000, 3 * (batch("pod-a", 1).len() + 6));
    let t0 = Instant::now();
    let mut sends = Vec::new();
    for seq in 1..=9 {
        let c = c.clone();
        sends.push(tokio::spawn(async move {
            c.send(rec("samples", "p1", batch("pod-a", seq))).await
        }));
        tokio::task::yield_now().await;
    }
    for s in sends {
        s.await.unwrap().unwrap();
    }
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "full groups did not wait for the linger"
    );
    let seqs: Vec<u64> = log
        .sent
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| batches_in(r).into_iter().map(|x| x.1))
        .collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
    assert_eq!(log.sent.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_refused_group_is_sent_batch_by_batch_and_a_transient_failure_reaches_every_sender() {
    let (log, c, _) = setup(20, 1 << 20);
    // The log takes one batch but not two together.
    *log.reject_over.lock().unwrap() = Some(batch("pod-a", 1).len() + 10);
    let a = tokio::spawn({
        let c = c.clone();
        async move { c.send(rec("samples", "p1", batch("pod-a", 1))).await }
    });
    let b = tokio::spawn({
        let c = c.clone();
        async move { c.send(rec("samples", "p1", batch("pod-a", 2))).await }
    });
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    let seqs: Vec<Vec<(String, u64)>> = log.sent.lock().unwrap().iter().map(batches_in).collect();
    assert_eq!(
        seqs,
        vec![vec![("pod-a".into(), 1)], vec![("pod-a".into(), 2)]]
    );

    *log.reject_over.lock().unwrap() = None;
    *log.fail_next.lock().unwrap() = 1;
    let a = tokio::spawn({
        let c = c.clone();
        async move { c.send(rec("samples", "p1", batch("pod-a", 3))).await }
    });
    let b = tokio::spawn({
        let c = c.clone();
        async move { c.send(rec("samples", "p1", batch("pod-a", 4))).await }
    });
    assert!(matches!(a.await.unwrap(), Err(SinkError::Retry { .. })));
    assert!(matches!(b.await.unwrap(), Err(SinkError::Retry { .. })));
    assert_eq!(log.sent.lock().unwrap().len(), 2, "nothing more was sent");
}

#[tokio::test(start_paused = true)]
async fn other_topics_and_a_zero_linger_pass_straight_through() {
    let (log, c, _) = setup(50, 1 << 20);
    let t0 = Instant::now();
    c.send(rec("dlq", "p1", Bytes::from_static(b"junk")))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(log.sent.lock().unwrap()[0].topic, "dlq");

    let (log, c, _) = setup(0, 1 << 20);
    c.send(rec("samples", "p1", batch("pod-a", 1)))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(log.sent.lock().unwrap()[0].value, batch("pod-a", 1));
}

//! Stalled-partition watchdog: a safety net for group coordinators that leave a partition
//! owned by nobody.
//!
//! Kafka's coordinator removes a member whose session expired and rebalances its partitions
//! onto the survivors. Some Kafka-protocol brokers do not: tansu 0.6.0 evicts the dead member
//! but keeps the previous generation's assignment, so its partitions are read by no one until
//! another member happens to join (and its DescribeGroups fails on sqlite storage, so the
//! assignment cannot be inspected). A processor that merely waits would leave those players'
//! metrics and alerts frozen.
//!
//! What every owner does is visible from outside: it commits its partitions' offsets at every
//! checkpoint. Every few seconds this task compares the group's committed offsets with the
//! partitions' ends; a partition with records waiting whose committed offset has not moved for
//! `grace` (many checkpoint intervals, well past any ordinary rebalance) has no working owner,
//! and the main loop is asked to rejoin the group so the coordinator forms a fresh assignment.
//! Used by the processor, the archiver and the alerter ([`Watchdog::spawn`]: one task per
//! topic they read).
//! Against Apache Kafka the coordinator has rebalanced long before that, so it does not fire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::KafkaConfig;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_util::sync::DropGuard;

/// The watchdogs of one consumer: one task per topic, stopped when this is dropped.
#[derive(Debug)]
pub struct Watchdog {
    rx: UnboundedReceiver<()>,
    // Kept so that `rejoin` waits forever, rather than ends, when no task runs.
    _tx: UnboundedSender<()>,
    _guard: DropGuard,
}

impl Watchdog {
    /// Watch `group`'s progress on each of `topics` (nothing when `grace` is zero: disabled).
    pub fn spawn(
        kafka: &KafkaConfig,
        group: &str,
        topics: &[&str],
        grace: Duration,
        stop: &CancellationToken,
    ) -> Self {
        let (tx, rx) = unbounded_channel();
        let token = stop.child_token();
        if !grace.is_zero() {
            for topic in topics {
                tokio::spawn(run(
                    kafka.clone(),
                    group.to_string(),
                    topic.to_string(),
                    grace,
                    tx.clone(),
                    token.clone(),
                ));
            }
        }
        Watchdog {
            rx,
            _tx: tx,
            _guard: token.drop_guard(),
        }
    }

    /// Resolves when a partition has stalled: rejoin the group (commit what is done first).
    pub async fn rejoin(&mut self) {
        // The sender lives in `self`, so `None` cannot come; wait forever if it did.
        if self.rx.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

/// Per partition: the committed offset last seen, and since when it has not moved while
/// records were waiting.
#[derive(Debug, Default)]
pub struct Stalls {
    seen: HashMap<i32, (i64, Instant)>,
}

impl Stalls {
    /// Record one observation (`committed`, log end `high`) per partition at `now`; returns
    /// the partitions stalled for at least `grace`.
    pub fn observe(
        &mut self,
        now: Instant,
        offsets: &[(i32, i64, i64)],
        grace: Duration,
    ) -> Vec<i32> {
        let mut stalled = Vec::new();
        for &(p, committed, high) in offsets {
            if committed >= high {
                self.seen.remove(&p);
                continue;
            }
            let e = self.seen.entry(p).or_insert((committed, now));
            if e.0 != committed {
                *e = (committed, now);
            } else if now.duration_since(e.1) >= grace {
                stalled.push(p);
            }
        }
        stalled
    }

    /// [`Stalls::observe`] when the look-up answered; when it failed (`None`) nothing is
    /// learnt and nothing forgotten: the stall clocks keep running, so a broker that answers
    /// only now and then cannot hold a rejoin off for ever.
    pub fn observe_lookup(
        &mut self,
        now: Instant,
        offsets: Option<&[(i32, i64, i64)]>,
        grace: Duration,
    ) -> Vec<i32> {
        offsets.map_or_else(Vec::new, |o| self.observe(now, o, grace))
    }

    /// Forget everything (after a rejoin).
    pub fn reset(&mut self) {
        self.seen.clear();
    }
}

/// (partition, committed offset of the group or the log start, log end) for every partition.
fn offsets(c: &BaseConsumer, topic: &str) -> Option<Vec<(i32, i64, i64)>> {
    let timeout = Duration::from_secs(5);
    let md = c.fetch_metadata(Some(topic), timeout).ok()?;
    let mut tpl = TopicPartitionList::new();
    for p in md.topics().first()?.partitions() {
        tpl.add_partition(topic, p.id());
    }
    let committed = c.committed_offsets(tpl, timeout).ok()?;
    let mut out = Vec::new();
    for e in committed.elements() {
        let (low, high) = c.fetch_watermarks(topic, e.partition(), timeout).ok()?;
        let at = match e.offset() {
            Offset::Offset(o) => o,
            _ => low,
        };
        out.push((e.partition(), at, high));
    }
    Some(out)
}

/// Run until `stop`: send `()` on `rejoin` when a partition stalls for `grace`.
pub async fn run(
    kafka: KafkaConfig,
    group: String,
    topic: String,
    grace: Duration,
    rejoin: UnboundedSender<()>,
    stop: CancellationToken,
) {
    let client: std::sync::Arc<BaseConsumer> = match kafka
        .client_config(
            &format!("sideline-watchdog-{group}-{}", std::process::id()),
            &[
                ("group.id", group.as_str()),
                ("enable.auto.commit", "false"),
            ],
        )
        .map_err(|e| e.to_string())
        .and_then(|c| c.create().map_err(|e| e.to_string()))
    {
        Ok(c) => std::sync::Arc::new(c),
        Err(error) => {
            tracing::warn!(message = "Partition watchdog not started.", %error);
            return;
        }
    };
    let mut stalls = Stalls::default();
    // Failed look-ups in a row (logged when they start and when they end).
    let mut failing = 0u32;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let (c, t) = (client.clone(), topic.clone());
        let looked = tokio::task::spawn_blocking(move || offsets(&c, &t))
            .await
            .ok()
            .flatten();
        match &looked {
            Some(_) if failing > 0 => {
                tracing::info!(
                    message = "Partition watchdog reads the group's offsets again.",
                    failed_lookups = failing
                );
                failing = 0;
            }
            Some(_) => {}
            None => {
                if failing == 0 {
                    tracing::warn!(message = "Partition watchdog cannot read the group's committed offsets; retrying.", %topic);
                }
                failing = failing.saturating_add(1);
            }
        }
        let stalled = stalls.observe_lookup(Instant::now(), looked.as_deref(), grace);
        if !stalled.is_empty() {
            tracing::warn!(
                message = "Partitions with waiting records and no committed progress; rejoining the group to have them reassigned.",
                partitions = ?stalled,
                grace_s = grace.as_secs()
            );
            let _ = rejoin.send(());
            stalls.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_partition_with_waiting_records_and_no_progress_for_the_grace_stalls() {
        let grace = Duration::from_secs(30);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut st = Stalls::default();
        // 0: caught up; 1: progressing; 2: stuck with records waiting.
        assert!(
            st.observe(at(0), &[(0, 10, 10), (1, 5, 50), (2, 7, 50)], grace)
                .is_empty()
        );
        assert!(
            st.observe(at(20), &[(0, 10, 10), (1, 20, 60), (2, 7, 60)], grace)
                .is_empty()
        );
        assert_eq!(
            st.observe(at(31), &[(0, 10, 12), (1, 20, 70), (2, 7, 70)], grace),
            vec![2]
        );
        // 0 has had records waiting only since t=31; 1 stopped moving at t=20.
        assert_eq!(
            st.observe(at(51), &[(0, 10, 12), (1, 20, 70), (2, 8, 70)], grace),
            vec![1]
        );
        st.reset();
        assert!(st.observe(at(100), &[(1, 20, 70)], grace).is_empty());
    }

    #[test]
    fn failed_lookups_between_observations_do_not_hold_a_rejoin_off() {
        let grace = Duration::from_secs(15);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let stuck = [(3, 100, 900)];
        let mut st = Stalls::default();
        assert!(st.observe_lookup(at(0), Some(&stuck), grace).is_empty());
        // The broker fails every other look-up (it used to reset the clocks each time).
        for s in [5, 15] {
            assert!(st.observe_lookup(at(s), None, grace).is_empty());
        }
        assert!(st.observe_lookup(at(10), Some(&stuck), grace).is_empty());
        assert_eq!(st.observe_lookup(at(20), Some(&stuck), grace), vec![3]);
    }
}

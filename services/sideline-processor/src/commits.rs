//! Checkpoints that do not stop the loop.
//!
//! A checkpoint may commit its offsets only once Kafka has acknowledged every output and
//! snapshot produced before it. Rather than wait for that inside the consume loop (which held
//! every player's next second back for as long as the slowest acknowledgement, 0.2–4 s on a
//! busy broker), each output gets a sequence number; a checkpoint records the offsets it
//! covers and the sequence number of the next output; it becomes committable when no output
//! numbered below that is still unacknowledged. Later committable checkpoints supersede
//! earlier ones, so only the newest is committed.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

/// A checkpoint waiting for its outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// Outputs numbered below this must be acknowledged first.
    pub after: u64,
    /// (partition, next offset to read) it covers.
    pub offsets: Vec<(i32, i64)>,
    /// When it was taken.
    pub taken: Instant,
}

/// Output sequence numbers in flight and the checkpoints waiting on them.
#[derive(Debug, Default)]
pub struct Commits {
    next: u64,
    unacked: BTreeSet<u64>,
    waiting: VecDeque<Pending>,
}

impl Commits {
    /// Number an output that was just handed to the producer.
    pub fn issue(&mut self) -> u64 {
        let seq = self.next;
        self.next += 1;
        self.unacked.insert(seq);
        seq
    }

    /// Output `seq` was acknowledged (a failed one never is: the processor stops instead).
    pub fn acked(&mut self, seq: u64) {
        self.unacked.remove(&seq);
    }

    /// The number the next output will get (outputs issued so far are numbered below it).
    pub fn issued(&self) -> u64 {
        self.next
    }

    /// Whether every output numbered below `after` is acknowledged.
    pub fn acked_before(&self, after: u64) -> bool {
        self.unacked.first().is_none_or(|&low| low >= after)
    }

    /// Outputs not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// A checkpoint of `offsets` after every output issued so far.
    pub fn take(&mut self, offsets: Vec<(i32, i64)>, taken: Instant) {
        self.waiting.push_back(Pending {
            after: self.next,
            offsets,
            taken,
        });
    }

    /// Checkpoints waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The newest checkpoint whose outputs are all acknowledged (the older ones it
    /// supersedes are dropped).
    pub fn ready(&mut self) -> Option<Pending> {
        let low = self.unacked.first().copied().unwrap_or(self.next);
        let mut out = None;
        while self.waiting.front().is_some_and(|c| c.after <= low) {
            out = self.waiting.pop_front();
        }
        out
    }

    /// Partitions assigned anew or taken away: waiting checkpoints no longer speak for them.
    pub fn forget(&mut self, parts: &[i32]) {
        for c in &mut self.waiting {
            c.offsets.retain(|(p, _)| !parts.contains(p));
        }
    }

    /// Every waiting checkpoint dropped (a synchronous one superseded them).
    pub fn clear(&mut self) {
        self.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn waits_for_earlier_outputs_only() {
        let mut c = Commits::default();
        let now = Instant::now();
        let (a, b) = (c.issue(), c.issue());
        c.take(vec![(0, 10)], now);
        let later = c.issue();
        assert_eq!(c.ready(), None);
        c.acked(b);
        assert_eq!(c.ready(), None, "output {a} is still in flight");
        c.acked(a);
        // The output issued after the checkpoint does not hold it back.
        assert_eq!(c.ready().unwrap().offsets, vec![(0, 10)]);
        assert_eq!(c.ready(), None);
        assert_eq!(c.unacked(), 1);
        c.acked(later);
        assert_eq!(c.unacked(), 0);
    }

    #[test]
    fn newest_ready_supersedes_older() {
        let mut c = Commits::default();
        let now = Instant::now();
        c.take(vec![(0, 1)], now);
        let x = c.issue();
        c.take(vec![(0, 5)], now);
        let y = c.issue();
        c.take(vec![(0, 9)], now);
        c.acked(x);
        assert_eq!(c.ready().unwrap().offsets, vec![(0, 5)]);
        assert_eq!(c.waiting(), 1);
        c.acked(y);
        assert_eq!(c.ready().unwrap().offsets, vec![(0, 9)]);
        assert_eq!(c.waiting(), 0);
    }

    #[test]
    fn acked_before_looks_only_below_the_mark() {
        let mut c = Commits::default();
        assert!(c.acked_before(c.issued()), "nothing issued");
        let (a, b) = (c.issue(), c.issue());
        let mark = c.issued();
        let later = c.issue();
        assert!(!c.acked_before(mark));
        c.acked(b);
        assert!(!c.acked_before(mark), "output {a} is still in flight");
        c.acked(a);
        // The output issued after the mark does not count.
        assert!(c.acked_before(mark));
        assert!(!c.acked_before(c.issued()));
        c.acked(later);
        assert!(c.acked_before(c.issued()));
    }

    #[test]
    fn forgets_partitions() {
        let mut c = Commits::default();
        c.take(vec![(0, 1), (1, 2), (2, 3)], Instant::now());
        c.forget(&[1]);
        assert_eq!(c.ready().unwrap().offsets, vec![(0, 1), (2, 3)]);
    }

    proptest! {
        /// Against a naive model: a checkpoint handed out is never ahead of an unacknowledged
        /// earlier output, and once everything is acknowledged the newest one comes out.
        #[test]
        fn never_ahead_of_an_ack(ops in prop::collection::vec(0u8..3, 1..200), picks in prop::collection::vec(any::<prop::sample::Index>(), 200)) {
            let mut c = Commits::default();
            let now = Instant::now();
            let mut issued: Vec<u64> = Vec::new();
            let mut acked: Vec<bool> = Vec::new();
            let mut last_taken = None;
            for (i, op) in ops.iter().enumerate() {
                match op {
                    0 => {
                        issued.push(c.issue());
                        acked.push(false);
                    }
                    1 if !issued.is_empty() => {
                        let k = picks[i].index(issued.len());
                        c.acked(issued[k]);
                        acked[k] = true;
                    }
                    _ => {
                        c.take(vec![(0, i as i64)], now);
                        last_taken = Some(i as i64);
                    }
                }
                if let Some(p) = c.ready() {
                    let off = p.offsets[0].1 as usize;
                    // Outputs issued before that checkpoint was taken.
                    let before = ops[..off].iter().filter(|&&o| o == 0).count();
                    prop_assert!(acked[..before].iter().all(|&a| a));
                }
            }
            for s in issued {
                c.acked(s);
            }
            if let Some(rest) = c.ready() {
                prop_assert_eq!(Some(rest.offsets[0].1), last_taken);
            }
            prop_assert_eq!(c.waiting(), 0);
        }
    }
}

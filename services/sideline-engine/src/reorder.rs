//! Event-time ordering for one stream of one player.
//!
//! Samples are held until the player's watermark (newest event time seen minus the allowed
//! lateness, or the `now` given to `tick`) passes them, then released in time order. A sample
//! at or before the last released time is *late* (or a duplicate when its time equals a
//! released or buffered sample's time) and is refused with a reason so the caller can count
//! it and dead-letter it. The buffer is bounded: past its cap the oldest sample is released
//! early (counted as a forced release), so memory per player never grows without limit.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::sample::{Micros, Sample};

/// Why a sample was not accepted into a reorder buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// Same stream and timestamp as a sample already accepted.
    Duplicate,
    /// Older than what was already released (beyond the allowed lateness).
    Late,
    /// Far ahead of the player's clock: held until later batches confirm or refute the jump
    /// ([`crate::jump`]); not refused yet.
    Held,
}

/// A bounded, time-ordered buffer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReorderBuffer {
    buf: VecDeque<Sample>,
    /// Time of the last released sample (`i64::MIN` before any).
    released_up_to: Micros,
    /// Samples released early because the buffer was full.
    pub forced_releases: u64,
}

impl ReorderBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        ReorderBuffer {
            buf: VecDeque::new(),
            released_up_to: Micros::MIN,
            forced_releases: 0,
        }
    }

    /// Insert a sample. In-order arrival (the common case) is an O(1) push.
    pub fn insert(&mut self, s: Sample) -> Result<(), Refusal> {
        if s.t <= self.released_up_to {
            return Err(if s.t == self.released_up_to {
                Refusal::Duplicate
            } else {
                Refusal::Late
            });
        }
        match self.buf.back() {
            None => self.buf.push_back(s),
            Some(last) if s.t > last.t => self.buf.push_back(s),
            Some(_) => {
                let idx = self.buf.partition_point(|x| x.t < s.t);
                if self.buf.get(idx).is_some_and(|x| x.t == s.t) {
                    return Err(Refusal::Duplicate);
                }
                self.buf.insert(idx, s);
            }
        }
        Ok(())
    }

    /// Time of the oldest buffered sample.
    #[inline]
    pub fn front_time(&self) -> Option<Micros> {
        self.buf.front().map(|s| s.t)
    }

    /// Remove and return the oldest sample if its time is at or before `up_to`.
    #[inline]
    pub fn pop_until(&mut self, up_to: Micros) -> Option<Sample> {
        match self.buf.front() {
            Some(s) if s.t <= up_to => {
                let s = self.buf.pop_front()?;
                self.released_up_to = s.t;
                Some(s)
            }
            _ => None,
        }
    }

    /// If the buffer holds more than `cap` samples, pop the oldest (counted).
    #[inline]
    pub fn pop_overflow(&mut self, cap: usize) -> Option<Sample> {
        if self.buf.len() > cap {
            self.forced_releases += 1;
            let s = self.buf.pop_front()?;
            self.released_up_to = s.t;
            Some(s)
        } else {
            None
        }
    }

    /// Raise the lateness boundary without releasing anything (used when the watermark moves
    /// past an empty buffer so that later stragglers are classed as late).
    pub fn advance(&mut self, to: Micros) {
        if self.buf.is_empty() && to > self.released_up_to {
            self.released_up_to = to;
        }
    }

    /// Number of buffered samples.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity() * std::mem::size_of::<Sample>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: Micros) -> Sample {
        Sample::hr(t, 120.0)
    }

    #[test]
    fn out_of_order_samples_come_out_sorted() {
        let mut b = ReorderBuffer::new();
        for t in [5, 1, 3, 2, 4] {
            b.insert(s(t)).unwrap();
        }
        let out: Vec<_> = std::iter::from_fn(|| b.pop_until(10))
            .map(|x| x.t)
            .collect();
        assert_eq!(out, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn duplicates_and_late_samples_are_refused_with_a_reason() {
        let mut b = ReorderBuffer::new();
        b.insert(s(10)).unwrap();
        b.insert(s(20)).unwrap();
        assert_eq!(b.insert(s(20)), Err(Refusal::Duplicate));
        assert_eq!(b.pop_until(15).map(|x| x.t), Some(10));
        assert_eq!(b.insert(s(10)), Err(Refusal::Duplicate));
        assert_eq!(b.insert(s(5)), Err(Refusal::Late));
        b.insert(s(12)).unwrap();
    }

    #[test]
    fn a_full_buffer_releases_its_oldest_sample_and_counts_it() {
        let mut b = ReorderBuffer::new();
        for t in 0..20 {
            b.insert(s(t)).unwrap();
        }
        assert_eq!(b.pop_overflow(16).map(|x| x.t), Some(0));
        assert_eq!(b.forced_releases, 1);
        assert_eq!(b.insert(s(0)), Err(Refusal::Duplicate));
    }
}

//! Duplicate deliveries: each device's recent sequence numbers, as a sliding bitmap below the
//! highest seen. At-least-once delivery (MQTT QoS 1 redelivery, Kafka producer retries, a
//! processor replaying from its last checkpoint) repeats batches; a repeated (device, seq) is
//! dropped. A sequence number far below the window is a device restart, not a duplicate.

use serde::{Deserialize, Serialize};

/// Per-device memory of recent sequence numbers (a sliding bitmap below the highest seen).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SeqWindow {
    highest: Option<u64>,
    bits: Vec<u64>,
}

/// What the sequence window says about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// Not seen before.
    New,
    /// Seen before: drop the batch.
    Duplicate,
    /// Far below the window: a device restart (its counter began again).
    Reset,
}

impl SeqWindow {
    /// Classify `seq`, remembering it.
    pub fn check(&mut self, seq: u64, window: u32) -> SeqVerdict {
        let words = window.div_ceil(64) as usize;
        if self.bits.len() != words {
            self.bits = vec![0; words];
        }
        let size = words as u64 * 64;
        let Some(hi) = self.highest else {
            self.highest = Some(seq);
            self.set(seq, size);
            return SeqVerdict::New;
        };
        if seq > hi {
            // Clear the slots that now fall out of the window.
            let shift = (seq - hi).min(size);
            for k in 1..=shift {
                self.clear(hi + k, size);
            }
            self.highest = Some(seq);
            self.set(seq, size);
            SeqVerdict::New
        } else if hi - seq < size {
            if self.get(seq, size) {
                SeqVerdict::Duplicate
            } else {
                self.set(seq, size);
                SeqVerdict::New
            }
        } else {
            self.bits.iter_mut().for_each(|w| *w = 0);
            self.highest = Some(seq);
            self.set(seq, size);
            SeqVerdict::Reset
        }
    }

    fn slot(seq: u64, size: u64) -> (usize, u64) {
        let i = seq % size;
        ((i / 64) as usize, 1 << (i % 64))
    }
    fn set(&mut self, seq: u64, size: u64) {
        let (w, m) = Self::slot(seq, size);
        self.bits[w] |= m;
    }
    fn clear(&mut self, seq: u64, size: u64) {
        let (w, m) = Self::slot(seq, size);
        self.bits[w] &= !m;
    }
    fn get(&self, seq: u64, size: u64) -> bool {
        let (w, m) = Self::slot(seq, size);
        self.bits[w] & m != 0
    }
}

//! Per-second buckets and sliding windows (1 s hop) over them.
//!
//! Every closed second of a player's session becomes one [`Bucket`] of integer quantities
//! (millimetres, counts, micro-AU), so window sums are exact and the incremental store agrees
//! bit-for-bit with a from-scratch recomputation — which the property tests check.
//! [`IncrementalWindows`] keeps one running sum per window length (add the new second, subtract
//! the one leaving): O(windows) per second. [`NaiveWindows`] re-adds every second of every
//! window each time: the oracle for tests and the baseline for `make bench`.

use serde::{Deserialize, Serialize};

/// Number of quantities per bucket.
pub const FIELDS: usize = 10;

/// What each bucket slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Field {
    /// Distance, mm.
    Distance = 0,
    /// Distance at ≥ HSR speed, mm.
    Hsr = 1,
    /// Distance at ≥ sprint speed, mm.
    Sprint = 2,
    /// Accelerations + decelerations (≥ high threshold) ended in this second.
    AccDec = 3,
    /// Decelerations (≤ −high threshold) ended in this second.
    DecelHard = 4,
    /// Accelerometer load, µAU.
    Load = 5,
    /// Vertical uniaxial load, µAU.
    LoadUp = 6,
    /// Sum of the three uniaxial loads, µAU.
    Load1d = 7,
    /// Distance at ≥ 14.4 km/h, mm.
    Moderate = 8,
    /// Distance at ≥ 24 km/h, mm.
    V24 = 9,
}

/// Integer quantities of one second.
pub type Bucket = [u32; FIELDS];
/// Sums of buckets.
pub type Sums = [u64; FIELDS];

/// Scale of distances in buckets (mm per m).
pub const MM: f64 = 1000.0;
/// Scale of loads in buckets (µAU per AU).
pub const MICRO: f64 = 1e6;

/// Convert a non-negative real quantity to bucket units, saturating.
#[inline]
pub fn to_units(x: f64, scale: f64) -> u32 {
    (x * scale).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// A store of recent seconds that answers window sums for a fixed list of lengths.
pub trait WindowStore: Clone + std::fmt::Debug {
    /// A store for these window lengths (seconds, ascending).
    fn with_lengths(lengths: &[u32]) -> Self;
    /// Append one closed second.
    fn push(&mut self, b: &Bucket);
    /// Sums over the last `lengths[k]` seconds (fewer at the start of a session).
    fn sums(&self, k: usize) -> Sums;
    /// Forget everything (e.g. after a gap longer than the longest window).
    fn clear(&mut self);
    /// Heap bytes held.
    fn heap_bytes(&self) -> usize;
    /// The window lengths it answers for (a snapshot's must be the engine's).
    fn lengths(&self) -> &[u32];
}

/// Ring of the last `capacity` buckets. Read back from a snapshot only if its indices are
/// inside it (a corrupt `head` would index out of bounds on the next second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RingParts")]
struct Ring {
    slots: Vec<Bucket>,
    head: usize,
    len: usize,
}

/// [`Ring`] as stored, before its checks.
#[derive(Deserialize)]
struct RingParts {
    slots: Vec<Bucket>,
    head: usize,
    len: usize,
}

impl TryFrom<RingParts> for Ring {
    type Error = String;
    fn try_from(r: RingParts) -> Result<Self, String> {
        let cap = r.slots.len();
        if cap == 0 || r.head >= cap || r.len > cap {
            return Err(format!(
                "window ring: head {} / length {} do not fit {cap} slots",
                r.head, r.len
            ));
        }
        Ok(Ring {
            slots: r.slots,
            head: r.head,
            len: r.len,
        })
    }
}

/// Window lengths fit the ring (each 1 ..= its capacity).
fn check_lengths(lengths: &[u32], ring: &Ring) -> Result<(), String> {
    let cap = ring.slots.len();
    match lengths.iter().find(|&&l| l == 0 || l as usize > cap) {
        Some(l) => Err(format!("window of {l} s does not fit a ring of {cap}")),
        None => Ok(()),
    }
}

impl Ring {
    fn new(capacity: usize) -> Self {
        Ring {
            slots: vec![[0; FIELDS]; capacity.max(1)],
            head: 0,
            len: 0,
        }
    }

    /// The bucket `back` seconds ago (0 = newest). Caller ensures `back < len`.
    #[inline]
    fn ago(&self, back: usize) -> &Bucket {
        let cap = self.slots.len();
        &self.slots[(self.head + cap - 1 - back) % cap]
    }

    #[inline]
    fn push(&mut self, b: &Bucket) {
        let cap = self.slots.len();
        self.slots[self.head] = *b;
        self.head = (self.head + 1) % cap;
        self.len = (self.len + 1).min(cap);
    }

    fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = [0; FIELDS]);
        self.head = 0;
        self.len = 0;
    }
}

/// Running sums, O(windows) per second. Read back from a snapshot only if every running sum
/// equals the sum of its window's buckets (recomputed: a corrupt sum would underflow when a
/// second leaves the window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "IncrementalParts")]
pub struct IncrementalWindows {
    lengths: Vec<u32>,
    ring: Ring,
    sums: Vec<Sums>,
}

/// [`IncrementalWindows`] as stored, before its checks.
#[derive(Deserialize)]
struct IncrementalParts {
    lengths: Vec<u32>,
    ring: Ring,
    sums: Vec<Sums>,
}

impl TryFrom<IncrementalParts> for IncrementalWindows {
    type Error = String;
    fn try_from(p: IncrementalParts) -> Result<Self, String> {
        check_lengths(&p.lengths, &p.ring)?;
        if p.sums.len() != p.lengths.len() {
            return Err(format!(
                "{} running sums for {} windows",
                p.sums.len(),
                p.lengths.len()
            ));
        }
        let naive = NaiveWindows {
            lengths: p.lengths.clone(),
            ring: p.ring.clone(),
        };
        if (0..p.lengths.len()).any(|k| naive.sums(k) != p.sums[k]) {
            return Err("running window sums disagree with their buckets".into());
        }
        Ok(IncrementalWindows {
            lengths: p.lengths,
            ring: p.ring,
            sums: p.sums,
        })
    }
}

impl WindowStore for IncrementalWindows {
    fn with_lengths(lengths: &[u32]) -> Self {
        let cap = lengths.iter().copied().max().unwrap_or(1) as usize;
        IncrementalWindows {
            lengths: lengths.to_vec(),
            ring: Ring::new(cap),
            sums: vec![[0; FIELDS]; lengths.len()],
        }
    }

    fn push(&mut self, b: &Bucket) {
        for (k, &l) in self.lengths.iter().enumerate() {
            let l = l as usize;
            let s = &mut self.sums[k];
            // Subtract the second that leaves this window (it is `l − 1` back before the push).
            if self.ring.len >= l {
                let old = self.ring.ago(l - 1);
                for f in 0..FIELDS {
                    s[f] -= u64::from(old[f]);
                }
            }
            for f in 0..FIELDS {
                s[f] += u64::from(b[f]);
            }
        }
        self.ring.push(b);
    }

    #[inline]
    fn sums(&self, k: usize) -> Sums {
        self.sums[k]
    }

    fn clear(&mut self) {
        self.ring.clear();
        self.sums.iter_mut().for_each(|s| *s = [0; FIELDS]);
    }

    fn lengths(&self) -> &[u32] {
        &self.lengths
    }

    fn heap_bytes(&self) -> usize {
        self.ring.slots.capacity() * std::mem::size_of::<Bucket>()
            + self.sums.capacity() * std::mem::size_of::<Sums>()
            + self.lengths.capacity() * 4
    }
}

/// Recompute every window from its buckets on every query: the oracle and the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NaiveParts")]
pub struct NaiveWindows {
    lengths: Vec<u32>,
    ring: Ring,
}

/// [`NaiveWindows`] as stored, before its checks.
#[derive(Deserialize)]
struct NaiveParts {
    lengths: Vec<u32>,
    ring: Ring,
}

impl TryFrom<NaiveParts> for NaiveWindows {
    type Error = String;
    fn try_from(p: NaiveParts) -> Result<Self, String> {
        check_lengths(&p.lengths, &p.ring)?;
        Ok(NaiveWindows {
            lengths: p.lengths,
            ring: p.ring,
        })
    }
}

impl WindowStore for NaiveWindows {
    fn with_lengths(lengths: &[u32]) -> Self {
        let cap = lengths.iter().copied().max().unwrap_or(1) as usize;
        NaiveWindows {
            lengths: lengths.to_vec(),
            ring: Ring::new(cap),
        }
    }

    fn push(&mut self, b: &Bucket) {
        self.ring.push(b);
    }

    fn sums(&self, k: usize) -> Sums {
        let n = (self.lengths[k] as usize).min(self.ring.len);
        let mut s = [0u64; FIELDS];
        for back in 0..n {
            let b = self.ring.ago(back);
            for f in 0..FIELDS {
                s[f] += u64::from(b[f]);
            }
        }
        s
    }

    fn clear(&mut self) {
        self.ring.clear();
    }

    fn lengths(&self) -> &[u32] {
        &self.lengths
    }

    fn heap_bytes(&self) -> usize {
        self.ring.slots.capacity() * std::mem::size_of::<Bucket>() + self.lengths.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Sum of the last `l` buckets of a plain vector: the definition itself.
    fn definition(history: &[Bucket], l: usize) -> Sums {
        let mut s = [0u64; FIELDS];
        for b in history.iter().rev().take(l) {
            for f in 0..FIELDS {
                s[f] += u64::from(b[f]);
            }
        }
        s
    }

    #[test]
    fn corrupt_stored_windows_are_refused_when_read_back() {
        let mut w = IncrementalWindows::with_lengths(&[2, 5]);
        for i in 0..7u32 {
            w.push(&[i; FIELDS]);
        }
        let good = serde_json::to_value(&w).unwrap();
        let back: IncrementalWindows = serde_json::from_value(good.clone()).unwrap();
        assert_eq!(back, w, "a sound store reads back as it was");
        let naive: NaiveWindows = serde_json::from_value(serde_json::json!({
            "lengths": [2, 5], "ring": good["ring"].clone()
        }))
        .unwrap();
        assert_eq!(naive.sums(1), w.sums(1));
        let corrupt = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            edit(&mut v);
            serde_json::from_value::<IncrementalWindows>(v)
                .expect_err("a corrupt store must be refused")
                .to_string()
        };
        for (what, edit, want) in [
            (
                "head past the end",
                &(|v: &mut serde_json::Value| v["ring"]["head"] = 5.into())
                    as &dyn Fn(&mut serde_json::Value),
                "do not fit",
            ),
            (
                "length past the end",
                &|v: &mut serde_json::Value| v["ring"]["len"] = 6.into(),
                "do not fit",
            ),
            (
                "no slots",
                &|v: &mut serde_json::Value| v["ring"]["slots"] = serde_json::json!([]),
                "do not fit",
            ),
            (
                "a window longer than the ring",
                &|v: &mut serde_json::Value| v["lengths"][1] = 6.into(),
                "does not fit",
            ),
            (
                "a running sum off",
                &|v: &mut serde_json::Value| v["sums"][0][3] = 1.into(),
                "disagree",
            ),
            (
                "a sum missing",
                &|v: &mut serde_json::Value| {
                    v["sums"].as_array_mut().unwrap().pop();
                },
                "running sums for",
            ),
        ] {
            let e = corrupt(edit);
            assert!(e.contains(want), "{what}: {e}");
        }
    }

    proptest! {
        #[test]
        fn incremental_windows_equal_a_naive_recomputation_at_every_second(
            lengths in prop::sample::subsequence(vec![1u32, 2, 5, 13, 60, 180, 300], 1..5),
            buckets in prop::collection::vec(prop::array::uniform10(0u32..20_000), 0..700),
            clear_at in prop::option::of(0usize..700),
        ) {
            let mut inc = IncrementalWindows::with_lengths(&lengths);
            let mut naive = NaiveWindows::with_lengths(&lengths);
            let mut history: Vec<Bucket> = Vec::new();
            for (i, b) in buckets.iter().enumerate() {
                if clear_at == Some(i) {
                    inc.clear();
                    naive.clear();
                    history.clear();
                }
                inc.push(b);
                naive.push(b);
                history.push(*b);
                for (k, &l) in lengths.iter().enumerate() {
                    let want = definition(&history, l as usize);
                    prop_assert_eq!(inc.sums(k), want);
                    prop_assert_eq!(naive.sums(k), want);
                }
            }
        }
    }

    #[test]
    fn a_window_longer_than_the_history_sums_what_there_is() {
        let mut w = IncrementalWindows::with_lengths(&[3]);
        w.push(&[1; FIELDS]);
        w.push(&[2; FIELDS]);
        assert_eq!(w.sums(0), [3; FIELDS]);
        w.push(&[3; FIELDS]);
        w.push(&[4; FIELDS]);
        assert_eq!(w.sums(0), [9; FIELDS]);
    }
}

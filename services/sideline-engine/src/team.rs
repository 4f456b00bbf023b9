//! Team-aware device alerts that do not depend on arrival order.
//!
//! A pod with no signal is worth an alert only while teammates are streaming: when a whole
//! team goes quiet it is half-time or full time. "Teammates streaming at second *s*" must not
//! depend on whose data happened to be processed first (partitions are read at different
//! speeds, and a replay must raise the same alerts as the live run), so:
//!
//! - every player keeps a [`SignalHistory`]: one bit per second of event time, set when his
//!   snapshot for that second had a signal (good or poor fixes), covering [`HISTORY_S`];
//! - the device rule of a player's snapshot for second *s* is evaluated only once every
//!   teammate has produced his own snapshot for *s* ([`DeviceWatch`] holds it until then);
//!   teammates were streaming if any of them had a signal in the [`LIVE_WINDOW_S`] seconds up
//!   to *s*;
//! - a teammate more than [`MAX_SKEW`] behind the team's newest snapshot no longer holds the
//!   others back (his pod and its partition are gone), and no snapshot waits longer than that.
//!
//! In a live run every player is within a second or two of the others, so device alerts come
//! out with that delay; while a processor catches up on a backlog they wait for the slowest
//! partition, up to [`MAX_SKEW`] of event time.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::output::{PlayerMetrics, Signal};
use crate::sample::{Micros, SECOND};

/// A teammate counts as streaming if he had signal in this many seconds up to the second in
/// question (shorter than the device rule's pending period, so that when a whole team falls
/// silent its members stop counting as live before anyone's device alert could fire).
pub const LIVE_WINDOW_S: i64 = 10;

/// How far behind the team's newest snapshot a player may be and still hold back the
/// team's device alerts, µs (10 minutes).
pub const MAX_SKEW: Micros = 600 * SECOND;

/// At most this many snapshots wait for teammates (one per second of [`MAX_SKEW`]).
pub const MAX_WAITING: usize = (MAX_SKEW / SECOND) as usize;

const WORDS: usize = 10;
/// Seconds of signal history kept per player: [`MAX_SKEW`] plus the live window, rounded up.
pub const HISTORY_S: i64 = (WORDS * 64) as i64;
const _: () = assert!(HISTORY_S >= MAX_SKEW / SECOND + LIVE_WINDOW_S);

/// One bit per second: had a signal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalHistory {
    /// One past the newest second recorded.
    end: i64,
    /// Bit `i` is second `end - 1 - i`.
    bits: [u64; WORDS],
}

impl SignalHistory {
    fn bit(&self, i: i64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        self.bits.get(w).is_some_and(|x| x >> b & 1 == 1)
    }

    /// Record second `sec` (seconds after `end` shift the history; older ones overwrite).
    pub fn record(&mut self, sec: i64, streaming: bool) {
        if sec >= self.end {
            let shift = sec + 1 - self.end;
            self.end = sec + 1;
            if shift >= HISTORY_S {
                self.bits = [0; WORDS];
            } else {
                let (words, bits) = ((shift / 64) as usize, (shift % 64) as u32);
                for w in (0..WORDS).rev() {
                    let lo = w.checked_sub(words).map_or(0, |i| self.bits[i] << bits);
                    let carry = match (w.checked_sub(words + 1), bits) {
                        (Some(i), b) if b > 0 => self.bits[i] >> (64 - b),
                        _ => 0,
                    };
                    self.bits[w] = lo | carry;
                }
            }
        }
        let i = self.end - 1 - sec;
        if (0..HISTORY_S).contains(&i) {
            let (w, b) = ((i / 64) as usize, i % 64);
            if streaming {
                self.bits[w] |= 1 << b;
            } else {
                self.bits[w] &= !(1 << b);
            }
        }
    }

    /// A signal in any second of `from..=to` (seconds outside the history count as none).
    pub fn any(&self, from: i64, to: i64) -> bool {
        (from..=to.min(self.end - 1))
            .rev()
            .map(|sec| self.end - 1 - sec)
            .take_while(|&i| i < HISTORY_S)
            .any(|i| self.bit(i))
    }
}

/// One player's side of the team rule: his signal history and the snapshots whose device
/// rule waits for teammates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceWatch {
    history: SignalHistory,
    /// Newest snapshot seen, µs.
    observed: Option<Micros>,
    deferred: VecDeque<PlayerMetrics>,
}

impl DeviceWatch {
    /// Note a snapshot (in time order) and queue it for the device rule.
    pub fn push(&mut self, m: &PlayerMetrics) {
        let sec = m.t.div_euclid(SECOND);
        self.history
            .record(sec, m.status.signal != Signal::NoSignal);
        self.observed = Some(self.observed.map_or(m.t, |o| o.max(m.t)));
        self.deferred.push_back(m.clone());
    }

    /// Newest snapshot seen.
    pub fn observed(&self) -> Option<Micros> {
        self.observed
    }

    /// Had a signal in the live window ending at `t`.
    pub fn streaming_at(&self, t: Micros) -> bool {
        let sec = t.div_euclid(SECOND);
        self.history.any(sec - LIVE_WINDOW_S + 1, sec)
    }

    /// Snapshots waiting for teammates.
    pub fn waiting(&self) -> usize {
        self.deferred.len()
    }

    /// Event times of the waiting snapshots, oldest first.
    pub fn waiting_times(&self) -> impl Iterator<Item = Micros> + '_ {
        self.deferred.iter().map(|m| m.t)
    }

    /// Take the oldest waiting snapshot.
    pub fn pop(&mut self) -> Option<PlayerMetrics> {
        self.deferred.pop_front()
    }
}

/// Up to when a team's device rules may run: the oldest "newest snapshot" among teammates
/// who are within [`MAX_SKEW`] of the team's newest. `None` for a team with no snapshots.
pub fn team_ready(observed: impl Iterator<Item = Option<Micros>> + Clone) -> Option<Micros> {
    let newest = observed.clone().flatten().max()?;
    observed.flatten().filter(|&o| o >= newest - MAX_SKEW).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn history_matches_a_naive_record(
            steps in proptest::collection::vec((0i64..700, any::<bool>()), 1..400)
        ) {
            let mut h = SignalHistory::default();
            let mut naive: std::collections::BTreeMap<i64, bool> = Default::default();
            let mut sec = 1_000;
            for (jump, on) in steps {
                // Mostly forwards by a second, sometimes far, sometimes back a little.
                sec += match jump % 10 { 0 => jump, 1 => -(jump % 5), _ => 1 };
                h.record(sec, on);
                naive.insert(sec, on);
                let newest = *naive.keys().max().unwrap();
                for from in [newest - 20, newest - 300, newest - 650] {
                    let want = naive
                        .range(from.max(newest - HISTORY_S + 1)..=newest)
                        .any(|(_, &v)| v);
                    prop_assert_eq!(h.any(from, newest), want, "from {} newest {}", from, newest);
                }
            }
        }
    }

    #[test]
    fn a_team_waits_for_its_slowest_member_but_not_for_a_vanished_one() {
        let s = |x: i64| Some(x * SECOND);
        assert_eq!(team_ready([s(100), s(98), s(101)].into_iter()), s(98));
        assert_eq!(
            team_ready([s(1_000), s(10), s(999)].into_iter()),
            s(999),
            "10 s is 990 s behind: gone"
        );
        assert_eq!(team_ready([None, s(5)].into_iter()), s(5));
        assert_eq!(team_ready([None, None].into_iter()), None);
    }
}

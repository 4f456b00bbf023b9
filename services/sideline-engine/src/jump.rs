//! Time-jump quarantine for one player.
//!
//! A sample whose time is far ahead of the player's own clock (his newest accepted sample, or
//! the time the caller last advanced him to with `tick`) would, if accepted, move his event
//! time with it: every good sample after it would then be older than the allowed lateness and
//! refused as late, for as long as the jump (a pod's clock glitch of +200 s refused 200 s of
//! good data). Such a sample is held here instead, and the batches that follow decide:
//!
//! - `stream.jump_confirm_batches` batches (default 3) that carry far-ahead samples, or a hold
//!   grown to `stream.max_buffered_samples`: the clock really moved (half-time replayed faster
//!   than real time, a pod that was off, an upload after a gap) and the held samples are
//!   accepted, in time order, as if they had just arrived;
//! - as many batches that carry only samples near his clock: the far-ahead ones were a
//!   glitch, and are refused (`time_jump`: the processor dead-letters them, counted).
//!
//! Live, the processor ticks a silent player forward with the wall clock, so a real half-time
//! break never reaches the threshold (`stream.max_jump_s`, 60 s) and nothing is held; replays
//! and files (no ticks) hold a real jump for three batches, then accept it whole: no sample
//! is lost either way. A hold whose samples the clock has caught up with meanwhile (the
//! caller ticked the player past the gap) was no jump: it is accepted at the next batch,
//! before that batch is judged. A judgement, not from a source: one 200-ms batch is too little to tell
//! a glitch from a gap, three (0.6 s of play) are enough and cost nothing but that delay.

use serde::{Deserialize, Serialize};

use crate::params::StreamParams;
use crate::sample::{Micros, Sample};

/// Samples held because they jumped ahead, and what the batches since have said.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quarantine {
    held: Vec<Sample>,
    /// Batches since the hold began that carried far-ahead samples (the first included).
    ahead: u32,
    /// Batches since the hold began that carried only samples near the clock.
    near: u32,
}

/// What the batches decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not yet decided (or nothing held).
    Wait,
    /// The jump is real: accept these, in time order.
    Confirmed(Vec<Sample>),
    /// A glitch: refuse these.
    Refused(Vec<Sample>),
}

impl Quarantine {
    /// Is a sample at `t` a jump ahead of `clock` (`Micros::MIN`: no clock yet, no jump)?
    pub fn is_jump(p: &StreamParams, clock: Micros, t: Micros) -> bool {
        p.max_jump_s > 0.0
            && clock != Micros::MIN
            && t.saturating_sub(clock) > (p.max_jump_s * 1e6) as Micros
    }

    /// Hold a far-ahead sample.
    pub fn hold(&mut self, s: Sample) {
        self.held.push(s);
    }

    /// Has the clock caught up with what is held (the caller advanced the player with `tick`
    /// past the gap, as the pipeline does while he is silent)? Then it was no jump: take
    /// the held samples, in time order, to accept.
    pub fn caught_up(&mut self, p: &StreamParams, clock: Micros) -> Option<Vec<Sample>> {
        let newest = self.held.iter().map(|s| s.t).max()?;
        if Self::is_jump(p, clock, newest) {
            return None;
        }
        let mut held = std::mem::take(&mut self.held);
        held.sort_by_key(|s| s.t);
        *self = Quarantine::default();
        Some(held)
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Nothing held?
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// A batch ended; `ahead`: it carried far-ahead samples (now held), `near`: it carried
    /// samples near the clock. Decide if the batches so far are enough.
    pub fn after_batch(&mut self, p: &StreamParams, ahead: bool, near: bool) -> Verdict {
        if self.held.is_empty() {
            *self = Quarantine::default();
            return Verdict::Wait;
        }
        if ahead {
            self.ahead += 1;
        } else if near {
            self.near += 1;
        }
        let k = p.jump_confirm_batches.max(1);
        if self.ahead >= k || self.held.len() >= p.max_buffered_samples {
            let mut held = std::mem::take(&mut self.held);
            held.sort_by_key(|s| s.t);
            *self = Quarantine::default();
            Verdict::Confirmed(held)
        } else if self.near >= k {
            let held = std::mem::take(&mut self.held);
            *self = Quarantine::default();
            Verdict::Refused(held)
        } else {
            Verdict::Wait
        }
    }

    /// End of session: whatever is still held was never confirmed.
    pub fn drain(&mut self) -> Vec<Sample> {
        let held = std::mem::take(&mut self.held);
        *self = Quarantine::default();
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Reading;

    fn s(t_s: f64) -> Sample {
        Sample {
            t: (t_s * 1e6) as Micros,
            reading: Reading::HeartRate(150.0),
        }
    }

    #[test]
    fn a_glitch_is_refused_after_three_near_batches_a_real_jump_accepted_after_three_ahead() {
        let p = StreamParams::default();
        let clock = 1_000 * 1_000_000;
        assert!(!Quarantine::is_jump(&p, clock, clock + 60_000_000));
        assert!(Quarantine::is_jump(&p, clock, clock + 200_000_000));
        assert!(!Quarantine::is_jump(&p, Micros::MIN, 5));

        let mut q = Quarantine::default();
        assert_eq!(q.after_batch(&p, false, true), Verdict::Wait);
        q.hold(s(1200.0));
        assert_eq!(q.after_batch(&p, true, false), Verdict::Wait);
        assert_eq!(q.after_batch(&p, false, true), Verdict::Wait);
        assert_eq!(q.after_batch(&p, false, true), Verdict::Wait);
        assert_eq!(
            q.after_batch(&p, false, true),
            Verdict::Refused(vec![s(1200.0)])
        );
        assert!(q.is_empty());

        let mut q = Quarantine::default();
        for (i, t) in [1900.2, 1900.0, 1900.4].into_iter().enumerate() {
            q.hold(s(t));
            let v = q.after_batch(&p, true, false);
            if i < 2 {
                assert_eq!(v, Verdict::Wait);
            } else {
                assert_eq!(v, Verdict::Confirmed(vec![s(1900.0), s(1900.2), s(1900.4)]));
            }
        }
    }

    #[test]
    fn a_hold_the_clock_caught_up_with_is_accepted() {
        let p = StreamParams::default();
        let mut q = Quarantine::default();
        assert_eq!(q.caught_up(&p, 0), None);
        q.hold(s(1400.0));
        q.hold(s(1399.9));
        assert_eq!(q.caught_up(&p, 1_000_000_000), None, "still 400 s ahead");
        assert_eq!(
            q.caught_up(&p, 1_390_000_000),
            Some(vec![s(1399.9), s(1400.0)])
        );
        assert!(q.is_empty());
    }

    #[test]
    fn a_full_hold_is_confirmed_at_once() {
        let p = StreamParams {
            max_buffered_samples: 16,
            ..StreamParams::default()
        };
        let mut q = Quarantine::default();
        for i in 0..16 {
            q.hold(s(2000.0 + f64::from(i) * 0.01));
        }
        assert!(matches!(q.after_batch(&p, true, false), Verdict::Confirmed(v) if v.len() == 16));
    }
}

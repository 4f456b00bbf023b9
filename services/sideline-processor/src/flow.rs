//! A partition's flow clock: how much time has passed "while the partition flowed", the
//! measure of a player's silence when the processor closes his seconds without a sample of
//! his (see [`crate::processor::Processor::tick`]).
//!
//! Wall time between two records of the partition counts in full up to [`MAX_GAP`]; a longer
//! gap is taken for an upstream stall (a broker or ingest outage, a consumer rebalance) and
//! counts as `MAX_GAP` only. Without that cap, a player whose first batch after an outage is
//! read a moment after his partition-mates' looks silent through the whole outage, and his
//! seconds are closed before his own backlog arrives (seen after a Kafka broker restart: one
//! second reported with 3.082 min, then — after a re-read — 3.098). A whole partition that
//! is really quiet is handled by the idle rule instead: once the consumer is at its end and
//! nothing has come for the idle time, the clock follows the wall clock again.

use std::time::{Duration, Instant};

/// The longest gap between two records of a partition that counts as silence in full (s).
/// Pods send a batch every 200 ms; a partition of even one player has records that often.
pub const MAX_GAP: Duration = Duration::from_millis(500);

/// The flowing time of one partition.
#[derive(Debug, Clone, Copy)]
pub struct FlowClock {
    flow: Duration,
    last: Instant,
    /// Consumed to the end of the log, and nothing has arrived since.
    at_end: bool,
    /// How long at the end of the log before silence is taken for a quiet partition.
    idle_after: Duration,
}

impl FlowClock {
    /// A clock starting at zero now; a partition is idle after `idle_after` at its end.
    pub fn new(now: Instant, idle_after: Duration) -> Self {
        FlowClock {
            flow: Duration::ZERO,
            last: now,
            at_end: false,
            idle_after,
        }
    }

    /// A record was read at `now`. The gap since the previous one counts up to [`MAX_GAP`]
    /// — in full if the partition had become idle, as [`FlowClock::at`] already counted it.
    pub fn record(&mut self, now: Instant) {
        let gap = now.saturating_duration_since(self.last);
        self.flow += if self.idle(now) {
            gap
        } else {
            gap.min(MAX_GAP)
        };
        self.last = now;
        self.at_end = false;
    }

    /// The consumer reached the end of the log at `now`.
    pub fn end(&mut self, now: Instant) {
        if !self.at_end {
            self.record(now);
            self.at_end = true;
        }
    }

    /// At the end of the log and nothing for the idle time: silence means the players are
    /// quiet, not that we are behind.
    pub fn idle(&self, now: Instant) -> bool {
        self.at_end && now.saturating_duration_since(self.last) >= self.idle_after
    }

    /// The flowing time at the latest record: the stamp to keep for the player whose batch it
    /// was.
    pub fn flowed(&self) -> Duration {
        self.flow
    }

    /// The flowing time at `now`: up to the latest record while the partition flows (a stall
    /// stops it); once idle, the wall time since the latest record counts in full.
    pub fn at(&self, now: Instant) -> Duration {
        if self.idle(now) {
            self.flow + now.saturating_duration_since(self.last)
        } else {
            self.flow
        }
    }

    /// How long a player whose latest batch was stamped `stamp` has been silent at `now`.
    pub fn silence(&self, stamp: Duration, now: Instant) -> Duration {
        self.at(now).saturating_sub(stamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(15);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A clock with one batch of "his" read at `t0`; returns it and his stamp.
    fn with_his_batch(t0: Instant) -> (FlowClock, Duration) {
        let mut c = FlowClock::new(t0, IDLE);
        c.record(t0);
        let his = c.flowed();
        (c, his)
    }

    #[test]
    fn steady_records_count_wall_time_in_full() {
        let t0 = Instant::now();
        let (mut c, his) = with_his_batch(t0);
        for i in 1..=20 {
            c.record(t0 + ms(50 * i));
        }
        assert_eq!(c.silence(his, t0 + ms(1100)), ms(1000));
    }

    #[test]
    fn an_upstream_stall_does_not_count_as_his_silence() {
        let t0 = Instant::now();
        let (mut c, his) = with_his_batch(t0);
        c.end(t0 + ms(10));
        // Nothing for 10 s (the broker was down), then his partition-mates' backlog comes
        // first, 30 ms of reading before his own batch.
        c.record(t0 + ms(10_000));
        c.record(t0 + ms(10_030));
        let s = c.silence(his, t0 + ms(10_040));
        assert_eq!(s, ms(10) + MAX_GAP + ms(30));
        assert!(s < Duration::from_secs(2), "below the allowed lateness");
    }

    #[test]
    fn while_a_stall_lasts_the_clock_stands_still() {
        let t0 = Instant::now();
        let (mut c, his) = with_his_batch(t0);
        c.record(t0 + ms(200));
        assert_eq!(c.silence(his, t0 + ms(8_000)), ms(200));
        // Still behind (not at the end of the log): no idle advance however long it lasts.
        assert_eq!(c.silence(his, t0 + ms(60_000)), ms(200));
    }

    #[test]
    fn an_idle_partition_follows_the_wall_clock_and_a_record_keeps_what_was_counted() {
        let t0 = Instant::now();
        let (mut c, his) = with_his_batch(t0);
        c.record(t0 + ms(200));
        c.end(t0 + ms(200));
        assert!(!c.idle(t0 + ms(15_100)));
        assert_eq!(c.silence(his, t0 + ms(15_100)), ms(200));
        assert!(c.idle(t0 + ms(15_200)));
        assert_eq!(c.silence(his, t0 + ms(30_200)), ms(30_200));
        // Records again: the silence already counted is not taken back.
        c.record(t0 + ms(31_000));
        assert_eq!(c.silence(his, t0 + ms(31_000)), ms(31_000));
    }

    #[test]
    fn a_stamp_from_the_future_is_no_silence() {
        let t0 = Instant::now();
        let c = FlowClock::new(t0, IDLE);
        assert_eq!(c.silence(ms(5_000), t0), Duration::ZERO);
    }
}

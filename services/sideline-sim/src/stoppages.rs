//! When the ball is out of play. Elite men's league matches have 108 ± 13 stoppages
//! (Siegle and Lames 2012, Int J Perform Anal Sport 12:101), and the ball is in play for 66 %
//! of the first 15 minutes falling to 56 % of the last 15 (Linke et al. 2018, J Sports Sci Med
//! 17:662; more than half of the usual late-match decline in running comes from this).
//!
//! Model: in-play and stoppage spells alternate, each exponentially distributed; stoppages
//! last 20 s on average (a judgement that, with the shares above, gives about 105 per match);
//! the in-play mean falls linearly over the match so that the in-play share goes from 66 % to
//! 56 %.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Mean stoppage, s.
const STOPPAGE_MEAN_S: f64 = 20.0;
/// In-play share at kick-off and at full time (Linke et al. 2018).
const IN_PLAY_SHARE: (f64, f64) = (0.663, 0.559);
/// Shortest and longest stoppage, s (a throw-in; a long treatment or a review).
const STOPPAGE_RANGE_S: (f64, f64) = (5.0, 150.0);

fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

/// The stoppages of a match with halves of `half_min` minutes: (from, to) in minutes of play,
/// in order, none across half-time. The same seed gives the same schedule.
pub fn schedule(seed: u64, half_min: f64) -> Vec<(f64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5354_4f50_5041_4745);
    let total = 2.0 * half_min;
    let mut out = Vec::new();
    for half in 0..2 {
        let (start, end) = (half as f64 * half_min, (half + 1) as f64 * half_min);
        let mut t = start;
        loop {
            let progress = if total > 0.0 { t / total } else { 0.0 };
            let share = IN_PLAY_SHARE.0 + (IN_PLAY_SHARE.1 - IN_PLAY_SHARE.0) * progress;
            let in_play_mean = STOPPAGE_MEAN_S * share / (1.0 - share);
            t += exponential(&mut rng, in_play_mean) / 60.0;
            if t >= end {
                break;
            }
            let d = exponential(&mut rng, STOPPAGE_MEAN_S)
                .clamp(STOPPAGE_RANGE_S.0, STOPPAGE_RANGE_S.1)
                / 60.0;
            let to = (t + d).min(end);
            out.push((t, to));
            t = to;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over many matches: about 108 stoppages, the ball in play about 66 % of the first 15
    /// minutes and 56 % of the last 15.
    #[test]
    fn stoppages_have_the_published_count_and_in_play_shares() {
        let (mut count, mut first, mut last) = (0.0, 0.0, 0.0);
        let n = 200;
        for seed in 0..n {
            let s = schedule(seed, 45.0);
            count += s.len() as f64;
            let out_in = |a: f64, b: f64| -> f64 {
                s.iter().map(|&(f, t)| (t.min(b) - f.max(a)).max(0.0)).sum()
            };
            first += 1.0 - out_in(0.0, 15.0) / 15.0;
            last += 1.0 - out_in(75.0, 90.0) / 15.0;
            assert!(s.windows(2).all(|w| w[0].1 <= w[1].0), "in order, apart");
            assert!(
                s.iter().all(|&(f, t)| !(f < 45.0 && t > 45.0)),
                "none across half-time"
            );
        }
        let (count, first, last) = (count / n as f64, first / n as f64, last / n as f64);
        assert!((95.0..=121.0).contains(&count), "{count} stoppages");
        assert!((first - 0.663).abs() < 0.03, "first 15′ in play {first}");
        assert!((last - 0.559).abs() < 0.03, "last 15′ in play {last}");
    }
}

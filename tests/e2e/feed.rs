//! Pod batches published over MQTT, paced by event time at a chosen speed, in parts so that a
//! test can act on the pipeline between them, and alterable on the way.

use sideline_cli::publish::{Pacer, PublishArgs, Publisher, now_us, start_time};
use sideline_engine::{Batch, Micros};
use sideline_sim::{MatchConfig, MatchSim};
use tokio_util::sync::CancellationToken;

/// Batches grouped by the event time at which they are sent, in time order.
pub type Windows = Vec<(Micros, Vec<Batch>)>;

/// Minutes `from_min..to_min` of the synthetic match `cfg` (play and break, from kick-off),
/// with the match's start put so that at `speed` the part's last sample is sent as its time
/// comes (never ahead of the wall clock), on a whole second.
pub fn synthetic(
    cfg: &MatchConfig,
    speed: f64,
    from_min: f64,
    to_min: f64,
) -> (MatchConfig, Windows) {
    let mut cfg = cfg.clone();
    let part = ((to_min - from_min) * 60e6) as Micros;
    let from = (from_min * 60e6) as Micros;
    cfg.start = (start_time(now_us(), part, speed) - from).div_euclid(1_000_000) * 1_000_000;
    let mut sim = MatchSim::new(cfg.clone());
    let (lo, hi) = (cfg.start + from, cfg.start + (to_min * 60e6) as Micros);
    let mut out = Vec::new();
    while let Some(b) = sim.next_batches() {
        if sim.now() > hi {
            break;
        }
        if sim.now() > lo {
            out.push((sim.now(), b));
        }
    }
    (cfg, out)
}

/// Samples in `windows`.
pub fn samples(windows: &Windows) -> u64 {
    windows
        .iter()
        .flat_map(|(_, b)| b)
        .map(|b| b.samples.len() as u64)
        .sum()
}

/// A publisher working through `windows`.
pub struct Feed {
    windows: Windows,
    next: usize,
    speed: f64,
    pacer: Option<Pacer>,
    out: Publisher,
    stop: CancellationToken,
    /// Batches published (after alteration).
    pub batches: u64,
    /// Samples published (after alteration).
    pub samples: u64,
    /// (event time of each window sent, wall time when its batches went out, µs).
    pub sent: Vec<(Micros, i64)>,
}

impl Feed {
    /// Connect to the broker on `mqtt_port`.
    pub fn new(mqtt_port: u16, windows: Windows, speed: f64) -> Feed {
        let args = PublishArgs {
            mqtt: format!("127.0.0.1:{mqtt_port}"),
            config: None,
            speed,
            json: false,
        };
        Feed {
            windows,
            next: 0,
            speed,
            pacer: None,
            out: Publisher::connect(&args, "sideline-e2e-pods").unwrap(),
            stop: CancellationToken::new(),
            batches: 0,
            samples: 0,
            sent: Vec::new(),
        }
    }

    /// Windows in the feed.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Share of the windows sent so far.
    pub fn progress(&self) -> f64 {
        self.next as f64 / self.windows.len() as f64
    }

    /// Send, paced, until `fraction` of the windows are out.
    pub async fn play(&mut self, fraction: f64) {
        self.play_altered(fraction, |w| w).await;
    }

    /// As [`Self::play`], each window's batches passed through `alter` first.
    pub async fn play_altered(
        &mut self,
        fraction: f64,
        mut alter: impl FnMut(Vec<Batch>) -> Vec<Batch>,
    ) {
        let until =
            ((self.windows.len() as f64 * fraction).ceil() as usize).min(self.windows.len());
        while self.next < until {
            let (t, batches) = self.windows[self.next].clone();
            let pacer = self.pacer.get_or_insert_with(|| Pacer::new(t, self.speed));
            assert!(pacer.wait_for(t, &self.stop).await);
            self.sent.push((t, now_us()));
            for b in alter(batches) {
                self.samples += b.samples.len() as u64;
                self.batches += 1;
                self.out.publish(&b).await.unwrap();
            }
            self.next += 1;
        }
    }

    /// Publish raw bytes on `topic`.
    pub async fn raw(&mut self, topic: &str, payload: Vec<u8>) {
        self.out.publish_raw(topic, payload).await.unwrap();
    }

    /// Let the last messages be acknowledged and disconnect.
    pub async fn close(self) {
        self.out.close().await;
    }
}

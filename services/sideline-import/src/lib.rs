//! # sideline-import
//!
//! Readers that turn real tracking files into engine samples, one [`Track`] per player, so that
//! `sideline analyze`, `sideline replay` and the tests run the same engine on data recorded by
//! others. Readers take any `Read`; opening files, gzip and progress bars are the caller's.
//!
//! Bad rows never stop an import and are never dropped silently: each is counted by reason in
//! the [`ImportReport`], with the first few quoted with their line numbers. Structural problems
//! (a missing column, an unreadable header) are errors.
//!
//! # Layout
//!
//! - [`zxy`]: ZXY Sport Tracking long CSV (x/y metres, the system's own speed).
//! - [`metrica`]: Metrica Sports raw tracking CSV (one file per team).
//! - [`epts`]: Metrica EPTS (`tracking.txt` + `metadata.xml`).
//! - [`statsports`]: STATSports GPS export CSV (lat/lon, device speed, heart rate).
//! - [`mapped`]: any CSV with a column mapping (seconds, ISO-8601 or Excel times; x/y or lat/lon).
//! - [`time`]: timestamp parsing shared by the readers.
//! - [`open`]: gzip-transparent input.

pub mod epts;
pub mod mapped;
pub mod metrica;
pub mod open;
pub mod statsports;
pub mod time;
pub mod zxy;

use std::collections::BTreeMap;

use sideline_engine::Sample;

/// One player's samples, sorted by event time.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Player id (as the source names it, made unique within the file).
    pub player: String,
    /// Team id.
    pub team: String,
    /// Samples in time order.
    pub samples: Vec<Sample>,
}

/// What was read and what was skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: u64,
    /// Samples produced.
    pub samples: u64,
    /// Values absent by design (e.g. NaN for a player not on the pitch): not errors.
    pub absent: u64,
    /// Rows or values skipped, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Rows used under an assumption worth knowing about, by reason.
    pub warnings: BTreeMap<&'static str, u64>,
    /// The first few problems, with line numbers.
    pub examples: Vec<String>,
}

impl ImportReport {
    const MAX_EXAMPLES: usize = 10;

    /// Count a skipped row or value.
    pub fn skip(&mut self, reason: &'static str, line: u64, detail: impl std::fmt::Display) {
        *self.skipped.entry(reason).or_default() += 1;
        if self.examples.len() < Self::MAX_EXAMPLES {
            self.examples
                .push(format!("line {line}: {reason}: {detail}"));
        }
    }

    /// Total skipped.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Fold another report into this one.
    pub fn merge(&mut self, other: ImportReport) {
        self.rows += other.rows;
        self.samples += other.samples;
        self.absent += other.absent;
        for (k, v) in other.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
        for (k, v) in other.warnings {
            *self.warnings.entry(k).or_default() += v;
        }
        for e in other.examples {
            if self.examples.len() < Self::MAX_EXAMPLES {
                self.examples.push(e);
            }
        }
    }
}

/// A whole file (or file pair) read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// Session id.
    pub session: String,
    /// Tracks, in order of first appearance.
    pub tracks: Vec<Track>,
    /// What was read and skipped.
    pub report: ImportReport,
}

impl Dataset {
    /// Append another dataset's tracks (e.g. the away file after the home file).
    pub fn merge(&mut self, other: Dataset) {
        if self.session.is_empty() {
            self.session = other.session;
        }
        self.tracks.extend(other.tracks);
        self.report.merge(other.report);
    }

    /// Sort every track by time (stable, so equal times keep file order) and count samples.
    fn finish(mut self) -> Self {
        for t in &mut self.tracks {
            t.samples.sort_by_key(|s| s.t);
        }
        self.report.samples = self.tracks.iter().map(|t| t.samples.len() as u64).sum();
        self
    }
}

/// An import that cannot proceed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the input failed.
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV layer failed (e.g. invalid UTF-8).
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The file is not in the expected format.
    #[error("{0}")]
    Format(String),
}

/// Collect samples into per-player tracks, keeping first-appearance order.
#[derive(Debug, Default)]
struct Tracks {
    index: std::collections::HashMap<String, usize>,
    tracks: Vec<Track>,
}

impl Tracks {
    fn push(&mut self, player: &str, team: &str, s: Sample) {
        let i = match self.index.get(player) {
            Some(&i) => i,
            None => {
                self.tracks.push(Track {
                    player: player.to_string(),
                    team: team.to_string(),
                    samples: Vec::new(),
                });
                self.index.insert(player.to_string(), self.tracks.len() - 1);
                self.tracks.len() - 1
            }
        };
        self.tracks[i].samples.push(s);
    }

    /// Make sure a player appears even with no samples (e.g. an unused substitute).
    fn declare(&mut self, player: &str, team: &str) {
        if !self.index.contains_key(player) {
            self.tracks.push(Track {
                player: player.to_string(),
                team: team.to_string(),
                samples: Vec::new(),
            });
            self.index.insert(player.to_string(), self.tracks.len() - 1);
        }
    }
}

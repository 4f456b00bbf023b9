//! # sideline-engine
//!
//! The pure sports-science engine of Sideline. Wearable samples go in through
//! [`Engine::ingest_batch`] / [`PlayerEngine::ingest`]; time moves on through `tick(now)`; out
//! come one [`PlayerMetrics`] per player per second of event time: distances and speed bands,
//! sprint and high-speed efforts, max-velocity exposures, accelerations and decelerations,
//! HMLD, accelerometer load, heart-rate zones and TRIMP, rolling windows with session peaks,
//! fatigue markers, and the strain-risk attention score with its terms and a forecast.
//!
//! There is no I/O, no async and no clock here: every service and every mode (live, replay,
//! demo, reprocessing, `sideline analyze`) runs this same code, so their numbers agree.
//! Every threshold lives in the versioned [`Params`]; every output carries its version tag.
//!
//! # Layout
//!
//! - [`sample`]: input types (positions, accelerometer, heart rate; device batches).
//! - [`params`]: the parameter set, defaults with their sources, validation, version tag.
//! - [`profile`]: athlete profile and load-history baseline (inputs to the score);
//!   [`history`]: daily loads → 7-day sums, z-scores, EWMA/ACWR, monotony, the baseline.
//! - [`reorder`]: per-stream event-time reordering with bounded buffers.
//! - [`jump`]: a sample far ahead of the player's clock is held until later batches confirm
//!   the jump (accepted) or refute it (refused as `time_jump`).
//! - [`geo`]: latitude/longitude onto a local metric plane.
//! - [`speed`]: speed filtering, artefact rejection, acceleration; [`zero_phase`]: the
//!   post-session forward-backward filter `sideline reprocess` uses instead.
//! - [`effort`]: effort detection (sprints, high-speed efforts, accelerations).
//! - [`imu`]: accelerometer load on a 100 Hz grid.
//! - [`hr`]: heart-rate zones and TRIMP.
//! - [`window`]: per-second buckets and rolling windows (incremental and naive).
//! - [`fatigue`]: post-peak decrement, block declines, neuromuscular markers.
//! - [`risk`]: the strain-risk attention score; [`forecast`]: minutes to the next band;
//!   [`evidence`]: the source, effect, outcome and horizon behind each term.
//! - [`alerts`]: alert rules (pending, hysteresis, cooldown, stable ids); [`team`]: whether
//!   teammates were streaming, independent of arrival order (device alerts).
//! - [`dedup`]: duplicate deliveries by (device, sequence number).
//! - [`player`]: one player's engine; [`squad`]: routing, de-duplication, many players.
//! - [`output`]: the per-second snapshot, and [`Outputs`] (snapshots with the alert events
//!   raised on them).

pub mod alerts;
pub mod dedup;
pub mod effort;
pub mod evidence;
pub mod fatigue;
pub mod forecast;
pub mod geo;
pub mod history;
pub mod hr;
pub mod imu;
pub mod jump;
pub mod output;
pub mod params;
pub mod player;
pub mod profile;
pub mod reorder;
pub mod risk;
pub mod sample;
pub mod speed;
pub mod squad;
pub mod stationary;
pub mod team;
pub mod window;
pub mod zero_phase;

pub use alerts::{AlertEvent, AlertKind, Lifecycle, Severity};
pub use output::{Outputs, PlayerMetrics, Signal, Totals, WindowValues};
pub use params::Params;
pub use player::PlayerEngine;
pub use profile::{AthleteProfile, Baseline};
pub use sample::{Batch, Micros, Reading, Sample, Stream};
pub use squad::{BatchOutcome, Counters, Engine};
pub use window::{IncrementalWindows, NaiveWindows, WindowStore};

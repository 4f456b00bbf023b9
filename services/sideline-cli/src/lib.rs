//! # sideline-cli
//!
//! The commands behind the `sideline` binary, as a library so that end-to-end tests run exactly
//! what users run. `main.rs` only parses arguments and reports errors.
//!
//! # Layout
//!
//! - [`demo`]: `sideline demo`, the whole pipeline in one process with the simulator.
//! - [`analyze`]: `sideline analyze` — recorded files through the engine, per-player figures.
//! - [`input`]: opening files (gzip, progress bars).
//! - [`services`]: `sideline ingest`, `process`, `alert` and `archive` (configuration,
//!   logging, admin listener, signals).
//! - [`sql_cmd`]: `sideline sql`, DataFusion over the archive.
//! - [`baselines_cmd`]: `sideline baselines`, daily loads, trends and the published baselines.
//! - [`history_cmd`]: `sideline history`, weeks of synthetic sessions into the archive.
//! - [`report_cmd`]: `sideline report`, session and trend reports (CSV, HTML).
//! - [`reprocess_cmd`]: `sideline reprocess`, an archived session re-run and compared.
//! - [`simulate`]: `sideline simulate`, the synthetic match over MQTT.
//! - [`replay`]: `sideline replay`, recorded tracking files over MQTT.
//! - [`publish`]: what both share: broker options, a QoS 1 publisher, pacing.
//! - [`roster_cmd`]: `sideline roster publish`.
//!
//! The archive commands (`sql_cmd`, `baselines_cmd`, `history_cmd`, `report_cmd`,
//! `reprocess_cmd` and `sideline archive`) are behind the default feature `archive`, which
//! brings DataFusion; `make demo` builds without it.

pub mod analyze;
#[cfg(feature = "archive")]
pub mod baselines_cmd;
pub mod demo;
#[cfg(feature = "archive")]
pub mod history_cmd;
pub mod input;
pub mod publish;
pub mod replay;
pub mod replay_as;
#[cfg(feature = "archive")]
pub mod report_cmd;
#[cfg(feature = "archive")]
pub mod reprocess_cmd;
pub mod roster_cmd;
pub mod services;
pub mod simulate;
#[cfg(feature = "archive")]
pub mod sql_cmd;

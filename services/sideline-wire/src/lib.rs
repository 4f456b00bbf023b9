//! # sideline-wire
//!
//! The wire contracts of Sideline (`proto/sideline/v1/`): protobuf messages generated at build
//! time with prost + protox (no system `protoc`), the JSON form of `SampleBatch` accepted on
//! MQTT from devices and scripts that cannot speak protobuf, validation that names the field
//! and the reason for every problem, and conversions between the wire and the engine's types.
//!
//! # Layout
//!
//! - [`pb`]: the generated protobuf types (`sideline.v1`).
//! - [`json`]: the JSON form of `SampleBatch` (documented field by field).
//! - [`validate`]: decoding and validation: payload → engine `Batch`, or precise errors.
//! - [`convert`]: engine outputs and profiles ↔ protobuf.
//! - [`dlq`]: the dead-letter topic's header names.
//! - [`roster`]: device → player assignments and athlete profiles (file and topic forms).
//! - [`lineup`]: who came on or went off the pitch, and when (on the roster topic).
//! - [`schedule`]: which session a team's data belongs to (the schedule, else the session day).
//! - [`topic`]: MQTT topics and payload encodings for publishers.
//! - [`adapter`]: vendors' live formats (RTLOC, Sewio, a league's tracking feed, Bluetooth heart
//!   rate) declared as shapes and decoded into `SampleBatch`es.
//! - [`reuse`]: decoding a stream of `PlayerMetrics` into one reused message (no allocation per
//!   record once warm).

pub mod adapter;
pub mod convert;
pub mod dlq;
pub mod json;
pub mod lineup;
pub mod reuse;
pub mod roster;
pub mod schedule;
pub mod topic;
pub mod validate;

/// Generated protobuf types, package `sideline.v1`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/sideline.v1.rs"));
}

pub use validate::{DecodeError, ErrorKind, Limits, ValidationError, decode_batch};

//! Ingest against real brokers, one module per subject, in one test binary (one compile and
//! link of the service instead of four: BENCHMARKS.md "Test suite").

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod delivery;
mod faults;
mod roster;
mod security;
mod sources;

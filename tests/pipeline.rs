//! The whole pipeline on real brokers, as separate processes (the harness: `e2e/mod.rs`):
//! undisturbed runs (`e2e_pipeline`) and the fault suite (`e2e_faults`), in one test binary
//! (one compile and link instead of two: BENCHMARKS.md "Test suite").

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e;

mod e2e_adapters;
mod e2e_faults;
mod e2e_pipeline;

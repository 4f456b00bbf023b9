//! sideline-cli's integration tests, one module per subject, in one test binary: the CLI
//! crate is optimised even in dev builds (the engine's generic code is generated where it is
//! used), so each test binary costs a long compile and link; one binary instead of ten saved
//! minutes of every fresh build (BENCHMARKS.md "Test suite").

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../sideline-processor/tests/common/mod.rs"]
mod common;

mod alert_service;
mod archive_service;
mod bench_page;
mod bench_service;
mod dashboards;
mod demo;
mod deploy_files;
mod history_baselines;
mod pg_server;
mod processor_faults;
mod publisher;
mod replay_cmd;

//! # sideline-testkit
//!
//! Real brokers for tests, never stand-ins: Mosquitto (Debian package) and tansu (a
//! Kafka-protocol broker, with `sqlite://` storage so that restarts keep data and committed
//! offsets), each started on a free loopback port in its own temporary directory, with stop,
//! kill and restart for fault-injection tests, and killed when dropped. `make setup` installs
//! both; a missing binary fails the test with that instruction (never a silent skip).
//!
//! # Layout
//!
//! - [`brokers`]: [`Mosquitto`] and [`Tansu`].
//! - [`kafka`]: creating topics and reading topics back.
//! - [`browser`]: headless Chromium (a page's DOM, screenshots).
//! - [`cdp`]: a page driven over the DevTools protocol (click, then read what it shows).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a harness: failing loudly is its job

pub mod brokers;
pub mod browser;
pub mod cdp;
pub mod kafka;

pub use brokers::{Mosquitto, S3, Tansu, TestCerts, free_port, password_file, test_certs};

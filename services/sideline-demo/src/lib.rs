//! # sideline-demo
//!
//! `sideline demo`: the whole pipeline in one process with no external service, for a laptop
//! at the bench or an evaluation. Pods (the simulator, real devices, scripts) publish to an
//! embedded MQTT broker; ingest's pump puts their batches on the in-process
//! [`sideline_bus::MemoryBus`] instead of Kafka; the same engine turns them into metrics and
//! alerts.
//!
//! # Layout
//!
//! - [`broker`]: the embedded MQTT broker (rumqttd), kept in this crate because of its
//!   dependencies.

pub mod broker;

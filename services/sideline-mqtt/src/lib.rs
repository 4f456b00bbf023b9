//! # sideline-mqtt
//!
//! MQTT as Sideline's services use it, on rumqttc: settings from configuration (host, port,
//! protocol 3.1.1 or 5, TLS, username/password, persistent session), one message type for
//! both protocol versions, and an event loop run in its own task that reconnects with
//! exponential back-off (rumqttc itself would retry at once, in a tight loop) and subscribes
//! again on every ConnAck (a broker that lost the session would otherwise leave us subscribed
//! to nothing).
//!
//! # Layout
//!
//! - [`config`]: `[mqtt]` settings.
//! - [`client`]: connecting; the `Client` / `Message` types over v3.1.1 and v5.
//! - [`event_loop`]: the polling task.
//! - [`backlog`]: where it keeps messages the consumer has no room for, in order.
//! - [`spool`]: where the polling task keeps a backlog beyond memory.

pub mod backlog;
pub mod client;
pub mod config;
pub mod event_loop;
pub mod spool;

pub use backlog::{Backlog, message_bytes};
pub use client::{AckHandle, Client, Event, EventLoop, Message, MqttError, connect};
pub use config::{MqttConfig, Protocol};
pub use event_loop::{ConnectionStatus, run_event_loop};
pub use rumqttc::QoS;
pub use spool::Spool;

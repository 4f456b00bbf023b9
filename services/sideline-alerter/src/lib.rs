//! # sideline-alerter
//!
//! Team-chat alerts staff can trust: alert lifecycle events from `sideline.alerts.v1` are
//! routed by team, kind and severity, grouped per team, turned into Slack, Microsoft Teams,
//! Discord or generic-webhook messages, and delivered through a durable outbox that honours
//! each service's rate limits and never sends one notification twice.
//!
//! # Layout
//!
//! - [`ack`]: signed, expiring acknowledge links.
//! - [`acks_in`]: acknowledgements read from the acks topic (the bench's).
//! - [`ack_page`]: the link's pages: GET confirms (changes nothing), POST acknowledges with
//!   the person's name.
//! - [`item`]: an alert event as the alerter sees it (decoded from the wire) and its words.
//! - [`policy`]: routes and timing (group wait, repeat, digest, escalation).
//! - [`router`]: the pure state machine from events to messages (`offer`, `ack`, `tick`).
//! - [`render`]: Slack, Teams, Discord and webhook bodies within each service's limits.
//! - [`outbox`]: the durable per-destination queue and idempotency ledger.
//! - [`delivery`]: one task per destination: token bucket, 429, backoff, give-up.
//! - [`metrics`]: every metric.
//! - [`alerter`]: the core shared by the service and the demo (router state saved, outbox,
//!   delivery tasks, acks).
//! - [`config`], [`service`]: `sideline alert` on Kafka with its HTTP server.
//! - [`budget`]: how many messages a match produces and how early the warnings come.

pub mod ack;
pub mod ack_page;
pub mod acks_in;
pub mod alerter;
pub mod budget;
pub mod config;
pub mod delivery;
pub mod item;
pub mod metrics;
pub mod outbox;
pub mod policy;
pub mod render;
pub mod router;
pub mod service;

pub use item::{BadAlert, Item, Severity, State};
pub use policy::{Policy, Route, SendResolved, Timing};
pub use router::{Change, Entry, Message, Router};

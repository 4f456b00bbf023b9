//! The embedded MQTT broker: rumqttd, MQTT 3.1.1 and 5 on loopback ports.
//!
//! rumqttd's `Broker::start` blocks and has no shutdown, so it runs on its own thread for the
//! life of the process; it cannot report an ephemeral port, so the caller picks free ports.
//! Limits: 10,000 connections, 1 MiB payloads, 1,000 unacknowledged messages per connection;
//! messages live in memory only.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Why the broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The generated configuration was refused (a bug).
    #[error("embedded broker configuration: {0}")]
    Config(String),
    /// Nothing listens on the port after the wait (port taken, or the broker failed).
    #[error("embedded broker not listening on {0} after {1:?}")]
    NotListening(SocketAddr, Duration),
}

/// A running embedded broker.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedBroker {
    /// MQTT 3.1.1 listener.
    pub v4: SocketAddr,
    /// MQTT 5 listener.
    pub v5: SocketAddr,
}

fn settings(name: &str, listen: SocketAddr) -> String {
    format!(
        "[{name}.1]\nname = \"{name}-1\"\nlisten = \"{listen}\"\nnext_connection_delay_ms = 1\n\
         [{name}.1.connections]\nconnection_timeout_ms = 60000\nmax_payload_size = 1048576\n\
         max_inflight_count = 1000\ndynamic_filters = true\n"
    )
}

impl EmbeddedBroker {
    /// Start listening on `v4` (MQTT 3.1.1) and `v5` (MQTT 5); returns once both accept.
    pub fn start(v4: SocketAddr, v5: SocketAddr) -> Result<Self, BrokerError> {
        let text = format!(
            "id = 0\n[router]\nid = 0\nmax_connections = 10000\nmax_outgoing_packet_count = 1000\n\
             max_segment_size = 104857600\nmax_segment_count = 10\n{}{}",
            settings("v4", v4),
            settings("v5", v5)
        );
        let config: rumqttd::Config =
            toml::from_str(&text).map_err(|e| BrokerError::Config(e.to_string()))?;
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                if let Err(error) = broker.start() {
                    tracing::error!(message = "Embedded MQTT broker stopped.", %error);
                }
            })
            .map_err(|e| BrokerError::Config(e.to_string()))?;
        let wait = Duration::from_secs(10);
        for addr in [v4, v5] {
            let t0 = Instant::now();
            while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if t0.elapsed() > wait {
                    return Err(BrokerError::NotListening(addr, wait));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(EmbeddedBroker { v4, v5 })
    }
}

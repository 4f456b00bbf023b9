//! Connecting to a broker, and one `Client` / `EventLoop` / `Message` for MQTT 3.1.1 and 5.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::{QoS, TlsConfiguration, Transport};

use crate::config::{MqttConfig, Protocol};

/// MQTT failures.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// Settings that cannot work (unreadable files, bad certificates).
    #[error("mqtt settings: {0}")]
    Settings(String),
    /// The connection failed or dropped (retryable: the event loop reconnects).
    #[error("mqtt connection: {0}")]
    Connection(String),
    /// A request could not be queued (the client is shutting down).
    #[error("mqtt client: {0}")]
    Client(String),
    /// The broker closed the connection because another client connected with the same
    /// client id (MQTT 5 DISCONNECT reason 0x8E, Session taken over). Retryable, but two
    /// instances sharing an id take the session from each other for as long as both run.
    #[error("mqtt session taken over: another client connected with the same client id")]
    SessionTakenOver,
    /// The broker closed the connection without a word (what Mosquitto 2.0 and any 3.1.1
    /// broker do to a client whose id another client has just taken; also a broker going
    /// down). Retryable.
    #[error("mqtt connection: closed by the broker")]
    ClosedByBroker,
}

impl MqttError {
    /// Whether this is [`MqttError::SessionTakenOver`].
    pub fn is_session_taken_over(&self) -> bool {
        matches!(self, MqttError::SessionTakenOver)
    }

    /// Whether this is [`MqttError::ClosedByBroker`].
    pub fn is_closed_by_broker(&self) -> bool {
        matches!(self, MqttError::ClosedByBroker)
    }
}

/// A v5 event-loop error, with a session take-over told apart.
fn v5_connection_err(e: rumqttc::v5::ConnectionError) -> MqttError {
    use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;
    use rumqttc::v5::{ConnectionError, StateError};
    match e {
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            ..
        }) => MqttError::SessionTakenOver,
        ConnectionError::MqttState(StateError::ConnectionAborted) => MqttError::ClosedByBroker,
        e => MqttError::Connection(e.to_string()),
    }
}

/// A 3.1.1 event-loop error, with a close by the broker told apart.
fn v4_connection_err(e: rumqttc::ConnectionError) -> MqttError {
    match e {
        rumqttc::ConnectionError::MqttState(rumqttc::StateError::ConnectionAborted) => {
            MqttError::ClosedByBroker
        }
        e => MqttError::Connection(e.to_string()),
    }
}

/// Sending side, cheap to clone.
#[derive(Debug, Clone)]
pub enum Client {
    /// MQTT 3.1.1.
    V4(rumqttc::AsyncClient),
    /// MQTT 5.
    V5(rumqttc::v5::AsyncClient),
}

/// Receiving side; poll it from one task only.
pub enum EventLoop {
    /// MQTT 3.1.1.
    V4(Box<rumqttc::EventLoop>),
    /// MQTT 5.
    V5(Box<rumqttc::v5::EventLoop>),
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EventLoop::V4(_) => "EventLoop::V4",
            EventLoop::V5(_) => "EventLoop::V5",
        })
    }
}

/// What the caller needs to acknowledge a QoS 1 message (with manual acks).
#[derive(Debug, Clone)]
pub enum AckHandle {
    /// MQTT 3.1.1 publish.
    V4(rumqttc::Publish),
    /// MQTT 5 publish.
    V5(rumqttc::v5::mqttbytes::v5::Publish),
}

/// An application message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// Delivered at QoS 1 or 2 (needs an acknowledgement).
    pub needs_ack: bool,
    /// A redelivery (DUP flag).
    pub duplicate: bool,
    /// For [`Client::ack`].
    pub ack: AckHandle,
    /// The connection that delivered it (the ConnAck count, set by the polling task; see
    /// [`crate::ConnectionStatus::may_ack`]).
    pub connection: u64,
}

/// What polling produced.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // short-lived: a message moves straight on to a channel
pub enum Event {
    /// A ConnAck: (re)connected; `session_present` says whether the broker kept our session.
    Connected {
        /// The broker resumed the previous session.
        session_present: bool,
    },
    /// An application message.
    Message(Message),
    /// The broker acknowledged one of our QoS 1 publishes.
    PubAck,
    /// The broker answered one of our subscriptions: `refused` lists the reasons of the
    /// filters it did not grant (empty when all were granted).
    SubAck {
        /// The broker's reason for each refused filter.
        refused: Vec<String>,
    },
    /// Anything else (acks, pings).
    Other,
}

fn tls_connector(cfg: &MqttConfig) -> Result<Option<TlsConfiguration>, MqttError> {
    let Some(t) = &cfg.tls else { return Ok(None) };
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| MqttError::Settings(format!("{}: {e}", p.display())))
    };
    let mut b = native_tls::TlsConnector::builder();
    if let Some(ca) = &t.ca_file {
        let cert = native_tls::Certificate::from_pem(&read(ca)?)
            .map_err(|e| MqttError::Settings(format!("CA {}: {e}", ca.display())))?;
        b.add_root_certificate(cert);
    }
    if let (Some(c), Some(k)) = (&t.client_cert_file, &t.client_key_file) {
        let id = native_tls::Identity::from_pkcs8(&read(c)?, &read(k)?)
            .map_err(|e| MqttError::Settings(format!("client certificate: {e}")))?;
        b.identity(id);
    }
    if t.insecure_skip_verify {
        tracing::warn!(
            message = "MQTT TLS certificate verification is OFF (mqtt.tls.insecure_skip_verify)."
        );
        b.danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    let connector = b
        .build()
        .map_err(|e| MqttError::Settings(format!("TLS: {e}")))?;
    Ok(Some(TlsConfiguration::NativeConnector(connector)))
}

fn password(cfg: &MqttConfig) -> Result<Option<String>, MqttError> {
    match (&cfg.password, &cfg.password_file) {
        (Some(p), _) => Ok(Some(p.clone())),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|e| MqttError::Settings(format!("mqtt.password_file {}: {e}", f.display()))),
        (None, None) => Ok(None),
    }
}

/// Options for a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// Acknowledge QoS 1 messages only when [`Client::ack`] is called.
    pub manual_acks: bool,
    /// Capacity of the request channel (publishes, acks, subscribes waiting to be sent).
    pub request_capacity: usize,
    /// MQTT 5: how many unacknowledged QoS 1/2 messages the broker may send us at once.
    pub receive_maximum: Option<u16>,
}

/// Build a client and its event loop (nothing connects until the loop is polled).
pub fn connect(
    cfg: &MqttConfig,
    client_id: &str,
    o: ConnectOptions,
) -> Result<(Client, EventLoop), MqttError> {
    let tls = tls_connector(cfg)?;
    let pw = password(cfg)?;
    let keep_alive = Duration::from_secs(cfg.keep_alive_s);
    match cfg.protocol {
        Protocol::V311 => {
            let mut m = rumqttc::MqttOptions::new(client_id, &cfg.host, cfg.port);
            m.set_keep_alive(keep_alive)
                .set_clean_session(cfg.clean_session)
                .set_manual_acks(o.manual_acks)
                .set_max_packet_size(cfg.max_packet_bytes, cfg.max_packet_bytes)
                .set_request_channel_capacity(o.request_capacity);
            if let Some(u) = &cfg.username {
                m.set_credentials(u, pw.clone().unwrap_or_default());
            }
            if let Some(t) = tls {
                m.set_transport(Transport::Tls(t));
            }
            let (c, e) = rumqttc::AsyncClient::new(m, o.request_capacity);
            Ok((Client::V4(c), EventLoop::V4(Box::new(e))))
        }
        Protocol::V5 => {
            let mut m = rumqttc::v5::MqttOptions::new(client_id, &cfg.host, cfg.port);
            m.set_keep_alive(keep_alive)
                .set_clean_start(cfg.clean_session)
                .set_manual_acks(o.manual_acks)
                .set_max_packet_size(Some(cfg.max_packet_bytes as u32))
                .set_request_channel_capacity(o.request_capacity)
                .set_session_expiry_interval(if cfg.clean_session {
                    None
                } else {
                    Some(cfg.session_expiry_s)
                })
                .set_receive_maximum(o.receive_maximum);
            if let Some(u) = &cfg.username {
                m.set_credentials(u, pw.unwrap_or_default());
            }
            if let Some(t) = tls {
                m.set_transport(Transport::Tls(t));
            }
            let (c, e) = rumqttc::v5::AsyncClient::new(m, o.request_capacity);
            Ok((Client::V5(c), EventLoop::V5(Box::new(e))))
        }
    }
}

fn client_err(e: impl std::fmt::Display) -> MqttError {
    MqttError::Client(e.to_string())
}

/// The same QoS in the v5 module's type.
fn v5_qos(q: QoS) -> rumqttc::v5::mqttbytes::QoS {
    match q {
        QoS::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}

impl Client {
    /// Acknowledge a message (no-op for QoS 0).
    pub async fn ack(&self, h: &AckHandle) -> Result<(), MqttError> {
        match (self, h) {
            (Client::V4(c), AckHandle::V4(p)) => c.ack(p).await.map_err(client_err),
            (Client::V5(c), AckHandle::V5(p)) => c.ack(p).await.map_err(client_err),
            _ => Err(MqttError::Client(
                "ack handle from another protocol version".into(),
            )),
        }
    }

    /// Queue an acknowledgement without waiting; `false` if the request channel is full (try
    /// again later, in order).
    pub fn try_ack(&self, h: &AckHandle) -> bool {
        match (self, h) {
            (Client::V4(c), AckHandle::V4(p)) => c.try_ack(p).is_ok(),
            (Client::V5(c), AckHandle::V5(p)) => c.try_ack(p).is_ok(),
            _ => true, // impossible pairing: nothing to retry
        }
    }

    /// Queue a subscription without waiting (safe to call from the polling task).
    pub fn try_subscribe(&self, filter: &str, qos: QoS) -> Result<(), MqttError> {
        match self {
            Client::V4(c) => c.try_subscribe(filter, qos).map_err(client_err),
            Client::V5(c) => c.try_subscribe(filter, v5_qos(qos)).map_err(client_err),
        }
    }

    /// Unsubscribe.
    pub async fn unsubscribe(&self, filter: &str) -> Result<(), MqttError> {
        match self {
            Client::V4(c) => c.unsubscribe(filter).await.map_err(client_err),
            Client::V5(c) => c.unsubscribe(filter).await.map_err(client_err),
        }
    }

    /// Publish (waits only for room in the request channel, not for the broker).
    pub async fn publish(&self, topic: &str, qos: QoS, payload: Bytes) -> Result<(), MqttError> {
        match self {
            Client::V4(c) => c
                .publish(topic, qos, false, payload.to_vec())
                .await
                .map_err(client_err),
            Client::V5(c) => c
                .publish(topic, v5_qos(qos), false, payload)
                .await
                .map_err(client_err),
        }
    }

    /// Disconnect cleanly.
    pub async fn disconnect(&self) -> Result<(), MqttError> {
        match self {
            Client::V4(c) => c.disconnect().await.map_err(client_err),
            Client::V5(c) => c.disconnect().await.map_err(client_err),
        }
    }
}

impl EventLoop {
    /// Poll once: drives the connection (connects, reconnects, sends queued requests).
    pub async fn poll(&mut self) -> Result<Event, MqttError> {
        match self {
            EventLoop::V4(e) => {
                use rumqttc::{Event as E, Packet as P};
                match e.poll().await.map_err(v4_connection_err)? {
                    E::Incoming(P::ConnAck(a)) => Ok(Event::Connected {
                        session_present: a.session_present,
                    }),
                    E::Incoming(P::Publish(p)) => Ok(Event::Message(Message {
                        topic: p.topic.clone(),
                        payload: p.payload.clone(),
                        needs_ack: p.qos != QoS::AtMostOnce,
                        duplicate: p.dup,
                        ack: AckHandle::V4(p),
                        connection: 0,
                    })),
                    E::Incoming(P::PubAck(_)) => Ok(Event::PubAck),
                    E::Incoming(P::SubAck(a)) => Ok(Event::SubAck {
                        refused: a
                            .return_codes
                            .iter()
                            .filter(|c| !matches!(c, rumqttc::SubscribeReasonCode::Success(_)))
                            .map(|c| format!("{c:?}"))
                            .collect(),
                    }),
                    _ => Ok(Event::Other),
                }
            }
            EventLoop::V5(e) => {
                use rumqttc::v5::Event as E;
                use rumqttc::v5::mqttbytes::v5::Packet as P;
                match e.poll().await.map_err(v5_connection_err)? {
                    E::Incoming(P::ConnAck(a)) => Ok(Event::Connected {
                        session_present: a.session_present,
                    }),
                    E::Incoming(P::Publish(p)) => Ok(Event::Message(Message {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload.clone(),
                        needs_ack: p.qos != rumqttc::v5::mqttbytes::QoS::AtMostOnce,
                        duplicate: p.dup,
                        ack: AckHandle::V5(p),
                        connection: 0,
                    })),
                    E::Incoming(P::PubAck(_)) => Ok(Event::PubAck),
                    E::Incoming(P::SubAck(a)) => Ok(Event::SubAck {
                        refused: a
                            .return_codes
                            .iter()
                            .filter(|c| {
                                !matches!(
                                    c,
                                    rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                                )
                            })
                            .map(|c| format!("{c:?}"))
                            .collect(),
                    }),
                    _ => Ok(Event::Other),
                }
            }
        }
    }
}

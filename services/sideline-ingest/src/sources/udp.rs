//! UDP sources: one message per datagram (Sewio's UDP stream, gateways that send datagrams).
//! Datagrams are handled one at a time; what arrives meanwhile waits in the socket's receive
//! buffer, and what overflows it is lost by the OS (UDP has no back-pressure and no
//! redelivery: use MQTT or a WebSocket where loss matters).

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::Source;
use crate::pipeline::Pipeline;

/// Bind `src`'s address now (so that a taken port fails start-up).
pub fn bind(src: &Source) -> std::io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(&src.cfg.udp_listen)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

/// Read datagrams until `stop`.
pub async fn run(src: Arc<Source>, sock: UdpSocket, pipeline: Pipeline, stop: CancellationToken) {
    let label = format!("udp:{}", src.name);
    let mut buf = vec![0u8; 65_536];
    tracing::info!(message = "UDP source listening.", source = %src.name, addr = %src.cfg.udp_listen);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, _)) => {
                    pipeline.handle_source(&src, &label, &buf[..n], None).await;
                }
                Err(error) => {
                    tracing::warn!(message = "UDP receive failed.", source = %src.name, %error);
                }
            }
        }
    }
}

//! The admin HTTP server every service runs: `/healthz` (the process serves), `/readyz`
//! (every component ready, else 503 with which is not), `/metrics` (Prometheus text format
//! from the service's own registry). It takes an already-bound listener and a shutdown token,
//! so tests choose the port and stop it.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::Health;

/// What the admin routes read.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Readiness flags.
    pub health: Health,
    /// The service's metric registry.
    pub registry: Registry,
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<AdminState>) -> Response {
    let body = axum::Json(s.health.snapshot());
    if s.health.ready() {
        (StatusCode::OK, body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn metrics(State(s): State<AdminState>) -> Response {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&s.registry.gather(), &mut buf) {
        Ok(()) => ([("content-type", "text/plain; version=0.0.4")], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The admin routes, to serve alone or merged into a service's own router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serve `app` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        let code = buf[9..12].parse().unwrap();
        (code, buf)
    }

    #[tokio::test]
    async fn readiness_follows_components_and_metrics_render() {
        let health = Health::new(&["mqtt", "kafka"]);
        let registry = Registry::new();
        let c = prometheus::IntCounter::new("sideline_test_things_total", "Things.").unwrap();
        registry.register(Box::new(c.clone())).unwrap();
        c.inc_by(3);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let app = router(AdminState {
            health: health.clone(),
            registry,
        });
        let server = tokio::spawn(serve(listener, app, stop.clone()));
        assert_eq!(get(addr, "/healthz").await.0, 200);
        let (code, body) = get(addr, "/readyz").await;
        assert_eq!(code, 503);
        assert!(body.contains("\"kafka\":false"), "{body}");
        health.set("mqtt", true);
        health.set("kafka", true);
        assert_eq!(get(addr, "/readyz").await.0, 200);
        let (_, body) = get(addr, "/metrics").await;
        assert!(body.contains("sideline_test_things_total 3"), "{body}");
        stop.cancel();
        server.await.unwrap().unwrap();
    }
}

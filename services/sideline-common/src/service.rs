//! The frame every service runs in, written once: its metric registry, its readiness flags,
//! and its admin server (the admin routes merged with the service's own) on an already-bound
//! listener, stopped after the service's work has ended.
//!
//! ```text
//! let svc = Service::new(&["kafka"]);
//! let metrics = MyMetrics::new(&svc.registry)?;
//! let server = svc.serve(listener, my_routes);
//! let result = work(&svc.health, &shutdown).await;
//! server.stop().await;
//! ```

use axum::Router;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::health::Health;

/// A service's registry, readiness and admin-server stop token.
#[derive(Debug, Clone)]
pub struct Service {
    /// Every metric of the service registers here; `/metrics` renders it.
    pub registry: Registry,
    /// Readiness of the service's components (`/readyz`).
    pub health: Health,
    stop: CancellationToken,
}

/// The admin server, serving until [`Running::stop`].
#[derive(Debug)]
pub struct Running {
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Service {
    /// A service whose readiness needs every one of `components`.
    pub fn new(components: &[&'static str]) -> Self {
        Service {
            registry: Registry::new(),
            health: Health::new(components),
            stop: CancellationToken::new(),
        }
    }

    /// Cancelled when the admin server stops (for work that lives as long as the server, such
    /// as a query runtime behind one of its routes).
    pub fn server_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Serve `/healthz`, `/readyz` and `/metrics` on `listener`.
    pub fn serve_admin(&self, listener: TcpListener) -> Running {
        self.serve(listener, Router::new())
    }

    /// Serve `/healthz`, `/readyz`, `/metrics` and `routes` on `listener`.
    pub fn serve(&self, listener: TcpListener, routes: Router) -> Running {
        let app = admin::router(AdminState {
            health: self.health.clone(),
            registry: self.registry.clone(),
        })
        .merge(routes);
        Running {
            stop: self.stop.clone(),
            task: tokio::spawn(admin::serve(listener, app, self.stop.clone())),
        }
    }
}

impl Running {
    /// Stop serving (requests in flight finish) and wait for the server.
    pub async fn stop(self) {
        self.stop.cancel();
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(message = "Admin server failed.", %error),
            Err(error) => tracing::error!(message = "Admin server task failed.", %error),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn status(addr: std::net::SocketAddr, path: &str) -> u16 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        buf[9..12].parse().unwrap()
    }

    #[tokio::test]
    async fn the_admin_routes_and_the_services_own_are_served_until_stopped() {
        let svc = Service::new(&["kafka"]);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let running = svc.serve(
            listener,
            Router::new().route("/own", get(|| async { "mine" })),
        );
        assert_eq!(status(addr, "/own").await, 200);
        assert_eq!(status(addr, "/readyz").await, 503);
        svc.health.set("kafka", true);
        assert_eq!(status(addr, "/readyz").await, 200);
        assert_eq!(status(addr, "/metrics").await, 200);
        let token = svc.server_token();
        running.stop().await;
        assert!(token.is_cancelled());
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}

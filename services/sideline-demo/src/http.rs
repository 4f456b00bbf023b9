//! The demo's HTTP API (next to `/healthz`, `/readyz` and `/metrics`):
//!
//! - `GET /api/squad`: every player's latest snapshot, highest strain-risk score first, with
//!   his open alert ids (`{"updates": n, "players": [...]}`);
//! - `GET /api/players/{id}`: one player's latest snapshot and his history for the session
//!   (one point per second: score, rolling HSR and sprint metres);
//! - `GET /api/alerts`: the alert feed, newest first, with acknowledgements;
//! - `POST /api/alerts/{id}/ack`: acknowledge an alert, body `{"by": "<name>"}` (JSON only:
//!   415 otherwise; 204; 400 for a missing or unusable name; 404 if unknown; 403 when the
//!   request comes from another site's page: its `Origin` is not this server, or
//!   `Sec-Fetch-Site` says cross-site);
//! - `GET /`: the live bench page (this crate's `page.html`, served as is);
//! - `GET /events`: server-sent events — `squad` every second (the squad list and the newest 60
//!   alert feed items), `alert` (one lifecycle event) as it happens; `?max=N` ends the stream
//!   after N `squad` events (the page passes its own `?stream_max=N` on, for snapshots).

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast;

use crate::processor::Update;
use crate::view::SquadView;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The squad.
    pub view: Arc<RwLock<SquadView>>,
    /// Live updates from the processor.
    pub updates: broadcast::Sender<Update>,
}

/// The API routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/squad", get(squad))
        .route("/api/players/{id}", get(player))
        .route("/api/alerts", get(alerts))
        .route("/api/alerts/{id}/ack", post(ack))
        .route("/events", get(events))
        .route("/", get(page))
        .with_state(state)
}

/// The bench page: one self-contained file (no build step, no CDN).
const PAGE: &str = include_str!("page.html");

async fn page() -> axum::response::Html<&'static str> {
    axum::response::Html(PAGE)
}

fn squad_json(view: &RwLock<SquadView>) -> serde_json::Value {
    let v = view.read().unwrap_or_else(|p| p.into_inner());
    json!({ "updates": v.updates, "players": v.squad() })
}

/// The `squad` event: the squad list and the newest 60 feed items.
fn event_json(view: &RwLock<SquadView>) -> serde_json::Value {
    let v = view.read().unwrap_or_else(|p| p.into_inner());
    let feed: Vec<_> = v.alerts().into_iter().take(60).collect();
    json!({ "updates": v.updates, "players": v.squad(), "alerts": feed })
}

async fn squad(State(s): State<ApiState>) -> Json<serde_json::Value> {
    Json(squad_json(&s.view))
}

async fn player(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    let v = s.view.read().unwrap_or_else(|p| p.into_inner());
    match v.player(&id) {
        Some((latest, history)) => {
            Json(json!({ "latest": latest, "history": history })).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no player {id:?}")).into_response(),
    }
}

async fn alerts(State(s): State<ApiState>) -> Json<serde_json::Value> {
    let v = s.view.read().unwrap_or_else(|p| p.into_inner());
    Json(json!(v.alerts()))
}

/// The acknowledge request's body.
#[derive(Debug, serde::Deserialize)]
struct AckBody {
    /// Who acknowledges.
    #[serde(default)]
    by: String,
}

/// Did the request come from a page of another site? Browsers send `Origin` on every POST
/// made by a page (and `Sec-Fetch-Site`); tools such as curl send neither and are let in
/// (the demo listens on loopback).
pub fn cross_site(headers: &HeaderMap) -> bool {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if get("sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site") {
        return true;
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => {
            let o = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            o != Some(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

async fn ack(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<AckBody>, JsonRejection>,
) -> Response {
    if cross_site(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let by = match body {
        Ok(Json(b)) => match sideline_alerter::ack_page::person(&b.by) {
            Ok(by) => by,
            Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
        },
        Err(e) => return e.into_response(),
    };
    let mut v = s.view.write().unwrap_or_else(|p| p.into_inner());
    if v.acknowledge(&id, &by) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// `?max=N`: end the stream after N `squad` events and ask the browser not to reconnect
/// (for page snapshots in tests and kiosks that reload themselves).
#[derive(Debug, serde::Deserialize)]
struct EventsQuery {
    max: Option<u32>,
}

async fn events(
    State(s): State<ApiState>,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = s.updates.subscribe();
    let view = s.view.clone();
    let stream = async_stream(move |tx| async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        let mut sent = 0u32;
        loop {
            if q.max.is_some_and(|m| sent >= m) {
                let end = Event::default()
                    .event("end")
                    .retry(Duration::from_secs(86_400))
                    // (an event with no data is never dispatched by browsers)
                    .data("end");
                let _ = tx.send(Ok(end)).await;
                return;
            }
            let ev = tokio::select! {
                _ = every.tick() => {
                    sent += 1;
                    Event::default().event("squad").json_data(event_json(&view))
                }
                u = rx.recv() => match u {
                    Ok(Update::Alert(a)) => Event::default().event("alert").json_data(&*a),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if let Ok(ev) = ev
                && tx.send(Ok(ev)).await.is_err()
            {
                return;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A stream fed by a task (the task ends when the client goes away).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideline_engine::{AlertEvent, AlertKind, Lifecycle, Severity};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn post(addr: std::net::SocketAddr, path: &str, headers: &str, body: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn acknowledging_on_the_page_needs_a_name_json_and_the_same_origin() {
        let view = Arc::new(RwLock::new(SquadView::default()));
        view.write().unwrap().alert(&AlertEvent {
            id: "a1".into(),
            kind: AlertKind::StrainRisk,
            severity: Severity::Critical,
            state: Lifecycle::Firing,
            resolution: None,
            player: "home-07".into(),
            team: "home".into(),
            session: "s".into(),
            t: 0,
            since: 0,
            value: 7.0,
            threshold: 6.0,
            band: sideline_engine::risk::Band::Red,
            terms: Vec::new(),
            forecast: Default::default(),
            summary: String::new(),
            params_version: "p".into(),
        });
        let (updates, _) = broadcast::channel(4);
        let app = router(ApiState {
            view: view.clone(),
            updates,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let json = "Content-Type: application/json\r\n";
        let path = "/api/alerts/a1/ack";
        let by = r#"{"by":"Dr Lee"}"#;
        // Another site's page (a form, or a fetch) is refused before anything changes.
        for evil in [
            "Origin: http://evil.example\r\n",
            "Sec-Fetch-Site: cross-site\r\n",
        ] {
            let r = post(addr, path, &format!("{json}{evil}"), by).await;
            assert!(r.starts_with("HTTP/1.1 403"), "{evil}: {r}");
        }
        // A simple form post (no preflight) is not JSON.
        let r = post(addr, path, "Content-Type: text/plain\r\n", by).await;
        assert!(r.starts_with("HTTP/1.1 415"), "{r}");
        let r = post(addr, path, json, r#"{"by":"<b>x</b>"}"#).await;
        assert!(r.starts_with("HTTP/1.1 400"), "{r}");
        assert!(!view.read().unwrap().is_acknowledged("a1"));
        // The page itself (same origin), with a name.
        let same = format!("{json}Origin: http://{addr}\r\nSec-Fetch-Site: same-origin\r\n");
        let r = post(addr, path, &same, by).await;
        assert!(r.starts_with("HTTP/1.1 204"), "{r}");
        let feed = view.read().unwrap().alerts();
        assert_eq!(feed[0].acknowledged_by.as_deref(), Some("Dr Lee"));
        let r = post(addr, "/api/alerts/nope/ack", json, by).await;
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    }

    #[test]
    fn cross_site_is_judged_on_origin_and_fetch_metadata() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert!(!cross_site(&h(&[])));
        assert!(!cross_site(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(cross_site(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:9999")
        ])));
        assert!(cross_site(&h(&[("origin", "null"), ("host", "x")])));
        assert!(cross_site(&h(&[("sec-fetch-site", "same-site")])));
    }
}

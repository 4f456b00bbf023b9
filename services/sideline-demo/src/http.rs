//! The demo's HTTP API (next to `/healthz`, `/readyz` and `/metrics`):
//!
//! - `GET /api/squad`: every player's latest snapshot, highest strain-risk score first, with
//!   his open alert ids (`{"updates": n, "players": [...]}`);
//! - `GET /api/players/{id}`: one player's latest snapshot and his history for the session
//!   (one point per second: score, rolling HSR and sprint metres);
//! - `GET /api/alerts`: the alert feed, newest first, with acknowledgements;
//! - `POST /api/alerts/{id}/ack`: acknowledge an alert (204; 404 if unknown);
//! - `GET /`: the live bench page (this crate's `page.html`, served as is);
//! - `GET /events`: server-sent events — `squad` every second (the squad list and the newest 60
//!   alert feed items), `alert` (one lifecycle event) as it happens; `?max=N` ends the stream
//!   after N `squad` events (the page passes its own `?stream_max=N` on, for snapshots).

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
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

async fn ack(State(s): State<ApiState>, Path(id): Path<String>) -> StatusCode {
    let mut v = s.view.write().unwrap_or_else(|p| p.into_inner());
    if v.acknowledge(&id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
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

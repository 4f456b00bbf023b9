//! The bench's HTTP API and page, the same for the demo and the service:
//!
//! - `GET /`: the live page (`page.html`, one self-contained file);
//! - `GET /evidence`: the source, effect, outcome and horizon behind each score term;
//! - `GET /api/config`: the club's time zone, the theme, who is signed in and whether they
//!   may acknowledge;
//! - `GET /api/sessions`: the (team, session) pairs held, newest first, with their data age;
//! - `GET /api/squad?team=&session=`: one session's players (the newest session unless one
//!   is picked), highest score first, with names, open alerts and the forecast in words;
//! - `GET /api/players/{id}?team=&session=`: one player's latest snapshot and history;
//! - `GET /api/alerts?team=&session=`: the session's alert feed, newest first, with
//!   acknowledgements;
//! - `GET /api/summary?team=&session=`: the session's summary per player;
//! - `POST /api/alerts/{id}/ack`: acknowledge (JSON; 204; 404 if unknown; 403 from another
//!   site's page or when this bench lets nobody acknowledge; 400 for an unusable typed name);
//!   the name is the signed-in person's, or in the demo the typed `{"by": "…"}`;
//! - `POST /api/pitch`: a substitution, `{"team", "session", "on": [ids], "off": [ids],
//!   "at_us"}` (`at_us` absent = now, 0 = from the session's start: the substitutes' bench),
//!   signed in only (403 otherwise), written to the roster topic under the signed-in name
//!   (202 with the keys; 503 where this bench cannot post, or while Kafka holds up earlier
//!   ones); the processor counts warm-up and bench time as off the pitch from then on;
//! - `GET /events?team=&session=&max=N`: server-sent events — `squad` every second (the
//!   session's players, its newest 60 feed items, the data age), `alert` as one happens;
//!   `max` ends the stream after N `squad` events (page snapshots in tests, kiosks).
//!
//! With sign-in configured every one of these needs it (401 with a Basic challenge).

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::Stream;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::auth::{Auth, Identity, Who};
use crate::model::AlertItem;
use crate::view::SquadView;

/// What the page is told about this bench.
#[derive(Debug, Clone, Serialize)]
pub struct PageSettings {
    /// IANA time zone the club reads times in (`Europe/London`).
    pub time_zone: String,
    /// `light` (sunlight, tablets) or `dark`.
    pub theme: String,
    /// Shown in the header.
    pub title: String,
}

/// An acknowledgement made on the page, for whoever must hear of it besides the view (the
/// service writes it to the acks topic).
#[derive(Debug, Clone)]
pub struct AckMade {
    /// The alert.
    pub alert: AlertItem,
    /// Who.
    pub by: String,
    /// When, µs since the epoch.
    pub at_us: i64,
}

/// Roster-topic records (key, value) to write, one batch per request.
pub type RecordBatch = Vec<(String, Vec<u8>)>;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The squads.
    pub view: Arc<RwLock<SquadView>>,
    /// Alert events as they come.
    pub alerts: broadcast::Sender<AlertItem>,
    /// Sign-in.
    pub auth: Arc<Auth>,
    /// For the page.
    pub page: PageSettings,
    /// Acknowledgements made on the page, to pass on.
    pub acks: Option<mpsc::Sender<AckMade>>,
    /// Lineup changes posted with `POST /api/pitch`, as roster-topic records to write (none:
    /// this bench cannot post them).
    pub lineup: Option<mpsc::Sender<RecordBatch>>,
    /// Counts requests whose credentials were refused (the service's metric).
    pub refused: Option<prometheus::IntCounter>,
}

/// The routes, each behind the sign-in.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/config", get(config))
        .route("/api/sessions", get(sessions))
        .route("/api/squad", get(squad))
        .route("/api/players/{id}", get(player))
        .route("/api/alerts", get(alerts))
        .route("/api/summary", get(summary))
        .route("/api/alerts/{id}/ack", post(ack))
        .route("/api/pitch", post(pitch))
        .route("/events", get(events))
        .route("/", get(page))
        .route("/evidence", get(evidence))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), sign_in))
        .with_state(state)
}

/// The signed-in person, if any (a request extension).
#[derive(Debug, Clone)]
struct SignedIn(Option<Identity>);

async fn sign_in(State(s): State<ApiState>, mut req: Request, next: Next) -> Response {
    match s.auth.identify(req.headers()) {
        Who::Anyone => {
            req.extensions_mut().insert(SignedIn(None));
            next.run(req).await
        }
        Who::Person(i) => {
            req.extensions_mut().insert(SignedIn(Some(i)));
            next.run(req).await
        }
        Who::Challenge => {
            if req.headers().contains_key(header::AUTHORIZATION)
                && let Some(c) = &s.refused
            {
                c.inc();
            }
            let mut r = (StatusCode::UNAUTHORIZED, "sign in to the bench").into_response();
            if matches!(*s.auth, Auth::Staff { .. }) {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Sideline bench\", charset=\"UTF-8\""),
                );
            }
            r
        }
        Who::SlowDown(wait) => {
            if let Some(c) = &s.refused {
                c.inc();
            }
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many wrong passwords for this login: try again in {secs} s"),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

/// The bench page: one self-contained file (no build step, no CDN).
const PAGE: &str = include_str!("page.html");

async fn page() -> Response {
    let mut r = axum::response::Html(PAGE).into_response();
    // No other site may frame it (a framed page could be tricked into acknowledging).
    r.headers_mut()
        .insert("x-frame-options", HeaderValue::from_static("DENY"));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

/// The evidence behind the score's terms (`sideline_engine::evidence`), as one page.
async fn evidence() -> Response {
    let mut r = axum::response::Html(sideline_engine::evidence::html(Some("./"))).into_response();
    r.headers_mut()
        .insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

/// `?team=&session=` (both optional).
#[derive(Debug, Default, serde::Deserialize)]
struct Pick {
    team: Option<String>,
    session: Option<String>,
}

/// Microseconds since the epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn read(view: &RwLock<SquadView>) -> std::sync::RwLockReadGuard<'_, SquadView> {
    view.read().unwrap_or_else(|p| p.into_inner())
}

async fn config(State(s): State<ApiState>, Extension(who): Extension<SignedIn>) -> Response {
    let can_ack = who.0.is_some() || matches!(*s.auth, Auth::Open { named_acks: true });
    Json(json!({
        "page": s.page,
        "signed_in": who.0.as_ref().map(|i| &i.name),
        "can_acknowledge": can_ack,
        "typed_names": who.0.is_none() && can_ack,
        // Substitutions go on the roster topic under a signed-in name only.
        "can_post_lineup": who.0.is_some() && s.lineup.is_some(),
    }))
    .into_response()
}

async fn sessions(State(s): State<ApiState>) -> Response {
    Json(json!(read(&s.view).sessions(now_us()))).into_response()
}

/// The `squad` body: the picked session's players, its feed's newest `feed` items, its age.
fn squad_json(view: &RwLock<SquadView>, pick: &Pick, feed: usize) -> serde_json::Value {
    let v = read(view);
    let now = now_us();
    match v.pick(pick.team.as_deref(), pick.session.as_deref()) {
        Some(key) => {
            let alerts: Vec<_> = v.alerts(Some(&key)).into_iter().take(feed).collect();
            json!({
                "team": key.0,
                "session": key.1,
                "age_s": v.age_s(&key, now),
                "updates": v.updates,
                "players": v.squad(&key),
                "alerts": alerts,
                "sessions": v.sessions(now),
            })
        }
        None => json!({
            "team": null, "session": null, "age_s": null, "updates": v.updates,
            "players": [], "alerts": [], "sessions": [],
        }),
    }
}

async fn squad(State(s): State<ApiState>, Query(p): Query<Pick>) -> Response {
    Json(squad_json(&s.view, &p, 0)).into_response()
}

async fn player(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(p): Query<Pick>,
) -> Response {
    let v = read(&s.view);
    let found = v
        .pick(p.team.as_deref(), p.session.as_deref())
        .and_then(|key| v.player(&key, &id));
    match found {
        Some((latest, history, person)) => {
            Json(json!({ "latest": latest, "person": person, "history": history })).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no player {id:?}")).into_response(),
    }
}

async fn alerts(State(s): State<ApiState>, Query(p): Query<Pick>) -> Response {
    let v = read(&s.view);
    let key = v.pick(p.team.as_deref(), p.session.as_deref());
    Json(json!(v.alerts(key.as_ref()))).into_response()
}

async fn summary(State(s): State<ApiState>, Query(p): Query<Pick>) -> Response {
    let v = read(&s.view);
    match v.pick(p.team.as_deref(), p.session.as_deref()) {
        Some(key) => Json(json!({
            "team": key.0, "session": key.1, "players": v.summary(&key),
        }))
        .into_response(),
        None => (StatusCode::NOT_FOUND, "no session yet").into_response(),
    }
}

/// The acknowledge request's body.
#[derive(Debug, serde::Deserialize)]
struct AckBody {
    /// Who acknowledges (the demo's typed name; ignored once people sign in).
    #[serde(default)]
    by: String,
}

/// Did the request come from a page of another site? Browsers send `Origin` on every POST
/// made by a page (and `Sec-Fetch-Site`); tools such as curl send neither and are let in.
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
    Extension(who): Extension<SignedIn>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<AckBody>, JsonRejection>,
) -> Response {
    if cross_site(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return e.into_response(),
    };
    let by = match (&who.0, &*s.auth) {
        (Some(i), _) => i.name.clone(),
        (None, Auth::Open { named_acks: true }) => {
            match sideline_alerter::ack_page::person(&body.by) {
                Ok(by) => by,
                Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
            }
        }
        (None, _) => {
            return (
                StatusCode::FORBIDDEN,
                "acknowledging needs staff sign-in (bench.staff_file or bench.identity_header)",
            )
                .into_response();
        }
    };
    let at_us = now_us();
    let made = {
        let mut v = s.view.write().unwrap_or_else(|p| p.into_inner());
        let alert = v.alerts(None).into_iter().find(|f| f.alert.id == id);
        match alert {
            Some(f) if v.acknowledge(&id, &by, at_us) => AckMade {
                alert: f.alert,
                by,
                at_us,
            },
            _ => return StatusCode::NOT_FOUND.into_response(),
        }
    };
    if let Some(tx) = &s.acks
        && tx.try_send(made).is_err()
    {
        tracing::warn!(message = "Acknowledgement not passed on (queue full); it shows on this bench only.", alert = %id);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// A substitution (or the bench before kick-off) posted on the bench.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PitchBody {
    team: String,
    session: String,
    #[serde(default)]
    on: Vec<String>,
    #[serde(default)]
    off: Vec<String>,
    /// µs since the epoch; absent = now; 0 = from the session's start.
    at_us: Option<i64>,
}

/// `POST /api/pitch`: who came on and went off, now or at `at_us`, under the signed-in name,
/// to the roster topic where the processor reads it (202 with the records' keys).
async fn pitch(
    State(s): State<ApiState>,
    Extension(who): Extension<SignedIn>,
    headers: HeaderMap,
    body: Result<Json<PitchBody>, JsonRejection>,
) -> Response {
    if cross_site(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let Some(by) = who.0.map(|i| i.name) else {
        return (
            StatusCode::FORBIDDEN,
            "posting a substitution needs staff sign-in (bench.staff_file or bench.identity_header)",
        )
            .into_response();
    };
    let Some(tx) = &s.lineup else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this bench does not post lineup changes",
        )
            .into_response();
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(e) => return e.into_response(),
    };
    if b.on.is_empty() && b.off.is_empty() {
        return (StatusCode::BAD_REQUEST, "name the players: on and/or off").into_response();
    }
    let at_us = b.at_us.unwrap_or_else(now_us);
    let mut records = Vec::new();
    for (players, on) in [(&b.off, false), (&b.on, true)] {
        for p in players {
            let c = sideline_wire::lineup::PitchChange {
                team: b.team.clone(),
                session: b.session.clone(),
                player: p.clone(),
                at_us,
                on,
                by: by.clone(),
            };
            if let Some(why) = c.problem() {
                return (StatusCode::BAD_REQUEST, why).into_response();
            }
            records.push((c.key(), c.encode()));
        }
    }
    let keys: Vec<String> = records.iter().map(|(k, _)| k.clone()).collect();
    if tx.try_send(records).is_err() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "lineup changes are waiting for Kafka: try again",
        )
            .into_response();
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({ "posted": keys, "by": by })),
    )
        .into_response()
}

/// `?max=N` and the session pick.
#[derive(Debug, serde::Deserialize)]
struct EventsQuery {
    max: Option<u32>,
    team: Option<String>,
    session: Option<String>,
}

async fn events(
    State(s): State<ApiState>,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = s.alerts.subscribe();
    let view = s.view.clone();
    let pick = Pick {
        team: q.team,
        session: q.session,
    };
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
                    Event::default().event("squad").json_data(squad_json(&view, &pick, 60))
                }
                a = rx.recv() => match a {
                    Ok(a) => Event::default().event("alert").json_data(&a),
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
    F: FnOnce(mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(f(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;

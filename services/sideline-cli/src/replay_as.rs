//! `sideline replay --as <profile>`: a recording in another system's shape, so that every
//! ingest source can be tried without the hardware.
//!
//! - `rtloc`: one RTLOC "tag-data" frame per instant with every tag's fix, on MQTT
//!   (`--topic`, default `data/devices/tag-data/frame`).
//! - `ble-hrm`: every heart-rate reading as a Bluetooth 0x2A37 notification on MQTT
//!   (`--topic` with `{device}`, default `hr/{device}/2a37`).
//! - `sewio`: a local WebSocket server (`--serve`) speaking Sewio's connector: a client
//!   subscribes (with the API key when `--token-file` is given) and receives every tag's
//!   position change from then on.
//! - `league`: a local WebSocket server speaking a league tracking feed's protocol: a client
//!   authenticates (`{"authToken": …}` = the `--token-file`'s token), requests the fixture
//!   (`--fixture`) with a backfill (`-1`/`null`: from the start, `0`: from now), and gets
//!   frames of both teams (the first team in the file is home) between heartbeats
//!   (`--heartbeat-s`). `--drop-at-s` closes every connection at those event seconds (to try
//!   reconnection and backfill).
//!
//! Tag and player ids are the pods' (`pod-<team>-<player>`), so `--print-roster` serves every
//! shape. The WebSocket servers keep serving after the recording ends, until stopped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use sideline_engine::sample::Coord;
use sideline_engine::{Batch, Micros, Reading};
use sideline_wire::adapter::ble;
use sideline_wire::adapter::shapes::{self, Fix};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::publish::{Pacer, Publisher};

/// The shapes `--as` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// Sideline's own `SampleBatch` on `sideline/v1/…` (the default).
    Native,
    /// RTLOC tag-data frames over MQTT.
    Rtloc,
    /// Sewio datastream changes over a local WebSocket.
    Sewio,
    /// A league's tracking feed over a local WebSocket.
    League,
    /// Bluetooth 0x2A37 heart-rate notifications over MQTT.
    BleHrm,
}

/// Options of the non-native shapes.
#[derive(Debug, Clone, clap::Args)]
pub struct AsArgs {
    /// The shape to publish in.
    #[arg(long = "as", value_enum, default_value = "native")]
    pub shape: Shape,
    /// MQTT topic for `rtloc` and `ble-hrm` (`{device}` is replaced by the tag's id).
    #[arg(long)]
    pub topic: Option<String>,
    /// Address the `sewio` and `league` WebSocket servers listen on.
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub serve: String,
    /// The fixture id the `league` server knows.
    #[arg(long, default_value = "replay")]
    pub fixture: String,
    /// File with the token (`league`) or API key (`sewio`) clients must send; none = any.
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// Seconds between the `league` server's heartbeats.
    #[arg(long, default_value_t = 10)]
    pub heartbeat_s: u64,
    /// Event seconds (from the recording's start) at which the WebSocket servers drop every
    /// connection.
    #[arg(long, value_delimiter = ',')]
    pub drop_at_s: Vec<u64>,
}

type Tagged = (String, f64, f64, Option<f32>, String);

fn fix(t: &Tagged) -> Fix<'_> {
    Fix {
        id: t.0.as_str(),
        x: t.1,
        y: t.2,
        speed: t.3,
    }
}

/// Every position fix of `batches`, grouped by instant, as (device, fix, team).
fn instants(batches: &[Batch]) -> BTreeMap<Micros, Vec<Tagged>> {
    let mut out: BTreeMap<Micros, Vec<_>> = BTreeMap::new();
    for b in batches {
        for s in &b.samples {
            if let Reading::Position(p) = &s.reading
                && let Coord::Xy { x, y } = p.coord
            {
                out.entry(s.t)
                    .or_default()
                    .push((b.device.clone(), x, y, p.speed, b.team.clone()));
            }
        }
    }
    out
}

/// The messages of `windows` (see `replay::windows`) in `shape`, by window end: what the
/// replay sends (also for tests' expectations). `rtloc` and `league` number their frames from
/// 1 and 0; the first team in the recording is the league feed's home team.
pub fn messages(
    shape: Shape,
    windows: &[(Micros, Vec<Batch>)],
    fixture: &str,
) -> Vec<(Micros, Vec<Vec<u8>>)> {
    let home = windows
        .iter()
        .flat_map(|(_, b)| b)
        .map(|b| b.team.clone())
        .next()
        .unwrap_or_default();
    let mut frame = 0u64;
    let mut out = Vec::new();
    for (end, batches) in windows {
        let mut msgs = Vec::new();
        if shape == Shape::BleHrm {
            for b in batches {
                for s in &b.samples {
                    if let Reading::HeartRate(bpm) = s.reading {
                        msgs.push(ble::encode(bpm.round() as u16, &[]));
                    }
                }
            }
        }
        for (t, fixes) in instants(batches) {
            match shape {
                Shape::Rtloc => {
                    frame += 1;
                    let f: Vec<Fix> = fixes.iter().map(fix).collect();
                    msgs.push(shapes::rtloc(t, frame, &f));
                }
                Shape::League => {
                    let h: Vec<Fix> = fixes.iter().filter(|f| f.4 == home).map(fix).collect();
                    let w: Vec<Fix> = fixes.iter().filter(|f| f.4 != home).map(fix).collect();
                    msgs.push(shapes::league(fixture, frame, t, &h, &w));
                    frame += 1;
                }
                Shape::Sewio => msgs.extend(fixes.iter().map(|f| shapes::sewio(t, &fix(f)))),
                Shape::Native | Shape::BleHrm => {}
            }
        }
        out.push((*end, msgs));
    }
    out
}

/// The heart-rate devices of `windows`' messages in order (for `ble-hrm`, whose payload does
/// not name the strap: the topic does).
fn hr_devices(windows: &[(Micros, Vec<Batch>)]) -> Vec<Vec<String>> {
    windows
        .iter()
        .map(|(_, batches)| {
            batches
                .iter()
                .flat_map(|b| {
                    b.samples
                        .iter()
                        .filter(|s| matches!(s.reading, Reading::HeartRate(_)))
                        .map(|_| b.device.clone())
                })
                .collect()
        })
        .collect()
}

/// Publish `windows` in `a.shape` at `speed` (× real time; the event time `first` plays now,
/// or, for the WebSocket servers, once the first client has subscribed); returns the messages
/// sent.
pub async fn run(
    a: &AsArgs,
    publish: &crate::publish::PublishArgs,
    windows: &[(Micros, Vec<Batch>)],
    first: Micros,
    stop: &CancellationToken,
) -> Result<u64> {
    let token = match &a.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let msgs = messages(a.shape, windows, &a.fixture);
    match a.shape {
        Shape::Native => bail!("the native shape is published by `replay` itself"),
        Shape::Rtloc | Shape::BleHrm => {
            let mut out = Publisher::connect(publish, "sideline-replay")?;
            let pacer = Pacer::new(first, publish.speed);
            let devices = hr_devices(windows);
            for (k, (end, payloads)) in msgs.into_iter().enumerate() {
                if !pacer.wait_for(end, stop).await {
                    break;
                }
                for (i, m) in payloads.into_iter().enumerate() {
                    let topic = match a.shape {
                        Shape::Rtloc => a
                            .topic
                            .clone()
                            .unwrap_or_else(|| "data/devices/tag-data/frame".into()),
                        _ => a
                            .topic
                            .as_deref()
                            .unwrap_or("hr/{device}/2a37")
                            .replace("{device}", &devices[k][i]),
                    };
                    out.publish_raw(&topic, m).await?;
                }
            }
            let n = out.published;
            out.close().await;
            if a.shape == Shape::BleHrm && n == 0 {
                bail!("the recording has no heart rate to send as 0x2A37");
            }
            Ok(n)
        }
        Shape::Sewio | Shape::League => {
            let feed = Feed::new(
                a.shape,
                a.fixture.clone(),
                token,
                Duration::from_secs(a.heartbeat_s.max(1)),
            );
            let listener = tokio::net::TcpListener::bind(&a.serve)
                .await
                .with_context(|| format!("binding {}", a.serve))?;
            eprintln!(
                "serving the {:?} feed on ws://{}; it starts when the first client subscribes",
                a.shape,
                listener.local_addr()?
            );
            let mut subscribed = feed.subscribed.subscribe();
            let server = tokio::spawn(Arc::clone(&feed).serve(listener, stop.clone()));
            tokio::select! {
                _ = stop.cancelled() => return Ok(0),
                _ = subscribed.changed() => {}
            }
            let pacer = Pacer::new(first, publish.speed);
            let mut drops: Vec<Micros> = a
                .drop_at_s
                .iter()
                .map(|s| first + *s as Micros * 1_000_000)
                .collect();
            drops.sort_unstable();
            for (end, payloads) in msgs {
                if !pacer.wait_for(end, stop).await {
                    break;
                }
                while drops.first().is_some_and(|d| *d <= end) {
                    drops.remove(0);
                    feed.drop_all();
                }
                for m in payloads {
                    feed.push(m);
                }
            }
            eprintln!(
                "recording sent ({} messages); serving until stopped",
                feed.len()
            );
            stop.cancelled().await;
            let _ = server.await;
            Ok(feed.len() as u64)
        }
    }
}

/// The messages of a WebSocket feed so far, and its live stream.
struct Feed {
    shape: Shape,
    fixture: String,
    token: Option<String>,
    heartbeat: Duration,
    log: Mutex<Vec<Arc<Vec<u8>>>>,
    live: broadcast::Sender<Arc<Vec<u8>>>,
    drop: broadcast::Sender<()>,
    subscribed: tokio::sync::watch::Sender<bool>,
}

impl Feed {
    fn new(shape: Shape, fixture: String, token: Option<String>, heartbeat: Duration) -> Arc<Self> {
        Arc::new(Feed {
            shape,
            fixture,
            token,
            heartbeat,
            log: Mutex::new(Vec::new()),
            live: broadcast::channel(65_536).0,
            drop: broadcast::channel(4).0,
            subscribed: tokio::sync::watch::channel(false).0,
        })
    }

    fn len(&self) -> usize {
        self.log.lock().map_or(0, |l| l.len())
    }

    fn push(&self, m: Vec<u8>) {
        let m = Arc::new(m);
        if let Ok(mut l) = self.log.lock() {
            l.push(Arc::clone(&m));
        }
        let _ = self.live.send(m);
    }

    fn drop_all(&self) {
        let _ = self.drop.send(());
    }

    async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                c = listener.accept() => if let Ok((tcp, _)) = c {
                    let (feed, stop) = (Arc::clone(&self), stop.clone());
                    tokio::spawn(async move {
                        if let Err(e) = feed.client(tcp, stop).await {
                            eprintln!("feed client: {e}");
                        }
                    });
                }
            }
        }
    }

    /// One client: the protocol's opening, then backfill and live messages.
    async fn client(&self, tcp: tokio::net::TcpStream, stop: CancellationToken) -> Result<()> {
        let mut ws = tokio_tungstenite::accept_async(tcp).await?;
        let mut drop = self.drop.subscribe();
        let mut live = self.live.subscribe();
        let info =
            |m: &str| Message::text(serde_json::json!({"message": m, "level": "INFO"}).to_string());
        let said = |ws_msg: Option<Result<Message, _>>| -> Result<Value> {
            match ws_msg {
                Some(Ok(Message::Text(t))) => {
                    Ok(serde_json::from_str(t.as_str()).unwrap_or(Value::Null))
                }
                other => bail!("client left during the opening: {other:?}"),
            }
        };
        let open = said(ws.next().await)?;
        let key = match self.shape {
            Shape::League => open.get("authToken"),
            _ => open.pointer("/headers/X-ApiKey"),
        };
        if self
            .token
            .as_ref()
            .is_some_and(|t| key.and_then(Value::as_str) != Some(t.as_str()))
        {
            let e = serde_json::json!({"message": "Authentication message had incorrect format", "level": "ERROR"});
            ws.send(Message::text(e.to_string())).await?;
            ws.close(None).await?;
            return Ok(());
        }
        let mut from = self.len();
        if self.shape == Shape::League {
            ws.send(info("Authorisation accepted")).await?;
            let req = said(ws.next().await)?;
            if req.get("fixtureId").and_then(Value::as_str) != Some(self.fixture.as_str()) {
                let w = serde_json::json!({"message": format!("Could not find fixture topic {}", req["fixtureId"]), "level": "WARN"});
                ws.send(Message::text(w.to_string())).await?;
                return Ok(());
            }
            if matches!(req.get("backfill").and_then(Value::as_i64), None | Some(-1)) {
                from = 0;
            }
        }
        self.subscribed.send_replace(true);
        // Backfill, then live: messages pushed meanwhile are in both; send each once.
        let mut sent = from;
        loop {
            let next: Vec<Arc<Vec<u8>>> = self
                .log
                .lock()
                .map(|l| l[sent.min(l.len())..].to_vec())
                .unwrap_or_default();
            if next.is_empty() {
                break;
            }
            for m in next {
                ws.send(Message::text(String::from_utf8_lossy(&m).into_owned()))
                    .await?;
                sent += 1;
            }
        }
        let mut beat = tokio::time::interval(self.heartbeat);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = drop.recv() => return Ok(()), // dropped: no close frame, as a network cut
                _ = beat.tick(), if self.shape == Shape::League => {
                    let now = crate::publish::now_us();
                    ws.send(info(&format!("Heartbeat sent at {}", sideline_wire::adapter::time::to_iso_ms(now)))).await?;
                }
                m = live.recv() => match m {
                    Ok(_) => {
                        let next: Vec<Arc<Vec<u8>>> = self.log.lock().map(|l| l[sent.min(l.len())..].to_vec()).unwrap_or_default();
                        for m in next {
                            ws.send(Message::text(String::from_utf8_lossy(&m).into_owned())).await?;
                            sent += 1;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                m = ws.next() => if m.is_none() { return Ok(()) },
            }
        }
        let _ = ws.close(None).await;
        Ok(())
    }
}

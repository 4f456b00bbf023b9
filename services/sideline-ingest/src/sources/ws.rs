//! WebSocket sources, reconnecting whenever the connection fails, closes, or is silent for
//! `idle_timeout_s` (a league feed's heartbeats come every 10 s): at once after a connection
//! that had been up for 5 s or more, then with back-off (0.2 s doubling to 10 s). The
//! processor takes samples up to its allowed lateness (2 s) behind the newest of their
//! partition; what a backfill brings from a longer outage is counted late and not used.
//!
//! The `league` protocol (IMG Arena / Sportradar DDE tracking WebSockets,
//! <https://docs.imgarena.com/basketball/live-websockets/live-p-and-b-tracking>): send
//! `{"authToken": …}`; on `{"message": "Authorisation accepted", "level": "INFO"}` send
//! `{"fixtureId": …, "backfill": -1}` (every frame from the start of the feed); then frames
//! arrive, each with an index `ix`, between `{"message": "Heartbeat sent at …"}` messages.
//! Nothing lost, nothing counted twice: every connection asks for the whole feed again, and
//! frames at or below the watermark (the highest `ix` whose records Kafka has acknowledged,
//! and every frame already queued) are skipped and counted (`skipped{reason="duplicate"}`).
//! The watermark is kept in `<state_dir>/source-<name>.json` (written at most once a second
//! and at shutdown), so a restarted ingest resumes where Kafka's log ends; frames forwarded
//! in the last second before a crash are sent again with the same sequence numbers, and the
//! processor drops them. Losing the state file mid-match makes the restarted ingest forward
//! the whole match again: within the processor's de-duplication window (4096 frames per
//! player) that changes nothing, beyond it earlier minutes count twice.
//!
//! `sewio`: subscribe to every feed with the API key
//! (`{"headers": {"X-ApiKey": …}, "method": "subscribe", "resource": "/feeds/"}`, from
//! <http://rtlsstudio.com/studio/index.php/websockets-connector/>); what is sent while the
//! connection is down is not replayed by the server, so it is lost (counted as reconnects).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesOrdered;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{Source, WsProtocol};
use crate::pipeline::{Outcome, Pipeline};

/// Frames being put on Kafka at once.
const IN_FLIGHT: usize = 256;

/// Run `src` until `stop`.
pub async fn run(src: Arc<Source>, pipeline: Pipeline, state: PathBuf, stop: CancellationToken) {
    let token = match src.cfg.protocol {
        WsProtocol::Plain => String::new(),
        _ => match std::fs::read_to_string(&src.cfg.token_file) {
            Ok(t) => t.trim().to_string(),
            Err(error) => {
                tracing::error!(message = "The source's token file cannot be read; the source is not started.", source = %src.name, %error);
                return;
            }
        },
    };
    let mut link = Link {
        src: &src,
        pipeline: &pipeline,
        token,
        mark: load(&state, &src.cfg.fixture_id),
        state,
        saved: Instant::now(),
    };
    let connected = pipeline
        .metrics
        .source_connected
        .with_label_values(&[&src.name]);
    let mut backoff = Duration::ZERO;
    while !stop.is_cancelled() {
        let started = Instant::now();
        let r = link.session(&stop).await;
        connected.set(0);
        link.save();
        match r {
            Ok(()) => break,
            Err(error) => {
                pipeline
                    .metrics
                    .source_reconnects
                    .with_label_values(&[&src.name])
                    .inc();
                tracing::warn!(message = "WebSocket source disconnected; reconnecting.", source = %src.name, %error, watermark = ?link.mark, backoff_ms = backoff.as_millis() as u64);
            }
        }
        // A connection that had been up for a while is tried again at once: every second of
        // a live feed's outage reaches the processor late, and beyond its allowed lateness
        // (2 s) late samples are counted but not used.
        if started.elapsed() > Duration::from_secs(5) {
            backoff = Duration::ZERO;
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).clamp(Duration::from_millis(200), Duration::from_secs(10));
    }
}

struct Link<'a> {
    src: &'a Source,
    pipeline: &'a Pipeline,
    token: String,
    /// Highest frame index whose records are on Kafka.
    mark: Option<u64>,
    state: PathBuf,
    saved: Instant,
}

impl Link<'_> {
    /// One connection: Ok when stopped, Err why it ended otherwise. Frames queued when it ends
    /// are finished first (their records reach Kafka, the watermark moves).
    async fn session(&mut self, stop: &CancellationToken) -> Result<(), String> {
        let cfg = &self.src.cfg;
        let (mut ws, _) = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            r = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(cfg.websocket.as_str())) => {
                r.map_err(|_| "connect timed out".to_string())?.map_err(|e| e.to_string())?
            }
        };
        let hello = match cfg.protocol {
            WsProtocol::Plain => None,
            WsProtocol::League => Some(json!({"authToken": self.token})),
            WsProtocol::Sewio => Some(
                json!({"headers": {"X-ApiKey": self.token}, "method": "subscribe", "resource": "/feeds/"}),
            ),
        };
        if let Some(h) = hello {
            ws.send(Message::text(h.to_string()))
                .await
                .map_err(|e| e.to_string())?;
        }
        let connected = self
            .pipeline
            .metrics
            .source_connected
            .with_label_values(&[&self.src.name]);
        if cfg.protocol != WsProtocol::League {
            connected.set(1);
        }
        let label = format!("ws:{}", self.src.name);
        let idle = Duration::from_secs(cfg.idle_timeout_s);
        let mut queued = self.mark;
        let mut pending = FuturesOrdered::new();
        let end = loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break Ok(()),
                Some((ix, out)) = pending.next(), if !pending.is_empty() => self.done(ix, out),
                m = tokio::time::timeout(idle, ws.next()), if pending.len() < IN_FLIGHT => {
                    let payload = match m {
                        Err(_) => break Err(format!("nothing received for {} s", idle.as_secs())),
                        Ok(None) => break Err("closed by the server".into()),
                        Ok(Some(Err(e))) => break Err(e.to_string()),
                        Ok(Some(Ok(Message::Text(t)))) => t.as_bytes().to_vec(),
                        Ok(Some(Ok(Message::Binary(b)))) => b.to_vec(),
                        Ok(Some(Ok(Message::Close(f)))) => break Err(format!("closed by the server: {f:?}")),
                        Ok(Some(Ok(_))) => continue,
                    };
                    let mut ix = None;
                    if cfg.protocol == WsProtocol::League {
                        let v: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
                        if let (Some(msg), Some(level)) = (v.get("message"), v.get("level")) {
                            let (msg, level) = (msg.as_str().unwrap_or(""), level.as_str().unwrap_or(""));
                            match level {
                                "ERROR" => break Err(format!("the feed refused: {msg}")),
                                "WARN" => break Err(format!("the feed warns: {msg}")),
                                _ if msg.starts_with("Authorisation accepted") => {
                                    let req = json!({"fixtureId": cfg.fixture_id, "backfill": -1});
                                    if let Err(e) = ws.send(Message::text(req.to_string())).await {
                                        break Err(e.to_string());
                                    }
                                    connected.set(1);
                                }
                                _ => {} // heartbeat
                            }
                            continue;
                        }
                        ix = v.get("ix").and_then(Value::as_u64);
                        if let (Some(i), Some(q)) = (ix, queued) && i <= q {
                            self.pipeline.metrics.source_skipped.with_label_values(&[self.src.name.as_str(), "duplicate"]).inc();
                            continue;
                        }
                        queued = queued.max(ix);
                    }
                    let (p, src, label) = (self.pipeline, self.src, label.as_str());
                    pending.push_back(async move {
                        let out = p.handle_source(src, label, &payload, None).await;
                        (ix, out)
                    });
                }
            }
        };
        while let Some((ix, out)) = pending.next().await {
            self.done(ix, out);
        }
        let _ = ws.close(None).await;
        end
    }

    fn done(&mut self, ix: Option<u64>, out: Outcome) {
        if out != Outcome::Abandoned {
            self.mark = self.mark.max(ix);
        }
        if self.saved.elapsed() >= Duration::from_secs(1) {
            self.save();
        }
    }

    /// Write the watermark (league feeds only), atomically.
    fn save(&mut self) {
        self.saved = Instant::now();
        let (Some(ix), WsProtocol::League) = (self.mark, self.src.cfg.protocol) else {
            return;
        };
        let body = json!({"fixture": self.src.cfg.fixture_id, "ix": ix}).to_string();
        let tmp = self.state.with_extension("tmp");
        let r = std::fs::write(&tmp, body).and_then(|()| std::fs::rename(&tmp, &self.state));
        if let Err(error) = r {
            tracing::warn!(message = "The source's watermark cannot be saved.", source = %self.src.name, path = %self.state.display(), %error);
        }
    }
}

/// The saved watermark of `fixture` (none for another fixture or no file).
fn load(state: &std::path::Path, fixture: &str) -> Option<u64> {
    let v: Value = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
    (v.get("fixture")?.as_str()? == fixture).then(|| v.get("ix")?.as_u64())?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The watermark survives a restart for its fixture only, and a missing or broken file
    /// means "from the start" (the processor's de-duplication covers its window).
    #[test]
    fn the_saved_watermark_is_read_back_for_its_own_fixture_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("source-league.json");
        assert_eq!(load(&f, "fx"), None);
        std::fs::write(&f, r#"{"fixture": "fx", "ix": 4711}"#).unwrap();
        assert_eq!(load(&f, "fx"), Some(4711));
        assert_eq!(load(&f, "another"), None);
        std::fs::write(&f, "{broken").unwrap();
        assert_eq!(load(&f, "fx"), None);
    }
}

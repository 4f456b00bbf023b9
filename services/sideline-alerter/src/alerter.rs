//! The alerter's core, shared by `sideline alert` (events from Kafka) and `sideline demo`
//! (events from the in-process engine): the router, its saved state, the outbox, renderers,
//! acknowledge links and the delivery tasks.
//!
//! The router's state is saved to `<outbox>/router.json` (temporary file, fsync, rename) after
//! every change and before the caller commits the input it covers, so a restart continues
//! with the same open alerts, acknowledgements and escalation clocks.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ack::{AckError, Links};
use crate::delivery::{self, Target, now_us};
use crate::item::Item;
use crate::metrics::AlerterMetrics;
use crate::outbox::{Outbox, OutboxError, Pending};
use crate::policy::Policy;
use crate::render::{Format, render};
use crate::router::{Acknowledgement, Message, Router};
use sideline_wire::pb;

/// Why an acknowledgement did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AckRefused {
    /// The link is not valid.
    #[error(transparent)]
    Token(#[from] AckError),
    /// The alert is closed or unknown.
    #[error("alert {0} is not open (already over, or unknown)")]
    NotOpen(String),
}

/// The alert an acknowledge link names, for its confirmation page.
#[derive(Debug, Clone, PartialEq)]
pub struct AckView {
    /// The player.
    pub player: String,
    /// His team.
    pub team: String,
    /// "Strain risk RED (score 7.5)" and the like.
    pub headline: String,
    /// Who acknowledged his red, if anyone has.
    pub acked: Option<Acknowledgement>,
}

/// What the core needs to start.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Routing policy.
    pub policy: Policy,
    /// Destinations with their URLs.
    pub targets: Vec<Target>,
    /// Delivery timing.
    pub timing: delivery::Timing,
    /// Outbox directory.
    pub outbox_dir: PathBuf,
    /// Acknowledge links (None: messages carry none).
    pub links: Option<Links>,
}

/// The core. See the module documentation.
#[derive(Debug)]
pub struct Alerter {
    router: Router,
    outbox: Arc<Outbox>,
    formats: BTreeMap<String, Format>,
    wakes: BTreeMap<String, Arc<Notify>>,
    links: Option<Links>,
    metrics: AlerterMetrics,
    held: Vec<(String, Pending)>,
    state_path: PathBuf,
    dirty: bool,
}

impl Alerter {
    /// Open the outbox and saved state, and start one delivery task per destination.
    pub fn start(
        setup: Setup,
        metrics: AlerterMetrics,
        stop: CancellationToken,
    ) -> Result<(Alerter, Vec<tokio::task::JoinHandle<()>>), OutboxError> {
        let names: Vec<String> = setup.targets.iter().map(|t| t.name.clone()).collect();
        std::fs::create_dir_all(&setup.outbox_dir).map_err(|source| OutboxError::Io {
            path: setup.outbox_dir.clone(),
            source,
        })?;
        let outbox = Arc::new(Outbox::open(&setup.outbox_dir, &names)?);
        let state_path = setup.outbox_dir.join("router.json");
        let router = match std::fs::read(&state_path) {
            Ok(b) => match serde_json::from_slice::<Router>(&b) {
                Ok(r) => r.with_policy(setup.policy.clone()),
                Err(e) => {
                    tracing::error!(message = "Saved router state unreadable; starting empty.", error = %e);
                    Router::new(setup.policy.clone())
                }
            },
            Err(_) => Router::new(setup.policy.clone()),
        };
        let mut wakes = BTreeMap::new();
        let mut tasks = Vec::new();
        for t in &setup.targets {
            let wake = Arc::new(Notify::new());
            wakes.insert(t.name.clone(), wake.clone());
            tasks.push(tokio::spawn(delivery::run(
                t.clone(),
                setup.timing.clone(),
                outbox.clone(),
                metrics.clone(),
                wake,
                stop.clone(),
            )));
        }
        let formats = setup
            .targets
            .iter()
            .map(|t| (t.name.clone(), t.format))
            .collect();
        Ok((
            Alerter {
                router,
                outbox,
                formats,
                wakes,
                links: setup.links,
                metrics,
                held: Vec::new(),
                state_path,
                dirty: false,
            },
            tasks,
        ))
    }

    /// Take one alert event.
    pub fn offer(&mut self, item: Item) {
        let fresh = self.router.offer(item, now_us());
        self.metrics
            .consumed
            .with_label_values(&[if fresh { "accepted" } else { "replayed" }])
            .inc();
        self.dirty |= fresh;
    }

    /// The alert a link token names (nothing changes: the link's GET shows this).
    pub fn peek(&self, token: &str) -> Result<AckView, AckRefused> {
        let id = self.check(token)?;
        self.view(&id).ok_or(AckRefused::NotOpen(id))
    }

    fn view(&self, id: &str) -> Option<AckView> {
        let a = self.router.open_alert(id)?;
        Some(AckView {
            player: a.player.clone(),
            team: a.team.clone(),
            headline: a.headline(),
            acked: self.router.acknowledgement(id).cloned(),
        })
    }

    fn check(&self, token: &str) -> Result<String, AckRefused> {
        let Some(links) = &self.links else {
            return Err(AckError::BadSignature.into());
        };
        Ok(links.signer.check(token, now_us() / 1_000_000)?)
    }

    /// Acknowledge through a link token, by `by` (a person's name or proxy identity).
    pub fn ack(&mut self, token: &str, by: &str) -> Result<AckView, AckRefused> {
        let r = self
            .check(token)
            .and_then(|id| self.ack_id(&id, by).ok_or(AckRefused::NotOpen(id)));
        if let Err(e) = &r {
            let label = match e {
                AckRefused::NotOpen(_) => "unknown",
                AckRefused::Token(e) => e.reason(),
            };
            self.metrics.acks.with_label_values(&[label]).inc();
        }
        r
    }

    /// Acknowledge by alert id, by `by` (the bench page's button, which needs no link); the
    /// alert as it now stands, or `None` if it is not open.
    pub fn ack_id(&mut self, id: &str, by: &str) -> Option<AckView> {
        let player = self.router.ack(id, by, now_us())?;
        self.dirty = true;
        self.metrics.acks.with_label_values(&["ok"]).inc();
        tracing::info!(message = "Alert acknowledged.", %player, by = %by);
        self.view(id)
    }

    /// Apply an acknowledgement read from the acks topic (the bench's, or this alerter's own
    /// coming back): `true` if its alert is open here (applied, or already acknowledged),
    /// `false` if this alerter has no such open alert (not seen yet, or over).
    pub fn ack_recorded(&mut self, a: &pb::AlertAck) -> bool {
        let before = self.router.acknowledgement(&a.alert_id).is_some();
        match self.router.ack_recorded(&a.alert_id, &a.by, a.at_us) {
            Some(player) => {
                if !before {
                    self.dirty = true;
                    self.metrics.acks.with_label_values(&["ok"]).inc();
                    tracing::info!(message = "Alert acknowledged on the bench.", %player, by = %a.by);
                }
                true
            }
            None => false,
        }
    }

    /// Who acknowledged the open alert `id`, if anyone.
    pub fn acknowledgement(&self, id: &str) -> Option<&Acknowledgement> {
        self.router.acknowledgement(id)
    }

    /// Acknowledgements not yet confirmed on the acks topic, as records, oldest first.
    pub fn unarchived_acks(&self) -> Vec<pb::AlertAck> {
        self.router.unarchived().iter().map(ack_record).collect()
    }

    /// The first `n` of [`Alerter::unarchived_acks`] are on the acks topic (saved at the next
    /// tick).
    pub fn acks_archived(&mut self, n: usize) {
        if n > 0 {
            self.router.archived(n);
            self.dirty = true;
        }
    }

    /// Open alert ids of acknowledged players (to mirror acknowledgements elsewhere).
    pub fn acked_ids(&self) -> Vec<String> {
        self.router.acked_ids()
    }

    /// Form due messages, store them in the outbox, save the router. Returns whether the
    /// state on disk now covers everything offered (the caller may commit its input).
    pub fn tick(&mut self) -> bool {
        let now = now_us();
        let messages = self.router.tick(now);
        if !messages.is_empty() {
            self.dirty = true;
        }
        for m in messages {
            self.store(m, now);
        }
        let held = std::mem::take(&mut self.held);
        for (dest, p) in held {
            self.enqueue(&dest, p);
        }
        self.metrics.outbox_errors.set(self.held.len() as i64);
        self.metrics
            .escalations_waiting
            .set(self.router.escalations_waiting() as i64);
        if self.dirty {
            match self.save() {
                Ok(()) => self.dirty = false,
                Err(e) => {
                    tracing::error!(message = "Router state not saved; will retry.", error = %e)
                }
            }
        }
        !self.dirty && self.held.is_empty()
    }

    fn store(&mut self, mut m: Message, now: i64) {
        let dest = m.destination.clone();
        let Some(format) = self.formats.get(&dest).copied() else {
            tracing::error!(message = "Route names an unknown destination.", destination = %dest);
            return;
        };
        let before = m.entries.len() + m.cleared.len();
        m.entries.retain(|e| !self.outbox.seen(&dest, &e.key));
        m.cleared.retain(|c| {
            !self
                .outbox
                .seen(&dest, &format!("{dest}|line|{}", c.alert.id))
        });
        let skipped = before - m.entries.len() - m.cleared.len();
        if skipped > 0 {
            self.metrics
                .duplicates
                .with_label_values(&[&dest])
                .inc_by(skipped as u64);
        }
        if m.entries.is_empty() && m.cleared.is_empty() {
            return;
        }
        for e in &m.entries {
            self.metrics
                .entries
                .with_label_values(&[e.change.as_str()])
                .inc();
        }
        let body = render(format, &m, self.links.as_ref(), now / 1_000_000);
        let mut players: Vec<String> = m.entries.iter().map(|e| e.alert.player.clone()).collect();
        players.dedup();
        let p = Pending {
            keys: m.keys(),
            body: String::from_utf8_lossy(&body).into_owned(),
            formed_us: now,
            players,
        };
        self.enqueue(&dest, p);
    }

    fn enqueue(&mut self, dest: &str, p: Pending) {
        match self.outbox.enqueue(dest, &p) {
            Ok(()) => {
                self.metrics.enqueued.with_label_values(&[dest]).inc();
                if let Some(w) = self.wakes.get(dest) {
                    w.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(message = "Outbox write failed; holding the message.", destination = dest, error = %e);
                self.held.push((dest.to_string(), p));
            }
        }
    }

    fn save(&self) -> std::io::Result<()> {
        let text = serde_json::to_vec(&self.router).map_err(std::io::Error::other)?;
        let tmp = self.state_path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.state_path)
    }

    /// Open alerts (for readiness and tests).
    pub fn open_alerts(&self) -> usize {
        self.router.open_alerts()
    }

    /// Messages waiting in the outbox, over all destinations.
    pub fn pending(&self) -> usize {
        self.formats.keys().map(|d| self.outbox.pending(d)).sum()
    }
}

/// An acknowledgement as an `AlertAck` record.
pub fn ack_record(r: &crate::router::AckRecord) -> pb::AlertAck {
    pb::AlertAck {
        alert_id: r.alert.id.clone(),
        kind: r.alert.kind.clone(),
        severity: r.alert.severity.as_str().into(),
        player_id: r.alert.player.clone(),
        team_id: r.alert.team.clone(),
        session_id: r.alert.session.clone(),
        by: r.ack.by.clone(),
        at_us: r.ack.at,
        since_us: r.alert.since_us,
    }
}

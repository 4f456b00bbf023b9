//! Every metric the processor exports: pipeline health (`sideline_processor_*`) and per-player
//! gauges (`sideline_player_*`, labels `team`, `player`, `session`: one session per player at
//! a time — a new session's first snapshot removes the old session's series — and removed when
//! his session closes (idle) or his partition moves away).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use sideline_engine::risk::{Band, TermId, TermState};
use sideline_engine::{Baseline, PlayerMetrics};

/// Pipeline and player metrics.
#[derive(Debug, Clone)]
pub struct ProcessorMetrics {
    /// Records consumed from the samples topic.
    pub records: IntCounter,
    /// Samples accepted by the engines.
    pub samples: IntCounter,
    /// Batches dropped as duplicate deliveries (device, seq).
    pub duplicate_batches: IntCounter,
    /// Batches that arrived inside records ingest coalesced.
    pub coalesced_batches: IntCounter,
    /// Records skipped because a restored snapshot already covers them.
    pub replay_skipped: IntCounter,
    /// Samples refused as late (sent to the DLQ).
    pub late_samples: IntCounter,
    /// Samples held far ahead of their player's clock and then refused (sent to the DLQ).
    pub time_jump_samples: IntCounter,
    /// Records sent to the DLQ, by reason.
    pub dlq: IntCounterVec,
    /// Snapshots produced to the metrics topic.
    pub metrics_out: IntCounter,
    /// Alert events produced, by kind.
    pub alerts_out: IntCounterVec,
    /// Players restored from the state topic.
    pub restores: IntCounter,
    /// Snapshots that could not be restored (other format or parameters).
    pub restore_rejected: IntCounter,
    /// Partitions whose state could not be read at assignment (players restart without it).
    pub restore_failed: IntCounter,
    /// State snapshots written.
    pub snapshots: IntCounter,
    /// Checkpoints completed (outputs and snapshots acknowledged, offsets committed).
    pub checkpoints: IntCounter,
    /// Group rejoins forced by the orphaned-partition watchdog.
    pub rejoins: IntCounter,
    /// In-process restarts from the last checkpoint after an output failed.
    pub restarts: IntCounter,
    /// Ticks that found the process had stood still (idle partitions not advanced over it).
    pub self_stalls: IntCounter,
    /// Checkpoint taken → its offsets committed (the outputs before it acknowledged), s.
    pub checkpoint_seconds: Histogram,
    /// Offset commits that failed (the next checkpoint commits again).
    pub commit_failures: IntCounter,
    /// Partitions taken from this instance by a group rebalance.
    pub partitions_revoked: IntCounter,
    /// Outputs Kafka refused or that could not be queued (each stops the processor).
    pub output_failures: IntCounter,
    /// Checkpoints waiting for their outputs' (then their snapshots') acknowledgements.
    pub checkpoints_waiting: IntGauge,
    /// Event time of a closed second → its snapshot produced, s.
    pub latency: Histogram,
    /// Consumer lag, records, by partition.
    pub lag: IntGaugeVec,
    /// A partition's stream time (its newest sample, or moved on with the wall clock while
    /// idle), Unix seconds of event time, by partition.
    pub event_time: GaugeVec,
    /// 1 while a partition is idle (read to its end, nothing for `idle_advance_s`), by
    /// partition.
    pub idle: IntGaugeVec,
    /// Partitions assigned to this instance.
    pub partitions: IntGauge,
    /// Players held.
    pub players: IntGauge,
    /// Player sessions closed after `session_idle_s` of silence (series removed).
    pub sessions_closed: IntCounter,
    /// Players forgotten after `forget_after_s` of silence (engine dropped, state deleted).
    pub players_forgotten: IntCounter,
    /// Outputs produced but not yet acknowledged.
    pub pending_outputs: IntGauge,
    /// Per-player gauges.
    pub player: PlayerGauges,
}

/// Per-player gauges.
#[derive(Debug, Clone)]
pub struct PlayerGauges {
    score: GaugeVec,
    completeness: GaugeVec,
    block: GaugeVec,
    band: GaugeVec,
    to_red: GaugeVec,
    distance: GaugeVec,
    hsr: GaugeVec,
    sprint: GaugeVec,
    rolling_hsr: GaugeVec,
    rolling_sprint: GaugeVec,
    rolling_distance: GaugeVec,
    post_peak: GaugeVec,
    lpm_change: GaugeVec,
    vshare_change: GaugeVec,
    signal: GaugeVec,
    hr: GaugeVec,
    load: GaugeVec,
    term_points: GaugeVec,
    hsr_7d: GaugeVec,
    hsr_7d_z: GaugeVec,
    hsr_7d_change: GaugeVec,
    days_since_vmax: GaugeVec,
    /// The (team, session) each player's series are labelled with now.
    shown: Arc<Mutex<HashMap<String, (String, String)>>>,
}

const P: [&str; 3] = ["team", "player", "session"];

fn gv(r: &Registry, name: &str, help: &str, extra: &[&str]) -> Result<GaugeVec, prometheus::Error> {
    let labels: Vec<&str> = P.iter().chain(extra).copied().collect();
    let g = GaugeVec::new(Opts::new(name, help), &labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

impl PlayerGauges {
    fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        Ok(PlayerGauges {
            score: gv(
                r,
                "sideline_player_risk_score",
                "Strain-risk attention score (points).",
                &[],
            )?,
            completeness: gv(
                r,
                "sideline_player_risk_completeness_ratio",
                "Share (0-1) of the score's possible points whose terms could be judged; below 1 the band may be a floor.",
                &[],
            )?,
            block: gv(
                r,
                "sideline_player_risk_block_score",
                "Score block after its cap: a susceptibility, b spikes, c under-preparation, d live fatigue.",
                &["block"],
            )?,
            band: gv(
                r,
                "sideline_player_risk_band",
                "Band: 0 green, 1 amber, 2 red.",
                &[],
            )?,
            to_red: gv(
                r,
                "sideline_player_forecast_red_minutes",
                "Minutes to red at the current rate (NaN: not within the horizon).",
                &[],
            )?,
            distance: gv(
                r,
                "sideline_player_distance_metres",
                "Session distance.",
                &[],
            )?,
            hsr: gv(
                r,
                "sideline_player_hsr_metres",
                "Session distance at ≥ 5.5 m/s.",
                &[],
            )?,
            sprint: gv(
                r,
                "sideline_player_sprint_metres",
                "Session distance at ≥ 7 m/s.",
                &[],
            )?,
            rolling_hsr: gv(
                r,
                "sideline_player_rolling_hsr_metres",
                "HSR in the rolling window.",
                &["window_s"],
            )?,
            rolling_sprint: gv(
                r,
                "sideline_player_rolling_sprint_metres",
                "Sprint distance in the rolling window.",
                &["window_s"],
            )?,
            rolling_distance: gv(
                r,
                "sideline_player_rolling_distance_metres",
                "Distance in the rolling window.",
                &["window_s"],
            )?,
            post_peak: gv(
                r,
                "sideline_player_post_peak_decrement_ratio",
                "Post-peak 5-min HSR vs the session average, minus 1.",
                &[],
            )?,
            lpm_change: gv(
                r,
                "sideline_player_load_per_metre_change_ratio",
                "Recent load per metre vs the first block, minus 1.",
                &[],
            )?,
            vshare_change: gv(
                r,
                "sideline_player_vertical_share_change_ratio",
                "Recent vertical share vs the first block, minus 1.",
                &[],
            )?,
            signal: gv(
                r,
                "sideline_player_signal",
                "Device signal: 0 ok, 1 poor fixes, 2 no signal.",
                &[],
            )?,
            hr: gv(
                r,
                "sideline_player_heart_rate_bpm",
                "Latest heart rate.",
                &[],
            )?,
            load: gv(
                r,
                "sideline_player_accel_load",
                "Session accelerometer load (PlayerLoad-style, AU).",
                &[],
            )?,
            term_points: gv(
                r,
                "sideline_player_risk_term_points",
                "Points of each score term (0 when not fired; NaN when its input is unknown).",
                &["term"],
            )?,
            hsr_7d: gv(
                r,
                "sideline_player_hsr_7d_metres",
                "HSR over the last 7 days including this session (baseline's 6 days + live), m.",
                &[],
            )?,
            hsr_7d_z: gv(
                r,
                "sideline_player_hsr_7d_z",
                "z-score of the live 7-day HSR against the player's own 7-day sums.",
                &[],
            )?,
            hsr_7d_change: gv(
                r,
                "sideline_player_hsr_7d_change_ratio",
                "Live 7-day HSR against the 7 days before, as a ratio (0.25 = +25 %).",
                &[],
            )?,
            days_since_vmax: gv(
                r,
                "sideline_player_days_since_vmax_days",
                "Days since the last exposure at >= threshold % of Vmax (0 = this session).",
                &["threshold"],
            )?,
            shown: Arc::default(),
        })
    }

    fn shown(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, String)>> {
        match self.shown.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Update every gauge of `m`'s player; `baseline` is his load history, if known. A player
    /// has one session's series at a time: the first snapshot of another session (or team)
    /// removes the previous one's.
    pub fn set(&self, m: &PlayerMetrics, baseline: Option<&Baseline>) {
        let now = (m.team.to_string(), m.session.to_string());
        let before = self.shown().insert(m.player.to_string(), now.clone());
        if let Some((team, session)) = before.filter(|b| *b != now) {
            self.remove_labels(&team, &m.player, &session);
        }
        let l = [&*m.team, &*m.player, &*m.session];
        let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
        self.score.with_label_values(&l).set(m.risk.score);
        self.completeness
            .with_label_values(&l)
            .set(m.risk.completeness);
        for (b, v) in ["a", "b", "c", "d"].iter().zip(m.risk.blocks) {
            self.block.with_label_values(&[l[0], l[1], l[2], b]).set(v);
        }
        self.band.with_label_values(&l).set(match m.risk.band {
            Band::Green => 0.0,
            Band::Amber => 1.0,
            Band::Red => 2.0,
        });
        self.to_red
            .with_label_values(&l)
            .set(opt(m.forecast.to_red_min));
        self.distance.with_label_values(&l).set(m.totals.distance_m);
        self.hsr.with_label_values(&l).set(m.totals.hsr_m);
        self.sprint.with_label_values(&l).set(m.totals.sprint_m);
        for w in &m.windows {
            let ws = w.length_s.to_string();
            let lw = [l[0], l[1], l[2], ws.as_str()];
            self.rolling_hsr.with_label_values(&lw).set(w.hsr_m);
            self.rolling_sprint.with_label_values(&lw).set(w.sprint_m);
            self.rolling_distance
                .with_label_values(&lw)
                .set(w.distance_m);
        }
        self.post_peak
            .with_label_values(&l)
            .set(opt(m.fatigue.post_peak_decrement));
        self.lpm_change
            .with_label_values(&l)
            .set(opt(m.fatigue.load_per_m_change));
        self.vshare_change
            .with_label_values(&l)
            .set(opt(m.fatigue.vertical_share_change));
        self.signal
            .with_label_values(&l)
            .set(match m.status.signal {
                sideline_engine::Signal::Ok => 0.0,
                sideline_engine::Signal::PoorFix => 1.0,
                sideline_engine::Signal::NoSignal => 2.0,
            });
        self.hr
            .with_label_values(&l)
            .set(opt(m.totals.hr.current_bpm));
        self.load.with_label_values(&l).set(m.totals.load);
        for id in TermId::ALL {
            let points = match m.risk.terms.iter().find(|t| t.id == id) {
                Some(t) if t.state == TermState::Unknown => f64::NAN,
                Some(t) if t.state == TermState::Fired => t.points,
                _ => 0.0,
            };
            self.term_points
                .with_label_values(&[l[0], l[1], l[2], id.as_str()])
                .set(points);
        }
        let week = baseline
            .and_then(|b| b.hsr_prev6d_m)
            .map(|prev| prev + m.totals.hsr_m);
        self.hsr_7d.with_label_values(&l).set(opt(week));
        let z = m.risk.terms.iter().find(|t| t.id == TermId::BHsrZ);
        self.hsr_7d_z
            .with_label_values(&l)
            .set(opt(z.and_then(|t| t.value)));
        let change = week
            .zip(baseline.and_then(|b| b.hsr_prior7d_m))
            .filter(|(_, prior)| *prior > 0.0)
            .map(|(w, prior)| w / prior - 1.0);
        self.hsr_7d_change.with_label_values(&l).set(opt(change));
        for (i, th, past) in [
            (1, "90", baseline.and_then(|b| b.days_since_vmax90)),
            (2, "95", baseline.and_then(|b| b.days_since_vmax95)),
        ] {
            let days = if m.totals.vmax_exposures[i] > 0 {
                Some(0.0)
            } else {
                past.map(f64::from)
            };
            self.days_since_vmax
                .with_label_values(&[l[0], l[1], l[2], th])
                .set(opt(days));
        }
    }

    /// Remove every series of a player (his session closed, or his partition moved to
    /// another instance).
    pub fn remove_player(&self, player: &str) {
        let shown = self.shown().remove(player);
        if let Some((team, session)) = shown {
            self.remove_labels(&team, player, &session);
        }
    }

    /// Players with series now.
    pub fn players_shown(&self) -> usize {
        self.shown().len()
    }

    fn remove_labels(&self, team: &str, player: &str, session: &str) {
        let l = [team, player, session];
        for g in [
            &self.score,
            &self.completeness,
            &self.band,
            &self.to_red,
            &self.distance,
            &self.hsr,
            &self.sprint,
            &self.post_peak,
            &self.lpm_change,
            &self.vshare_change,
            &self.signal,
            &self.hr,
            &self.load,
            &self.hsr_7d,
            &self.hsr_7d_z,
            &self.hsr_7d_change,
        ] {
            let _ = g.remove_label_values(&l);
        }
        for id in TermId::ALL {
            let _ = self
                .term_points
                .remove_label_values(&[team, player, session, id.as_str()]);
        }
        for th in ["90", "95"] {
            let _ = self
                .days_since_vmax
                .remove_label_values(&[team, player, session, th]);
        }
        for b in ["a", "b", "c", "d"] {
            let _ = self.block.remove_label_values(&[team, player, session, b]);
        }
        for w in ["60", "180", "300", "600"] {
            for g in [
                &self.rolling_hsr,
                &self.rolling_sprint,
                &self.rolling_distance,
            ] {
                let _ = g.remove_label_values(&[team, player, session, w]);
            }
        }
    }
}

fn counter(r: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    let c = IntCounter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl ProcessorMetrics {
    /// Register every metric in `r`.
    pub fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let dlq = IntCounterVec::new(
            Opts::new(
                "sideline_processor_dlq_records_total",
                "Records sent to the dead-letter topic, by reason.",
            ),
            &["reason"],
        )?;
        r.register(Box::new(dlq.clone()))?;
        for reason in ["late", "time_jump", "undecodable", "invalid"] {
            dlq.with_label_values(&[reason]);
        }
        let alerts = IntCounterVec::new(
            Opts::new(
                "sideline_processor_alerts_produced_total",
                "Alert lifecycle events produced, by kind.",
            ),
            &["kind"],
        )?;
        r.register(Box::new(alerts.clone()))?;
        for k in sideline_engine::AlertKind::ALL {
            alerts.with_label_values(&[k.as_str()]);
        }
        let lag = IntGaugeVec::new(
            Opts::new(
                "sideline_processor_consumer_lag_records",
                "Records not yet consumed, by partition.",
            ),
            &["partition"],
        )?;
        r.register(Box::new(lag.clone()))?;
        let event_time = GaugeVec::new(
            Opts::new(
                "sideline_processor_partition_event_time_seconds",
                "A partition's stream time (newest sample; moves with the wall clock while idle), Unix seconds of event time, by partition.",
            ),
            &["partition"],
        )?;
        r.register(Box::new(event_time.clone()))?;
        let idle = IntGaugeVec::new(
            Opts::new(
                "sideline_processor_partition_idle",
                "1 while a partition is read to its end and quiet for the idle time, by partition.",
            ),
            &["partition"],
        )?;
        r.register(Box::new(idle.clone()))?;
        let hist = |name: &str, help: &str, b: Vec<f64>| -> Result<Histogram, prometheus::Error> {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(b))?;
            r.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            r.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(ProcessorMetrics {
            records: counter(
                r,
                "sideline_processor_records_consumed_total",
                "Records consumed from the samples topic.",
            )?,
            samples: counter(
                r,
                "sideline_processor_samples_total",
                "Samples accepted by the engines.",
            )?,
            duplicate_batches: counter(
                r,
                "sideline_processor_duplicate_batches_total",
                "Batches dropped as duplicate deliveries (device, seq).",
            )?,
            coalesced_batches: counter(
                r,
                "sideline_processor_coalesced_batches_total",
                "Batches that arrived inside records ingest coalesced.",
            )?,
            replay_skipped: counter(
                r,
                "sideline_processor_replay_skipped_total",
                "Records skipped because a restored snapshot covers them.",
            )?,
            late_samples: counter(
                r,
                "sideline_processor_late_samples_total",
                "Samples refused as later than the allowed lateness.",
            )?,
            time_jump_samples: counter(
                r,
                "sideline_processor_time_jump_samples_total",
                "Samples far ahead of their player's clock that later batches did not confirm.",
            )?,
            sessions_closed: counter(
                r,
                "sideline_processor_sessions_closed_total",
                "Player sessions closed after session_idle_s of silence (their series removed).",
            )?,
            players_forgotten: counter(
                r,
                "sideline_processor_players_forgotten_total",
                "Players forgotten after forget_after_s of silence (engine and state dropped).",
            )?,
            dlq,
            metrics_out: counter(
                r,
                "sideline_processor_metrics_produced_total",
                "Per-second snapshots produced.",
            )?,
            alerts_out: alerts,
            restores: counter(
                r,
                "sideline_processor_restores_total",
                "Players restored from the state topic.",
            )?,
            restore_rejected: counter(
                r,
                "sideline_processor_restores_rejected_total",
                "Snapshots not restored (other format or parameter version).",
            )?,
            snapshots: counter(
                r,
                "sideline_processor_snapshots_written_total",
                "State snapshots written.",
            )?,
            checkpoints: counter(
                r,
                "sideline_processor_checkpoints_total",
                "Checkpoints completed (outputs acknowledged, offsets committed).",
            )?,
            restore_failed: counter(
                r,
                "sideline_processor_restore_failures_total",
                "Partitions whose state could not be read; their players restarted without it.",
            )?,
            commit_failures: counter(
                r,
                "sideline_processor_commit_failures_total",
                "Offset commits that failed (the next checkpoint commits again).",
            )?,
            output_failures: counter(
                r,
                "sideline_processor_output_failures_total",
                "Output records Kafka refused or that could not be queued; each restarts the processor from its last checkpoint.",
            )?,
            partitions_revoked: counter(
                r,
                "sideline_processor_partitions_revoked_total",
                "Partitions taken from this instance by a group rebalance (a member joined or left, a session timed out); the new owner repeats, identically, the seconds since their last snapshot.",
            )?,
            rejoins: counter(
                r,
                "sideline_processor_group_rejoins_total",
                "Group rejoins forced because a partition was owned by no live member.",
            )?,
            restarts: counter(
                r,
                "sideline_processor_restarts_total",
                "Restarts from the last checkpoint (new consumer, state restored) after an output failed; a fatal producer error also rebuilds the producer.",
            )?,
            self_stalls: counter(
                r,
                "sideline_processor_self_stalls_total",
                "Ticks that found the processor had stood still for over a second (SIGSTOP, a paused machine); idle partitions were not advanced over that time.",
            )?,
            checkpoint_seconds: hist(
                "sideline_processor_checkpoint_duration_seconds",
                "Checkpoint taken to its offsets committed (every output before it acknowledged; the consume loop does not wait).",
                vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            )?,
            latency: hist(
                "sideline_processor_event_to_output_seconds",
                "Event time of a closed second to its snapshot being produced.",
                vec![
                    0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 10.0, 30.0, 60.0,
                ],
            )?,
            lag,
            event_time,
            idle,
            partitions: gauge(
                "sideline_processor_assigned_partitions",
                "Partitions assigned to this instance.",
            )?,
            players: gauge(
                "sideline_processor_players",
                "Players held by this instance.",
            )?,
            checkpoints_waiting: gauge(
                "sideline_processor_checkpoints_waiting",
                "Checkpoints waiting for the acknowledgement of the outputs before them.",
            )?,
            pending_outputs: gauge(
                "sideline_processor_pending_outputs",
                "Outputs produced and not yet acknowledged.",
            )?,
            player: PlayerGauges::new(r)?,
        })
    }

    /// Remove a partition's series (it moved to another instance).
    pub fn forget_partition(&self, partition: i32) {
        let label = partition.to_string();
        let _ = self.lag.remove_label_values(&[&label]);
        let _ = self.event_time.remove_label_values(&[&label]);
        let _ = self.idle.remove_label_values(&[&label]);
    }
}

//! Conversions between engine types and their protobuf forms.

use sideline_engine::alerts::{AlertEvent, AlertKind, Lifecycle, Resolution, Severity};
use sideline_engine::fatigue::FatigueMarkers;
use sideline_engine::profile::{HamstringHistory, Sex, Susceptibility};
use sideline_engine::risk::{Band, Block, Term, TermState};
use sideline_engine::sample::Coord;
use sideline_engine::{AthleteProfile, Baseline, Batch, PlayerMetrics, Reading, Signal};

use crate::pb;

/// The protobuf band.
pub fn band(b: Band) -> pb::Band {
    match b {
        Band::Green => pb::Band::Green,
        Band::Amber => pb::Band::Amber,
        Band::Red => pb::Band::Red,
    }
}

/// A score term as protobuf.
pub fn term(t: &Term) -> pb::Term {
    pb::Term {
        id: t.id.as_str().to_string(),
        block: match t.block {
            Block::A => "A",
            Block::B => "B",
            Block::C => "C",
            Block::D => "D",
        }
        .to_string(),
        points: t.points,
        state: match t.state {
            TermState::Fired => pb::term::State::Fired,
            TermState::Clear => pb::term::State::Clear,
            TermState::Unknown => pb::term::State::Unknown,
        } as i32,
        value: t.value,
        threshold: t.threshold,
        label: t.id.label().to_string(),
    }
}

fn fatigue(f: &FatigueMarkers) -> pb::Fatigue {
    pb::Fatigue {
        peak_window_hsr_m: f.peak_window_hsr_m,
        post_peak_decrement: f.post_peak_decrement,
        last_block_hsr_change: f.last_block_hsr_change,
        load_per_m_change: f.load_per_m_change,
        vertical_share_change: f.vertical_share_change,
        blocks: f
            .blocks
            .iter()
            .map(|b| pb::Block {
                index: b.index,
                distance_m: b.distance_m,
                hsr_m: b.hsr_m,
                accdec: b.accdec,
                load_per_m: b.load_per_m,
                vertical_share: b.vertical_share,
                hsr_change: b.hsr_change,
            })
            .collect(),
    }
}

/// The stable snake_case name of a wire alert kind (`unspecified` for the unset value).
pub fn alert_kind_name(k: pb::alert::Kind) -> &'static str {
    use pb::alert::Kind;
    match k {
        Kind::StrainRisk => "strain_risk",
        Kind::StrainRiskRising => "strain_risk_rising",
        Kind::SprintSpike => "sprint_spike",
        Kind::Fatigue => "fatigue",
        Kind::Device => "device",
        Kind::PipelineLag => "pipeline_lag",
        Kind::Unspecified => "unspecified",
    }
}

/// An alert lifecycle event as protobuf (for `sideline.alerts.v1`).
pub fn alert(a: &AlertEvent) -> pb::Alert {
    use pb::alert::{Kind, Severity as S, State};
    pb::Alert {
        id: a.id.clone(),
        kind: match a.kind {
            AlertKind::StrainRisk => Kind::StrainRisk,
            AlertKind::StrainRiskRising => Kind::StrainRiskRising,
            AlertKind::SprintSpike => Kind::SprintSpike,
            AlertKind::Fatigue => Kind::Fatigue,
            AlertKind::Device => Kind::Device,
        } as i32,
        severity: match a.severity {
            Severity::Info => S::Info,
            Severity::Warning => S::Warning,
            Severity::Critical => S::Critical,
        } as i32,
        state: match a.state {
            Lifecycle::Firing => State::Firing,
            Lifecycle::Updated => State::Updated,
            Lifecycle::Resolved => State::Resolved,
        } as i32,
        player_id: a.player.to_string(),
        team_id: a.team.to_string(),
        session_id: a.session.to_string(),
        t_us: a.t,
        since_us: a.since,
        value: if a.value.is_finite() { a.value } else { -1.0 },
        threshold: a.threshold,
        band: band(a.band) as i32,
        terms: a.terms.iter().map(term).collect(),
        completeness: matches!(a.kind, AlertKind::StrainRisk | AlertKind::StrainRiskRising)
            .then_some(a.completeness),
        band_floor: a.band_floor,
        forecast: Some(pb::Forecast {
            to_amber_min: a.forecast.to_amber_min,
            to_red_min: a.forecast.to_red_min,
            to_red_long_rate_min: a.forecast.to_red_long_rate_min,
            full_time_in_min: a.forecast.full_time_in_min,
        }),
        summary: a.summary.clone(),
        params_version: a.params_version.to_string(),
        resolution: match a.resolution {
            None => pb::alert::Resolution::Unspecified,
            Some(Resolution::Cleared) => pb::alert::Resolution::Cleared,
            Some(Resolution::Superseded) => pb::alert::Resolution::Superseded,
            Some(Resolution::SessionEnded) => pb::alert::Resolution::SessionEnded,
        } as i32,
    }
}

/// A per-second snapshot as protobuf (for `sideline.metrics.v1`).
pub fn metrics(m: &PlayerMetrics) -> pb::PlayerMetrics {
    let t = &m.totals;
    pb::PlayerMetrics {
        player_id: m.player.to_string(),
        team_id: m.team.to_string(),
        session_id: m.session.to_string(),
        t_us: m.t,
        params_version: m.params_version.to_string(),
        status: Some(pb::DeviceStatus {
            signal: match m.status.signal {
                Signal::Ok => pb::device_status::Signal::Ok,
                Signal::PoorFix => pb::device_status::Signal::PoorFix,
                Signal::NoSignal => pb::device_status::Signal::NoSignal,
            } as i32,
            last_fix_age_s: m.status.last_fix_age_s,
        }),
        totals: Some(pb::Totals {
            minutes: t.minutes,
            distance_m: t.distance_m,
            walk_m: t.walk_m,
            jog_m: t.jog_m,
            run_m: t.run_m,
            moderate_m: t.moderate_m,
            hsr_m: t.hsr_m,
            v24_m: t.v24_m,
            sprint_m: t.sprint_m,
            hmld_m: t.hmld_m,
            max_speed_mps: t.max_speed_mps,
            sprints: t.sprints,
            sprint_effort_m: t.sprint_effort_m,
            hs_efforts: t.hs_efforts,
            vmax_exposures: t.vmax_exposures.to_vec(),
            vmax_ref_mps: t.vmax_ref_mps,
            vmax_is_default: t.vmax_is_default,
            vmax_from_history: t.vmax_from_history,
            vmax_band_m: t.vmax_band_m.to_vec(),
            off_pitch_min: t.off_pitch_min,
            off_pitch_m: t.off_pitch_m,
            rhi_bouts: t.rhi_bouts,
            accelerations: t.accelerations,
            decelerations: t.decelerations,
            accelerations_moderate: t.accelerations_moderate,
            decelerations_moderate: t.decelerations_moderate,
            load: t.load,
            load_axes: t.load_axes.to_vec(),
            load_per_min: t.load_per_min,
            load_per_m: t.load_per_m,
            vertical_share: t.vertical_share,
            hr: Some(pb::HeartRateTotals {
                zone_s: t.hr.zone_s.to_vec(),
                high_s: t.hr.high_s,
                trimp_edwards: t.hr.trimp_edwards,
                trimp_banister: t.hr.trimp_banister,
                current_bpm: t.hr.current_bpm,
                max_bpm: t.hr.max_bpm,
            }),
            hr_anchors_default: t.hr_anchors_default,
        }),
        windows: m
            .windows
            .iter()
            .map(|w| pb::WindowValues {
                length_s: w.length_s,
                distance_m: w.distance_m,
                hsr_m: w.hsr_m,
                sprint_m: w.sprint_m,
                accdec: w.accdec,
                load: w.load,
                peak_distance_m: w.peak_distance_m,
                peak_hsr_m: w.peak_hsr_m,
                peak_sprint_m: w.peak_sprint_m,
                peak_accdec: w.peak_accdec,
                peak_load: w.peak_load,
            })
            .collect(),
        fatigue: Some(fatigue(&m.fatigue)),
        risk: Some(pb::Risk {
            score: m.risk.score,
            band: band(m.risk.band) as i32,
            blocks: m.risk.blocks.to_vec(),
            // Labels are static per term id; the per-second stream carries ids only.
            terms: m
                .risk
                .terms
                .iter()
                .map(|t| pb::Term {
                    label: String::new(),
                    ..term(t)
                })
                .collect(),
            completeness: Some(m.risk.completeness),
            ceiling: m.risk.ceiling,
            band_floor: m.risk.band_floor,
        }),
        forecast: Some(pb::Forecast {
            to_amber_min: m.forecast.to_amber_min,
            to_red_min: m.forecast.to_red_min,
            to_red_long_rate_min: m.forecast.to_red_long_rate_min,
            full_time_in_min: m.forecast.full_time_in_min,
        }),
        quality: Some(pb::Quality {
            artefacts: m.quality.artefacts,
            poor_fix_s: m.quality.poor_fix_s,
            gaps: m.quality.gaps,
            late: m.quality.late,
            duplicates: m.quality.duplicates,
            forced_releases: m.quality.forced_releases,
        }),
    }
}

/// The device batches a samples record holds: itself, or those ingest coalesced into it (in
/// order; see `SampleBatch.coalesced`).
pub fn batches(mut b: pb::SampleBatch) -> Vec<pb::SampleBatch> {
    let mut parts = std::mem::take(&mut b.coalesced);
    if parts.is_empty() || !b.samples.is_empty() {
        parts.push(b);
    }
    parts
}

/// An engine batch as protobuf (what simulators and replays publish).
pub fn batch(b: &Batch) -> pb::SampleBatch {
    pb::SampleBatch {
        device_id: b.device.clone(),
        team_id: b.team.clone(),
        session_id: b.session.clone(),
        seq: b.seq,
        samples: b
            .samples
            .iter()
            .map(|s| pb::Sample {
                t_us: s.t,
                reading: Some(match s.reading {
                    Reading::Position(p) => pb::sample::Reading::Position(pb::Position {
                        coord: Some(match p.coord {
                            Coord::Xy { x, y } => {
                                pb::position::Coord::Xy(pb::PitchXy { x_m: x, y_m: y })
                            }
                            Coord::LatLon { lat, lon } => pb::position::Coord::Latlon(pb::LatLon {
                                lat_deg: lat,
                                lon_deg: lon,
                            }),
                        }),
                        speed_mps: p.speed,
                        satellites: p.satellites.map(u32::from),
                        hdop: p.hdop,
                    }),
                    Reading::Imu(m) => pb::sample::Reading::Imu(pb::Imu {
                        ax_g: m.ax,
                        ay_g: m.ay,
                        az_g: m.az,
                        gyro: None,
                    }),
                    Reading::HeartRate(bpm) => pb::sample::Reading::HeartRate(pb::HeartRate {
                        bpm,
                        rr_ms: Vec::new(),
                    }),
                }),
            })
            .collect(),
        player_id: String::new(),
        received_at_us: 0,
        device_session_id: String::new(),
        coalesced: Vec::new(),
    }
}

/// An athlete profile as protobuf.
pub fn profile_to_pb(p: &AthleteProfile) -> pb::AthleteProfile {
    let s = &p.susceptibility;
    pb::AthleteProfile {
        player_id: p.player.clone(),
        display_name: p.display_name.clone().unwrap_or_default(),
        position: p.position.clone().unwrap_or_default(),
        vmax_mps: p.vmax_mps,
        hr_max: p.hr_max,
        hr_rest: p.hr_rest,
        sex: match p.sex {
            Sex::Male => pb::athlete_profile::Sex::Male,
            Sex::Female => pb::athlete_profile::Sex::Female,
        } as i32,
        hamstring: s.hamstring.map(|h| {
            (match h {
                HamstringHistory::None => pb::athlete_profile::HamstringHistory::None,
                HamstringHistory::Previous => pb::athlete_profile::HamstringHistory::Previous,
                HamstringHistory::Recent => pb::athlete_profile::HamstringHistory::Recent,
            }) as i32
        }),
        nordic_n: s.nordic_n,
        bflh_fascicle_cm: s.bflh_fascicle_cm,
        previous_acl: s.previous_acl,
        previous_calf: s.previous_calf,
        older_age_band: s.older_age_band,
        squad_number: p.squad_number.unwrap_or(0),
    }
}

/// An athlete profile from protobuf (unknown enum values fall back to the defaults).
pub fn profile_from_pb(p: &pb::AthleteProfile) -> AthleteProfile {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    AthleteProfile {
        player: p.player_id.clone(),
        display_name: nonempty(&p.display_name),
        position: nonempty(&p.position),
        squad_number: (p.squad_number > 0).then_some(p.squad_number),
        vmax_mps: p.vmax_mps,
        hr_max: p.hr_max,
        hr_rest: p.hr_rest,
        sex: match pb::athlete_profile::Sex::try_from(p.sex) {
            Ok(pb::athlete_profile::Sex::Female) => Sex::Female,
            _ => Sex::Male,
        },
        susceptibility: Susceptibility {
            // An unknown enum value (a newer producer) is "not recorded" rather than a guess.
            hamstring: p.hamstring.and_then(|h| {
                match pb::athlete_profile::HamstringHistory::try_from(h) {
                    Ok(pb::athlete_profile::HamstringHistory::None) => Some(HamstringHistory::None),
                    Ok(pb::athlete_profile::HamstringHistory::Previous) => {
                        Some(HamstringHistory::Previous)
                    }
                    Ok(pb::athlete_profile::HamstringHistory::Recent) => {
                        Some(HamstringHistory::Recent)
                    }
                    Err(_) => None,
                }
            }),
            nordic_n: p.nordic_n,
            bflh_fascicle_cm: p.bflh_fascicle_cm,
            previous_acl: p.previous_acl,
            previous_calf: p.previous_calf,
            older_age_band: p.older_age_band,
        },
    }
}

/// A baseline as protobuf.
pub fn baseline_to_pb(player: &str, b: &Baseline, as_of: &str) -> pb::Baseline {
    pb::Baseline {
        player_id: player.to_string(),
        days_of_history: b.days_of_history,
        hsr_7d_mean_m: b.hsr_7d_mean_m,
        hsr_7d_sd_m: b.hsr_7d_sd_m,
        hsr_prev6d_m: b.hsr_prev6d_m,
        hsr_prior7d_m: b.hsr_prior7d_m,
        moderate_prev6d_m: b.moderate_prev6d_m,
        moderate_prior7d_m: b.moderate_prior7d_m,
        v24_prev6d_m: b.v24_prev6d_m,
        vmax95_in_prev6d: b.vmax95_in_prev6d,
        low_chronic_hsr: b.low_chronic_hsr,
        sprint_1min_norm_m: b.sprint_1min_norm_m,
        session_hsr_p90_m: b.session_hsr_p90_m,
        session_sprint_p90_m: b.session_sprint_p90_m,
        as_of: as_of.to_string(),
        days_since_vmax90: b.days_since_vmax90,
        days_since_vmax95: b.days_since_vmax95,
        vmax_observed_mps: b.vmax_observed_mps,
    }
}

/// A baseline from protobuf.
pub fn baseline_from_pb(b: &pb::Baseline) -> Baseline {
    Baseline {
        days_of_history: b.days_of_history,
        hsr_7d_mean_m: b.hsr_7d_mean_m,
        hsr_7d_sd_m: b.hsr_7d_sd_m,
        hsr_prev6d_m: b.hsr_prev6d_m,
        hsr_prior7d_m: b.hsr_prior7d_m,
        moderate_prev6d_m: b.moderate_prev6d_m,
        moderate_prior7d_m: b.moderate_prior7d_m,
        v24_prev6d_m: b.v24_prev6d_m,
        vmax95_in_prev6d: b.vmax95_in_prev6d,
        low_chronic_hsr: b.low_chronic_hsr,
        sprint_1min_norm_m: b.sprint_1min_norm_m,
        session_hsr_p90_m: b.session_hsr_p90_m,
        session_sprint_p90_m: b.session_sprint_p90_m,
        days_since_vmax90: b.days_since_vmax90,
        days_since_vmax95: b.days_since_vmax95,
        vmax_observed_mps: b.vmax_observed_mps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{Limits, validate};
    use prost::Message;
    use sideline_engine::{Engine, Params, Sample};

    #[test]
    fn an_engine_batch_survives_protobuf_and_validation_unchanged() {
        let b = Batch {
            device: "pod-1".into(),
            team: "t".into(),
            session: "s".into(),
            seq: 3,
            samples: vec![
                Sample::xy(1_700_000_000_000_000, 1.0, 2.0, Some(3.5)),
                Sample::imu(1_700_000_000_010_000, 0.1, 0.2, 1.1),
                Sample::hr(1_700_000_000_000_000, 140.0),
            ],
        };
        let bytes = batch(&b).encode_to_vec();
        let back = validate(
            &pb::SampleBatch::decode(&bytes[..]).unwrap(),
            &Limits::default(),
            None,
        )
        .unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn profiles_and_baselines_round_trip() {
        let p = AthleteProfile {
            player: "p1".into(),
            display_name: Some("A. Player".into()),
            squad_number: Some(14),
            vmax_mps: Some(9.4),
            sex: Sex::Female,
            susceptibility: Susceptibility {
                hamstring: Some(HamstringHistory::Recent),
                nordic_n: Some(300.0),
                previous_calf: Some(true),
                previous_acl: Some(false),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(profile_from_pb(&profile_to_pb(&p)), p);
        // "Not recorded" and a recorded "no" stay apart on the wire.
        let back = profile_from_pb(&profile_to_pb(&p)).susceptibility;
        assert_eq!(back.older_age_band, None);
        assert_eq!(back.previous_acl, Some(false));
        let none = Susceptibility {
            hamstring: Some(HamstringHistory::None),
            ..Default::default()
        };
        let q = AthleteProfile {
            susceptibility: none.clone(),
            ..p.clone()
        };
        assert_eq!(profile_from_pb(&profile_to_pb(&q)).susceptibility, none);
        let b = Baseline {
            hsr_7d_mean_m: Some(1500.0),
            vmax95_in_prev6d: Some(false),
            ..Default::default()
        };
        assert_eq!(baseline_from_pb(&baseline_to_pb("p1", &b, "2026-01-10")), b);
    }

    #[test]
    fn a_snapshot_encodes_with_every_term() {
        let mut e: Engine = Engine::new(Params::default(), true);
        let mut out = sideline_engine::Outputs::default();
        for k in 0..30 {
            let b = Batch {
                device: "pod-1".into(),
                team: "t".into(),
                session: "s".into(),
                seq: k + 1,
                samples: vec![Sample::xy(
                    1_700_000_000_000_000 + k as i64 * 100_000,
                    0.0,
                    0.0,
                    Some(4.0),
                )],
            };
            e.ingest_batch(&b, &mut out);
        }
        e.finish(&mut out);
        let m = metrics(out.metrics.last().unwrap());
        let decoded = pb::PlayerMetrics::decode(&m.encode_to_vec()[..]).unwrap();
        assert_eq!(decoded, m);
        let risk = decoded.risk.unwrap();
        assert_eq!(risk.terms.len(), 16);
        assert!(risk.terms.iter().all(|t| !t.id.is_empty()));
    }
}

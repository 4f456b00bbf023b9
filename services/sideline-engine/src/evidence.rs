//! The evidence behind each of the 16 terms of the strain-risk score: its source, the effect
//! size reported, the outcome and horizon it was reported for, and whether the term's points
//! are the natural log of that effect or a judgement. Figures from `notes/domain.md` §7 and
//! §10, which cite the papers. `EVIDENCE.md` is [`markdown`] (a test compares them); the bench
//! serves the same table at `/evidence`.
//!
//! Read it before trusting a number: the effects come from univariate studies in different
//! sports (Australian and Gaelic football as well as soccer), with different thresholds and
//! outcomes, and 7 of the 16 terms' points are judgements with no published effect behind the
//! value. The bands (amber 3, red 5) are a judgement too, to be tuned to a club's alert rate.

use crate::risk::TermId;

/// Where a term's points come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The natural log of the published effect size (rounded).
    LogOfEffect,
    /// One step is the log of a published effect; the other is interpolated (a judgement).
    PartlyLog,
    /// A judgement: no published effect size gives this value.
    Judgement,
}

impl Basis {
    /// In words.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::LogOfEffect => "ln of the published effect",
            Basis::PartlyLog => "partly: one step ln of the effect, the other a judgement",
            Basis::Judgement => "judgement",
        }
    }
}

/// One term's evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// The term.
    pub term: TermId,
    /// Its points as the default parameters give them.
    pub points: &'static str,
    /// Source(s).
    pub source: &'static str,
    /// Effect size reported (with its interval where known).
    pub effect: &'static str,
    /// Outcome the effect was reported for.
    pub outcome: &'static str,
    /// Horizon: the exposure period before the injury, or the follow-up.
    pub horizon: &'static str,
    /// Where the points come from.
    pub basis: Basis,
}

/// The 16 terms, in score order.
pub const EVIDENCE: [Evidence; 16] = [
    Evidence {
        term: TermId::AHamstringHistory,
        points: "1.0 previous, 1.6 recent",
        source: "Green et al. 2020, BJSM (meta-analysis, 78 studies)",
        effect: "any prior HSI RR 2.7; HSI in the current or previous season RR 4.8",
        outcome: "hamstring strain injury",
        horizon: "follow-up of the included cohorts (mostly a season)",
        basis: Basis::LogOfEffect,
    },
    Evidence {
        term: TermId::ANordic,
        points: "1.5",
        source: "Timmins et al. 2016, BJSM 50:1524 (152 elite soccer players)",
        effect: "Nordic eccentric force < 337 N: RR 4.4",
        outcome: "hamstring strain injury",
        horizon: "one season after the test",
        basis: Basis::LogOfEffect,
    },
    Evidence {
        term: TermId::AFascicle,
        points: "1.4",
        source: "Timmins et al. 2016, BJSM 50:1524",
        effect: "biceps femoris long-head fascicle < 10.56 cm: RR 4.1",
        outcome: "hamstring strain injury",
        horizon: "one season after the scan",
        basis: Basis::LogOfEffect,
    },
    Evidence {
        term: TermId::APreviousAcl,
        points: "0.5",
        source: "Green et al. 2020, BJSM",
        effect: "prior ACL injury RR 1.7",
        outcome: "hamstring strain injury",
        horizon: "follow-up of the included cohorts",
        basis: Basis::LogOfEffect,
    },
    Evidence {
        term: TermId::APreviousCalf,
        points: "0.4",
        source: "Green et al. 2020, BJSM",
        effect: "prior calf strain RR 1.5",
        outcome: "hamstring strain injury",
        horizon: "follow-up of the included cohorts",
        basis: Basis::LogOfEffect,
    },
    Evidence {
        term: TermId::AOlderAge,
        points: "0.5",
        source: "Green et al. 2020, BJSM",
        effect: "older age SMD 1.6 (no risk ratio reported)",
        outcome: "hamstring strain injury",
        horizon: "follow-up of the included cohorts",
        basis: Basis::Judgement,
    },
    Evidence {
        term: TermId::BHsrZ,
        points: "1.0 at z ≥ 1, 1.9 at z ≥ 2",
        source: "Duhig et al. 2016, BJSM 50:1536 (Australian football, 2 seasons)",
        effect: "higher-than-typical HSR in the week before: OR 6.44 (2.99–14.41); the unit of the OR is not confirmed",
        outcome: "hamstring strain injury",
        horizon: "the week before the injury",
        basis: Basis::PartlyLog,
    },
    Evidence {
        term: TermId::BWeekRise,
        points: "1.8 (> 19.8 km/h rise ≥ 75 m), else 1.1 (> 14.4 km/h rise ≥ 350 m)",
        source: "Malone et al. 2018, JSAMS 21:257 (elite soccer)",
        effect: "weekly change of > 19.8 km/h distance 75–105 m: OR 6.12; of > 14.4 km/h distance 351–455 m: OR 3.02",
        outcome: "lower-limb injury (not hamstring alone)",
        horizon: "the week after the change",
        basis: Basis::LogOfEffect,
    },
    Evidence {
        term: TermId::BV24Week,
        points: "1.2",
        source: "Ruddy et al. 2018, BJSM 52:919 (220 Australian footballers)",
        effect: "weekly > 24 km/h distance > 653 m: RR 3.4 (1.6–7.2), AUC 0.63",
        outcome: "hamstring strain injury",
        horizon: "strongest within 7–14 days",
        basis: Basis::LogOfEffect,
    },
    Evidence {
        term: TermId::CNoVmaxExposure,
        points: "1.0",
        source: "Malone et al. 2017, JSAMS 20:250 (Gaelic football); Buchheit et al. 2022 (preprint)",
        effect: "≥ 95 % Vmax exposure protective: OR 0.12 against 85 % (ln 1/0.12 would be 2.1)",
        outcome: "injury (any, Malone); match hamstring injury (Buchheit)",
        horizon: "the following week",
        basis: Basis::Judgement,
    },
    Evidence {
        term: TermId::CLowChronic,
        points: "0.5",
        source: "Malone et al. 2018; Hulin et al. 2016; Bowen et al. 2017",
        effect: "high chronic load offsets risk (no effect size for a bottom tertile)",
        outcome: "lower-limb and any injury",
        horizon: "weeks",
        basis: Basis::Judgement,
    },
    Evidence {
        term: TermId::DSprintBurst,
        points: "0.2 per 11 m above norm, at most 1.0",
        source: "Gregson et al. 2020 (Qatar Stars League)",
        effect: "+2 SD (+11 m) sprint distance in the preceding minute: OR 1.22 (1.12–1.33)",
        outcome: "muscle injury (any muscle)",
        horizon: "the minute before the injury",
        basis: Basis::LogOfEffect,
    },
    Evidence {
        term: TermId::DVolume,
        points: "0.5",
        source: "the spike logic of Duhig 2016 and Ruddy 2018 applied to one session",
        effect: "none published for a session above the player's p90",
        outcome: "—",
        horizon: "the session",
        basis: Basis::Judgement,
    },
    Evidence {
        term: TermId::DFatigue,
        points: "0.5",
        source: "Mohr et al. 2003; Bradley & Noakes 2013",
        effect: "post-peak HSR decrement norm −8 to −12 %; −35 to −45 % HSR by the last 15 min (performance, not injury)",
        outcome: "none (a fatigue marker)",
        horizon: "the session",
        basis: Basis::Judgement,
    },
    Evidence {
        term: TermId::DNeuromuscular,
        points: "0.5",
        source: "Barrett et al. 2016; Cormack et al. 2013",
        effect: "load per metre rises and vertical share falls when fatigued (descriptive)",
        outcome: "none (a fatigue marker)",
        horizon: "the session",
        basis: Basis::Judgement,
    },
    Evidence {
        term: TermId::DDecelCluster,
        points: "0.3",
        source: "Harper et al. 2022; Gurchiek et al. 2024",
        effect: "mechanistic: hard decelerations load the hamstrings eccentrically (no injury effect size)",
        outcome: "none",
        horizon: "the minute",
        basis: Basis::Judgement,
    },
];

/// The table as Markdown (the body of `EVIDENCE.md`).
pub fn markdown() -> String {
    let mut out = String::from(
        "| term | points | source | effect | outcome | horizon | points are |\n|---|---|---|---|---|---|---|\n",
    );
    for e in &EVIDENCE {
        out.push_str(&format!(
            "| `{}` {} | {} | {} | {} | {} | {} | {} |\n",
            e.term.as_str(),
            e.term.label(),
            e.points,
            e.source,
            e.effect,
            e.outcome,
            e.horizon,
            e.basis.as_str()
        ));
    }
    out
}

/// `s` with `& < > "` escaped for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The table as one self-contained HTML page (served by the bench and the alerter at
/// `/evidence`); `back`: a link back (the bench page), if any. Judgement rows are marked.
pub fn html(back: Option<&str>) -> String {
    let mut rows = String::new();
    for e in &EVIDENCE {
        rows.push_str(&format!(
            "<tr><td><b>{}</b><br><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td></tr>\n",
            escape(e.term.label()),
            e.term.as_str(),
            escape(e.points),
            escape(e.source),
            escape(e.effect),
            escape(e.outcome),
            escape(e.horizon),
            if e.basis == Basis::Judgement { " class=\"judged\"" } else { "" },
            escape(e.basis.as_str()),
        ));
    }
    let back = back.map_or(String::new(), |b| {
        format!("<p><a href=\"{}\">← bench</a></p>", escape(b))
    });
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sideline — the evidence behind the score</title><style>\
         body{{font:16px/1.4 system-ui,sans-serif;margin:1em;color:#111;background:#fff}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:.3em .5em;vertical-align:top}}\
         .judged{{background:#fff3cd}}</style></head><body>{back}\
         <h1>The evidence behind the score</h1>\
         <p>The score ranks players for attention; it is not an injury probability. Nine terms \
         score the natural log of a published effect; seven (marked) are judgements, and so \
         are the bands (amber 3, red 5). The effects are univariate, from soccer, Australian \
         and Gaelic football, several for lower-limb or any muscle injury rather than \
         hamstring strain; models of this kind predict individual injuries poorly (AUC about \
         0.6).</p><table><thead><tr><th>Term</th><th>Points</th><th>Source</th><th>Effect</th>\
         <th>Outcome</th><th>Horizon</th><th>Points are</th></tr></thead><tbody>\n{rows}</tbody></table>\
         </body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_md_holds_this_table() {
        // UPDATE_GOLDEN=1 rewrites the table in EVIDENCE.md (the text above it is kept).
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../EVIDENCE.md");
        let text = std::fs::read_to_string(&path).unwrap();
        let head = text.split("| term |").next().unwrap().to_string();
        if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
            std::fs::write(&path, format!("{head}{}", markdown())).unwrap();
            return;
        }
        assert_eq!(
            text,
            format!("{head}{}", markdown()),
            "EVIDENCE.md differs from evidence.rs: run with UPDATE_GOLDEN=1"
        );
    }

    #[test]
    fn every_term_once_in_score_order_and_seven_judgements() {
        let terms: Vec<TermId> = EVIDENCE.iter().map(|e| e.term).collect();
        assert_eq!(terms, TermId::ALL.to_vec());
        let judged = EVIDENCE
            .iter()
            .filter(|e| e.basis == Basis::Judgement)
            .count();
        assert_eq!(judged, 7);
    }

    #[test]
    fn points_that_are_logs_match_the_parameters() {
        // ln RR/OR, rounded to one decimal, for each term marked as such.
        let p = crate::params::RiskParams::default();
        let ln = |x: f64| (x.ln() * 10.0).round() / 10.0;
        for (points, effect) in [
            (p.prev_hsi, 2.7),
            (p.recent_hsi, 4.8),
            (p.nordic_low, 4.4),
            (p.short_fascicles, 4.1),
            (p.prev_acl, 1.7),
            (p.prev_calf, 1.5),
            (p.hsr_z2, 6.44),
            (p.rise_hsr, 6.12),
            (p.rise_moderate, 3.02),
            (p.v24_week, 3.4),
            (p.sprint_burst_per_step, 1.22),
        ] {
            assert!(
                (points - ln(effect)).abs() < 0.051,
                "{points} vs ln {effect}"
            );
        }
    }
}

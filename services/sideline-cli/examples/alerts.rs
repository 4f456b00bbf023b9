//! Development aid: the alert events of the synthetic match, per player.
use sideline_engine::Params;
use sideline_sim::MatchConfig;
use sideline_sim::offline::run_match;
fn main() {
    let seed = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let run = run_match(
        MatchConfig {
            seed,
            ..Default::default()
        },
        Params::default(),
        |_| {},
    );
    for a in &run.alerts {
        println!(
            "{} {:<8} {:<18} {:<9} {:<8} {:?} {}",
            sideline_engine::alerts::clock(a.t),
            a.player,
            a.kind.as_str(),
            format!("{:?}", a.state),
            format!("{:?}", a.severity),
            a.resolution,
            a.summary
        );
    }
}

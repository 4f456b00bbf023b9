//! `sideline`: one binary for every role. See `sideline --help`.

use clap::{Parser, Subcommand};
use sideline_cli::{analyze, demo, replay, roster_cmd, services, simulate};
#[cfg(feature = "archive")]
use sideline_cli::{baselines_cmd, history_cmd, report_cmd, reprocess_cmd, sql_cmd};

#[cfg(not(feature = "archive"))]
const AFTER_HELP: &str = "This is the lean build (`make demo`): the archive commands (archive, \
sql, reprocess, baselines, report, history) are not in it; `make build` builds them.";
#[cfg(feature = "archive")]
const AFTER_HELP: &str = "";

/// Sideline: live wearable telemetry for team sport.
#[derive(Debug, Parser)]
#[command(name = "sideline", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline in one process with a simulated match: no brokers needed.
    Demo(demo::DemoArgs),
    /// Run the engine over recorded tracking files (or the synthetic match) and print per-player figures.
    Analyze(analyze::AnalyzeArgs),
    /// The ingest service: MQTT → validated samples on Kafka, bad input to the dead-letter topic.
    Ingest(services::ServiceArgs),
    /// The processor: samples from Kafka → per-player engines → metrics, alerts, gauges.
    Process(services::ServiceArgs),
    /// The alerter: alert events from Kafka → grouped team-chat messages (Slack, Teams, Discord, webhook).
    Alert(services::ServiceArgs),
    /// The bench view for staff: live squad, alerts and acknowledgements from Kafka, behind a sign-in.
    Bench(services::BenchArgs),
    #[cfg(feature = "archive")]
    /// The archiver: samples, metrics and alerts from Kafka → Parquet by team / date / session.
    Archive(services::ServiceArgs),
    #[cfg(feature = "archive")]
    /// SQL over the archive (DataFusion): tables samples, metrics, alerts, sessions, players.
    Sql(sql_cmd::SqlArgs),
    #[cfg(feature = "archive")]
    /// Re-run an archived session through the engine (other parameters, zero-phase filter); report the differences.
    Reprocess(reprocess_cmd::ReprocessArgs),
    #[cfg(feature = "archive")]
    /// Daily loads and trends per player from the archive; publish the risk score's baselines.
    Baselines(baselines_cmd::BaselinesArgs),
    #[cfg(feature = "archive")]
    /// Post-session and trend reports from the archive, as CSV and a self-contained HTML page.
    Report(report_cmd::ReportArgs),
    #[cfg(feature = "archive")]
    /// Write weeks of synthetic sessions into the archive (a history for baselines).
    History(history_cmd::HistoryArgs),
    /// Publish the synthetic match over MQTT, paced in real time or faster.
    Simulate(simulate::SimulateArgs),
    /// Publish recorded tracking files over MQTT as the pods would, paced by their timestamps.
    Replay(replay::ReplayArgs),
    /// Roster tools.
    #[command(subcommand)]
    Roster(roster_cmd::RosterCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(&args),
        #[cfg(feature = "archive")]
        Command::History(args) => history_cmd::run(&args),
        other => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(async move {
                match other {
                    Command::Demo(a) => {
                        sideline_common::telemetry::init(
                            sideline_common::telemetry::LogFormat::Text,
                            // rumqttd logs every closed probe connection as an error.
                            "warn,rumqttd=off",
                        );
                        let stop = sideline_common::shutdown::on_signal();
                        demo::run(&a, stop).await
                    }
                    Command::Ingest(a) => services::ingest(&a).await,
                    Command::Process(a) => services::process(&a).await,
                    Command::Alert(a) => services::alert(&a).await,
                    Command::Bench(a) => services::bench(&a).await,
                    #[cfg(feature = "archive")]
                    Command::Archive(a) => services::archive(&a).await,
                    #[cfg(feature = "archive")]
                    Command::Sql(a) => sql_cmd::run(&a).await,
                    #[cfg(feature = "archive")]
                    Command::Reprocess(a) => reprocess_cmd::run(&a).await,
                    #[cfg(feature = "archive")]
                    Command::Baselines(a) => baselines_cmd::run(&a).await,
                    #[cfg(feature = "archive")]
                    Command::Report(a) => report_cmd::run(&a).await,
                    Command::Simulate(a) => {
                        let stop = sideline_common::shutdown::on_signal();
                        simulate::run(&a, stop).await
                    }
                    Command::Replay(a) => {
                        let stop = sideline_common::shutdown::on_signal();
                        replay::run(&a, stop).await
                    }
                    Command::Roster(c) => roster_cmd::run(&c).await,
                    Command::Analyze(_) => Ok(()),
                    #[cfg(feature = "archive")]
                    Command::History(_) => Ok(()),
                }
            }),
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sideline: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

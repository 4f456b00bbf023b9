//! `sideline`: one binary for every role. See `sideline --help`.

use clap::{Parser, Subcommand};
use sideline_cli::analyze;

/// Sideline: live wearable telemetry for team sport.
#[derive(Debug, Parser)]
#[command(name = "sideline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine over recorded tracking files and print per-player figures.
    Analyze(analyze::AnalyzeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sideline: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

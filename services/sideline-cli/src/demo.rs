//! `sideline demo`: the whole pipeline in one process (see `sideline-demo`), with the
//! synthetic match published to its embedded broker in real time or faster. Prints where to
//! look, prints alerts as they happen, and stops cleanly on Ctrl-C. Real pods and scripts may
//! publish to the same broker meanwhile.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Args;
use sideline_demo::chat::ChatConfig;
use sideline_demo::{Demo, DemoConfig};
use tokio_util::sync::CancellationToken;

use crate::publish::PublishArgs;
use crate::simulate::{SimulateArgs, match_config};

/// Arguments of `sideline demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Times real time for the simulated match (0 = as fast as possible).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Random seed of the match.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Minutes per half.
    #[arg(long, default_value_t = 45.0)]
    pub half_min: f64,
    /// Half-time break, minutes.
    #[arg(long, default_value_t = 15.0)]
    pub break_min: f64,
    /// HTTP address of the API, `/metrics` and the page.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// MQTT 3.1.1 address of the embedded broker.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt: SocketAddr,
    /// MQTT 5 address of the embedded broker.
    #[arg(long, default_value = "127.0.0.1:1884")]
    pub mqtt5: SocketAddr,
    /// Do not start the simulator (only real devices or scripts publish).
    #[arg(long)]
    pub no_sim: bool,
    /// Three substitutes per team on the bench (streaming, warming up) until 60′, 70′ and
    /// 80′, with their lineup: the bench shows their minutes on the pitch only.
    #[arg(long)]
    pub substitutions: bool,
    /// Also send alerts to this chat webhook (Slack, Teams Workflows, Discord or any JSON
    /// receiver). A secret: prefer the environment variable.
    #[arg(long, env = "SIDELINE_DEMO_WEBHOOK", hide_env_values = true)]
    pub webhook: Option<String>,
    /// Body format for `--webhook`: slack, teams, discord or webhook (Alertmanager-shaped JSON).
    #[arg(long, default_value = "slack")]
    pub webhook_format: String,
    /// Outbox directory for `--webhook` (default: a fresh temporary directory per run).
    #[arg(long)]
    pub outbox: Option<std::path::PathBuf>,
    /// Take the players' load-history baselines from this archive (a directory or
    /// `s3://bucket/prefix`, e.g. written by `sideline history`) as of today, in place of the
    /// per-role settings; players with no history there keep theirs.
    #[cfg(feature = "archive")]
    #[arg(long)]
    pub history: Option<std::path::PathBuf>,
}

/// `sideline demo`.
pub async fn run(a: &DemoArgs, stop: CancellationToken) -> Result<()> {
    let sim_args = SimulateArgs {
        publish: PublishArgs {
            // The simulator speaks MQTT 5.
            mqtt: a.mqtt5.to_string(),
            config: None,
            speed: a.speed,
            json: false,
        },
        seed: a.seed,
        half_min: a.half_min,
        break_min: a.break_min,
        session: "demo-match".into(),
        print_roster: false,
        substitutions: a.substitutions,
        raw_gnss: false,
    };
    let chat = match &a.webhook {
        Some(url) => Some(ChatConfig {
            url: url.clone(),
            format: a.webhook_format.parse().map_err(anyhow::Error::msg)?,
            outbox_dir: a.outbox.clone(),
        }),
        None => None,
    };
    // Baselines before the match is chosen, so that its kick-off time is when publishing
    // starts, not the seconds of reading the archive earlier (cosmetic: the simulator paces
    // from its first batch and the processor from the newest sample, not from kick-off).
    #[cfg(feature = "archive")]
    let baselines = match &a.history {
        Some(dir) => {
            let b = crate::baselines_cmd::from_archive(
                dir,
                chrono_tz::UTC,
                crate::publish::now_us(),
                &sideline_engine::Params::default().history,
            )
            .await?;
            eprintln!(
                "Baselines of {} players computed from the history in {}.",
                b.len(),
                dir.display()
            );
            b
        }
        None => Default::default(),
    };
    #[cfg(not(feature = "archive"))]
    let baselines = Default::default();
    // One match, chosen once: the demo's roster and what the simulator publishes agree.
    let mcfg = match_config(&sim_args, crate::publish::now_us());
    let listener = tokio::net::TcpListener::bind(a.http)
        .await
        .with_context(|| format!("cannot listen on {}", a.http))?;
    let demo = Demo::start(
        DemoConfig {
            mqtt_v4: a.mqtt,
            mqtt_v5: a.mqtt5,
            sim: mcfg.clone(),
            speed: a.speed,
            console: true,
            chat,
            baselines,
        },
        listener,
    )
    .await?;
    eprintln!(
        "Sideline demo running.\n  bench view  http://{0}/\n  API         http://{0}/api/squad\n  metrics     http://{0}/metrics\n  MQTT        {1} (3.1.1), {2} (5): publish on sideline/v1/<team>/<device>/<stream>\nCtrl-C to stop.",
        demo.http, demo.broker.v4, demo.broker.v5
    );
    if !a.no_sim {
        crate::simulate::publish_match(&sim_args.publish, mcfg, stop.clone()).await?;
        eprintln!("The simulated match is over; still serving (Ctrl-C to stop).");
    }
    stop.cancelled().await;
    eprintln!("Stopping.");
    demo.shutdown().await;
    Ok(())
}

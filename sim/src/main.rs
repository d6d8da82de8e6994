//! `wa-sim serve ...`: parse, set up logs, build, run until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use wa_sim::cli::{Cli, Command};
use wa_sim::Simulator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs piped to a file stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,webrtc=warn,rtc=warn")),
        )
        .init();
    let Command::Serve(args) = Cli::parse().command;
    let config = args.into_config();
    let listen = config.listen;
    let webhook_url = config.webhook_url.clone();
    let simulator = Simulator::build(config)?;
    tracing::info!(%listen, port = simulator.port(), %webhook_url, "wa-sim serving");
    let stopper = simulator.stopper();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("stopping");
        stopper.stop().await;
    });
    simulator
        .run_until_stopped()
        .await
        .context("wa-sim stopped with an error")
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

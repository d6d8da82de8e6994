use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use sha2::Digest;
use switchboard::config::Settings;
use switchboard::startup::Application;
use switchboard::{cli, telemetry};

/// Switchboard: WhatsApp webhooks and calls on your own servers.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "SWITCHBOARD_CONFIG",
        default_value = "switchboard.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve,
    /// Lists or retries delivery jobs.
    Deliveries {
        #[command(subcommand)]
        action: DeliveriesAction,
    },
    /// Queues a stored event again for its routes.
    Replay {
        event_id: String,
        /// Only this route.
        #[arg(long)]
        route: Option<String>,
    },
    /// Reads or changes the number's calling settings at Meta.
    Calling {
        #[command(subcommand)]
        action: CallingAction,
    },
    /// Prints the SHA-256 of a token read from stdin, for an agent's `token_sha256`.
    HashToken,
}

#[derive(Subcommand)]
enum CallingAction {
    /// Shows whether calling is enabled, and the other calling settings.
    Status,
    /// Turns calling on for the configured number.
    Enable,
    /// Turns calling off.
    Disable,
}

#[derive(Subcommand)]
enum DeliveriesAction {
    /// Newest first.
    List {
        /// pending, delivered or failed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        route: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Makes a failed job due now, with a fresh retry schedule.
    Retry { id: i64 },
}

fn load(path: &Path) -> anyhow::Result<Settings> {
    Settings::load(path).with_context(|| format!("configuration {}", path.display()))
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init();
    match cli.command {
        Command::Serve => {
            let app = Application::build(load(&cli.config)?).await?;
            app.run_until_stopped().await
        }
        Command::Deliveries { action } => {
            let settings = load(&cli.config)?;
            match action {
                DeliveriesAction::List {
                    state,
                    route,
                    limit,
                } => {
                    cli::list_deliveries(&settings, state.as_deref(), route.as_deref(), limit).await
                }
                DeliveriesAction::Retry { id } => cli::retry_delivery(&settings, id).await,
            }
        }
        Command::Replay { event_id, route } => {
            cli::replay(&load(&cli.config)?, &event_id, route.as_deref()).await
        }
        Command::Calling { action } => {
            let settings = load(&cli.config)?;
            match action {
                CallingAction::Status => cli::calling_status(&settings).await,
                CallingAction::Enable => cli::set_calling(&settings, true).await,
                CallingAction::Disable => cli::set_calling(&settings, false).await,
            }
        }
        Command::HashToken => {
            let mut token = String::new();
            std::io::stdin().read_line(&mut token)?;
            println!(
                "{}",
                hex::encode(sha2::Sha256::digest(token.trim_end().as_bytes()))
            );
            Ok(())
        }
    }
}

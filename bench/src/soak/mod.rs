//! The soak (`bench/soak.sh`): mixed signed webhooks at a steady rate for minutes while the
//! router is killed and restarted and its one consumer flaps; then whether every event the
//! router acknowledged reached the consumer.
//!
//! - [`mix`]: the deliveries, every shape of Meta's samples in turn, made new each time;
//! - [`drive`] and [`tally`]: the load generator (`soak-drive`), which writes the events
//!   each 200's receipt lists to the owed file;
//! - [`consumer`]: the flapping consumer (`soak-consumer`), which logs every POST;
//! - [`ledger`], [`series`] and [`report`]: the report (`soak-report`), from the files below.

pub mod consumer;
pub mod drive;
mod ledger;
mod mix;
pub mod report;
mod series;
mod tally;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::seconds;

/// What a soak run leaves in its directory.
pub mod files {
    /// The load generator's summary: one JSON line.
    pub const DRIVE: &str = "drive.json";
    /// Events listed in the receipts of 200s (see [`super::drive`]).
    pub const OWED: &str = "owed.tsv";
    /// Every POST the consumer answered (see [`super::consumer`]).
    pub const CONSUMER_LOG: &str = "consumer.log";
    /// The script's samples of the router and the store (see [`super::series`]).
    pub const SAMPLES: &str = "samples.tsv";
    /// What the script did when (see [`super::series`]).
    pub const TIMELINE: &str = "timeline.tsv";
}

#[derive(Args)]
pub struct DriveArgs {
    /// The router's webhook endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/webhook")]
    pub url: String,
    /// Meta app secret the router checks `X-Hub-Signature-256` with.
    #[arg(long, default_value = "test-app-secret")]
    pub secret: String,
    /// Webhooks per second, open loop.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of load.
    #[arg(long, value_parser = seconds)]
    pub duration: Duration,
    /// Connections, hence the most webhooks in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub connections: u16,
    /// Seconds before an unanswered webhook counts as failed.
    #[arg(long, value_parser = seconds, default_value = "10")]
    pub timeout: Duration,
    /// Attempts per webhook in all, as Meta sends a delivery again until it gets a 200.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub attempts: u32,
    /// Seconds between attempts.
    #[arg(long, value_parser = seconds, default_value = "2")]
    pub retry_delay: Duration,
    /// Seconds after the load's end during which queued webhooks and retries still go.
    #[arg(long, value_parser = seconds, default_value = "30")]
    pub grace: Duration,
    /// Unix time in ms to start at (the schedule every process of the soak shares).
    #[arg(long)]
    pub start_at_ms: Option<u64>,
    /// Where the events of each 200's receipt are written.
    #[arg(long)]
    pub owed: PathBuf,
}

#[derive(Args)]
pub struct ConsumerArgs {
    /// Address to listen on (a fixed port: the router's route names it).
    #[arg(long)]
    pub listen: SocketAddr,
    /// Log every POST is appended to before it is answered.
    #[arg(long)]
    pub log: PathBuf,
    /// Unix time in ms the windows count from.
    #[arg(long)]
    pub epoch_ms: u64,
    /// FROM:TO, seconds after the epoch: every POST then is answered 503. Repeatable.
    #[arg(long)]
    pub unavailable: Vec<consumer::Window>,
}

#[derive(Args)]
pub struct ReportArgs {
    /// The soak's directory, holding the files it writes.
    #[arg(long)]
    pub dir: PathBuf,
    /// Only say whether every owed event has been delivered: exit status 0 if so, 3 if not.
    #[arg(long)]
    pub check: bool,
}

impl DriveArgs {
    pub fn options(self, run_id: u32) -> anyhow::Result<drive::DriveOptions> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            anyhow::bail!("--rate must be a positive number, got {}", self.rate);
        }
        if self.duration.is_zero() {
            anyhow::bail!("--duration must be more than 0");
        }
        Ok(drive::DriveOptions {
            url: self.url,
            secret: self.secret,
            rate: self.rate,
            duration: self.duration,
            connections: self.connections.into(),
            timeout: self.timeout,
            attempts: self.attempts,
            retry_delay: self.retry_delay,
            grace: self.grace,
            start_at_ms: self.start_at_ms,
            owed: self.owed,
            run_id,
        })
    }
}

impl ConsumerArgs {
    pub fn options(self) -> consumer::FlapOptions {
        consumer::FlapOptions {
            listen: self.listen,
            log: self.log,
            epoch_ms: self.epoch_ms,
            unavailable: self.unavailable,
        }
    }
}

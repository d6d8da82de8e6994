//! `switchboard-bench`: load and memory measurements for Switchboard's webhook ingest.
//!
//! - `ingest`: posts unique, signed webhooks to `POST /webhook` at a fixed rate or flat out,
//!   and reports answers and latency;
//! - `sink`: a delivery consumer that answers 200 and counts, for fan-out throughput;
//! - `rss`: a process's resident memory.

mod bodies;
mod client;
mod ingest;
mod report;
mod rss;
mod sink;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::ingest::{IngestOptions, Load};

#[derive(Parser)]
#[command(version, about = "Benchmarks for Switchboard's webhook ingest")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Post unique signed webhooks and report throughput and latency.
    Ingest(IngestArgs),
    /// Answer 200 to every POST and count them; `GET /stats` returns the counts.
    Sink(SinkArgs),
    /// Print VmRSS and VmHWM of a process, in KiB.
    Rss(RssArgs),
}

#[derive(Args)]
struct IngestArgs {
    /// The router's webhook endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/webhook")]
    url: String,
    /// Meta app secret the router checks `X-Hub-Signature-256` with.
    #[arg(long, default_value = "test-app-secret")]
    secret: String,
    /// Requests per second, open loop (latency counted from each request's due time).
    #[arg(
        long,
        required_unless_present = "saturate",
        conflicts_with = "saturate"
    )]
    rate: Option<f64>,
    /// Keep every connection busy (closed loop) instead of pacing.
    #[arg(long)]
    saturate: bool,
    /// Seconds measured, after the warm-up.
    #[arg(long, value_parser = seconds)]
    duration: Duration,
    /// Seconds of the same load before measuring starts.
    #[arg(long, value_parser = seconds, default_value = "0")]
    warmup: Duration,
    /// Connections, hence the most requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    connections: u16,
    /// Seconds before an unanswered request counts as an error.
    #[arg(long, value_parser = seconds, default_value = "10")]
    timeout: Duration,
    /// Runtime threads; one leaves the other cores to the server being measured.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Also print the report as one JSON line, last.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SinkArgs {
    /// Address to listen on; port 0 picks a free one (printed at start).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Milliseconds to wait before answering each POST, to play a slow consumer.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Runtime threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
}

#[derive(Args)]
struct RssArgs {
    #[arg(long)]
    pid: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Parses non-negative, finite seconds (fractions allowed).
fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(value).map_err(|e| format!("{e}"))
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest(args) => ingest(args),
        Command::Sink(args) => sink(args),
        Command::Rss(args) => rss(args),
    }
}

fn runtime(threads: u16) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.into())
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let load = match args.rate {
        Some(rate) if rate.is_finite() && rate > 0.0 => Load::Rate(rate),
        Some(rate) => bail!("--rate must be a positive number, got {rate}"),
        None => Load::Saturate,
    };
    if args.duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    let options = IngestOptions {
        url: args.url,
        secret: args.secret,
        load,
        duration: args.duration,
        warmup: args.warmup,
        connections: args.connections.into(),
        timeout: args.timeout,
        run_id: run_id(),
    };
    let report = runtime(args.threads)?.block_on(ingest::run(options))?;
    println!("{report}");
    if args.json {
        println!("{}", report.to_json());
    }
    Ok(())
}

/// Differs between runs (clock and pid), so their event ids never collide.
fn run_id() -> u32 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(16)
    });
    nanos ^ std::process::id().rotate_left(8)
}

fn sink(args: SinkArgs) -> anyhow::Result<()> {
    runtime(args.threads)?.block_on(async {
        let sink = sink::Sink::bind(args.listen, Duration::from_millis(args.delay_ms)).await?;
        // Scripts read the port from this line when started on port 0.
        println!("listening on {}", sink.local_addr()?);
        sink.run().await
    })
}

fn rss(args: RssArgs) -> anyhow::Result<()> {
    let memory = rss::read(args.pid)?;
    if args.json {
        println!("{}", serde_json::to_string(&memory)?);
    } else {
        println!(
            "pid {}: VmRSS {} KiB, VmHWM {} KiB",
            memory.pid, memory.vm_rss_kib, memory.vm_hwm_kib
        );
    }
    Ok(())
}

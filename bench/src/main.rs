//! `switchboard-bench`: load and memory measurements for Switchboard.
//!
//! - `ingest`: posts unique, signed webhooks to `POST /webhook` at a fixed rate or flat out,
//!   and reports answers and latency;
//! - `push`: agents on `/ws` while incoming-call webhooks arrive at a fixed rate; reports
//!   webhook-to-WebSocket latency and any push an agent did not get;
//! - `sockets`: holds idle agent sockets open, for the router's memory per connection;
//! - `sink`: a delivery consumer that answers 200 and counts, for fan-out throughput;
//! - `rss`: a process's resident memory (and CPU time);
//! - `amplify`: posts deliveries of 1,000 status items sharing one 2 MB value, and reports
//!   the answer time and the router's peak memory;
//! - `soak-drive`, `soak-consumer`, `soak-report`: the soak's load, its flapping consumer
//!   and its report (`bench/soak.sh`).

mod amplify;
mod bodies;
mod client;
#[cfg(test)]
mod fake_router;
mod ingest;
mod latency;
mod push;
mod rss;
mod sink;
mod soak;
mod sockets;
mod ws;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::amplify::{AmplifyOptions, Shape};
use crate::bodies::Mix;
use crate::ingest::{IngestOptions, Load};
use crate::push::PushOptions;
use crate::sockets::SocketsOptions;
use crate::ws::Tokens;

#[derive(Parser)]
#[command(
    version,
    about = "Benchmarks for Switchboard's webhook ingest and agent WebSockets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Post unique signed webhooks and report throughput and latency.
    Ingest(IngestArgs),
    /// Hold agent WebSockets while incoming-call webhooks arrive at a fixed rate; report
    /// webhook-to-push latency and missing pushes.
    Push(PushArgs),
    /// Open idle agent WebSockets and hold them (for the router's memory per connection).
    Sockets(SocketsArgs),
    /// Answer 200 to every POST and count them; `GET /stats` returns the counts.
    Sink(SinkArgs),
    /// Print VmRSS and VmHWM of a process, in KiB, and its CPU seconds.
    Rss(RssArgs),
    /// Post deliveries whose status items share one large value; report answer times and
    /// the router's memory.
    Amplify(AmplifyArgs),
    /// The soak's load: mixed signed webhooks at a fixed rate, retried until answered 200;
    /// writes the events each receipt lists to the owed file.
    SoakDrive(soak::DriveArgs),
    /// The soak's consumer: logs every POST, answers 503 in the given windows.
    SoakConsumer(soak::ConsumerArgs),
    /// The soak's report, from the files a run left; or, with --check, whether every owed
    /// event was delivered.
    SoakReport(soak::ReportArgs),
}

#[derive(Args)]
struct AmplifyArgs {
    /// The router's webhook endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/webhook")]
    url: String,
    /// Meta app secret the router checks `X-Hub-Signature-256` with.
    #[arg(long, default_value = "test-app-secret")]
    secret: String,
    /// The router's process id, for its VmRSS and VmHWM before and after.
    #[arg(long)]
    pid: Option<u32>,
    /// Where the delivery's bulk sits.
    #[arg(long, value_enum, default_value_t = Shape::Extra)]
    shape: Shape,
    /// Status items in each delivery.
    #[arg(long, default_value_t = 1000)]
    items: usize,
    /// Each delivery's size in bytes, about.
    #[arg(long, default_value_t = 2_000_000)]
    bytes: usize,
    /// Deliveries posted one after another, each with new ids.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Seconds before an unanswered delivery counts as an error.
    #[arg(long, value_parser = seconds, default_value = "60")]
    timeout: Duration,
    /// Also print the report as one JSON line, last.
    #[arg(long)]
    json: bool,
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

/// Which token each agent socket presents (`Authorization: Bearer`).
#[derive(Args)]
struct TokenArgs {
    /// One token for every socket.
    #[arg(
        long,
        required_unless_present = "token_prefix",
        conflicts_with = "token_prefix"
    )]
    token: Option<String>,
    /// Socket i presents PREFIX followed by (i mod --tokens): one agent per token.
    #[arg(long)]
    token_prefix: Option<String>,
    /// With --token-prefix: how many numbered tokens (default: one per socket).
    #[arg(long, requires = "token_prefix", value_parser = clap::value_parser!(u32).range(1..))]
    tokens: Option<u32>,
}

impl TokenArgs {
    fn tokens(self, sockets: usize) -> Tokens {
        match (self.token, self.token_prefix) {
            (Some(token), _) => Tokens::One(token),
            (None, prefix) => Tokens::Numbered {
                prefix: prefix.unwrap_or_default(),
                count: self.tokens.map_or(sockets, |n| n as usize),
            },
        }
    }
}

#[derive(Args)]
struct PushArgs {
    /// The router's webhook endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/webhook")]
    webhook_url: String,
    /// The router's agent WebSocket.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    ws_url: String,
    /// Meta app secret the router checks `X-Hub-Signature-256` with.
    #[arg(long, default_value = "test-app-secret")]
    secret: String,
    #[command(flatten)]
    tokens: TokenArgs,
    /// Agent sockets, all open (each past its hello) before the first webhook.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    agents: u32,
    /// Webhooks per second, open loop.
    #[arg(long)]
    rate: f64,
    /// Seconds measured, after the warm-up.
    #[arg(long, value_parser = seconds)]
    duration: Duration,
    /// Seconds of the same load before measuring starts (its pushes are still checked).
    #[arg(long, value_parser = seconds, default_value = "0")]
    warmup: Duration,
    /// Webhook connections, hence the most webhooks in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    connections: u16,
    /// Seconds before an unanswered webhook counts as an error.
    #[arg(long, value_parser = seconds, default_value = "10")]
    timeout: Duration,
    /// Seconds to open a socket and receive its hello.
    #[arg(long, value_parser = seconds, default_value = "10")]
    connect_timeout: Duration,
    /// Seconds after the last webhook answer to wait for pushes still owed.
    #[arg(long, value_parser = seconds, default_value = "10")]
    drain_timeout: Duration,
    /// Runtime threads; one leaves the other cores to the server being measured.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Also print the report as one JSON line, last.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SocketsArgs {
    /// The router's agent WebSocket.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    #[command(flatten)]
    tokens: TokenArgs,
    /// Sockets to open.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
    /// Sockets being opened at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    parallel: u16,
    /// Seconds to open a socket and receive its hello.
    #[arg(long, value_parser = seconds, default_value = "10")]
    connect_timeout: Duration,
    /// Seconds to hold the sockets once all are open; without it, until SIGINT/SIGTERM.
    #[arg(long, value_parser = seconds)]
    hold: Option<Duration>,
    /// Also stop holding when stdin reaches end of file.
    #[arg(long)]
    until_stdin_closes: bool,
    /// Runtime threads.
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
        Command::Push(args) => push(args),
        Command::Sockets(args) => sockets(args),
        Command::Sink(args) => sink(args),
        Command::Rss(args) => rss(args),
        Command::Amplify(args) => amplify(args),
        Command::SoakDrive(args) => soak_drive(args),
        Command::SoakConsumer(args) => runtime(1)?.block_on(soak::consumer::run(args.options())),
        Command::SoakReport(args) => soak_report(&args),
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
        mix: Mix::Ingest,
        log: None,
    };
    let report = runtime(args.threads)?.block_on(ingest::run(options))?;
    println!("{report}");
    if args.json {
        println!("{}", report.to_json());
    }
    Ok(())
}

fn push(args: PushArgs) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number, got {}", args.rate);
    }
    if args.duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    let agents = args.agents as usize;
    let options = PushOptions {
        webhook_url: args.webhook_url,
        ws_url: args.ws_url,
        secret: args.secret,
        tokens: args.tokens.tokens(agents),
        agents,
        rate: args.rate,
        duration: args.duration,
        warmup: args.warmup,
        connections: args.connections.into(),
        timeout: args.timeout,
        connect_timeout: args.connect_timeout,
        drain_timeout: args.drain_timeout,
        run_id: run_id(),
    };
    let report = runtime(args.threads)?.block_on(push::run(options))?;
    println!("{report}");
    if args.json {
        println!("{}", report.to_json());
    }
    Ok(())
}

fn sockets(args: SocketsArgs) -> anyhow::Result<()> {
    let count = args.count as usize;
    let options = SocketsOptions {
        url: args.url,
        tokens: args.tokens.tokens(count),
        count,
        parallel: args.parallel.into(),
        connect_timeout: args.connect_timeout,
        hold: args.hold,
        until_stdin_closes: args.until_stdin_closes,
    };
    let report = runtime(args.threads)?.block_on(sockets::run(options))?;
    println!("{report}");
    if args.json {
        println!("{}", report.to_json());
    }
    Ok(())
}

fn amplify(args: AmplifyArgs) -> anyhow::Result<()> {
    let options = AmplifyOptions {
        url: args.url,
        secret: args.secret,
        pid: args.pid,
        shape: args.shape,
        items: args.items,
        bytes: args.bytes,
        repeat: args.repeat,
        timeout: args.timeout,
        run_id: run_id(),
    };
    let report = runtime(1)?.block_on(amplify::run(options))?;
    println!("{report}");
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

fn soak_drive(args: soak::DriveArgs) -> anyhow::Result<()> {
    let options = args.options(run_id())?;
    let report = runtime(1)?.block_on(soak::drive::run(options))?;
    println!("{report}");
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn soak_report(args: &soak::ReportArgs) -> anyhow::Result<()> {
    if args.check {
        if !soak::report::check(&args.dir)? {
            // Scripts poll on this: 3 is "not yet", apart from errors (1) and usage (2).
            std::process::exit(3);
        }
    } else {
        print!("{}", soak::report::render(&args.dir)?);
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
    #[derive(serde::Serialize)]
    struct Reading {
        #[serde(flatten)]
        memory: rss::Memory,
        /// User + system CPU seconds so far.
        cpu_s: f64,
    }
    let memory = rss::read(args.pid)?;
    let cpu_s = rss::cpu_seconds(args.pid)?;
    if args.json {
        println!("{}", serde_json::to_string(&Reading { memory, cpu_s })?);
    } else {
        println!(
            "pid {}: VmRSS {} KiB, VmHWM {} KiB, CPU {cpu_s:.2} s",
            memory.pid, memory.vm_rss_kib, memory.vm_hwm_kib
        );
    }
    Ok(())
}

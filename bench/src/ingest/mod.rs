//! The ingest load: signed webhooks posted to the router at a fixed rate or flat out.
//!
//! Fixed rate is open-loop: request `n` is due at `start + n / rate` whatever happened to the
//! requests before it, and its latency is counted from that due time. A stalled server thus
//! shows up as latency for every request it held back (no coordinated omission), while at most
//! `connections` requests are ever in flight. Saturation is closed-loop: each connection sends
//! its next request as soon as the previous one is answered.
//!
//! The run is here; what it is asked to do is in [`options`], what it counts in [`tally`],
//! the per-request log in [`request_log`], and what it reports in [`report`].

mod options;
mod report;
mod request_log;
mod tally;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::sync::Mutex;

pub use options::{IngestOptions, Load};
pub use report::Report;
pub use request_log::{Logged, RequestLog};
use tally::Observed;

use crate::bodies::{BodyFactory, BodySource};
use crate::client::{Connection, Outcome, Target};
use crate::latency::micros;

/// How late after the end a fixed-rate request released in time may still be sent.
const LATE_GRACE: Duration = Duration::from_millis(100);

/// The timetable every worker follows.
#[derive(Clone, Copy, Debug)]
struct Plan {
    start: Instant,
    /// Saturation sends nothing from here on; fixed rate has nothing due from here on.
    end: Instant,
    /// Saturation: requests sent before this are warm-up.
    measure_from: Instant,
    pacing: Pacing,
}

#[derive(Clone, Copy, Debug)]
enum Pacing {
    /// Request `n < total` is due at `start + n / rate`; the first `warmup` are warm-up.
    Open {
        rate: f64,
        warmup: u64,
        total: u64,
    },
    Closed,
}

impl Plan {
    fn due(&self, n: u64, rate: f64) -> Instant {
        // f64 holds every request count this tool can reach exactly.
        self.start + Duration::from_secs_f64(n as f64 / rate)
    }

    /// Whether a request may still leave at `now`. Fixed rate allows a short grace, so the
    /// last requests, released a moment late by a busy machine, still go; requests queued
    /// longer are dropped (and reported as missed) rather than stretching the run.
    fn may_send(&self, now: Instant) -> bool {
        match self.pacing {
            Pacing::Open { .. } => now < self.end + LATE_GRACE,
            Pacing::Closed => now < self.end,
        }
    }

    fn is_measured(&self, n: u64, due: Instant) -> bool {
        match self.pacing {
            Pacing::Open { warmup, .. } => n >= warmup,
            Pacing::Closed => due >= self.measure_from,
        }
    }
}

/// Requests due in the first `seconds` of a run at `rate`: those with `n / rate < seconds`.
/// A fixed-rate run sends `slots(rate, warmup + duration)` requests, the first
/// `slots(rate, warmup)` of them warm-up.
pub fn slots(rate: f64, seconds: Duration) -> u64 {
    // Saturating float-to-int conversion; rates and durations are validated positive.
    (rate * seconds.as_secs_f64()).ceil() as u64
}

/// Hands request numbers to workers.
enum Dispatch {
    /// Fixed rate: numbers released by the pacer at their due times, queued while every
    /// connection is busy.
    Paced(Mutex<UnboundedReceiver<u64>>),
    /// Saturation: the next number, at once.
    Counter(AtomicU64),
}

impl Dispatch {
    async fn next(&self) -> Option<u64> {
        match self {
            Self::Paced(released) => released.lock().await.recv().await,
            Self::Counter(next) => Some(next.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

/// Releases request numbers at their due times from an OS thread. Tokio's timer rounds
/// deadlines up to the next millisecond, which would add up to 1 ms to every latency counted
/// from the due time; a thread's sleep is accurate to tens of microseconds.
fn spawn_pacer(plan: Plan, rate: f64, total: u64) -> (UnboundedReceiver<u64>, JoinHandle<()>) {
    let (release, released) = mpsc::unbounded_channel();
    let pacer = std::thread::spawn(move || {
        for n in 0..total {
            let due = plan.due(n, rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if release.send(n).is_err() {
                break; // every worker has stopped
            }
        }
    });
    (released, pacer)
}

/// Runs the load and returns what was measured.
pub async fn run(options: IngestOptions) -> anyhow::Result<Report> {
    let target = Target::parse(&options.url).await?;
    let factory = BodyFactory::new(&options.secret, options.run_id, options.mix);
    let total = match options.load {
        Load::Rate(rate) => Some(slots(rate, options.warmup + options.duration)),
        Load::Saturate => None,
    };
    // Made before the clock starts, so signing costs nothing during the run.
    let bodies = Arc::new(BodySource::new(factory, total));

    let start = Instant::now();
    let measure_from = start + options.warmup;
    let mut plan = Plan {
        start,
        end: measure_from + options.duration,
        measure_from,
        pacing: Pacing::Closed,
    };
    let (dispatch, pacer) = match options.load {
        Load::Rate(rate) => {
            let total = total.unwrap_or(0);
            let warmup = slots(rate, options.warmup);
            plan.pacing = Pacing::Open {
                rate,
                warmup,
                total,
            };
            let (released, pacer) = spawn_pacer(plan, rate, total);
            (Dispatch::Paced(Mutex::new(released)), Some(pacer))
        }
        Load::Saturate => (Dispatch::Counter(AtomicU64::new(0)), None),
    };
    let dispatch = Arc::new(dispatch);

    let workers: Vec<_> = (0..options.connections)
        .map(|_| {
            let connection = Connection::new(target.clone(), options.timeout);
            tokio::spawn(worker(
                connection,
                plan,
                bodies.clone(),
                dispatch.clone(),
                options.log.clone(),
            ))
        })
        .collect();
    let mut observed = Observed::new();
    for worker in workers {
        observed.merge(worker.await?);
    }
    if let Some(pacer) = pacer {
        // Workers are gone, so the pacer's next release fails and it returns.
        drop(dispatch);
        tokio::task::spawn_blocking(move || pacer.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    }

    let due_in_window = match plan.pacing {
        Pacing::Open { warmup, total, .. } => Some(total - warmup),
        Pacing::Closed => None,
    };
    Ok(Report::new(&options, observed, measure_from, due_in_window))
}

/// Sends the requests `dispatch` hands out until there are none or the run is over.
async fn worker(
    mut connection: Connection,
    plan: Plan,
    bodies: Arc<BodySource>,
    dispatch: Arc<Dispatch>,
    log: Option<Arc<RequestLog>>,
) -> Observed {
    let mut observed = Observed::new();
    while let Some(n) = dispatch.next().await {
        let Some(body) = bodies.get(n) else { break };
        let due = match plan.pacing {
            Pacing::Open { rate, .. } => plan.due(n, rate),
            Pacing::Closed => Instant::now(),
        };
        if !plan.may_send(Instant::now()) {
            break;
        }

        let sent = Instant::now();
        if let Some(log) = &log {
            log.note_sent(n, due, sent);
        }
        let outcome = connection.post(&body).await;
        let answered = Instant::now();
        if let Some(log) = &log {
            log.note_outcome(n, &outcome);
        }

        if plan.is_measured(n, due) {
            if matches!(outcome, Outcome::Response(_)) {
                observed.latency.saturating_record(micros(answered - due));
                observed.service.saturating_record(micros(answered - sent));
            }
            observed.measured.record(outcome, body.template, answered);
        } else {
            observed.warmup.record(outcome, body.template, answered);
        }
    }
    observed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::bodies::Mix;
    use crate::sink::Sink;

    fn options(url: String, load: Load, duration_ms: u64, connections: usize) -> IngestOptions {
        IngestOptions {
            url,
            secret: "test-app-secret".into(),
            load,
            duration: Duration::from_millis(duration_ms),
            warmup: Duration::from_millis(duration_ms / 2),
            connections,
            timeout: Duration::from_secs(5),
            run_id: 1,
            mix: Mix::Ingest,
            log: None,
        }
    }

    async fn start_sink(delay: Duration) -> (String, impl Fn() -> crate::sink::Stats) {
        let sink = Sink::bind("127.0.0.1:0".parse().unwrap(), delay)
            .await
            .unwrap();
        let url = format!("http://{}/webhook", sink.local_addr().unwrap());
        let stats = sink.stats_reader();
        tokio::spawn(sink.run());
        (url, stats)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_rate_sends_every_due_request_exactly_once() {
        let (url, stats) = start_sink(Duration::ZERO).await;
        let report = run(options(url, Load::Rate(200.0), 500, 4)).await.unwrap();

        assert_eq!((report.sent, report.ok, report.errors), (100, 100, 0));
        assert_eq!((report.warmup.sent, report.warmup.ok), (50, 50));
        assert_eq!(report.missed, Some(0));
        assert_eq!(report.ok_by_template.values().sum::<u64>(), 100);
        let stats = stats();
        assert_eq!((stats.requests, stats.duplicates), (150, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_log_notes_every_request_due_sent_and_answered() {
        let (url, _) = start_sink(Duration::ZERO).await;
        let log = Arc::new(RequestLog::new(slots(200.0, Duration::from_millis(750))));
        let mut options = options(url, Load::Rate(200.0), 500, 4);
        options.log = Some(log.clone());
        let before = Instant::now();
        run(options).await.unwrap();

        assert_eq!(log.len(), 150);
        let mut previous_due = before;
        for n in 0..log.len() {
            assert_eq!(log.outcome(n), Logged::Ok, "request {n}");
            let (due, sent) = log.times(n).unwrap();
            assert!(due >= previous_due && sent >= due, "request {n}");
            previous_due = due;
        }
        assert_eq!(log.outcome(150), Logged::NotSent);
        assert!(log.times(150).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saturation_counts_every_answer_the_server_gave() {
        let (url, stats) = start_sink(Duration::ZERO).await;
        let report = run(options(url, Load::Saturate, 300, 8)).await.unwrap();

        assert!(report.ok > 0);
        assert_eq!((report.errors, report.non_ok, report.missed), (0, 0, None));
        assert_eq!(stats().requests, report.ok + report.warmup.ok);
        assert_eq!(stats().duplicates, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_server_shows_up_as_latency_from_the_due_time() {
        // One connection, a request due every 10 ms, answers taking 50 ms: requests queue.
        // No warm-up: its queued requests would fill the whole measured window.
        let (url, _) = start_sink(Duration::from_millis(50)).await;
        let mut options = options(url, Load::Rate(100.0), 400, 1);
        options.warmup = Duration::ZERO;
        let report = run(options).await.unwrap();

        let latency = report.latency_ms.unwrap();
        let service = report.service_ms.unwrap();
        assert!(service.p99 < 100.0, "service p99 {}", service.p99);
        assert!(
            latency.max > 2.0 * service.max,
            "latency max {}",
            latency.max
        );
        assert!(report.missed.unwrap() > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_server_is_reported_as_errors() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", closed.local_addr().unwrap());
        drop(closed);
        let report = run(options(url, Load::Rate(100.0), 200, 2)).await.unwrap();

        assert_eq!(report.ok, 0);
        assert_eq!(report.errors, report.sent);
        assert!(report.first_error.unwrap().contains("connecting"));
        assert!(report.latency_ms.is_none());
    }
}

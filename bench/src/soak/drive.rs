//! The soak's load: signed webhooks of every shape at a fixed rate (open loop: webhook `n` is
//! due at `n / rate` s whether or not the router is up), each retried like Meta retries a
//! delivery it got no 200 for, and every event the router's receipts list written to the
//! "owed" file: the router has promised each of them to the consumer.
//!
//! Owed file lines: `event id <TAB> kind <TAB> webhook number <TAB> 1 if the receipt called
//! it a duplicate, else 0`.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use hyper::StatusCode;
use serde::Deserialize;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::Mutex;

use super::mix::SoakMix;
use super::tally::{DriveReport, Ending, Tally};
use crate::bodies::SignedBody;
use crate::client::{Connection, Target, TimedOut};
use crate::ingest::slots;

#[derive(Debug)]
pub struct DriveOptions {
    pub url: String,
    pub secret: String,
    pub rate: f64,
    pub duration: Duration,
    pub connections: usize,
    pub timeout: Duration,
    /// Attempts per webhook in all, the first included.
    pub attempts: u32,
    pub retry_delay: Duration,
    /// After the run's end, how long webhooks still queued may be sent and retried.
    pub grace: Duration,
    /// Unix time in ms to start at (the schedule's zero), so other processes can share it.
    pub start_at_ms: Option<u64>,
    pub owed: PathBuf,
    pub run_id: u32,
}

/// How often an idle worker checks whether the run is over.
const POLL: Duration = Duration::from_millis(100);

/// One webhook on its way, with its bytes once made: a retry sends the same bytes.
struct Job {
    n: u64,
    attempt: u32,
    body: Option<SignedBody>,
    /// How the previous attempt ended.
    last: Option<Ending>,
}

/// What the workers share.
struct Run {
    mix: SoakMix,
    options: DriveOptions,
    start: Instant,
    /// Nothing is sent from here on.
    deadline: Instant,
    queue: Mutex<UnboundedReceiver<Job>>,
    retry: UnboundedSender<Job>,
    /// Webhooks released and not yet settled (acknowledged or given up).
    outstanding: AtomicU64,
    pacer_done: AtomicBool,
    tally: StdMutex<Tally>,
    owed: StdMutex<BufWriter<File>>,
    last_settled: StdMutex<Instant>,
}

#[derive(Deserialize)]
struct Receipt {
    events: Vec<ReceiptEvent>,
}

#[derive(Deserialize)]
struct ReceiptEvent {
    id: String,
    kind: String,
    duplicate: bool,
}

pub async fn run(options: DriveOptions) -> anyhow::Result<DriveReport> {
    let target = Target::parse(&options.url).await?;
    let mix = SoakMix::new(&options.secret, options.run_id)?;
    let owed = File::create(&options.owed)
        .with_context(|| format!("creating {}", options.owed.display()))?;
    if let Some(at) = options.start_at_ms {
        tokio::time::sleep(Duration::from_millis(at.saturating_sub(unix_ms()))).await;
    }
    let start = Instant::now();
    let (release, queue) = mpsc::unbounded_channel();
    let run = Arc::new(Run {
        mix,
        start,
        deadline: start + options.duration + options.grace,
        queue: Mutex::new(queue),
        retry: release.clone(),
        outstanding: AtomicU64::new(0),
        pacer_done: AtomicBool::new(false),
        tally: StdMutex::new(Tally::new(SoakMix::names())),
        owed: StdMutex::new(BufWriter::new(owed)),
        last_settled: StdMutex::new(start),
        options,
    });
    let pacer = spawn_pacer(run.clone(), release);
    let workers: Vec<_> = (0..run.options.connections)
        .map(|_| tokio::spawn(worker(run.clone(), target.clone())))
        .collect();
    for worker in workers {
        worker.await.context("a worker panicked")?;
    }
    pacer
        .join()
        .map_err(|_| anyhow::anyhow!("the pacer panicked"))?;
    lock(&run.owed).flush().context("writing the owed file")?;
    let run = Arc::try_unwrap(run).map_err(|_| anyhow::anyhow!("workers still hold the run"))?;
    let elapsed = *lock(&run.last_settled) - run.start;
    let tally = run
        .tally
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let options = run.options;
    Ok(DriveReport {
        url: options.url,
        rate: options.rate,
        duration_s: options.duration.as_secs_f64(),
        connections: options.connections,
        retries: options.attempts.saturating_sub(1),
        retry_delay_s: options.retry_delay.as_secs_f64(),
        run_id: format!("{:08X}", options.run_id),
        elapsed_s: elapsed.as_secs_f64(),
        answer_ms: tally.answer_ms(),
        tally,
    })
}

fn lock<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking worker fails the run anyway; the counts stay usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Releases webhook numbers at their due times from an OS thread (accurate to well under a
/// millisecond, unlike tokio's timer).
fn spawn_pacer(run: Arc<Run>, release: UnboundedSender<Job>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let total = slots(run.options.rate, run.options.duration);
        lock(&run.tally).due = total;
        for n in 0..total {
            // f64 holds every request count this tool can reach exactly.
            let due = run.start + Duration::from_secs_f64(n as f64 / run.options.rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            // Counted before it is queued, so no worker sees the run over while it waits.
            run.outstanding.fetch_add(1, Ordering::SeqCst);
            let job = Job {
                n,
                attempt: 1,
                body: None,
                last: None,
            };
            if release.send(job).is_err() {
                break;
            }
        }
        run.pacer_done.store(true, Ordering::SeqCst);
    })
}

async fn worker(run: Arc<Run>, target: Target) {
    let mut connection = Connection::new(target, run.options.timeout);
    loop {
        let next = {
            let mut queue = run.queue.lock().await;
            tokio::time::timeout(POLL, queue.recv()).await
        };
        match next {
            Ok(Some(job)) => run.attempt(&mut connection, job).await,
            Ok(None) => return,
            Err(_) => {
                let over = run.pacer_done.load(Ordering::SeqCst)
                    && run.outstanding.load(Ordering::SeqCst) == 0;
                if over {
                    return;
                }
            }
        }
    }
}

impl Run {
    async fn attempt(self: &Arc<Self>, connection: &mut Connection, mut job: Job) {
        let shape = shape_of(job.n);
        if Instant::now() >= self.deadline {
            let mut tally = lock(&self.tally);
            match job.last {
                None => tally.never_sent += 1,
                Some(last) => tally.settled(shape, job.attempt - 1, last, (0, 0)),
            }
            drop(tally);
            self.settle();
            return;
        }
        let body = match job.body.take() {
            Some(body) => body,
            None => self.mix.make(job.n, unix_ms() / 1000),
        };
        let sent = Instant::now();
        let second = usize::try_from((sent - self.start).as_secs()).unwrap_or(usize::MAX);
        let result = connection.post_reading(&body).await;
        let took = sent.elapsed();
        let (ending, answer) = classify(result);
        {
            let mut tally = lock(&self.tally);
            tally.attempt(second, job.attempt, ending, took);
            if let Err(error) = &answer {
                tally.error(|| error.clone());
            }
        }
        if let (Ending::Acknowledged, Ok(receipt)) = (ending, &answer) {
            let events = self.record_receipt(job.n, receipt);
            lock(&self.tally).settled(shape, job.attempt, ending, events);
            self.settle();
            return;
        }
        let retry_at = Instant::now() + self.options.retry_delay;
        if job.attempt < self.options.attempts && retry_at < self.deadline {
            let retry = Job {
                n: job.n,
                attempt: job.attempt + 1,
                body: Some(body),
                last: Some(ending),
            };
            let sender = self.retry.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(retry_at.into()).await;
                // The queue lives as long as the run; a failed send means the run is over.
                let _ = sender.send(retry);
            });
        } else {
            lock(&self.tally).settled(shape, job.attempt, ending, (0, 0));
            self.settle();
        }
    }

    fn settle(&self) {
        *lock(&self.last_settled) = Instant::now();
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
    }

    /// Writes a receipt's events to the owed file; returns (events, duplicates).
    fn record_receipt(&self, n: u64, answer: &Bytes) -> (u64, u64) {
        let Ok(receipt) = serde_json::from_slice::<Receipt>(answer) else {
            let mut tally = lock(&self.tally);
            tally.unreadable_receipts += 1;
            tally.error(|| {
                format!(
                    "a 200 without a receipt: {}",
                    String::from_utf8_lossy(answer)
                )
            });
            return (0, 0);
        };
        let mut owed = lock(&self.owed);
        let mut duplicates = 0;
        for event in &receipt.events {
            duplicates += u64::from(event.duplicate);
            let written = writeln!(
                owed,
                "{}\t{}\t{n}\t{}",
                event.id,
                event.kind,
                u8::from(event.duplicate)
            );
            if let Err(e) = written {
                lock(&self.tally).error(|| format!("writing the owed file: {e}"));
            }
        }
        (receipt.events.len() as u64, duplicates)
    }
}

fn shape_of(n: u64) -> usize {
    usize::try_from(n % SoakMix::names().count() as u64).unwrap_or(0)
}

/// How an attempt ended, with the 200's body or the error's text.
fn classify(result: anyhow::Result<(StatusCode, Bytes)>) -> (Ending, Result<Bytes, String>) {
    match result {
        Ok((StatusCode::OK, body)) => (Ending::Acknowledged, Ok(body)),
        Ok((status, body)) => (
            Ending::Status(status.as_u16()),
            Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
        ),
        Err(e) if e.downcast_ref::<TimedOut>().is_some() => (Ending::TimedOut, Err(e.to_string())),
        Err(e) if refused(&e) => (Ending::Refused, Err(format!("{e:#}"))),
        Err(e) => (Ending::Dropped, Err(format!("{e:#}"))),
    }
}

fn refused(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_told_from_a_broken_one_and_a_timeout() {
        let refused =
            anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
                .context("connecting to 127.0.0.1:1");
        assert_eq!(classify(Err(refused)).0, Ending::Refused);
        let reset = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(classify(Err(reset)).0, Ending::Dropped);
        let late = anyhow::Error::new(TimedOut(Duration::from_secs(1)));
        assert_eq!(classify(Err(late)).0, Ending::TimedOut);
        let busy = Ok((StatusCode::SERVICE_UNAVAILABLE, Bytes::new()));
        assert_eq!(classify(busy).0, Ending::Status(503));
        assert_eq!(
            classify(Ok((StatusCode::OK, Bytes::new()))).0,
            Ending::Acknowledged
        );
    }
}

//! Webhook-to-WebSocket push latency: agents hold sockets on `/ws` while user-initiated call
//! `connect` webhooks arrive at a fixed rate; each new call must reach every agent as a
//! `call.incoming`.
//!
//! The webhooks are sent by the ingest load (open loop, see [`crate::ingest`]) with a
//! [`RequestLog`] noting when each was due and sent and how it was answered. Every agent's
//! socket is read by its own task, which stamps each `call.incoming` on arrival, reads the
//! request number back from the call id, and records the latency of that (webhook, agent)
//! pair. Once the webhooks are done, the run waits (boundedly) until every push owed by a
//! webhook answered 200 has arrived, then counts what is missing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::bodies::{parse_id, Mix};
use crate::ingest::{self, micros, new_histogram, IngestOptions, Load, Logged, RequestLog};
use crate::push_report::PushReport;
use crate::ws::{self, Socket, Tokens};

#[derive(Debug)]
pub struct PushOptions {
    /// `http://host:port/webhook`.
    pub webhook_url: String,
    /// `ws://host:port/ws`.
    pub ws_url: String,
    pub secret: String,
    pub tokens: Tokens,
    pub agents: usize,
    pub rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
    /// Webhook connections, hence the most webhooks in flight.
    pub connections: usize,
    /// Per webhook.
    pub timeout: Duration,
    /// Per socket, for connecting and its hello.
    pub connect_timeout: Duration,
    /// How long after the last webhook is answered to wait for pushes still owed.
    pub drain_timeout: Duration,
    pub run_id: u32,
}

/// What every agent task shares.
struct Shared {
    log: Arc<RequestLog>,
    run_id: u32,
    /// Requests below this number are warm-up: counted, but not in the latency histograms.
    warmup: u64,
    /// Requests per second, to place a request in its second of the measured window.
    rate: f64,
    /// New `call.incoming` of this run received, over all agents.
    received: AtomicU64,
    /// Agent tasks still reading their socket.
    listening: AtomicUsize,
}

/// What one agent's socket received.
pub struct AgentTally {
    pub agent: String,
    /// Indexed by request number: whether its `call.incoming` arrived.
    pub received: Vec<bool>,
    pub duplicates: u64,
    /// `call.incoming` for calls this run did not make (e.g. replayed from an earlier run).
    pub foreign: u64,
    /// Other event types, by type.
    pub other_events: BTreeMap<String, u64>,
    /// Text frames without a readable `type`.
    pub unparsed: u64,
    /// Pushes for a request the log had not noted as sent: never expected, as the log is
    /// written before the request leaves.
    pub before_send: u64,
    /// Measured pairs: arrival minus the webhook's due time.
    pub from_due: Histogram<u64>,
    /// Measured pairs: arrival minus the moment the webhook request left.
    pub from_send: Histogram<u64>,
    /// The same, per second of the measured window (by due time), at 2 significant digits.
    pub by_second: Vec<Histogram<u32>>,
    pub last_arrival: Option<Instant>,
    /// Set if the socket ended before the run told it to stop: how.
    pub ended_early: Option<String>,
}

impl AgentTally {
    fn new(agent: String, requests: u64) -> Self {
        Self {
            agent,
            received: vec![false; usize::try_from(requests).unwrap_or(0)],
            duplicates: 0,
            foreign: 0,
            other_events: BTreeMap::new(),
            unparsed: 0,
            before_send: 0,
            from_due: new_histogram(),
            from_send: new_histogram(),
            by_second: Vec::new(),
            last_arrival: None,
            ended_early: None,
        }
    }

    fn on_text(&mut self, text: &str, at: Instant, shared: &Shared) {
        match ws::string_field(text, "type") {
            Some("call.incoming") => {}
            Some(other) => {
                *self.other_events.entry(other.to_owned()).or_default() += 1;
                return;
            }
            None => {
                self.unparsed += 1;
                return;
            }
        }
        let ours = ws::string_field(text, "call_id")
            .and_then(parse_id)
            .filter(|(run, n)| *run == shared.run_id && *n < shared.log.len());
        let Some((_, n)) = ours else {
            self.foreign += 1;
            return;
        };
        let seen = usize::try_from(n)
            .ok()
            .and_then(|i| self.received.get_mut(i));
        match seen {
            Some(seen) if *seen => {
                self.duplicates += 1;
                return;
            }
            Some(seen) => *seen = true,
            None => return,
        }
        shared.received.fetch_add(1, Ordering::Relaxed);
        self.last_arrival = Some(at);
        match shared.log.times(n) {
            Some((due, sent)) if n >= shared.warmup => {
                let from_send = micros(at.saturating_duration_since(sent));
                self.from_due
                    .saturating_record(micros(at.saturating_duration_since(due)));
                self.from_send.saturating_record(from_send);
                // Saturating float-to-int conversion; the rate is positive.
                let second = ((n - shared.warmup) as f64 / shared.rate) as usize;
                if self.by_second.len() <= second {
                    self.by_second.resize_with(second + 1, second_histogram);
                }
                self.by_second[second].saturating_record(from_send);
            }
            Some(_) => {}
            None => self.before_send += 1,
        }
    }
}

/// Microsecond resolution, 2 significant digits, up to a minute: small enough to keep one
/// per agent per second.
pub fn second_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 60_000_000, 2)
        .unwrap_or_else(|_| unreachable!("constant bounds are valid"))
}

/// Reads one agent's socket until told to stop (then closes it) or until it ends.
async fn listen(
    mut socket: Socket,
    mut tally: AgentTally,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> AgentTally {
    loop {
        tokio::select! {
            message = socket.next() => {
                let at = Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) => tally.on_text(&text, at, &shared),
                    Some(Ok(Message::Close(frame))) => {
                        tally.ended_early = Some(match frame {
                            Some(frame) => format!("closed by the router: {} {}", frame.code, frame.reason),
                            None => "closed by the router".into(),
                        });
                        break;
                    }
                    // Pings are answered by tungstenite on the next read.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tally.ended_early = Some(format!("socket error: {e}"));
                        break;
                    }
                    None => {
                        tally.ended_early = Some("socket ended".into());
                        break;
                    }
                }
            }
            _ = stop.changed() => break,
        }
    }
    shared.listening.fetch_sub(1, Ordering::AcqRel);
    if tally.ended_early.is_none() {
        ws::close(socket, Duration::from_secs(2)).await;
    }
    tally
}

/// How the wait for owed pushes ended.
#[derive(Debug)]
pub struct Drain {
    /// Every push owed by a webhook answered 200 arrived.
    pub complete: bool,
    /// From the end of the webhook load (its last answer) to the end of the wait.
    pub waited: Duration,
}

/// Everything a run observed, for [`PushReport`].
pub struct Observed {
    pub webhooks: crate::report::Report,
    pub agents: Vec<AgentTally>,
    pub outcomes: Vec<Logged>,
    pub warmup: u64,
    pub drain: Drain,
    /// When the webhook load ended (after its last answer).
    pub webhooks_done: Instant,
    /// Seconds it took to open every socket and get its hello.
    pub connect_s: f64,
}

pub async fn run(options: PushOptions) -> anyhow::Result<PushReport> {
    let connect_start = Instant::now();
    let sockets = ws::open_many(
        &options.ws_url,
        &options.tokens,
        options.agents,
        16,
        options.connect_timeout,
    )
    .await?;
    let connect_s = connect_start.elapsed().as_secs_f64();

    let requests = ingest::slots(options.rate, options.warmup + options.duration);
    let warmup = ingest::slots(options.rate, options.warmup);
    let log = Arc::new(RequestLog::new(requests));
    let shared = Arc::new(Shared {
        log: log.clone(),
        run_id: options.run_id,
        warmup,
        rate: options.rate,
        received: AtomicU64::new(0),
        listening: AtomicUsize::new(sockets.len()),
    });
    let (stop, stopped) = watch::channel(false);
    let listeners: Vec<_> = sockets
        .into_iter()
        .map(|(socket, agent)| {
            tokio::spawn(listen(
                socket,
                AgentTally::new(agent, requests),
                shared.clone(),
                stopped.clone(),
            ))
        })
        .collect();

    let webhooks = ingest::run(IngestOptions {
        url: options.webhook_url.clone(),
        secret: options.secret.clone(),
        load: Load::Rate(options.rate),
        duration: options.duration,
        warmup: options.warmup,
        connections: options.connections,
        timeout: options.timeout,
        run_id: options.run_id,
        mix: Mix::IncomingCalls,
        log: Some(log.clone()),
    })
    .await;
    let webhooks_done = Instant::now();
    let webhooks = match webhooks {
        Ok(webhooks) => webhooks,
        Err(e) => {
            let _ = stop.send(true);
            return Err(e);
        }
    };

    let outcomes: Vec<Logged> = (0..requests).map(|n| log.outcome(n)).collect();
    let answered_ok = outcomes.iter().filter(|o| **o == Logged::Ok).count() as u64;
    let owed = answered_ok * listeners.len() as u64;
    let complete = loop {
        if shared.received.load(Ordering::Relaxed) >= owed {
            break true;
        }
        if webhooks_done.elapsed() >= options.drain_timeout
            || shared.listening.load(Ordering::Acquire) == 0
        {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let drain = Drain {
        complete,
        waited: webhooks_done.elapsed(),
    };
    let _ = stop.send(true);
    let mut agents = Vec::with_capacity(listeners.len());
    for listener in listeners {
        agents.push(listener.await?);
    }
    // `complete` counts arrivals, which include pushes for webhooks not answered 200; the
    // report checks each owed pair.
    let observed = Observed {
        webhooks,
        agents,
        outcomes,
        warmup,
        drain,
        webhooks_done,
        connect_s,
    };
    Ok(PushReport::new(&options, observed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fake_router::{fake_router, LeaveOut};

    fn options(webhook_url: String, ws_url: String) -> PushOptions {
        PushOptions {
            webhook_url,
            ws_url,
            secret: "test-app-secret".into(),
            tokens: Tokens::Numbered {
                prefix: "t-".into(),
                count: 3,
            },
            agents: 3,
            rate: 200.0,
            duration: Duration::from_millis(500),
            warmup: Duration::from_millis(250),
            connections: 4,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_millis(700),
            run_id: 7,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_agent_gets_every_call_and_each_pair_is_timed() {
        let (webhook_url, ws_url) = fake_router(None).await;
        let report = run(options(webhook_url, ws_url)).await.unwrap();

        assert_eq!((report.webhooks.sent, report.webhooks.ok), (100, 100));
        assert_eq!(report.agents, 3);
        let p = &report.pushes;
        assert_eq!((p.webhooks_ok, p.expected, p.received), (100, 300, 300));
        assert_eq!((p.missing, p.extra), (0, 0));
        let w = &report.warmup_pushes;
        assert_eq!((w.expected, w.received, w.missing), (150, 150, 0));
        assert_eq!(report.pairs_measured, 300);
        // 0.5 s measured at 200/s: one second, holding every measured pair.
        assert_eq!(report.timeline.len(), 1);
        assert_eq!(report.timeline[0].pairs, 300);
        assert!(report.drain_complete);
        let from_send = report.latency_from_send_ms.as_ref().unwrap();
        let from_due = report.latency_from_due_ms.as_ref().unwrap();
        assert!(from_send.max < 1000.0 && from_due.max >= from_send.p50);
        assert_eq!((report.duplicates, report.before_send), (0, 0));
        // The extra frames each socket got after its hello.
        assert_eq!(report.foreign, 3);
        assert_eq!(report.other_events.get("call.ended"), Some(&3));
        assert_eq!(report.sockets_ended_early, 0);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["pushes"]["missing"], 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushes_an_agent_never_got_are_reported_missing() {
        let (webhook_url, ws_url) = fake_router(Some(LeaveOut {
            agent: "t-1".into(),
            every: 5,
        }))
        .await;
        let report = run(options(webhook_url, ws_url)).await.unwrap();

        // Requests 50..150 are measured; 20 of them are multiples of 5, and 10 of 0..50.
        assert_eq!((report.pushes.expected, report.pushes.missing), (300, 20));
        assert_eq!(report.warmup_pushes.missing, 10);
        assert_eq!(report.pairs_measured, 280);
        assert!(!report.drain_complete);
        assert!(report.drain_waited_s >= 0.7);
        assert_eq!(report.agents_missing_pushes, 1);
        assert_eq!(report.missing_by_agent.get("t-1"), Some(&30));
        assert!(report.to_string().contains("MISSING 20"));
    }
}

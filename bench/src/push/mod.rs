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
//!
//! The run is here; what it is asked to do is in [`options`], what the agents' sockets
//! received in [`tally`], and what it reports in [`report`].

mod options;
mod report;
mod tally;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

pub use options::PushOptions;
pub use report::PushReport;
use tally::{AgentTally, Drain, Observed, Shared};

use crate::bodies::Mix;
use crate::ingest::{self, IngestOptions, Load, Logged, RequestLog};
use crate::ws::{self, Socket};

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

    let webhooks = ingest::run(webhook_load(&options, log.clone())).await;
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
    let drain = wait_for_owed(&shared, owed, webhooks_done, options.drain_timeout).await;
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

/// The ingest load that sends this run's incoming-call webhooks, noting each in `log`.
fn webhook_load(options: &PushOptions, log: Arc<RequestLog>) -> IngestOptions {
    IngestOptions {
        url: options.webhook_url.clone(),
        secret: options.secret.clone(),
        load: Load::Rate(options.rate),
        duration: options.duration,
        warmup: options.warmup,
        connections: options.connections,
        timeout: options.timeout,
        run_id: options.run_id,
        mix: Mix::IncomingCalls,
        log: Some(log),
    }
}

/// Waits until `owed` pushes have arrived, every socket has ended, or `timeout` has passed
/// since the webhooks were done.
async fn wait_for_owed(
    shared: &Shared,
    owed: u64,
    webhooks_done: Instant,
    timeout: Duration,
) -> Drain {
    let complete = loop {
        if shared.received.load(Ordering::Relaxed) >= owed {
            break true;
        }
        if webhooks_done.elapsed() >= timeout || shared.listening.load(Ordering::Acquire) == 0 {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    Drain {
        complete,
        waited: webhooks_done.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fake_router::{fake_router, LeaveOut};
    use crate::ws::Tokens;

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

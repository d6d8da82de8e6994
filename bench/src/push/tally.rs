//! What a push run saw: per agent, which calls' pushes arrived and how late; for the run,
//! how the wait for owed pushes ended.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::bodies::parse_id;
use crate::ingest::{Logged, Report, RequestLog};
use crate::latency::{micros, new_histogram, second_histogram};
use crate::ws;

/// What every agent task shares.
pub(super) struct Shared {
    pub(super) log: Arc<RequestLog>,
    pub(super) run_id: u32,
    /// Requests below this number are warm-up: counted, but not in the latency histograms.
    pub(super) warmup: u64,
    /// Requests per second, to place a request in its second of the measured window.
    pub(super) rate: f64,
    /// New `call.incoming` of this run received, over all agents.
    pub(super) received: AtomicU64,
    /// Agent tasks still reading their socket.
    pub(super) listening: AtomicUsize,
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
    pub(super) fn new(agent: String, requests: u64) -> Self {
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

    pub(super) fn on_text(&mut self, text: &str, at: Instant, shared: &Shared) {
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
    pub webhooks: Report,
    pub agents: Vec<AgentTally>,
    pub outcomes: Vec<Logged>,
    pub warmup: u64,
    pub drain: Drain,
    /// When the webhook load ended (after its last answer).
    pub webhooks_done: Instant,
    /// Seconds it took to open every socket and get its hello.
    pub connect_s: f64,
}

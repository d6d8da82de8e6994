//! The result of a push run, as text for people and as one JSON line for scripts.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::Serialize;

use hdrhistogram::Histogram;

use super::options::PushOptions;
use super::tally::{AgentTally, Observed};
use crate::ingest::{Logged, Report};
use crate::latency::{new_histogram, second_histogram, write_percentiles, Percentiles};

#[derive(Debug, Serialize)]
pub struct PushReport {
    pub bench: &'static str,
    pub webhook_url: String,
    pub ws_url: String,
    pub agents: usize,
    pub target_rate: f64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub run_id: String,
    /// Seconds to open every socket and receive its hello.
    pub connect_s: f64,
    /// The webhook load over the measured window (as `ingest` reports it).
    pub webhooks: Webhooks,
    /// Pushes owed by the measured window's webhooks, and what arrived.
    pub pushes: Pushes,
    /// The same for the warm-up's webhooks.
    pub warmup_pushes: Pushes,
    /// Measured (webhook, agent) pairs: arrival minus the moment the webhook request left.
    pub latency_from_send_ms: Option<Percentiles>,
    /// Measured pairs: arrival minus the webhook's due time (open loop: includes any wait
    /// for a free connection in the load generator).
    pub latency_from_due_ms: Option<Percentiles>,
    /// Pairs in the two latency histograms.
    pub pairs_measured: u64,
    /// Latency from send per second of the measured window (by the webhooks' due times), to
    /// tell a steady tail from a burst (another job on the machine, a stall in the router).
    pub timeline: Vec<Second>,
    /// Every owed push arrived before the drain timeout.
    pub drain_complete: bool,
    /// From the last webhook answer to the end of the wait for owed pushes.
    pub drain_waited_s: f64,
    /// Last push arrival minus the last webhook answer (negative: it came before).
    pub last_push_after_webhooks_s: Option<f64>,
    pub duplicates: u64,
    pub foreign: u64,
    pub before_send: u64,
    pub unparsed: u64,
    pub other_events: BTreeMap<String, u64>,
    /// Agents whose socket ended during the run, and how (at most 20 listed).
    pub sockets_ended_early: u64,
    pub ended_early: BTreeMap<String, String>,
    /// Agents missing pushes, and how many (at most 20 listed).
    pub agents_missing_pushes: u64,
    pub missing_by_agent: BTreeMap<String, u64>,
    /// CPU seconds (user + system) this load generator used, for the whole run.
    pub client_cpu_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Webhooks {
    pub sent: u64,
    pub ok: u64,
    pub non_ok: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub missed: Option<u64>,
    pub rps: f64,
    /// From the due time to the answer.
    pub answer_ms: Option<Percentiles>,
    /// From the send to the answer.
    pub answer_service_ms: Option<Percentiles>,
    pub first_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Second {
    /// Seconds since the measured window began.
    pub second: usize,
    pub pairs: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Pushes {
    /// Webhooks answered 200 in this phase.
    pub webhooks_ok: u64,
    /// `webhooks_ok` × agents.
    pub expected: u64,
    /// Owed pushes that arrived.
    pub received: u64,
    pub missing: u64,
    /// Pushes for webhooks not answered 200 (timed out, failed) that arrived anyway.
    pub extra: u64,
}

impl Pushes {
    fn count(range: Range<usize>, outcomes: &[Logged], agents: &[AgentTally]) -> Self {
        let outcomes = outcomes.get(range.clone()).unwrap_or_default();
        let webhooks_ok = outcomes.iter().filter(|o| **o == Logged::Ok).count() as u64;
        let mut counts = Self {
            webhooks_ok,
            expected: webhooks_ok * agents.len() as u64,
            ..Self::default()
        };
        for agent in agents {
            let received = agent.received.get(range.clone()).unwrap_or_default();
            for (outcome, got) in outcomes.iter().zip(received) {
                match (outcome, got) {
                    (Logged::Ok, true) => counts.received += 1,
                    (_, true) => counts.extra += 1,
                    (_, false) => {}
                }
            }
        }
        counts.missing = counts.expected - counts.received;
        counts
    }
}

/// Owed pushes an agent did not receive.
fn missing_for(agent: &AgentTally, outcomes: &[Logged]) -> u64 {
    outcomes
        .iter()
        .zip(&agent.received)
        .filter(|(outcome, got)| **outcome == Logged::Ok && !**got)
        .count() as u64
}

const LISTED: usize = 20;

impl PushReport {
    pub fn new(options: &PushOptions, observed: Observed) -> Self {
        let Observed {
            webhooks,
            agents,
            outcomes,
            warmup,
            drain,
            webhooks_done,
            connect_s,
        } = observed;
        let warmup = usize::try_from(warmup)
            .unwrap_or(usize::MAX)
            .min(outcomes.len());
        let (from_send, from_due) = merged_latency(&agents);
        let last_arrival = agents.iter().filter_map(|a| a.last_arrival).max();
        let ended: Vec<_> = agents
            .iter()
            .filter_map(|a| {
                a.ended_early
                    .as_ref()
                    .map(|how| (a.agent.clone(), how.clone()))
            })
            .collect();
        let missing: Vec<_> = agents
            .iter()
            .map(|a| (a.agent.clone(), missing_for(a, &outcomes)))
            .filter(|(_, missing)| *missing > 0)
            .collect();
        let sum = |field: fn(&AgentTally) -> u64| agents.iter().map(field).sum::<u64>();
        Self {
            bench: "push",
            webhook_url: options.webhook_url.clone(),
            ws_url: options.ws_url.clone(),
            agents: agents.len(),
            target_rate: options.rate,
            duration_s: options.duration.as_secs_f64(),
            warmup_s: options.warmup.as_secs_f64(),
            run_id: format!("{:08X}", options.run_id),
            connect_s,
            webhooks: Webhooks::from(webhooks),
            pushes: Pushes::count(warmup..outcomes.len(), &outcomes, &agents),
            warmup_pushes: Pushes::count(0..warmup, &outcomes, &agents),
            latency_from_send_ms: Percentiles::from_micros(&from_send),
            latency_from_due_ms: Percentiles::from_micros(&from_due),
            pairs_measured: from_send.len(),
            timeline: timeline(&agents),
            drain_complete: drain.complete,
            drain_waited_s: drain.waited.as_secs_f64(),
            last_push_after_webhooks_s: last_arrival.map(|last| {
                if last >= webhooks_done {
                    (last - webhooks_done).as_secs_f64()
                } else {
                    -(webhooks_done - last).as_secs_f64()
                }
            }),
            duplicates: sum(|a| a.duplicates),
            foreign: sum(|a| a.foreign),
            before_send: sum(|a| a.before_send),
            unparsed: sum(|a| a.unparsed),
            other_events: other_events(&agents),
            sockets_ended_early: ended.len() as u64,
            ended_early: ended.into_iter().take(LISTED).collect(),
            agents_missing_pushes: missing.len() as u64,
            missing_by_agent: missing.into_iter().take(LISTED).collect(),
            client_cpu_s: crate::rss::cpu_seconds(std::process::id()).ok(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("a report always serialises"))
    }
}

impl From<Report> for Webhooks {
    fn from(webhooks: Report) -> Self {
        Self {
            sent: webhooks.sent,
            ok: webhooks.ok,
            non_ok: webhooks.non_ok,
            errors: webhooks.errors,
            timeouts: webhooks.timeouts,
            missed: webhooks.missed,
            rps: webhooks.rps,
            answer_ms: webhooks.latency_ms,
            answer_service_ms: webhooks.service_ms,
            first_error: webhooks.first_error,
        }
    }
}

/// Every agent's measured pairs in one histogram: from send, then from due.
fn merged_latency(agents: &[AgentTally]) -> (Histogram<u64>, Histogram<u64>) {
    let mut from_send = new_histogram();
    let mut from_due = new_histogram();
    for agent in agents {
        // Same bounds everywhere, so adding cannot fail.
        let _ = from_send.add(&agent.from_send);
        let _ = from_due.add(&agent.from_due);
    }
    (from_send, from_due)
}

/// Latency from send per second of the measured window, over every agent.
fn timeline(agents: &[AgentTally]) -> Vec<Second> {
    let seconds = agents.iter().map(|a| a.by_second.len()).max().unwrap_or(0);
    (0..seconds)
        .map(|second| {
            let mut merged = second_histogram();
            for agent in agents {
                if let Some(histogram) = agent.by_second.get(second) {
                    let _ = merged.add(histogram);
                }
            }
            let ms = |micros: u64| micros as f64 / 1000.0;
            Second {
                second,
                pairs: merged.len(),
                p50_ms: ms(merged.value_at_quantile(0.5)),
                p99_ms: ms(merged.value_at_quantile(0.99)),
                max_ms: ms(merged.max()),
            }
        })
        .collect()
}

/// Other event types over every agent, by type.
fn other_events(agents: &[AgentTally]) -> BTreeMap<String, u64> {
    let mut other_events = BTreeMap::new();
    for agent in agents {
        for (kind, count) in &agent.other_events {
            *other_events.entry(kind.clone()).or_default() += count;
        }
    }
    other_events
}

impl fmt::Display for PushReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "push: {} webhooks/s (open loop), {} s measured after {} s warm-up, {} agents on {}",
            self.target_rate, self.duration_s, self.warmup_s, self.agents, self.ws_url
        )?;
        let w = &self.webhooks;
        writeln!(
            f,
            "  webhooks   {} sent, {} 200, {} non-200, {} errors ({} timeouts), due but never sent {}; {:.1}/s to {}",
            w.sent,
            w.ok,
            w.non_ok,
            w.errors,
            w.timeouts,
            w.missed.unwrap_or(0),
            w.rps,
            self.webhook_url
        )?;
        write_percentiles(f, "webhook answer ms (from send)", &w.answer_service_ms)?;
        self.write_pushes(f)?;
        self.write_drain_and_strays(f)
    }
}

impl PushReport {
    /// What arrived of the owed pushes, their latency, and the latency per second.
    fn write_pushes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.pushes;
        writeln!(
            f,
            "  pushes     expected {} ({} webhooks answered 200 x {} agents), received {}, MISSING {}, extra {}",
            p.expected, p.webhooks_ok, self.agents, p.received, p.missing, p.extra
        )?;
        let q = &self.warmup_pushes;
        writeln!(
            f,
            "  warm-up    expected {}, received {}, MISSING {}, extra {}",
            q.expected, q.received, q.missing, q.extra
        )?;
        write_percentiles(
            f,
            "push latency ms, from webhook send",
            &self.latency_from_send_ms,
        )?;
        write_percentiles(
            f,
            "push latency ms, from due time   ",
            &self.latency_from_due_ms,
        )?;
        writeln!(
            f,
            "  ({} measured (webhook, agent) pairs)",
            self.pairs_measured
        )?;
        if !self.timeline.is_empty() {
            writeln!(
                f,
                "  per second, from send (ms):  second    pairs      p50      p99      max"
            )?;
            for s in &self.timeline {
                writeln!(
                    f,
                    "                               {:>6} {:>8} {:>8.2} {:>8.2} {:>8.2}",
                    s.second, s.pairs, s.p50_ms, s.p99_ms, s.max_ms
                )?;
            }
        }
        Ok(())
    }

    /// How the wait for owed pushes ended, frames nobody owed, and the load generator's cost.
    fn write_drain_and_strays(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.last_push_after_webhooks_s {
            Some(s) => write!(
                f,
                "  last push {:.1} ms after the last webhook answer; ",
                s * 1000.0
            )?,
            None => write!(f, "  no push arrived; ")?,
        }
        writeln!(
            f,
            "{} after waiting {:.2} s",
            if self.drain_complete {
                "every owed push in"
            } else {
                "gave up on missing pushes"
            },
            self.drain_waited_s
        )?;
        write!(
            f,
            "  duplicates {}, foreign calls {}, before send {}, unparsed {}, other events {:?}",
            self.duplicates, self.foreign, self.before_send, self.unparsed, self.other_events
        )?;
        if self.sockets_ended_early > 0 {
            write!(
                f,
                "\n  sockets ended early: {} {:?}",
                self.sockets_ended_early, self.ended_early
            )?;
        }
        if self.agents_missing_pushes > 0 {
            write!(
                f,
                "\n  agents missing pushes: {} {:?}",
                self.agents_missing_pushes, self.missing_by_agent
            )?;
        }
        if let Some(error) = &self.webhooks.first_error {
            write!(f, "\n  first webhook error: {error}")?;
        }
        if let Some(cpu) = self.client_cpu_s {
            write!(
                f,
                "\n  load generator CPU {cpu:.1} s; sockets opened in {:.2} s",
                self.connect_s
            )?;
        }
        Ok(())
    }
}

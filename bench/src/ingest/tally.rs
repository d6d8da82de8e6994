//! What an ingest run counted: per phase, the answers by status, the errors and the 200s
//! per template; per run, the latency histograms.

use std::collections::BTreeMap;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::bodies::MAX_TEMPLATES;
use crate::client::Outcome;
use crate::latency::new_histogram;

/// Counts for one phase (warm-up or measured).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub sent: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: u64,
    pub timeouts: u64,
    /// Requests answered 200, per template (indexed like the mix's template names).
    pub ok_by_template: [u64; MAX_TEMPLATES],
    pub first_error: Option<String>,
    /// When the last answer of this phase arrived.
    pub last_answer: Option<Instant>,
}

impl Tally {
    pub fn ok(&self) -> u64 {
        self.statuses.get(&200).copied().unwrap_or(0)
    }

    pub fn answered(&self) -> u64 {
        self.statuses.values().sum()
    }

    pub(super) fn record(&mut self, outcome: Outcome, template: usize, at: Instant) {
        self.sent += 1;
        match outcome {
            Outcome::Response(status) => {
                *self.statuses.entry(status.as_u16()).or_default() += 1;
                if status.as_u16() == 200 {
                    self.ok_by_template[template] += 1;
                }
                self.last_answer = self.last_answer.max(Some(at));
            }
            Outcome::Timeout => {
                self.errors += 1;
                self.timeouts += 1;
            }
            Outcome::Error(error) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }

    fn merge(&mut self, other: Self) {
        self.sent += other.sent;
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        for (mine, theirs) in self.ok_by_template.iter_mut().zip(other.ok_by_template) {
            *mine += theirs;
        }
        self.first_error = self.first_error.take().or(other.first_error);
        self.last_answer = self.last_answer.max(other.last_answer);
    }
}

/// What one worker (or, merged, the whole run) saw.
pub struct Observed {
    pub warmup: Tally,
    pub measured: Tally,
    /// Answer time counted from when the request was due (fixed rate) or sent (saturation).
    pub latency: Histogram<u64>,
    /// Answer time counted from when the request actually left.
    pub service: Histogram<u64>,
}

impl Observed {
    pub(super) fn new() -> Self {
        Self {
            warmup: Tally::default(),
            measured: Tally::default(),
            latency: new_histogram(),
            service: new_histogram(),
        }
    }

    pub(super) fn merge(&mut self, other: Self) {
        self.warmup.merge(other.warmup);
        self.measured.merge(other.measured);
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
    }
}

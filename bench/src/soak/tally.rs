//! What the soak's load generator counts: every attempt by how it ended, every webhook by
//! whether it was ever acknowledged, per second of the run, and the events the router's
//! receipts said it stored.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::latency::{micros, new_histogram, write_percentiles, Percentiles};

/// How one attempt to post a webhook ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// 200 with a receipt.
    Acknowledged,
    /// Any other status.
    Status(u16),
    /// The connection was refused: nothing listened (the router was down).
    Refused,
    /// The connection broke after the request went out: the router may have stored it.
    Dropped,
    /// No answer within the timeout.
    TimedOut,
}

/// Attempts by how they ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endings {
    pub acknowledged: u64,
    pub refused: u64,
    pub dropped: u64,
    pub timed_out: u64,
    /// Answers other than 200, by status.
    pub status: BTreeMap<u16, u64>,
}

impl Endings {
    pub fn add(&mut self, ending: Ending) {
        match ending {
            Ending::Acknowledged => self.acknowledged += 1,
            Ending::Status(code) => *self.status.entry(code).or_default() += 1,
            Ending::Refused => self.refused += 1,
            Ending::Dropped => self.dropped += 1,
            Ending::TimedOut => self.timed_out += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.acknowledged + self.failed()
    }

    pub fn failed(&self) -> u64 {
        self.refused + self.dropped + self.timed_out + self.status.values().sum::<u64>()
    }
}

impl fmt::Display for Endings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} acknowledged, {} refused, {} dropped, {} timed out",
            self.acknowledged, self.refused, self.dropped, self.timed_out
        )?;
        for (code, count) in &self.status {
            write!(f, ", {count} answered {code}")?;
        }
        Ok(())
    }
}

/// Per shape of delivery.
#[derive(Debug, Default, Serialize)]
pub struct ShapeTally {
    pub name: &'static str,
    pub acknowledged: u64,
    /// Events listed in their receipts.
    pub events: u64,
}

#[derive(Debug, Serialize)]
pub struct Tally {
    /// Webhooks due by the schedule.
    pub due: u64,
    /// Every attempt, retries included.
    pub attempts: Endings,
    /// First attempts only.
    pub first_attempts: Endings,
    /// Webhooks acknowledged on their first attempt, and after one or more retries.
    pub acknowledged_first_try: u64,
    pub acknowledged_after_retry: u64,
    /// Webhooks never acknowledged, by how their last attempt ended.
    pub never_acknowledged: Endings,
    /// Webhooks still queued for a connection when the run's grace ran out.
    pub never_sent: u64,
    /// Events listed in receipts, and how many of them the router called duplicates
    /// (stored by an earlier attempt whose answer was lost).
    pub receipt_events: u64,
    pub receipt_duplicates: u64,
    /// 200s whose body was not a receipt.
    pub unreadable_receipts: u64,
    pub shapes: Vec<ShapeTally>,
    /// Attempts by the second of the run they were sent in.
    pub per_second: Vec<Endings>,
    #[serde(skip)]
    answer_us: Histogram<u64>,
    pub first_error: Option<String>,
}

impl Tally {
    pub fn new(shapes: impl Iterator<Item = &'static str>) -> Self {
        Self {
            due: 0,
            attempts: Endings::default(),
            first_attempts: Endings::default(),
            acknowledged_first_try: 0,
            acknowledged_after_retry: 0,
            never_acknowledged: Endings::default(),
            never_sent: 0,
            receipt_events: 0,
            receipt_duplicates: 0,
            unreadable_receipts: 0,
            shapes: shapes
                .map(|name| ShapeTally {
                    name,
                    ..ShapeTally::default()
                })
                .collect(),
            per_second: Vec::new(),
            answer_us: new_histogram(),
            first_error: None,
        }
    }

    /// One attempt, sent `second` whole seconds into the run, answered after `took`.
    pub fn attempt(&mut self, second: usize, attempt: u32, ending: Ending, took: Duration) {
        self.attempts.add(ending);
        if attempt == 1 {
            self.first_attempts.add(ending);
        }
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, Endings::default());
        }
        self.per_second[second].add(ending);
        if ending == Ending::Acknowledged {
            // Saturates at the histogram's bound of an hour, far past any timeout.
            let _ = self.answer_us.record(micros(took));
        }
    }

    /// A webhook's last attempt: acknowledged (with its receipt's events) or given up.
    pub fn settled(&mut self, shape: usize, attempt: u32, ending: Ending, events: (u64, u64)) {
        if ending == Ending::Acknowledged {
            if attempt == 1 {
                self.acknowledged_first_try += 1;
            } else {
                self.acknowledged_after_retry += 1;
            }
            if let Some(shape) = self.shapes.get_mut(shape) {
                shape.acknowledged += 1;
                shape.events += events.0;
            }
            self.receipt_events += events.0;
            self.receipt_duplicates += events.1;
        } else {
            self.never_acknowledged.add(ending);
        }
    }

    pub fn error(&mut self, error: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(error());
        }
    }

    pub fn acknowledged(&self) -> u64 {
        self.acknowledged_first_try + self.acknowledged_after_retry
    }

    pub fn answer_ms(&self) -> Option<Percentiles> {
        Percentiles::from_micros(&self.answer_us)
    }
}

/// The load generator's summary, printed for people and as one JSON line for the report.
#[derive(Debug, Serialize)]
pub struct DriveReport {
    pub url: String,
    pub rate: f64,
    pub duration_s: f64,
    pub connections: usize,
    pub retries: u32,
    pub retry_delay_s: f64,
    pub run_id: String,
    pub elapsed_s: f64,
    /// Answer time of acknowledged attempts, from the moment each left.
    pub answer_ms: Option<Percentiles>,
    #[serde(flatten)]
    pub tally: Tally,
}

impl fmt::Display for DriveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        writeln!(
            f,
            "soak-drive: {}/s for {} s, {} connections, up to {} attempts {} s apart, {}",
            self.rate,
            self.duration_s,
            self.connections,
            self.retries,
            self.retry_delay_s,
            self.url
        )?;
        writeln!(f, "  webhooks due     {}", t.due)?;
        writeln!(
            f,
            "  acknowledged     {} ({} first try, {} after a retry)",
            t.acknowledged(),
            t.acknowledged_first_try,
            t.acknowledged_after_retry
        )?;
        writeln!(f, "  never acked      {}", t.never_acknowledged.total())?;
        writeln!(f, "  never sent       {}", t.never_sent)?;
        writeln!(
            f,
            "  attempts         {}: {}",
            t.attempts.total(),
            t.attempts
        )?;
        writeln!(
            f,
            "  receipts listed  {} events ({} duplicates)",
            t.receipt_events, t.receipt_duplicates
        )?;
        write_percentiles(f, "answer ms (acknowledged, from send)", &self.answer_ms)?;
        if let Some(error) = &t.first_error {
            writeln!(f, "  first error: {error}")?;
        }
        write!(f, "  elapsed {:.1} s", self.elapsed_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_add_up_and_read_as_text() {
        let mut endings = Endings::default();
        for ending in [
            Ending::Acknowledged,
            Ending::Refused,
            Ending::Refused,
            Ending::Dropped,
            Ending::TimedOut,
            Ending::Status(503),
        ] {
            endings.add(ending);
        }
        assert_eq!(endings.total(), 6);
        assert_eq!(endings.failed(), 5);
        assert_eq!(
            endings.to_string(),
            "1 acknowledged, 2 refused, 1 dropped, 1 timed out, 1 answered 503"
        );
    }

    #[test]
    fn attempts_land_in_their_second_and_settled_webhooks_in_their_shape() {
        let mut tally = Tally::new(["a", "b"].into_iter());
        tally.attempt(3, 1, Ending::Refused, Duration::ZERO);
        tally.attempt(4, 2, Ending::Acknowledged, Duration::from_millis(2));
        tally.settled(1, 2, Ending::Acknowledged, (3, 1));
        tally.settled(0, 5, Ending::Refused, (0, 0));
        assert_eq!(tally.per_second.len(), 5);
        assert_eq!(tally.per_second[3].refused, 1);
        assert_eq!(tally.first_attempts.total(), 1);
        assert_eq!(tally.acknowledged_after_retry, 1);
        assert_eq!(tally.shapes[1].events, 3);
        assert_eq!(tally.receipt_duplicates, 1);
        assert_eq!(tally.never_acknowledged.refused, 1);
        assert!(tally.answer_ms().is_some());
    }
}

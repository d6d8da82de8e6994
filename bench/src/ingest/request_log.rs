//! The per-request log of a fixed-rate run: when each request was due and sent and how it
//! ended, for measurements that follow a request past its answer (the push benchmark).

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::client::Outcome;

/// Per request number: when it was due and sent, and how it ended. Written by the workers,
/// read by whoever follows the requests' effects, on any thread.
pub struct RequestLog {
    epoch: Instant,
    /// Nanoseconds after `epoch`, plus one; 0 until noted.
    due: Vec<AtomicU64>,
    sent: Vec<AtomicU64>,
    outcome: Vec<AtomicU8>,
}

/// How a logged request ended, as far as the log knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logged {
    NotSent,
    InFlight,
    Ok,
    OtherStatus,
    Failed,
}

impl Logged {
    fn from_code(code: u8) -> Self {
        match code {
            1 => Self::InFlight,
            2 => Self::Ok,
            3 => Self::OtherStatus,
            4 => Self::Failed,
            _ => Self::NotSent,
        }
    }
}

impl RequestLog {
    /// Room for requests `0..requests`; times count from now.
    pub fn new(requests: u64) -> Self {
        let len = usize::try_from(requests).unwrap_or(usize::MAX);
        let zeros = |_| AtomicU64::new(0);
        Self {
            epoch: Instant::now(),
            due: (0..len).map(zeros).collect(),
            sent: (0..len).map(zeros).collect(),
            outcome: (0..len).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    pub fn len(&self) -> u64 {
        self.outcome.len() as u64
    }

    fn slot(n: u64) -> usize {
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1)
            + 1
    }

    fn instant(&self, stamp: u64) -> Option<Instant> {
        (stamp != 0).then(|| self.epoch + Duration::from_nanos(stamp - 1))
    }

    /// Notes that request `n`, due at `due`, leaves now (at `sent`).
    pub(super) fn note_sent(&self, n: u64, due: Instant, sent: Instant) {
        let i = Self::slot(n);
        if let (Some(d), Some(s), Some(o)) =
            (self.due.get(i), self.sent.get(i), self.outcome.get(i))
        {
            d.store(self.stamp(due), Ordering::Release);
            s.store(self.stamp(sent), Ordering::Release);
            o.store(1, Ordering::Release);
        }
    }

    pub(super) fn note_outcome(&self, n: u64, outcome: &Outcome) {
        let code = match outcome {
            Outcome::Response(status) if status.as_u16() == 200 => 2,
            Outcome::Response(_) => 3,
            Outcome::Timeout | Outcome::Error(_) => 4,
        };
        if let Some(o) = self.outcome.get(Self::slot(n)) {
            o.store(code, Ordering::Release);
        }
    }

    /// When request `n` was due and when it left; `None` if it has not left (yet).
    pub fn times(&self, n: u64) -> Option<(Instant, Instant)> {
        let i = Self::slot(n);
        let due = self.instant(self.due.get(i)?.load(Ordering::Acquire))?;
        let sent = self.instant(self.sent.get(i)?.load(Ordering::Acquire))?;
        Some((due, sent))
    }

    pub fn outcome(&self, n: u64) -> Logged {
        self.outcome
            .get(Self::slot(n))
            .map_or(Logged::NotSent, |o| {
                Logged::from_code(o.load(Ordering::Acquire))
            })
    }
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestLog({} requests)", self.outcome.len())
    }
}

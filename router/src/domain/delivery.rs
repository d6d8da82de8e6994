//! Deliveries, their events and the jobs they owe consumers, as the store records them
//! and the admin API shows them.

use bytes::Bytes;
use serde::Serialize;

use super::clock::Millis;
use super::event::{EventId, EventKind};
use super::route::{ForwardMode, RouteName};

/// A verified delivery, split, with the routes each event is owed to.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub received_at: Millis,
    pub signature: String,
    pub body: Bytes,
    pub events: Vec<NewEvent>,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub kind: EventKind,
    pub payload: Bytes,
    /// Routes that match this event, with their mode. An `original` route gets one job per
    /// delivery however many of its events match.
    pub routes: Vec<(RouteName, ForwardMode)>,
}

/// What recording a delivery did.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub delivery_id: i64,
    pub new_events: usize,
    pub duplicate_events: usize,
    /// For each event in the order given, whether it was already stored.
    pub duplicates: Vec<bool>,
    /// Routes that got at least one new job, so their workers can be woken.
    pub routes_with_jobs: Vec<RouteName>,
}

/// A job a worker holds under lease.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub route: RouteName,
    /// 1 for the first attempt. It counts as made only once settled, so a job claimed
    /// and never tried gets the same number again.
    pub attempt: u32,
    pub body: JobBody,
}

#[derive(Debug, Clone)]
pub enum JobBody {
    Event {
        id: EventId,
        kind: EventKind,
        payload: Bytes,
    },
    Original {
        delivery_id: i64,
        signature: String,
        body: Bytes,
    },
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Settlement {
    Delivered {
        status: u16,
    },
    RetryAt {
        at: Millis,
        status: Option<u16>,
        error: String,
    },
    Failed {
        status: Option<u16>,
        error: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Delivered,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Delivered => "delivered",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [JobState::Pending, JobState::Delivered, JobState::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A job as the admin API and CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: i64,
    pub route: RouteName,
    pub mode: ForwardMode,
    pub state: JobState,
    pub event_id: Option<EventId>,
    pub event_kind: Option<EventKind>,
    pub delivery_id: i64,
    /// Attempts made so far; one under way counts once it has ended.
    pub attempts: u32,
    pub next_attempt_at: Option<Millis>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub route: Option<RouteName>,
    /// Only jobs with an id below this, for paging newest first.
    pub before_id: Option<i64>,
    pub limit: usize,
}

/// A stored event, for replay and inspection.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub id: EventId,
    pub kind: EventKind,
    pub delivery_id: i64,
    pub received_at: Millis,
    pub seen_count: u32,
}

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub jobs: u64,
    pub events: u64,
    pub deliveries: u64,
}

/// Pending jobs per route.
#[derive(Debug, Clone)]
pub struct QueueDepth {
    pub route: RouteName,
    pub pending: u64,
}

/// A stored event replayed into the calling plane at start-up.
#[derive(Debug, Clone)]
pub struct CallingEvent {
    pub kind: EventKind,
    pub payload: Bytes,
    /// When the delivery that carried it was received.
    pub received_at: Millis,
}

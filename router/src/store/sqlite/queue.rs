//! The writer's queue, bounded: a write takes a place before it is queued, or is refused
//! at once when every place is taken, and gives its place back once it has been answered
//! (or dropped unbegun). A store that cannot keep up then says so to its callers (ingest
//! answers `503` and Meta sends the delivery again) instead of holding more and more of
//! them in memory for longer and longer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::StoreError;
use crate::telemetry::StoreMetrics;

/// How the writer's queue is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Writes queued or being written at once; one more is refused.
    pub places: usize,
    /// How long a caller waits for its write to be committed before it is told the write
    /// failed. A write not yet begun by then is not begun at all.
    pub timeout: Duration,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            places: 1024,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The places of the writer's queue.
pub(super) struct WriteQueue {
    places: Arc<Semaphore>,
    pub(super) limits: QueueLimits,
    metrics: Option<StoreMetrics>,
}

/// One write's place in the queue, given back when dropped.
pub(super) struct Place {
    _permit: OwnedSemaphorePermit,
    metrics: Option<StoreMetrics>,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(metrics) = &self.metrics {
            metrics.writes_waiting.dec();
        }
    }
}

impl WriteQueue {
    pub(super) fn new(limits: QueueLimits, metrics: Option<StoreMetrics>) -> Self {
        Self {
            places: Arc::new(Semaphore::new(limits.places)),
            limits,
            metrics,
        }
    }

    /// A place for one more write, or `Busy` when all are taken.
    pub(super) fn admit(&self) -> Result<Place, StoreError> {
        match self.places.clone().try_acquire_owned() {
            Ok(permit) => {
                if let Some(metrics) = &self.metrics {
                    metrics.writes_waiting.inc();
                }
                Ok(Place {
                    _permit: permit,
                    metrics: self.metrics.clone(),
                })
            }
            Err(_) => {
                self.refused("queue_full");
                Err(StoreError::Busy(format!(
                    "the store's write queue is full ({} writes)",
                    self.limits.places
                )))
            }
        }
    }

    /// Counts a write its caller gave up on: `queue_full` or `timeout`.
    pub(super) fn refused(&self, reason: &'static str) {
        if let Some(metrics) = &self.metrics {
            metrics.writes_refused.with_label_values(&[reason]).inc();
        }
    }

    /// What a caller whose write timed out hears.
    pub(super) fn timed_out(&self) -> StoreError {
        self.refused("timeout");
        StoreError::Busy(format!(
            "the store did not complete the write within {:?}",
            self.limits.timeout
        ))
    }
}

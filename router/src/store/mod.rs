//! Durable storage behind a trait (DESIGN §8).
//!
//! The embedded SQLite store is the default; the trait is shaped so a shared engine can
//! stand behind it without touching callers: a delivery is recorded with its events and jobs
//! in one atomic, idempotent step, and jobs are claimed with a lease that expires if the
//! worker dies.

#[cfg(test)]
mod contract;
pub mod ready;
pub mod sqlite;

use std::time::Duration;

use async_trait::async_trait;

pub use ready::Readiness;
pub use sqlite::SqliteStore;

use switchboard_protocol::{Bsuid, CallId, WaId};

use crate::domain::call::Call;
use crate::domain::clock::Millis;
use crate::domain::delivery::{
    CallingEvent, ClaimedJob, JobFilter, JobView, NewDelivery, Pruned, QueueDepth, Recorded,
    Settlement, StoredEvent,
};
use crate::domain::event::EventId;
use crate::domain::permission::Permission;
use crate::domain::route::{ForwardMode, RouteName};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the store failed")]
    Unavailable(#[source] anyhow::Error),
    /// The store is up but cannot take the write now: its queue is full, or the write did
    /// not complete in time. A write refused so was not begun, or if begun, is committed
    /// whole or not at all: trying it again is safe.
    #[error("the store is busy: {0}")]
    Busy(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.into())
    }
}

/// Whether a write must be on disk before its caller hears back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Flushed to disk at commit: an acknowledged webhook, an agent's or operator's action.
    Synced,
    /// Committed but flushed with the next synced commit: claims and settlements (losing
    /// one to a power cut only means a job is sent again), and call state derived from
    /// stored webhooks (rebuilt from them at start-up).
    Relaxed,
}

/// A value and the version it was read at, for compare-and-set.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub version: i64,
}

/// Deliveries, events and the jobs they owe consumers.
///
/// The contract every backend keeps:
/// - **Atomic and durable recording.** [`DeliveryStore::record_delivery`] stores the raw
///   delivery, its events and every job owed in one step that is on disk (or replicated)
///   before it returns `Ok`: a caller that heard `Ok` may answer Meta `200`; after an
///   `Err` nothing of the delivery may be visible.
/// - **Idempotent by event id.** An event id already stored is counted as seen again and
///   owes no new job, however often and however concurrently it arrives.
/// - **Leases, at least once.** A claimed job is invisible to other claims until its lease
///   runs out; a worker that dies loses its lease and the job is claimed again. Settling
///   releases the lease and is the only thing that counts an attempt. Claims and
///   settlements may be lost to a crash (the job is then sent again), never acknowledged
///   webhooks.
/// - **Nothing owed is lost to pruning.** [`DeliveryStore::prune`] removes only what no
///   pending or failed job still needs.
/// - **Background work cannot starve ingest.** Pruning works in small steps, each atomic,
///   so a delivery being recorded never waits behind more than one of them.
/// - **Busy, not stuck.** A backend that cannot take a write now (a full queue, a write
///   that did not complete in time) fails it with [`StoreError::Busy`] rather than
///   making its caller wait without end; such a write is whole or absent, never half.
#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    /// Records the delivery, its events and the jobs owed, atomically and durably. Events
    /// already stored are counted as seen again but owe no new jobs.
    async fn record_delivery(&self, delivery: NewDelivery) -> Result<Recorded, StoreError>;

    /// Leases up to `limit` due jobs of `route` until `now + lease`, oldest due first.
    /// Claiming does not count an attempt; settling does.
    async fn claim_jobs(
        &self,
        route: &RouteName,
        now: Millis,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedJob>, StoreError>;

    /// Records how an attempt ended, counts it and releases the lease, stamped with the
    /// store's own clock (which pruning compares against). Settling a job that no longer
    /// exists does nothing; a settlement from a worker whose lease ran out still counts
    /// (the job may then have been sent twice: delivery is at least once).
    async fn settle_job(&self, job: i64, settlement: Settlement) -> Result<(), StoreError>;

    /// Jobs newest first, filtered; `before_id` pages.
    async fn list_jobs(&self, filter: JobFilter) -> Result<Vec<JobView>, StoreError>;

    /// Makes a failed job, or a pending one no worker holds (no lease, or one that ran
    /// out by `now`), due now with a fresh retry schedule. `NotFound` for an unknown job;
    /// `Conflict` if it was delivered or a worker is delivering it right now.
    async fn retry_job(&self, job: i64, now: Millis) -> Result<JobView, StoreError>;

    async fn event(&self, id: &EventId) -> Result<Option<StoredEvent>, StoreError>;

    /// New jobs, due now, for an already stored event, one per given route. `NotFound`
    /// if the event is not stored.
    async fn replay_event(
        &self,
        id: &EventId,
        routes: Vec<(RouteName, ForwardMode)>,
        now: Millis,
    ) -> Result<Vec<i64>, StoreError>;

    /// Pending jobs per route that has any.
    async fn queue_depth(&self) -> Result<Vec<QueueDepth>, StoreError>;

    /// Forgets what is older than `before` and owed to nobody: delivered jobs, then events
    /// and deliveries no pending or failed job still needs. Calls and permissions stay.
    ///
    /// Works in small atomic steps, letting other writes through between them, so a
    /// backlog of any size never holds up ingest; the future may be dropped between steps
    /// (at shutdown), leaving what was removed removed and the rest for next time.
    async fn prune(&self, before: Millis) -> Result<Pruned, StoreError>;

    /// Fails every pending job whose route is not in `routes` (the routes configured now),
    /// with `reason` as its last error, releasing any lease and counting no attempt:
    /// work no worker will ever claim shows as failed instead of pending forever, and
    /// [`DeliveryStore::retry_job`] makes it due again if its route comes back. Failed and
    /// delivered jobs are left as they are. Returns how many jobs were failed.
    ///
    /// Routers sharing a backend share their routes: one that lacks a route fails its jobs
    /// for all of them.
    async fn fail_jobs_of_other_routes(
        &self,
        routes: &[RouteName],
        reason: &str,
        now: Millis,
    ) -> Result<u64, StoreError>;

    /// Calling events (calls, call statuses, permission replies) received since `since`,
    /// in the order received, so state lost to a crash between commit and processing is
    /// rebuilt.
    async fn calling_events_since(&self, since: Millis) -> Result<Vec<CallingEvent>, StoreError>;
}

/// Calls and call permissions, each a document with a version.
///
/// The contract every backend keeps:
/// - **Compare-and-set.** A write names the version it read; if the stored version moved
///   on, the write changes nothing and fails with `Conflict`, and the caller reads again
///   and retries. Versions only grow.
/// - **One live call per user**, checked and written in the same atomic step as the
///   insert when asked, by phone number or BSUID.
/// - [`Durability::Relaxed`] writes may be lost to a power cut (they are rebuilt from
///   stored webhooks); [`Durability::Synced`] ones may not.
#[async_trait]
pub trait CallStore: Send + Sync + 'static {
    /// Inserts a new call at version 1. With `one_per_user`, fails with `Conflict` if the
    /// same user (by phone number or BSUID) already has a live call. `Conflict` too if
    /// the id exists.
    async fn insert_call(
        &self,
        call: &Call,
        one_per_user: bool,
        durability: Durability,
    ) -> Result<i64, StoreError>;

    async fn load_call(&self, id: &CallId) -> Result<Option<Versioned<Call>>, StoreError>;

    /// Writes `call` if it is still at `version`, returning the new version; `Conflict`
    /// otherwise.
    async fn update_call(
        &self,
        call: &Call,
        version: i64,
        durability: Durability,
    ) -> Result<i64, StoreError>;

    /// Replaces the placeholder `local_id` by `call` under Meta's id, which may already
    /// exist at `version` (a webhook can beat Meta's API answer), in one atomic step.
    async fn promote_call(
        &self,
        local_id: &CallId,
        call: &Call,
        version: Option<i64>,
    ) -> Result<i64, StoreError>;

    /// The call log, newest first; `before` pages by creation time (Unix seconds), so
    /// calls created in the same second as a page's last one can fall between pages.
    async fn list_calls(&self, before: Option<i64>, limit: usize) -> Result<Vec<Call>, StoreError>;

    async fn live_calls(&self) -> Result<Vec<Call>, StoreError>;

    /// The permission record of a user known by phone number and/or BSUID. If the two
    /// keys find different records (the user was first seen by one, then by the other),
    /// the one at the higher version comes back, and saving against its version replaces
    /// both.
    async fn load_permission(
        &self,
        phone: Option<&WaId>,
        bsuid: Option<&Bsuid>,
    ) -> Result<Option<Versioned<Permission>>, StoreError>;

    /// Writes a permission record if still at `version` (`None`: a new record, `Conflict`
    /// if one exists for the user).
    async fn save_permission(
        &self,
        permission: &Permission,
        version: Option<i64>,
    ) -> Result<i64, StoreError>;
}

/// A session ended before its time (its agent signed out), remembered until it would have
/// expired anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSession {
    /// The session's id, as its cookie carries it.
    pub id: String,
    /// When the session would have expired (Unix seconds): after that its cookie is
    /// refused anyway, and the revocation may be forgotten.
    pub expires_at: i64,
}

/// Agents' sessions that were ended early.
///
/// The contract every backend keeps:
/// - **Durable.** A revocation that returned `Ok` is on disk (or replicated): a restart,
///   or a crash right after, does not bring the session back.
/// - **Idempotent.** Revoking a session again is the same revocation; its later expiry
///   is kept.
/// - **Kept until expiry.** [`SessionStore::revoked_sessions`] lists a revocation while
///   `now` is before its `expires_at`; after that the backend may forget it.
/// - **One truth for every router.** A backend shared by several routers makes a
///   revocation visible to all of them: each reads the list at start-up, and hears of
///   later ones through the hub (today's hub is local; a cross-node one carries them).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Records that a session ended, durably.
    async fn revoke_session(&self, session: &RevokedSession) -> Result<(), StoreError>;

    /// The sessions revoked that would not have expired by `now` (Unix seconds).
    async fn revoked_sessions(&self, now: i64) -> Result<Vec<RevokedSession>, StoreError>;
}

/// A whole backend: deliveries, calls and revoked sessions in one store that can say it
/// is up.
#[async_trait]
pub trait Store: DeliveryStore + CallStore + SessionStore {
    /// Succeeds when the store can serve reads and writes.
    async fn ping(&self) -> Result<(), StoreError>;
}

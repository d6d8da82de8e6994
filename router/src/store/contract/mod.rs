//! The store's contract as tests: written once against [`Store`], run against every
//! backend, so a new backend proves it keeps the promises callers rely on by passing the
//! same tests the SQLite store passes.
//!
//! A backend joins with an implementation of [`Backend`] and one line in a `#[cfg(test)]`
//! module of its own: `crate::store::contract::store_contract!(MyBackend);`.
//!
//! Times are real wall-clock times because settling stamps jobs with the clock, and pruning
//! compares against those stamps; claims and retries take the `now` they are given.

mod calls;
mod claims;
mod recording;
mod sessions;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchboard_protocol::api::{CallState, PermissionStatus};
use switchboard_protocol::User;

use super::{Durability, Store, StoreError, Versioned};
use crate::domain::call::Call;
use crate::domain::clock::{now_millis, Millis};
use crate::domain::delivery::{
    ClaimedJob, JobBody, JobFilter, JobState, JobView, NewDelivery, NewEvent, Pruned, Recorded,
    Settlement,
};
use crate::domain::event::{EventId, EventKind, Kind};
use crate::domain::permission::Permission;
use crate::domain::route::{ForwardMode, RouteName};

pub(crate) use self::calls::*;
pub(crate) use self::claims::*;
pub(crate) use self::recording::*;
pub(crate) use self::sessions::*;

/// A store under test, with whatever it lives in (a directory, a server).
pub(crate) trait Backend: Sized {
    /// A new, empty store.
    async fn open() -> Self;
    /// The same data behind a new store, as after the process restarted. Every handle
    /// from [`Backend::store`] must have been dropped first.
    async fn reopen(self) -> Self;
    fn store(&self) -> Arc<dyn Store>;
}

/// Every contract test as a `#[tokio::test]` for one backend. Multi-threaded, so the
/// tests that race writers race them for real.
macro_rules! store_contract {
    ($backend:ty) => {
        $crate::store::contract::store_contract!(@each $backend;
            a_delivery_is_recorded_with_its_events_and_jobs_in_one_step,
            an_original_route_gets_one_job_per_delivery_carrying_the_exact_bytes,
            an_event_seen_again_owes_no_new_job,
            concurrent_records_of_the_same_event_store_it_once,
            what_was_recorded_is_still_there_after_a_restart,
            a_claimed_job_is_not_claimed_again_until_its_lease_runs_out,
            a_job_whose_lease_ran_out_is_claimed_again,
            concurrent_claims_never_hand_out_the_same_job_twice,
            a_claim_takes_the_oldest_due_jobs_of_its_route_up_to_its_limit,
            claimed_jobs_come_back_oldest_due_first,
            a_job_settled_for_a_later_retry_is_not_due_before_then,
            settling_counts_the_attempt_and_releases_the_lease,
            a_job_claimed_but_never_tried_keeps_its_attempts_across_a_restart,
            a_failed_job_can_be_retried_and_a_delivered_one_cannot,
            a_job_a_worker_is_delivering_cannot_be_retried_until_its_lease_runs_out,
            jobs_of_a_route_no_longer_configured_are_failed_and_can_be_retried,
            replay_queues_new_jobs_for_a_stored_event,
            replay_of_an_unknown_event_is_not_found,
            pruning_keeps_what_pending_or_failed_jobs_still_need,
            pruning_keeps_the_delivery_an_original_job_will_still_send,
            queue_depth_counts_pending_jobs_per_route_that_has_any,
            list_jobs_filters_by_state_and_route_and_pages_newest_first,
            calling_events_come_back_in_the_order_received,
            a_new_call_is_stored_at_version_1_and_its_id_only_once,
            a_call_write_at_a_stale_version_is_a_conflict_and_changes_nothing,
            a_second_live_call_for_the_same_user_is_refused_by_phone_or_bsuid,
            concurrent_calls_to_the_same_user_leave_only_one_live,
            a_placeholder_call_is_promoted_to_metas_id_even_when_the_webhook_came_first,
            calls_are_listed_newest_first_and_live_calls_are_those_not_ended,
            permissions_are_found_by_phone_or_bsuid_and_saved_by_compare_and_set,
            a_permission_saved_under_both_keys_replaces_the_records_each_key_had,
            a_store_that_is_up_answers_a_ping,
            a_revoked_session_stays_revoked_across_a_restart_until_it_expires,
            revoking_a_session_again_keeps_its_later_expiry,
        );
    };
    (@each $backend:ty; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                $crate::store::contract::$test::<$backend>().await;
            }
        )*
    };
}
pub(crate) use store_contract;

mod sqlite {
    use std::path::Path;
    use std::sync::Arc;

    use crate::store::sqlite::OpenMode;
    use crate::store::{SqliteStore, Store};

    /// A store in a temporary directory, opened as a server opens it.
    pub(crate) struct Sqlite {
        dir: tempfile::TempDir,
        store: Arc<dyn Store>,
    }

    fn open_in(dir: &Path) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(dir, OpenMode::Server).expect("the store opens"))
    }

    impl super::Backend for Sqlite {
        async fn open() -> Self {
            let dir = tempfile::TempDir::new().expect("a temporary directory");
            let store = open_in(dir.path());
            Self { dir, store }
        }

        async fn reopen(self) -> Self {
            let Self { dir, store } = self;
            // Dropping the last handle releases the server lock, as a process exiting would.
            drop(store);
            let store = open_in(dir.path());
            Self { dir, store }
        }

        fn store(&self) -> Arc<dyn Store> {
            self.store.clone()
        }
    }

    super::store_contract!(Sqlite);
}

// ---- Inputs and small helpers ----

type Handle = Arc<dyn Store>;

const LEASE: Duration = Duration::from_secs(60);
const LEASE_MS: Millis = 60_000;
const HOUR: Millis = 3_600_000;
const EVENT: ForwardMode = ForwardMode::Event;
const ORIGINAL: ForwardMode = ForwardMode::Original;

fn route(name: &str) -> RouteName {
    RouteName::parse(name).unwrap()
}

fn id(n: u32) -> EventId {
    EventId::parse(&format!("evt_{n:032x}")).unwrap()
}

fn payload(n: u32) -> Bytes {
    Bytes::from(format!(r#"{{"event":{n}}}"#))
}

fn event(n: u32, kind: EventKind, routes: &[(&RouteName, ForwardMode)]) -> NewEvent {
    NewEvent {
        id: id(n),
        kind,
        payload: payload(n),
        routes: routes.iter().map(|(r, m)| ((*r).clone(), *m)).collect(),
    }
}

fn text(n: u32, routes: &[(&RouteName, ForwardMode)]) -> NewEvent {
    event(n, EventKind::new(Kind::Message, "text"), routes)
}

/// A delivery whose bytes and signature are its own, so an original job can be checked
/// against exactly what came in.
fn delivery(received_at: Millis, events: Vec<NewEvent>) -> NewDelivery {
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    NewDelivery {
        received_at,
        signature: format!("sha256={received_at:016x}{}", ids.len()),
        body: Bytes::from(format!(r#"{{"at":{received_at},"events":{ids:?}}}"#)),
        events,
    }
}

/// One text message owed to `to` in event mode.
fn one_text(n: u32, received_at: Millis, to: &RouteName) -> NewDelivery {
    delivery(received_at, vec![text(n, &[(to, EVENT)])])
}

async fn record(store: &Handle, delivery: NewDelivery) -> Recorded {
    store.record_delivery(delivery).await.unwrap()
}

async fn claim(store: &Handle, route: &RouteName, now: Millis) -> Vec<ClaimedJob> {
    store.claim_jobs(route, now, LEASE, 100).await.unwrap()
}

async fn settle(store: &Handle, job: i64, settlement: Settlement) {
    store.settle_job(job, settlement).await.unwrap();
}

fn delivered() -> Settlement {
    Settlement::Delivered { status: 200 }
}

fn failed() -> Settlement {
    Settlement::Failed {
        status: Some(500),
        error: "down".into(),
    }
}

fn retry_at(at: Millis) -> Settlement {
    Settlement::RetryAt {
        at,
        status: Some(503),
        error: "busy".into(),
    }
}

async fn all_jobs(store: &Handle) -> Vec<JobView> {
    list(store, JobFilter::default()).await
}

async fn list(store: &Handle, filter: JobFilter) -> Vec<JobView> {
    let limit = if filter.limit == 0 {
        1_000
    } else {
        filter.limit
    };
    store
        .list_jobs(JobFilter { limit, ..filter })
        .await
        .unwrap()
}

async fn job(store: &Handle, id: i64) -> JobView {
    all_jobs(store)
        .await
        .into_iter()
        .find(|j| j.id == id)
        .expect("the job is listed")
}

/// The one job owed for event `n`.
async fn job_of(store: &Handle, n: u32) -> JobView {
    let mut jobs: Vec<JobView> = all_jobs(store)
        .await
        .into_iter()
        .filter(|j| j.event_id == Some(id(n)))
        .collect();
    assert_eq!(jobs.len(), 1, "one job for event {n}");
    jobs.remove(0)
}

fn event_of(job: &ClaimedJob) -> EventId {
    match &job.body {
        JobBody::Event { id, .. } => id.clone(),
        JobBody::Original { .. } => panic!("job {} forwards a whole delivery", job.id),
    }
}

fn events_of(jobs: &[ClaimedJob]) -> BTreeSet<EventId> {
    jobs.iter().map(event_of).collect()
}

fn ids(ns: &[u32]) -> BTreeSet<EventId> {
    ns.iter().copied().map(id).collect()
}

fn listed_events(jobs: &[JobView]) -> Vec<String> {
    jobs.iter()
        .map(|j| {
            j.event_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        })
        .collect()
}

fn listed(ns: &[u32]) -> Vec<String> {
    ns.iter().map(|n| id(*n).to_string()).collect()
}

fn is_conflict<T>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(_)))
}

fn is_not_found<T>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound(_)))
}

pub(crate) fn user(bsuid: Option<&str>, phone: Option<&str>) -> User {
    User {
        user_id: bsuid.map(Into::into),
        wa_id: phone.map(Into::into),
        ..User::default()
    }
}

/// The start of most tests: a fresh store, the route `crm` and the time now. The backend
/// is returned so it lives as long as the test (and can be reopened).
async fn fresh_with_route<B: Backend>() -> (B, Handle, RouteName, Millis) {
    let backend = B::open().await;
    let store = backend.store();
    (backend, store, route("crm"), now_millis())
}

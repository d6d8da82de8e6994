//! The store's contract as tests: written once against [`Store`], run against every
//! backend, so a new backend proves it keeps the promises callers rely on by passing the
//! same tests the SQLite store passes.
//!
//! A backend joins with an implementation of [`Backend`] and one line in a `#[cfg(test)]`
//! module of its own: `crate::store::contract::store_contract!(MyBackend);`.
//!
//! Times are real wall-clock times because settling stamps jobs with the clock, and pruning
//! compares against those stamps; claims and retries take the `now` they are given.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchboard_protocol::api::{CallState, PermissionStatus};
use switchboard_protocol::User;

use super::{Durability, Store, StoreError};
use crate::domain::call::Call;
use crate::domain::clock::{now_millis, Millis};
use crate::domain::delivery::{
    ClaimedJob, JobBody, JobFilter, JobState, JobView, NewDelivery, NewEvent, Pruned, Recorded,
    Settlement,
};
use crate::domain::event::{EventId, EventKind, Kind};
use crate::domain::permission::Permission;
use crate::domain::route::{ForwardMode, RouteName};

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
            a_job_settled_for_a_later_retry_is_not_due_before_then,
            settling_counts_the_attempt_and_releases_the_lease,
            a_job_claimed_but_never_tried_keeps_its_attempts_across_a_restart,
            a_failed_job_can_be_retried_and_a_delivered_one_cannot,
            a_job_a_worker_is_delivering_cannot_be_retried_until_its_lease_runs_out,
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
        .filter(|j| j.event_id.as_deref() == Some(id(n).as_str()))
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
        .map(|j| j.event_id.clone().unwrap_or_default())
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

// ---- Recording ----

pub(crate) async fn a_delivery_is_recorded_with_its_events_and_jobs_in_one_step<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let (crm, erp) = (route("crm"), route("erp"));
    let now = now_millis();
    let recorded = record(
        &store,
        delivery(
            now,
            vec![
                text(1, &[(&crm, EVENT), (&erp, EVENT)]),
                event(
                    2,
                    EventKind::new(Kind::MessageStatus, "read"),
                    &[(&crm, EVENT)],
                ),
                text(3, &[]),
            ],
        ),
    )
    .await;
    assert_eq!(recorded.new_events, 3);
    assert_eq!(recorded.duplicate_events, 0);
    assert_eq!(recorded.duplicates, [false, false, false]);
    let woken: BTreeSet<_> = recorded.routes_with_jobs.iter().cloned().collect();
    assert_eq!(woken, BTreeSet::from([crm.clone(), erp.clone()]));

    for (n, kind) in [
        (1, "message:text"),
        (2, "message_status:read"),
        (3, "message:text"),
    ] {
        let stored = store
            .event(&id(n))
            .await
            .unwrap()
            .expect("the event is stored");
        assert_eq!(stored.id, id(n).as_str());
        assert_eq!(stored.kind, kind);
        assert_eq!(stored.delivery_id, recorded.delivery_id);
        assert_eq!(stored.received_at, now);
        assert_eq!(stored.seen_count, 1);
    }
    // An event no route matched is kept but owes nothing.
    let jobs = all_jobs(&store).await;
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    for job in &jobs {
        assert_eq!(job.state, JobState::Pending);
        assert_eq!(job.attempts, 0);
        assert_eq!(job.mode, "event");
        assert_eq!(job.delivery_id, recorded.delivery_id);
        assert_eq!(job.created_at, now);
    }

    // Due as soon as received, carrying each event as it came.
    let to_crm = claim(&store, &crm, now).await;
    assert_eq!(events_of(&to_crm), ids(&[1, 2]));
    for job in &to_crm {
        let JobBody::Event {
            id: event_id,
            kind,
            payload: body,
        } = &job.body
        else {
            panic!("an event job");
        };
        let n = if *event_id == id(1) { 1 } else { 2 };
        assert_eq!(job.route, crm);
        assert_eq!(job.attempt, 1);
        assert_eq!(*body, payload(n));
        let expected = if n == 1 {
            "message:text"
        } else {
            "message_status:read"
        };
        assert_eq!(kind.to_string(), expected);
    }
    let to_erp = claim(&store, &erp, now).await;
    assert_eq!(events_of(&to_erp), ids(&[1]));
}

pub(crate) async fn an_original_route_gets_one_job_per_delivery_carrying_the_exact_bytes<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let (archive, crm) = (route("archive"), route("crm"));
    let now = now_millis();
    let incoming = delivery(
        now,
        vec![
            text(1, &[(&archive, ORIGINAL), (&crm, EVENT)]),
            text(2, &[(&archive, ORIGINAL)]),
            text(3, &[(&crm, EVENT)]),
        ],
    );
    let recorded = record(&store, incoming.clone()).await;
    assert_eq!(recorded.routes_with_jobs.len(), 2);

    let originals = list(
        &store,
        JobFilter {
            route: Some(archive.clone()),
            ..JobFilter::default()
        },
    )
    .await;
    assert_eq!(originals.len(), 1, "two matching events, one job");
    assert_eq!(originals[0].mode, "original");
    assert_eq!(originals[0].event_id, None);
    assert_eq!(originals[0].delivery_id, recorded.delivery_id);

    let claimed = claim(&store, &archive, now).await;
    assert_eq!(claimed.len(), 1);
    match &claimed[0].body {
        JobBody::Original {
            delivery_id,
            signature,
            body,
        } => {
            assert_eq!(*delivery_id, recorded.delivery_id);
            assert_eq!(*signature, incoming.signature);
            assert_eq!(*body, incoming.body);
        }
        JobBody::Event { id, .. } => panic!("an original job carried event {id}"),
    }
    assert_eq!(events_of(&claim(&store, &crm, now).await), ids(&[1, 3]));
}

pub(crate) async fn an_event_seen_again_owes_no_new_job<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    let first = record(&store, one_text(1, now, &crm)).await;
    let again = record(
        &store,
        delivery(
            now + 1,
            vec![text(1, &[(&crm, EVENT)]), text(2, &[(&crm, EVENT)])],
        ),
    )
    .await;
    assert_ne!(again.delivery_id, first.delivery_id);
    assert_eq!((again.new_events, again.duplicate_events), (1, 1));
    assert_eq!(again.duplicates, [true, false]);
    assert_eq!(again.routes_with_jobs, std::slice::from_ref(&crm));

    let repeat = record(&store, one_text(1, now + 2, &crm)).await;
    assert_eq!((repeat.new_events, repeat.duplicate_events), (0, 1));
    assert_eq!(repeat.duplicates, [true]);
    assert!(repeat.routes_with_jobs.is_empty(), "no worker to wake");

    let stored = store.event(&id(1)).await.unwrap().expect("stored");
    assert_eq!(stored.seen_count, 3);
    assert_eq!(
        stored.delivery_id, first.delivery_id,
        "kept as first stored"
    );
    assert_eq!(stored.received_at, now);
    let jobs = all_jobs(&store).await;
    assert_eq!(listed_events(&jobs).len(), 2);
    assert_eq!(events_of(&claim(&store, &crm, now + 2).await), ids(&[1, 2]));
}

pub(crate) async fn concurrent_records_of_the_same_event_store_it_once<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let (store, crm) = (store.clone(), crm.clone());
            tokio::spawn(async move { record(&store, one_text(7, now + i, &crm)).await })
        })
        .collect();
    let mut recorded = Vec::new();
    for racer in racers {
        recorded.push(racer.await.unwrap());
    }
    let new: Vec<_> = recorded.iter().filter(|r| r.new_events == 1).collect();
    assert_eq!(new.len(), 1, "{recorded:?}");
    assert_eq!(new[0].duplicates, [false]);
    assert_eq!(new[0].routes_with_jobs, std::slice::from_ref(&crm));
    let duplicates = recorded
        .iter()
        .filter(|r| r.duplicate_events == 1 && r.duplicates == [true])
        .count();
    assert_eq!(duplicates, 7);

    let stored = store.event(&id(7)).await.unwrap().expect("stored");
    assert_eq!(stored.seen_count, 8);
    assert_eq!(stored.delivery_id, new[0].delivery_id);
    assert_eq!(all_jobs(&store).await.len(), 1);
    assert_eq!(claim(&store, &crm, now + 8).await.len(), 1);
}

pub(crate) async fn what_was_recorded_is_still_there_after_a_restart<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    let first = record(&store, one_text(1, now, &crm)).await;
    drop(store);

    let backend = backend.reopen().await;
    let store = backend.store();
    let stored = store.event(&id(1)).await.unwrap().expect("still stored");
    assert_eq!(stored.delivery_id, first.delivery_id);
    // Still recognised: a webhook Meta sends again after the restart owes nothing new.
    let again = record(&store, one_text(1, now + 1, &crm)).await;
    assert_eq!(again.duplicates, [true]);
    let claimed = claim(&store, &crm, now).await;
    assert_eq!(events_of(&claimed), ids(&[1]));
    let JobBody::Event { payload: body, .. } = &claimed[0].body else {
        panic!("an event job");
    };
    assert_eq!(*body, payload(1));
}

// ---- Claims and leases ----

pub(crate) async fn a_claimed_job_is_not_claimed_again_until_its_lease_runs_out<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    record(&store, one_text(1, now, &crm)).await;
    assert_eq!(claim(&store, &crm, now).await.len(), 1);
    assert!(claim(&store, &crm, now + 1).await.is_empty());
    assert!(claim(&store, &crm, now + LEASE_MS - 1).await.is_empty());
    // Held is still pending; claiming counts no attempt.
    let view = job_of(&store, 1).await;
    assert_eq!(view.state, JobState::Pending);
    assert_eq!(view.attempts, 0);
}

pub(crate) async fn a_job_whose_lease_ran_out_is_claimed_again<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    record(&store, one_text(1, now, &crm)).await;
    let first = claim(&store, &crm, now).await;
    assert_eq!(first.len(), 1);
    // The worker died holding it.
    let later = now + LEASE_MS + 1;
    let again = claim(&store, &crm, later).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].attempt, 1, "the lost claim was never an attempt");
    assert!(
        claim(&store, &crm, later + 1).await.is_empty(),
        "the new claim holds a lease of its own"
    );
}

pub(crate) async fn concurrent_claims_never_hand_out_the_same_job_twice<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    let events = (1..=12).map(|n| text(n, &[(&crm, EVENT)])).collect();
    record(&store, delivery(now, events)).await;
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (store, crm) = (store.clone(), crm.clone());
            tokio::spawn(async move { store.claim_jobs(&crm, now, LEASE, 5).await.unwrap() })
        })
        .collect();
    let mut claimed = Vec::new();
    for worker in workers {
        let jobs = worker.await.unwrap();
        assert!(jobs.len() <= 5, "a claim stays within its limit");
        claimed.extend(jobs.into_iter().map(|j| j.id));
    }
    let distinct: BTreeSet<_> = claimed.iter().collect();
    assert_eq!(distinct.len(), claimed.len(), "a job went to two workers");
    assert_eq!(claimed.len(), 12);
}

pub(crate) async fn a_claim_takes_the_oldest_due_jobs_of_its_route_up_to_its_limit<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let (crm, erp) = (route("crm"), route("erp"));
    let now = now_millis();
    // Recorded in an order other than their due order.
    record(&store, one_text(3, now - 1_000, &crm)).await;
    record(&store, one_text(1, now - 3_000, &crm)).await;
    record(&store, one_text(9, now + 10_000, &crm)).await;
    record(&store, one_text(2, now - 2_000, &crm)).await;
    record(&store, one_text(4, now - 4_000, &erp)).await;

    let oldest = store.claim_jobs(&crm, now, LEASE, 2).await.unwrap();
    assert_eq!(events_of(&oldest), ids(&[1, 2]));
    assert!(oldest.iter().all(|j| j.route == crm));
    assert_eq!(events_of(&claim(&store, &crm, now).await), ids(&[3]));
    assert!(claim(&store, &crm, now).await.is_empty(), "9 is not due");
    assert_eq!(
        events_of(&claim(&store, &crm, now + 10_000).await),
        ids(&[9])
    );
    assert_eq!(events_of(&claim(&store, &erp, now).await), ids(&[4]));
}

pub(crate) async fn a_job_settled_for_a_later_retry_is_not_due_before_then<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    record(&store, one_text(1, now, &crm)).await;
    let first = claim(&store, &crm, now).await;
    settle(&store, first[0].id, retry_at(now + 5_000)).await;
    assert!(claim(&store, &crm, now + 4_999).await.is_empty());
    let second = claim(&store, &crm, now + 5_000).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempt, 2);
}

pub(crate) async fn settling_counts_the_attempt_and_releases_the_lease<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    record(
        &store,
        delivery(
            now,
            vec![text(1, &[(&crm, EVENT)]), text(2, &[(&crm, EVENT)])],
        ),
    )
    .await;
    let jobs = claim(&store, &crm, now).await;
    let (one, two) = match (event_of(&jobs[0]) == id(1), &jobs[..]) {
        (true, [a, b]) | (false, [b, a]) => (a.id, b.id),
        _ => panic!("two jobs: {jobs:?}"),
    };

    settle(&store, one, retry_at(now)).await;
    let view = job(&store, one).await;
    assert_eq!(view.state, JobState::Pending);
    assert_eq!(view.attempts, 1);
    assert_eq!(view.next_attempt_at, Some(now));
    assert_eq!(view.last_status, Some(503));
    assert_eq!(view.last_error.as_deref(), Some("busy"));
    // The lease would stand for a minute yet; settling gave the job back at once.
    let again = claim(&store, &crm, now).await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempt), (one, 2));
    settle(
        &store,
        one,
        Settlement::Failed {
            status: None,
            error: "connection refused".into(),
        },
    )
    .await;
    let view = job(&store, one).await;
    assert_eq!(view.state, JobState::Failed);
    assert_eq!(view.attempts, 2);
    assert_eq!(view.last_status, None);
    assert_eq!(view.last_error.as_deref(), Some("connection refused"));

    settle(&store, two, delivered()).await;
    let view = job(&store, two).await;
    assert_eq!(view.state, JobState::Delivered);
    assert_eq!(view.attempts, 1);
    assert_eq!(view.last_status, Some(200));
    assert!(
        claim(&store, &crm, now + 10 * LEASE_MS).await.is_empty(),
        "neither a failed nor a delivered job is claimed again"
    );
}

pub(crate) async fn a_job_claimed_but_never_tried_keeps_its_attempts_across_a_restart<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    record(&store, one_text(1, now, &crm)).await;
    let first = claim(&store, &crm, now).await;
    assert_eq!(first[0].attempt, 1);
    settle(&store, first[0].id, retry_at(now)).await;
    assert_eq!(job_of(&store, 1).await.attempts, 1);
    // Claimed into a worker's buffer, then the process stops before trying it.
    let second = claim(&store, &crm, now).await;
    assert_eq!(second[0].attempt, 2);
    assert_eq!(job_of(&store, 1).await.attempts, 1);
    drop(store);

    let backend = backend.reopen().await;
    let store = backend.store();
    assert_eq!(job_of(&store, 1).await.attempts, 1);
    let after_restart = claim(&store, &crm, now + LEASE_MS + 1).await;
    assert_eq!(after_restart.len(), 1);
    assert_eq!(after_restart[0].attempt, 2);
    settle(&store, after_restart[0].id, failed()).await;
    let view = job_of(&store, 1).await;
    assert_eq!(view.state, JobState::Failed);
    assert_eq!(view.attempts, 2);
}

// ---- Retry, replay, pruning ----

pub(crate) async fn a_failed_job_can_be_retried_and_a_delivered_one_cannot<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    record(&store, one_text(1, now, &crm)).await;
    let job_id = claim(&store, &crm, now).await[0].id;
    settle(&store, job_id, failed()).await;

    let later = now + 1_000;
    let view = store.retry_job(job_id, later).await.unwrap();
    assert_eq!(view.id, job_id);
    assert_eq!(view.state, JobState::Pending);
    assert_eq!(view.attempts, 0, "a fresh retry schedule");
    assert_eq!(view.next_attempt_at, Some(later));
    let again = claim(&store, &crm, later).await;
    assert_eq!((again.len(), again[0].attempt), (1, 1));

    settle(&store, job_id, delivered()).await;
    let refused = store.retry_job(job_id, later).await;
    assert!(is_conflict(&refused), "{refused:?}");
    let view = job(&store, job_id).await;
    assert_eq!((view.state, view.attempts), (JobState::Delivered, 1));
    assert!(claim(&store, &crm, later + HOUR).await.is_empty());

    let unknown = store.retry_job(job_id + 1_000, later).await;
    assert!(is_not_found(&unknown), "{unknown:?}");
}

pub(crate) async fn a_job_a_worker_is_delivering_cannot_be_retried_until_its_lease_runs_out<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    record(&store, one_text(1, now, &crm)).await;
    let job_id = claim(&store, &crm, now).await[0].id;
    settle(&store, job_id, retry_at(now + HOUR)).await;
    // Pending and held by nobody: a retry makes it due now.
    let view = store.retry_job(job_id, now + 1).await.unwrap();
    assert_eq!(view.next_attempt_at, Some(now + 1));
    assert_eq!(view.attempts, 0);

    let claimed = claim(&store, &crm, now + 1).await;
    assert_eq!(claimed.len(), 1);
    let refused = store.retry_job(job_id, now + 1_000).await;
    assert!(is_conflict(&refused), "{refused:?}");
    // The lease still stands, so no second worker gets the job.
    assert!(claim(&store, &crm, now + 1_000).await.is_empty());

    // The worker died: once its lease ran out, the job can be retried.
    let later = now + 1 + LEASE_MS;
    let view = store.retry_job(job_id, later).await.unwrap();
    assert_eq!(view.state, JobState::Pending);
    assert_eq!(view.next_attempt_at, Some(later));
    assert_eq!(claim(&store, &crm, later).await.len(), 1);

    settle(&store, job_id, delivered()).await;
    let delivered = store.retry_job(job_id, later).await;
    assert!(is_conflict(&delivered), "{delivered:?}");
}

pub(crate) async fn replay_queues_new_jobs_for_a_stored_event<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let (crm, archive) = (route("crm"), route("archive"));
    let now = now_millis();
    let incoming = one_text(1, now, &crm);
    let recorded = record(&store, incoming.clone()).await;
    let old = claim(&store, &crm, now).await[0].id;
    settle(&store, old, delivered()).await;

    let replayed = store
        .replay_event(
            &id(1),
            vec![(crm.clone(), EVENT), (archive.clone(), ORIGINAL)],
            now + 5,
        )
        .await
        .unwrap();
    assert_eq!(replayed.len(), 2);
    assert!(!replayed.contains(&old) && replayed[0] != replayed[1]);
    for new in &replayed {
        let view = job(&store, *new).await;
        assert_eq!((view.state, view.attempts), (JobState::Pending, 0));
        assert_eq!(view.delivery_id, recorded.delivery_id);
    }
    assert_eq!(job(&store, old).await.state, JobState::Delivered);

    let to_crm = claim(&store, &crm, now + 5).await;
    assert_eq!(to_crm.len(), 1);
    assert_eq!(to_crm[0].id, replayed[0]);
    assert_eq!(to_crm[0].attempt, 1);
    let JobBody::Event {
        id: event,
        payload: body,
        ..
    } = &to_crm[0].body
    else {
        panic!("an event job");
    };
    assert_eq!((event, body), (&id(1), &payload(1)));
    let to_archive = claim(&store, &archive, now + 5).await;
    assert_eq!(to_archive.len(), 1);
    let JobBody::Original { body, .. } = &to_archive[0].body else {
        panic!("an original job");
    };
    assert_eq!(*body, incoming.body);
}

pub(crate) async fn replay_of_an_unknown_event_is_not_found<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let crm = route("crm");
    let now = now_millis();
    record(&store, one_text(1, now, &crm)).await;
    let unknown = store
        .replay_event(&id(2), vec![(crm.clone(), EVENT)], now)
        .await;
    assert!(is_not_found(&unknown), "{unknown:?}");
    assert!(store.event(&id(2)).await.unwrap().is_none());
    assert_eq!(all_jobs(&store).await.len(), 1, "no job was queued");
}

pub(crate) async fn pruning_keeps_what_pending_or_failed_jobs_still_need<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let (crm, erp) = (route("crm"), route("erp"));
    let now = now_millis();
    record(&store, one_text(1, 1_000, &crm)).await;
    record(&store, one_text(2, 2_000, &crm)).await;
    record(&store, one_text(3, 3_000, &crm)).await;
    record(&store, one_text(4, now + 60_000, &erp)).await;
    // 1 is delivered, 2 failed, 3 still pending; the recent 4 was delivered.
    for job in store.claim_jobs(&crm, now, LEASE, 2).await.unwrap() {
        let settlement = if event_of(&job) == id(1) {
            delivered()
        } else {
            failed()
        };
        settle(&store, job.id, settlement).await;
    }
    let recent = claim(&store, &erp, now + 120_000).await;
    settle(&store, recent[0].id, delivered()).await;
    // Calls and permissions are never pruned, however old.
    let call = Call::dialing("wacid.old".into(), user("US.1", None), "asha".into(), 1);
    store
        .insert_call(&call, false, Durability::Synced)
        .await
        .unwrap();
    let permission = Permission::unknown(user("US.1", None), 1);
    store.save_permission(&permission, None).await.unwrap();

    // A delivered job goes only once it is old by when it was settled, not received.
    assert_eq!(store.prune(now - 60_000).await.unwrap(), Pruned::default());

    let pruned = store.prune(now + 30_000).await.unwrap();
    assert_eq!(
        pruned.jobs, 2,
        "both delivered jobs are old enough by update time"
    );
    assert_eq!(pruned.events, 1);
    assert_eq!(pruned.deliveries, 1);
    assert!(store.event(&id(1)).await.unwrap().is_none());
    for n in [2, 3, 4] {
        assert!(store.event(&id(n)).await.unwrap().is_some(), "event {n}");
    }
    let left = all_jobs(&store).await;
    assert_eq!(listed_events(&left), listed(&[3, 2]));
    let replay = store
        .replay_event(&id(1), vec![(crm.clone(), EVENT)], now)
        .await;
    assert!(is_not_found(&replay), "{replay:?}");

    // The failed job can still be retried and both still carry their events.
    let failed_job = job_of(&store, 2).await;
    assert_eq!(failed_job.state, JobState::Failed);
    store.retry_job(failed_job.id, now).await.unwrap();
    let again = claim(&store, &crm, now + 120_000).await;
    assert_eq!(events_of(&again), ids(&[2, 3]));
    for job in &again {
        let JobBody::Event { payload: body, .. } = &job.body else {
            panic!("an event job");
        };
        assert_eq!(*body, payload(if event_of(job) == id(2) { 2 } else { 3 }));
    }
    let kept = store.load_call("wacid.old").await.unwrap().expect("kept");
    assert_eq!(kept.value, call);
    assert!(store
        .load_permission(None, Some("US.1"))
        .await
        .unwrap()
        .is_some());
}

pub(crate) async fn pruning_keeps_the_delivery_an_original_job_will_still_send<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let (archive, crm) = (route("archive"), route("crm"));
    let now = now_millis();
    let owed = delivery(1_000, vec![text(1, &[(&archive, ORIGINAL)])]);
    record(&store, owed.clone()).await;
    record(&store, one_text(2, 2_000, &crm)).await;
    let done = claim(&store, &crm, now).await;
    settle(&store, done[0].id, delivered()).await;

    let pruned = store.prune(now + 30_000).await.unwrap();
    assert_eq!((pruned.jobs, pruned.deliveries), (1, 1));
    assert!(store.event(&id(2)).await.unwrap().is_none());
    let claimed = claim(&store, &archive, now).await;
    assert_eq!(claimed.len(), 1);
    let JobBody::Original {
        signature, body, ..
    } = &claimed[0].body
    else {
        panic!("an original job");
    };
    assert_eq!((signature, body), (&owed.signature, &owed.body));
}

// ---- Views ----

pub(crate) async fn queue_depth_counts_pending_jobs_per_route_that_has_any<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    assert!(store.queue_depth().await.unwrap().is_empty());
    let (crm, erp, ops) = (route("crm"), route("erp"), route("ops"));
    let now = now_millis();
    let crm_events = (1..=4).map(|n| text(n, &[(&crm, EVENT)])).collect();
    record(&store, delivery(now, crm_events)).await;
    record(&store, one_text(5, now, &erp)).await;
    record(&store, one_text(6, now, &ops)).await;
    // crm: one delivered, one failed, one held by a worker, one waiting.
    let held = store.claim_jobs(&crm, now, LEASE, 3).await.unwrap();
    settle(&store, held[0].id, delivered()).await;
    settle(&store, held[1].id, failed()).await;
    settle(&store, claim(&store, &ops, now).await[0].id, delivered()).await;

    let depth: BTreeMap<String, u64> = store
        .queue_depth()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.route, d.pending))
        .collect();
    let expected = BTreeMap::from([("crm".to_owned(), 2), ("erp".to_owned(), 1)]);
    assert_eq!(depth, expected);
}

pub(crate) async fn list_jobs_filters_by_state_and_route_and_pages_newest_first<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let (crm, erp) = (route("crm"), route("erp"));
    let now = now_millis();
    for (n, to) in [(1, &crm), (2, &crm), (3, &crm), (4, &erp), (5, &erp)] {
        record(&store, one_text(n, now + Millis::from(n), to)).await;
    }
    let failing = claim(&store, &crm, now + 2).await;
    for job in &failing {
        let settlement = if event_of(job) == id(2) {
            failed()
        } else {
            retry_at(now)
        };
        settle(&store, job.id, settlement).await;
    }
    settle(
        &store,
        claim(&store, &erp, now + 4).await[0].id,
        delivered(),
    )
    .await;

    let all = all_jobs(&store).await;
    assert_eq!(listed_events(&all), listed(&[5, 4, 3, 2, 1]));
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let filtered = |state, route: Option<&RouteName>| JobFilter {
        state,
        route: route.cloned(),
        ..JobFilter::default()
    };
    let failed_jobs = list(&store, filtered(Some(JobState::Failed), None)).await;
    assert_eq!(listed_events(&failed_jobs), listed(&[2]));
    let view = &failed_jobs[0];
    assert_eq!((view.route.as_str(), view.mode.as_str()), ("crm", "event"));
    assert_eq!(view.event_kind.as_deref(), Some("message:text"));
    assert_eq!((view.attempts, view.last_status), (1, Some(500)));
    assert_eq!(view.last_error.as_deref(), Some("down"));
    assert_eq!(view.created_at, now + 2);
    let pending_crm = list(&store, filtered(Some(JobState::Pending), Some(&crm))).await;
    assert_eq!(listed_events(&pending_crm), listed(&[3, 1]));
    let to_erp = list(&store, filtered(None, Some(&erp))).await;
    assert_eq!(listed_events(&to_erp), listed(&[5, 4]));
    let none = list(&store, filtered(Some(JobState::Delivered), Some(&crm))).await;
    assert!(none.is_empty());

    let mut pages = Vec::new();
    let mut before_id = None;
    // Bounded, so a page that repeats its last job fails instead of looping for ever.
    for _ in 0..5 {
        let page = list(
            &store,
            JobFilter {
                before_id,
                limit: 2,
                ..JobFilter::default()
            },
        )
        .await;
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        pages.push(listed_events(&page));
    }
    let expected: Vec<Vec<String>> = vec![listed(&[5, 4]), listed(&[3, 2]), listed(&[1])];
    assert_eq!(pages, expected);
    let crm_after_3 = list(
        &store,
        JobFilter {
            route: Some(crm.clone()),
            before_id: Some(job_of(&store, 3).await.id),
            limit: 1,
            ..JobFilter::default()
        },
    )
    .await;
    assert_eq!(listed_events(&crm_after_3), listed(&[2]));
}

pub(crate) async fn calling_events_come_back_in_the_order_received<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let now = now_millis();
    let call = |n, detail| event(n, EventKind::new(Kind::Call, detail), &[]);
    let status = |n, detail| event(n, EventKind::new(Kind::CallStatus, detail), &[]);
    let reply = |n| event(n, EventKind::new(Kind::CallPermissionReply, "accept"), &[]);
    let other = |n, kind| event(n, EventKind::new(kind, "x"), &[]);
    // Ids run against the order received, so an order by id shows.
    record(&store, delivery(now - 10_000, vec![call(20, "connect")])).await;
    record(
        &store,
        delivery(
            now,
            vec![
                other(11, Kind::Message),
                call(9, "connect"),
                status(3, "ringing"),
            ],
        ),
    )
    .await;
    record(
        &store,
        delivery(
            now + 1,
            vec![
                reply(1),
                other(12, Kind::MessageStatus),
                other(13, Kind::Other),
            ],
        ),
    )
    .await;
    record(
        &store,
        delivery(now + 2, vec![status(3, "ringing"), call(0, "terminate")]),
    )
    .await;

    let events: Vec<(String, Bytes)> = store
        .calling_events_since(now - 5_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind.to_string(), e.payload))
        .collect();
    let expected = vec![
        ("call:connect".to_owned(), payload(9)),
        ("call_status:ringing".to_owned(), payload(3)),
        ("call_permission_reply:accept".to_owned(), payload(1)),
        ("call:terminate".to_owned(), payload(0)),
    ];
    assert_eq!(
        events, expected,
        "older, non-calling and repeated events left out"
    );
}

// ---- Calls and permissions ----

fn user(bsuid: &str, phone: Option<&str>) -> User {
    User {
        user_id: bsuid.into(),
        wa_id: phone.map(Into::into),
        ..User::default()
    }
}

fn dialing(id: &str, user: User, created_at: i64) -> Call {
    Call::dialing(id.into(), user, "asha".into(), created_at)
}

fn ended(mut call: Call) -> Call {
    call.state = CallState::Ended;
    call.ended_at = Some(call.created_at + 1);
    call
}

async fn live_ids(store: &Handle) -> BTreeSet<String> {
    store
        .live_calls()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

fn names(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

pub(crate) async fn a_new_call_is_stored_at_version_1_and_its_id_only_once<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    assert!(store.load_call("wacid.1").await.unwrap().is_none());
    let call = dialing("wacid.1", user("US.1", Some("12125550100")), 1_000);
    let version = store
        .insert_call(&call, true, Durability::Synced)
        .await
        .unwrap();
    assert_eq!(version, 1);
    let loaded = store.load_call("wacid.1").await.unwrap().expect("stored");
    assert_eq!((loaded.value, loaded.version), (call.clone(), 1));

    let mut other = dialing("wacid.1", user("US.2", None), 2_000);
    other.agent = Some("ravi".into());
    let twice = store.insert_call(&other, false, Durability::Relaxed).await;
    assert!(is_conflict(&twice), "{twice:?}");
    let loaded = store.load_call("wacid.1").await.unwrap().expect("stored");
    assert_eq!((loaded.value, loaded.version), (call, 1));
}

pub(crate) async fn a_call_write_at_a_stale_version_is_a_conflict_and_changes_nothing<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let call = dialing("wacid.1", user("US.1", None), 1_000);
    store
        .insert_call(&call, false, Durability::Relaxed)
        .await
        .unwrap();
    let mut ringing = call.clone();
    ringing.state = CallState::Ringing;
    assert_eq!(
        store
            .update_call(&ringing, 1, Durability::Relaxed)
            .await
            .unwrap(),
        2
    );

    // A writer that read version 1 and would end the call.
    let stale = store
        .update_call(&ended(call.clone()), 1, Durability::Synced)
        .await;
    assert!(is_conflict(&stale), "{stale:?}");
    let loaded = store.load_call("wacid.1").await.unwrap().expect("stored");
    assert_eq!((loaded.value, loaded.version), (ringing.clone(), 2));
    assert_eq!(live_ids(&store).await, names(&["wacid.1"]), "still live");

    let mut connected = ringing;
    connected.state = CallState::Connected;
    assert_eq!(
        store
            .update_call(&connected, 2, Durability::Synced)
            .await
            .unwrap(),
        3
    );
    let unknown = dialing("wacid.2", user("US.2", None), 1_000);
    let missing = store.update_call(&unknown, 1, Durability::Synced).await;
    assert!(is_conflict(&missing), "{missing:?}");
    assert!(store.load_call("wacid.2").await.unwrap().is_none());
}

pub(crate) async fn a_second_live_call_for_the_same_user_is_refused_by_phone_or_bsuid<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let both = user("US.1", Some("12125550100"));
    let first = dialing("local:1", both.clone(), 1_000);
    store
        .insert_call(&first, true, Durability::Synced)
        .await
        .unwrap();

    for (id, same) in [
        ("local:2", user("", Some("12125550100"))),
        ("local:3", user("US.1", None)),
        ("local:4", both.clone()),
    ] {
        let refused = store
            .insert_call(&dialing(id, same, 1_001), true, Durability::Synced)
            .await;
        assert!(is_conflict(&refused), "{id}: {refused:?}");
        assert!(
            store.load_call(id).await.unwrap().is_none(),
            "{id} was not stored"
        );
    }
    // Other users, and users known by one key only, do not block each other.
    for (id, other) in [
        ("local:5", user("US.2", Some("12125550199"))),
        ("local:6", user("", Some("12125550111"))),
        ("local:7", user("", Some("12125550122"))),
        ("local:8", user("US.3", None)),
        ("local:9", user("US.4", None)),
    ] {
        let call = dialing(id, other, 1_002);
        store
            .insert_call(&call, true, Durability::Synced)
            .await
            .unwrap();
    }
    // A call Meta told us about is stored whatever else the user has going.
    let incoming = dialing("wacid.in", both.clone(), 1_003);
    store
        .insert_call(&incoming, false, Durability::Relaxed)
        .await
        .unwrap();

    // Once the user's calls have ended, a new one may start.
    store
        .update_call(&ended(first), 1, Durability::Synced)
        .await
        .unwrap();
    let still = store
        .insert_call(
            &dialing("local:10", both.clone(), 1_004),
            true,
            Durability::Synced,
        )
        .await;
    assert!(is_conflict(&still), "wacid.in is live: {still:?}");
    store
        .update_call(&ended(incoming), 1, Durability::Relaxed)
        .await
        .unwrap();
    let next = dialing("local:11", both, 1_005);
    assert_eq!(
        store
            .insert_call(&next, true, Durability::Synced)
            .await
            .unwrap(),
        1
    );
}

pub(crate) async fn concurrent_calls_to_the_same_user_leave_only_one_live<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            let call = dialing(
                &format!("local:{i}"),
                user("US.1", Some("12125550100")),
                1_000,
            );
            tokio::spawn(async move { store.insert_call(&call, true, Durability::Synced).await })
        })
        .collect();
    let mut placed = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => placed += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(placed, 1);
    assert_eq!(live_ids(&store).await.len(), 1);
}

pub(crate) async fn a_placeholder_call_is_promoted_to_metas_id_even_when_the_webhook_came_first<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let asha_user = user("US.1", Some("12125550100"));
    let ravi_user = user("US.2", Some("12125550199"));

    // Meta's answer came first: the call is new under Meta's id.
    let placeholder = dialing("local:a", asha_user.clone(), 1_000);
    store
        .insert_call(&placeholder, true, Durability::Synced)
        .await
        .unwrap();
    let mut named = placeholder.clone();
    named.id = "wacid.A".into();
    assert_eq!(
        store.promote_call("local:a", &named, None).await.unwrap(),
        1
    );
    assert!(store.load_call("local:a").await.unwrap().is_none());
    let loaded = store.load_call("wacid.A").await.unwrap().expect("promoted");
    assert_eq!((loaded.value, loaded.version), (named, 1));

    // A webhook came first and was updated again before Meta's answer.
    let placeholder = dialing("local:b", ravi_user.clone(), 2_000);
    store
        .insert_call(&placeholder, true, Durability::Synced)
        .await
        .unwrap();
    let mut seen = dialing("wacid.B", user("US.2", None), 2_001);
    seen.agent = None;
    store
        .insert_call(&seen, false, Durability::Relaxed)
        .await
        .unwrap();
    seen.state = CallState::Ringing;
    store
        .update_call(&seen, 1, Durability::Relaxed)
        .await
        .unwrap();
    let mut merged = seen.clone();
    merged.agent.clone_from(&placeholder.agent);
    merged.user = ravi_user;
    merged.created_at = placeholder.created_at;
    for stale in [None, Some(1)] {
        let refused = store.promote_call("local:b", &merged, stale).await;
        assert!(is_conflict(&refused), "{stale:?}: {refused:?}");
        let kept = store.load_call("local:b").await.unwrap().expect("kept");
        assert_eq!(
            kept.value, placeholder,
            "a refused promotion changes nothing"
        );
        let webhook = store.load_call("wacid.B").await.unwrap().expect("kept");
        assert_eq!((webhook.value, webhook.version), (seen.clone(), 2));
    }
    assert_eq!(
        store
            .promote_call("local:b", &merged, Some(2))
            .await
            .unwrap(),
        3
    );
    assert!(store.load_call("local:b").await.unwrap().is_none());
    let loaded = store.load_call("wacid.B").await.unwrap().expect("promoted");
    assert_eq!((loaded.value, loaded.version), (merged, 3));

    assert_eq!(live_ids(&store).await, names(&["wacid.A", "wacid.B"]));
    // The promoted call still holds its user's one live call.
    let again = store
        .insert_call(
            &dialing("local:c", asha_user, 3_000),
            true,
            Durability::Synced,
        )
        .await;
    assert!(is_conflict(&again), "{again:?}");
}

pub(crate) async fn calls_are_listed_newest_first_and_live_calls_are_those_not_ended<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let mut calls = Vec::new();
    for (n, created_at) in [(3, 300), (1, 100), (4, 400), (2, 200)] {
        let call = dialing(
            &format!("wacid.{n}"),
            user(&format!("US.{n}"), None),
            created_at,
        );
        let call = if n == 3 { ended(call) } else { call };
        store
            .insert_call(&call, false, Durability::Relaxed)
            .await
            .unwrap();
        calls.push(call);
    }
    calls.sort_by_key(|c| std::cmp::Reverse(c.created_at));

    assert_eq!(store.list_calls(None, 10).await.unwrap(), calls);
    assert_eq!(store.list_calls(None, 2).await.unwrap(), calls[..2]);
    assert_eq!(store.list_calls(Some(300), 10).await.unwrap(), calls[2..]);
    assert_eq!(store.list_calls(Some(300), 1).await.unwrap(), calls[2..3]);
    assert!(store.list_calls(Some(100), 10).await.unwrap().is_empty());
    assert_eq!(
        live_ids(&store).await,
        names(&["wacid.1", "wacid.2", "wacid.4"])
    );
}

pub(crate) async fn permissions_are_found_by_phone_or_bsuid_and_saved_by_compare_and_set<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let phone = "12125550100";
    assert!(store
        .load_permission(Some(phone), None)
        .await
        .unwrap()
        .is_none());
    let nothing = Permission::unknown(user("", Some(phone)), 1_000);
    let no_record = store.save_permission(&nothing, Some(1)).await;
    assert!(
        is_conflict(&no_record),
        "no version 1 to write over: {no_record:?}"
    );

    assert_eq!(store.save_permission(&nothing, None).await.unwrap(), 1);
    let loaded = store
        .load_permission(Some(phone), None)
        .await
        .unwrap()
        .expect("saved");
    assert_eq!((loaded.value, loaded.version), (nothing.clone(), 1));
    assert!(store
        .load_permission(None, Some("US.9"))
        .await
        .unwrap()
        .is_none());
    let second_new = store.save_permission(&nothing, None).await;
    assert!(is_conflict(&second_new), "{second_new:?}");

    let mut asked = nothing.clone();
    asked.requests.push(2_000);
    assert_eq!(store.save_permission(&asked, Some(1)).await.unwrap(), 2);
    let mut granted = nothing;
    granted.status = PermissionStatus::Permanent;
    let stale = store.save_permission(&granted, Some(1)).await;
    assert!(is_conflict(&stale), "{stale:?}");
    let loaded = store
        .load_permission(Some(phone), None)
        .await
        .unwrap()
        .expect("saved");
    assert_eq!((loaded.value, loaded.version), (asked.clone(), 2));

    // The BSUID learnt later finds the same record, alone or with the number.
    let mut known = asked;
    known.user.user_id = "US.9".into();
    assert_eq!(store.save_permission(&known, Some(2)).await.unwrap(), 3);
    for (p, b) in [
        (Some(phone), None),
        (None, Some("US.9")),
        (Some(phone), Some("US.9")),
    ] {
        let loaded = store.load_permission(p, b).await.unwrap().expect("found");
        assert_eq!((&loaded.value, loaded.version), (&known, 3), "{p:?} {b:?}");
    }
    let stranger = Permission::unknown(user("US.8", Some("12125550199")), 1_000);
    assert_eq!(store.save_permission(&stranger, None).await.unwrap(), 1);
}

pub(crate) async fn a_permission_saved_under_both_keys_replaces_the_records_each_key_had<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let (phone, bsuid) = ("12125550100", "US.1");
    // The user was first known by number, and separately by BSUID.
    let mut by_phone = Permission::unknown(user("", Some(phone)), 1_000);
    store.save_permission(&by_phone, None).await.unwrap();
    by_phone.requests.push(1_500);
    store.save_permission(&by_phone, Some(1)).await.unwrap();
    let by_bsuid = Permission::unknown(user(bsuid, None), 1_000);
    store.save_permission(&by_bsuid, None).await.unwrap();

    // A sighting with both keys reads one record, merges, and saves at its version.
    let read = store
        .load_permission(Some(phone), Some(bsuid))
        .await
        .unwrap()
        .expect("found");
    let mut merged = read.value;
    merged.user = user(bsuid, Some(phone));
    merged.status = PermissionStatus::Temporary;
    let version = store
        .save_permission(&merged, Some(read.version))
        .await
        .unwrap();
    assert!(version > read.version);
    for (p, b) in [
        (Some(phone), None),
        (None, Some(bsuid)),
        (Some(phone), Some(bsuid)),
    ] {
        let loaded = store.load_permission(p, b).await.unwrap().expect("found");
        assert_eq!(
            (&loaded.value, loaded.version),
            (&merged, version),
            "{p:?} {b:?}"
        );
    }
}

pub(crate) async fn a_store_that_is_up_answers_a_ping<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    store.ping().await.unwrap();
    // Still serving afterwards.
    record(&store, one_text(1, now_millis(), &route("crm"))).await;
    assert!(store.event(&id(1)).await.unwrap().is_some());
}

//! Claims under lease, settling, retry, replay and pruning.

use super::*;

// ---- Claims and leases ----

pub(crate) async fn a_claimed_job_is_not_claimed_again_until_its_lease_runs_out<B: Backend>() {
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
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
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
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
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
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

pub(crate) async fn claimed_jobs_come_back_oldest_due_first<B: Backend>() {
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
    // Recorded in an order other than their due order: a worker sends in the order given.
    for (n, due) in [(2, now - 2_000), (3, now - 1_000), (1, now - 3_000)] {
        record(&store, one_text(n, due, &crm)).await;
    }
    let claimed: Vec<EventId> = claim(&store, &crm, now)
        .await
        .iter()
        .map(event_of)
        .collect();
    assert_eq!(claimed, vec![id(1), id(2), id(3)]);
}

pub(crate) async fn a_job_settled_for_a_later_retry_is_not_due_before_then<B: Backend>() {
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
    record(&store, one_text(1, now, &crm)).await;
    let first = claim(&store, &crm, now).await;
    settle(&store, first[0].id, retry_at(now + 5_000)).await;
    assert!(claim(&store, &crm, now + 4_999).await.is_empty());
    let second = claim(&store, &crm, now + 5_000).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempt, 2);
}

pub(crate) async fn settling_counts_the_attempt_and_releases_the_lease<B: Backend>() {
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
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
    let (backend, store, crm, now) = fresh_with_route::<B>().await;
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
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
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
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
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

pub(crate) async fn jobs_of_a_route_no_longer_configured_are_failed_and_can_be_retried<
    B: Backend,
>() {
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
    let gone = route("gone");
    for (n, to) in [(1, &crm), (2, &gone), (3, &gone), (4, &gone), (5, &gone)] {
        record(&store, one_text(n, now, to)).await;
    }
    // Before the route was removed, 4 was delivered, 5 failed for good, 2 waits for a
    // later attempt, and 3 is in a worker's hands.
    let claimed = store.claim_jobs(&gone, now, LEASE, 4).await.unwrap();
    assert_eq!(claimed.len(), 4);
    for job in &claimed {
        match event_of(job) {
            e if e == id(4) => settle(&store, job.id, delivered()).await,
            e if e == id(5) => settle(&store, job.id, failed()).await,
            e if e == id(2) => settle(&store, job.id, retry_at(now + HOUR)).await,
            _ => {}
        }
    }

    let later = now + 1_000;
    let failed_now = store
        .fail_jobs_of_other_routes(std::slice::from_ref(&crm), "route removed", later)
        .await
        .unwrap();

    assert_eq!(failed_now, 2, "the pending jobs of gone, claimed or not");
    for n in [2, 3] {
        let view = job_of(&store, n).await;
        assert_eq!(view.state, JobState::Failed, "event {n}");
        assert_eq!(view.last_error.as_deref(), Some("route removed"));
    }
    assert_eq!(
        job_of(&store, 2).await.attempts,
        1,
        "failing counts no attempt"
    );
    assert_eq!(job_of(&store, 3).await.attempts, 0);
    assert_eq!(job_of(&store, 4).await.state, JobState::Delivered);
    let failed_before = job_of(&store, 5).await;
    assert_eq!(failed_before.last_error.as_deref(), Some("down"));
    assert_eq!(job_of(&store, 1).await.state, JobState::Pending);
    assert_eq!(
        claim(&store, &crm, later).await.len(),
        1,
        "crm's job is untouched"
    );
    assert!(claim(&store, &gone, later + HOUR).await.is_empty());
    let again = store
        .fail_jobs_of_other_routes(std::slice::from_ref(&crm), "route removed", later)
        .await
        .unwrap();
    assert_eq!(again, 0, "nothing pending is left on gone");

    // The route came back: a retry makes the job due, and its worker gets it.
    let retried = store
        .retry_job(job_of(&store, 2).await.id, later)
        .await
        .unwrap();
    assert_eq!(retried.state, JobState::Pending);
    let back = claim(&store, &gone, later).await;
    assert_eq!(events_of(&back), ids(&[2]));
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
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
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
    let call = Call::dialing(
        "wacid.old".into(),
        user(Some("US.1"), None),
        "asha".into(),
        1,
    );
    store
        .insert_call(&call, false, Durability::Synced)
        .await
        .unwrap();
    let permission = Permission::unknown(user(Some("US.1"), None), 1);
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
    let kept = store
        .load_call(&"wacid.old".into())
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(kept.value, call);
    assert!(store
        .load_permission(None, Some(&"US.1".into()))
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

//! Recording deliveries, and what the store shows of them: atomic, idempotent, durable;
//! queue depth, job lists, calling events.

use super::*;

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
        assert_eq!(stored.id, id(n));
        assert_eq!(stored.kind.to_string(), kind);
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
        assert_eq!(job.mode, ForwardMode::Event);
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
    assert_eq!(originals[0].mode, ForwardMode::Original);
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
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
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
    let (_backend, store, crm, now) = fresh_with_route::<B>().await;
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
    let (backend, store, crm, now) = fresh_with_route::<B>().await;
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
        .map(|d| (d.route.to_string(), d.pending))
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
    assert_eq!(
        view.event_kind.as_ref().map(ToString::to_string).as_deref(),
        Some("message:text")
    );
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

    let events: Vec<(String, Bytes, Millis)> = store
        .calling_events_since(now - 5_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind.to_string(), e.payload, e.received_at))
        .collect();
    let expected = vec![
        ("call:connect".to_owned(), payload(9), now),
        ("call_status:ringing".to_owned(), payload(3), now),
        (
            "call_permission_reply:accept".to_owned(),
            payload(1),
            now + 1,
        ),
        ("call:terminate".to_owned(), payload(0), now + 2),
    ];
    assert_eq!(
        events, expected,
        "older, non-calling and repeated events left out, each with its first receipt"
    );
}

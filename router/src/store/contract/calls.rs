//! Calls and permissions: versions, compare-and-set, one live call per user.

use super::*;
use switchboard_protocol::{Bsuid, WaId};

// ---- Calls and permissions ----

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
        .map(|c| c.id.into_string())
        .collect()
}

fn names(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

pub(crate) async fn a_new_call_is_stored_at_version_1_and_its_id_only_once<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    assert!(stored(&store, "wacid.1").await.is_none());
    let call = dialing("wacid.1", user(Some("US.1"), Some("12125550100")), 1_000);
    let version = store
        .insert_call(&call, true, Durability::Synced)
        .await
        .unwrap();
    assert_eq!(version, 1);
    let loaded = stored(&store, "wacid.1").await.expect("stored");
    assert_eq!((loaded.value, loaded.version), (call.clone(), 1));

    let mut other = dialing("wacid.1", user(Some("US.2"), None), 2_000);
    other.agent = Some("ravi".into());
    let twice = store.insert_call(&other, false, Durability::Relaxed).await;
    assert!(is_conflict(&twice), "{twice:?}");
    let loaded = stored(&store, "wacid.1").await.expect("stored");
    assert_eq!((loaded.value, loaded.version), (call, 1));
}

pub(crate) async fn a_call_write_at_a_stale_version_is_a_conflict_and_changes_nothing<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let call = dialing("wacid.1", user(Some("US.1"), None), 1_000);
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
    let loaded = stored(&store, "wacid.1").await.expect("stored");
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
    let unknown = dialing("wacid.2", user(Some("US.2"), None), 1_000);
    let missing = store.update_call(&unknown, 1, Durability::Synced).await;
    assert!(is_conflict(&missing), "{missing:?}");
    assert!(stored(&store, "wacid.2").await.is_none());
}

pub(crate) async fn a_second_live_call_for_the_same_user_is_refused_by_phone_or_bsuid<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let both = user(Some("US.1"), Some("12125550100"));
    let first = dialing("local:1", both.clone(), 1_000);
    store
        .insert_call(&first, true, Durability::Synced)
        .await
        .unwrap();

    for (id, same) in [
        ("local:2", user(None, Some("12125550100"))),
        ("local:3", user(Some("US.1"), None)),
        ("local:4", both.clone()),
    ] {
        let refused = store
            .insert_call(&dialing(id, same, 1_001), true, Durability::Synced)
            .await;
        assert!(is_conflict(&refused), "{id}: {refused:?}");
        assert!(stored(&store, id).await.is_none(), "{id} was not stored");
    }
    // Other users, and users known by one key only, do not block each other.
    for (id, other) in [
        ("local:5", user(Some("US.2"), Some("12125550199"))),
        ("local:6", user(None, Some("12125550111"))),
        ("local:7", user(None, Some("12125550122"))),
        ("local:8", user(Some("US.3"), None)),
        ("local:9", user(Some("US.4"), None)),
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
                user(Some("US.1"), Some("12125550100")),
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
    let asha_user = user(Some("US.1"), Some("12125550100"));
    let ravi_user = user(Some("US.2"), Some("12125550199"));

    // Meta's answer came first: the call is new under Meta's id.
    let placeholder = dialing("local:a", asha_user.clone(), 1_000);
    store
        .insert_call(&placeholder, true, Durability::Synced)
        .await
        .unwrap();
    let mut named = placeholder.clone();
    named.id = "wacid.A".into();
    assert_eq!(
        store
            .promote_call(&"local:a".into(), &named, None)
            .await
            .unwrap(),
        1
    );
    assert!(stored(&store, "local:a").await.is_none());
    let loaded = stored(&store, "wacid.A").await.expect("promoted");
    assert_eq!((loaded.value, loaded.version), (named, 1));

    // A webhook came first and was updated again before Meta's answer.
    let placeholder = dialing("local:b", ravi_user.clone(), 2_000);
    store
        .insert_call(&placeholder, true, Durability::Synced)
        .await
        .unwrap();
    let mut seen = dialing("wacid.B", user(Some("US.2"), None), 2_001);
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
        let refused = store.promote_call(&"local:b".into(), &merged, stale).await;
        assert!(is_conflict(&refused), "{stale:?}: {refused:?}");
        let kept = stored(&store, "local:b").await.expect("kept");
        assert_eq!(
            kept.value, placeholder,
            "a refused promotion changes nothing"
        );
        let webhook = stored(&store, "wacid.B").await.expect("kept");
        assert_eq!((webhook.value, webhook.version), (seen.clone(), 2));
    }
    assert_eq!(
        store
            .promote_call(&"local:b".into(), &merged, Some(2))
            .await
            .unwrap(),
        3
    );
    assert!(stored(&store, "local:b").await.is_none());
    let loaded = stored(&store, "wacid.B").await.expect("promoted");
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
            user(Some(&format!("US.{n}")), None),
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
    let (by_number, by_id) = (WaId::from(phone), Bsuid::from("US.9"));
    assert!(store
        .load_permission(Some(&by_number), None)
        .await
        .unwrap()
        .is_none());
    let nothing = Permission::unknown(user(None, Some(phone)), 1_000);
    let no_record = store.save_permission(&nothing, Some(1)).await;
    assert!(
        is_conflict(&no_record),
        "no version 1 to write over: {no_record:?}"
    );

    assert_eq!(store.save_permission(&nothing, None).await.unwrap(), 1);
    let loaded = store
        .load_permission(Some(&by_number), None)
        .await
        .unwrap()
        .expect("saved");
    assert_eq!((loaded.value, loaded.version), (nothing.clone(), 1));
    assert!(store
        .load_permission(None, Some(&by_id))
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
        .load_permission(Some(&by_number), None)
        .await
        .unwrap()
        .expect("saved");
    assert_eq!((loaded.value, loaded.version), (asked.clone(), 2));

    // The BSUID learnt later finds the same record, alone or with the number.
    let mut known = asked;
    known.user.user_id = Some(by_id.clone());
    assert_eq!(store.save_permission(&known, Some(2)).await.unwrap(), 3);
    for (p, b) in [
        (Some(&by_number), None),
        (None, Some(&by_id)),
        (Some(&by_number), Some(&by_id)),
    ] {
        let loaded = store.load_permission(p, b).await.unwrap().expect("found");
        assert_eq!((&loaded.value, loaded.version), (&known, 3), "{p:?} {b:?}");
    }
    let stranger = Permission::unknown(user(Some("US.8"), Some("12125550199")), 1_000);
    assert_eq!(store.save_permission(&stranger, None).await.unwrap(), 1);
}

pub(crate) async fn a_permission_saved_under_both_keys_replaces_the_records_each_key_had<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let (phone, bsuid) = ("12125550100", "US.1");
    // The user was first known by number, and separately by BSUID.
    let mut by_phone = Permission::unknown(user(None, Some(phone)), 1_000);
    store.save_permission(&by_phone, None).await.unwrap();
    by_phone.requests.push(1_500);
    store.save_permission(&by_phone, Some(1)).await.unwrap();
    let by_bsuid = Permission::unknown(user(Some(bsuid), None), 1_000);
    store.save_permission(&by_bsuid, None).await.unwrap();

    // A sighting with both keys reads one record, merges, and saves at its version.
    let (by_number, by_id) = (WaId::from(phone), Bsuid::from(bsuid));
    let read = store
        .load_permission(Some(&by_number), Some(&by_id))
        .await
        .unwrap()
        .expect("found");
    let mut merged = read.value;
    merged.user = user(Some(bsuid), Some(phone));
    merged.status = PermissionStatus::Temporary;
    let version = store
        .save_permission(&merged, Some(read.version))
        .await
        .unwrap();
    assert!(version > read.version);
    for (p, b) in [
        (Some(&by_number), None),
        (None, Some(&by_id)),
        (Some(&by_number), Some(&by_id)),
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

/// The call stored under `id`, if any.
async fn stored(store: &Handle, id: &str) -> Option<Versioned<Call>> {
    store.load_call(&id.into()).await.unwrap()
}

//! Revoked sessions: durable, idempotent, kept until they would have expired.

use super::*;
use crate::domain::clock::now_secs;
use crate::store::RevokedSession;

fn revoked(id: &str, expires_at: i64) -> RevokedSession {
    RevokedSession {
        id: id.into(),
        expires_at,
    }
}

pub(crate) async fn a_revoked_session_stays_revoked_across_a_restart_until_it_expires<
    B: Backend,
>() {
    let backend = B::open().await;
    let store = backend.store();
    let now = now_secs();
    assert_eq!(store.revoked_sessions(now).await.unwrap(), vec![]);
    store
        .revoke_session(&revoked("a", now + 3_600))
        .await
        .unwrap();
    store
        .revoke_session(&revoked("b", now + 7_200))
        .await
        .unwrap();
    // Already past its expiry: its cookie is refused anyway.
    store.revoke_session(&revoked("c", now - 10)).await.unwrap();
    let both = vec![revoked("a", now + 3_600), revoked("b", now + 7_200)];
    assert_eq!(sorted(store.revoked_sessions(now).await.unwrap()), both);

    drop(store);
    let backend = backend.reopen().await;
    let store = backend.store();
    assert_eq!(sorted(store.revoked_sessions(now).await.unwrap()), both);
    assert_eq!(
        store.revoked_sessions(now + 5_000).await.unwrap(),
        vec![revoked("b", now + 7_200)],
        "a revocation is listed only while its session would still be valid"
    );
}

pub(crate) async fn revoking_a_session_again_keeps_its_later_expiry<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store();
    let now = now_secs();
    store
        .revoke_session(&revoked("a", now + 100))
        .await
        .unwrap();
    store
        .revoke_session(&revoked("a", now + 900))
        .await
        .unwrap();
    store.revoke_session(&revoked("a", now + 50)).await.unwrap();
    assert_eq!(
        store.revoked_sessions(now).await.unwrap(),
        vec![revoked("a", now + 900)]
    );
}

fn sorted(mut sessions: Vec<RevokedSession>) -> Vec<RevokedSession> {
    sessions.sort_by(|a, b| a.id.cmp(&b.id));
    sessions
}

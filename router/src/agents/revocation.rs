//! Sessions ended before their time: signing out revokes the session in the store (so it
//! stays ended across restarts), in memory (so every request can be checked without a
//! store read), and on the hub (so the session's open sockets close).
//!
//! The table in memory is loaded from the store at start-up and grows with this router's
//! own revocations. Several routers on one shared store would each learn of the others'
//! revocations only at their next start: a cross-node hub is to carry them as they happen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::hub::Hub;
use super::session::SessionRef;
use crate::store::{RevokedSession, Store, StoreError};

/// Past this many revocations in memory, those whose sessions have expired are dropped.
const PRUNE_AT: usize = 4096;

pub struct Revocations {
    store: Arc<dyn Store>,
    hub: Hub,
    /// Revoked session ids and when they would have expired (Unix seconds).
    revoked: Mutex<HashMap<String, i64>>,
}

impl Revocations {
    /// The revocations the store holds that still matter at `now` (Unix seconds).
    pub async fn load(store: Arc<dyn Store>, hub: Hub, now: i64) -> Result<Self, StoreError> {
        let revoked = store
            .revoked_sessions(now)
            .await?
            .into_iter()
            .map(|r| (r.id, r.expires_at))
            .collect();
        Ok(Self {
            store,
            hub,
            revoked: Mutex::new(revoked),
        })
    }

    pub fn is_revoked(&self, id: &str) -> bool {
        self.table().contains_key(id)
    }

    /// Ends `session` for good at `now`: on disk first (a failure leaves it valid, and the
    /// caller says so), then for this process's requests, then for its open sockets.
    pub async fn revoke(&self, session: &SessionRef, now: i64) -> Result<(), StoreError> {
        self.store
            .revoke_session(&RevokedSession {
                id: session.id.clone(),
                expires_at: session.expires,
            })
            .await?;
        {
            let mut table = self.table();
            if table.len() >= PRUNE_AT {
                table.retain(|_, expires| *expires > now);
            }
            table.insert(session.id.clone(), session.expires);
        }
        self.hub.end_session(&session.id);
        Ok(())
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.revoked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

//! The calling control plane: call and permission state, driven by agents' commands and
//! Meta's webhooks, with Meta reached through the Graph client and agents told through
//! the hub.
//!
//! State lives in the store and changes by compare-and-set, so two routers could share
//! it; within one process a lock per call keeps read-modify-write cycles from colliding.

mod commands;
mod inbound;
mod permission_requests;
pub mod updates;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use switchboard_protocol::CallId;
use switchboard_protocol::User;

use crate::domain::call::{self as model, Call, CommandError};
use crate::domain::clock::now_millis;
use crate::domain::permission::Permission;
use crate::domain::push::Publish;
use crate::domain::push::Push;
use crate::meta::graph::{GraphClient, GraphError};
use crate::store::{Durability, Store, StoreError, Versioned};

/// How many times a compare-and-set is retried before giving up.
pub(crate) const CAS_ATTEMPTS: usize = 8;
/// Calling events older than this are not replayed at start-up.
const RECOVERY_WINDOW_MS: i64 = 2 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum CallingError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this call was taken by {agent}")]
    Claimed { agent: String },
    #[error("{reason}")]
    Limited { reason: String, retry_at: i64 },
    #[error(transparent)]
    Meta(#[from] GraphError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CallingError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => CallingError::NotFound(what),
            StoreError::Conflict(why) => CallingError::Conflict(why),
            other => CallingError::Store(other),
        }
    }
}

impl From<CommandError> for CallingError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Claimed(_, agent) => CallingError::Claimed { agent },
            other => CallingError::Conflict(other.to_string()),
        }
    }
}

/// How permission requests are sent.
#[derive(Debug, Clone)]
pub enum PermissionRequestStyle {
    /// The free-form interactive message (inside a customer-service window).
    Interactive { text: Option<String> },
    /// An approved template with a `call_permission_request` component.
    Template { name: String, language: String },
}

#[derive(Clone)]
pub struct Calling {
    store: Arc<dyn Store>,
    graph: GraphClient,
    hub: Arc<dyn Publish>,
    style: PermissionRequestStyle,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Held shared by every webhook-driven change from its push to its save, and
    /// exclusively while a (re)connecting agent's replay is read: a change pushed just
    /// before the agent subscribed is then in the store when the replay is read.
    replay_gate: Arc<tokio::sync::RwLock<()>>,
}

fn now_secs() -> i64 {
    now_millis() / 1000
}
impl Calling {
    pub fn new(
        store: Arc<dyn Store>,
        graph: GraphClient,
        hub: Arc<dyn Publish>,
        style: PermissionRequestStyle,
    ) -> Self {
        Self {
            store,
            graph,
            hub,
            style,
            locks: Arc::default(),
            replay_gate: Arc::default(),
        }
    }

    pub fn graph(&self) -> &GraphClient {
        &self.graph
    }

    /// Holds the lock of one call (or one user's permission) for a read-modify-write.
    pub(super) async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            // Drop locks nobody holds, so the map does not grow with every call ever seen.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks.entry(key.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    pub(super) fn publish(&self, pushes: impl IntoIterator<Item = Push>) {
        for push in pushes {
            self.hub.publish(push);
        }
    }

    /// Read-modify-write of a user's permission record under its lock.
    pub(super) async fn update_permission<T>(
        &self,
        user: &User,
        mut change: impl FnMut(&mut Permission) -> Result<T, CallingError>,
    ) -> Result<T, CallingError> {
        let key = permission_lock_key(user);
        let _guard = self.lock(&key).await;
        retry_on_conflict!("the permission record", async {
            let stored = self.load_permission(user).await?;
            let version = stored.as_ref().map(|v| v.version);
            let mut permission = stored.map_or_else(
                || Permission::unknown(user.clone(), now_secs()),
                |v| v.value,
            );
            model::merge_user(&mut permission.user, user);
            let result = change(&mut permission)?;
            self.store.save_permission(&permission, version).await?;
            Ok(result)
        })
    }

    pub(super) async fn load_permission(
        &self,
        user: &User,
    ) -> Result<Option<Versioned<Permission>>, StoreError> {
        self.store
            .load_permission(user.wa_id.as_ref(), user.user_id.as_ref())
            .await
    }

    pub(super) async fn load_live(
        &self,
        call_id: &CallId,
    ) -> Result<Versioned<Call>, CallingError> {
        self.store
            .load_call(call_id)
            .await?
            .ok_or_else(|| CallingError::NotFound(format!("call {call_id}")))
    }

    /// Changes one call under its lock with compare-and-set.
    pub(super) async fn change_call<T>(
        &self,
        call_id: &CallId,
        mut change: impl FnMut(&mut Call) -> Result<T, CallingError>,
    ) -> Result<(Call, T), CallingError> {
        let _guard = self.lock(call_id).await;
        retry_on_conflict!(format_args!("call {call_id}"), async {
            let stored = self.load_live(call_id).await?;
            let mut call = stored.value;
            let result = change(&mut call)?;
            self.store
                .update_call(&call, stored.version, Durability::Synced)
                .await?;
            Ok((call, result))
        })
    }
}

/// One compare-and-set attempt's failure: someone else wrote first (read again and retry),
/// or anything else (give up).
pub(crate) enum CasError {
    Conflict,
    Failed(CallingError),
}

impl From<StoreError> for CasError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => CasError::Conflict,
            other => CasError::Failed(other.into()),
        }
    }
}

impl From<CallingError> for CasError {
    fn from(e: CallingError) -> Self {
        CasError::Failed(e)
    }
}

/// Runs a read-modify-write attempt (an `async` block giving `Result<T, CasError>`) until
/// its write lands, at most [`CAS_ATTEMPTS`] times; `$what` names the record in the error
/// if it keeps changing. A macro rather than a function taking a closure, so the attempt
/// can borrow the caller's locals (and change them) across the awaits of one try.
macro_rules! retry_on_conflict {
    ($what:expr, $attempt:expr) => {{
        let mut outcome = None;
        for _ in 0..$crate::calls::CAS_ATTEMPTS {
            match $attempt.await {
                Ok(value) => {
                    outcome = Some(Ok(value));
                    break;
                }
                Err($crate::calls::CasError::Conflict) => continue,
                Err($crate::calls::CasError::Failed(e)) => {
                    outcome = Some(Err(e));
                    break;
                }
            }
        }
        outcome.unwrap_or_else(|| {
            Err($crate::calls::CallingError::Conflict(format!(
                "{} kept changing",
                $what
            )))
        })
    }};
}
pub(crate) use retry_on_conflict;

fn permission_lock_key(user: &User) -> String {
    // Both keys would be better, but one is enough within one process: a user is addressed
    // the same way by one agent's page.
    match &user.user_id {
        Some(id) => format!("perm:{id}"),
        None => format!("perm:{}", user.wa_id.as_deref().unwrap_or_default()),
    }
}

/// A complete SDP, not a fragment: the dialer sends its local description after ICE
/// gathering, so it must at least have a version line and an audio section.
pub(super) fn check_sdp(sdp: &str, what: &str) -> Result<(), CallingError> {
    if sdp.starts_with("v=0") && sdp.contains("m=audio") {
        Ok(())
    } else {
        Err(CallingError::Invalid(format!(
            "`sdp` must be a complete SDP {what} (starting with v=0, with an m=audio section)"
        )))
    }
}

//! The calling control plane: call and permission state, driven by agents' commands and
//! Meta's webhooks, with Meta reached through the Graph client and agents told through
//! the hub.
//!
//! State lives in the store and changes by compare-and-set, so two routers could share
//! it; within one process a lock per call keeps read-modify-write cycles from colliding.

pub mod updates;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use switchboard_protocol::api::{CallRecord, PermissionState};
use switchboard_protocol::graph::{CallAction, MessageRequest};
use switchboard_protocol::ws::{CallError, EndStatus, ServerEvent};
use switchboard_protocol::{User, UserRef};

use self::updates::Update;
use crate::domain::call::{self as model, Call, CallUpdate, CommandError};
use crate::domain::clock::now_millis;
use crate::domain::event::EventKind;
use crate::domain::permission::{Permission, PermissionReply, RequestRefused};
use crate::domain::push::Publish;
use crate::domain::push::{Audience, Push};
use crate::meta::graph::{GraphClient, GraphError};
use crate::store::{Durability, Store, StoreError, Versioned};

/// How many times a compare-and-set is retried before giving up.
const CAS_ATTEMPTS: usize = 8;
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
    async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            // Drop locks nobody holds, so the map does not grow with every call ever seen.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks.entry(key.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    fn publish(&self, pushes: impl IntoIterator<Item = Push>) {
        for push in pushes {
            self.hub.publish(push);
        }
    }

    /// Reads a stored calling event and acts on it. Safe to repeat: a webhook seen twice
    /// changes nothing the second time.
    pub async fn apply_event(&self, kind: &EventKind, payload: &[u8]) -> Result<(), CallingError> {
        match updates::read(kind, payload, now_secs()) {
            Some(Update::Call { call_id, update }) => {
                self.apply_call_update(&call_id, &update).await
            }
            Some(Update::Permission(reply)) => self.apply_permission_reply(&reply).await,
            None => Ok(()),
        }
    }

    /// Replays recent calling events after a restart: whatever a crash cut short between
    /// storing a webhook and acting on it is done now.
    pub async fn recover(&self) -> Result<usize, CallingError> {
        let events = self
            .store
            .calling_events_since(now_millis() - RECOVERY_WINDOW_MS)
            .await?;
        for event in &events {
            if let Err(e) = self.apply_event(&event.kind, &event.payload).await {
                tracing::warn!(error = %e, kind = %event.kind, "a calling event could not be replayed");
            }
        }
        Ok(events.len())
    }

    /// Agents hear about the change first, then it is saved: the push does not wait for
    /// a disk flush, and the call's lock, held until the save is done, keeps an agent's
    /// command from reading the call before it. The save is relaxed: if it is lost, the
    /// webhook it came from is stored and replayed at start-up.
    async fn apply_call_update(
        &self,
        call_id: &str,
        update: &CallUpdate,
    ) -> Result<(), CallingError> {
        let _guard = self.lock(call_id).await;
        let _gate = self.replay_gate.read().await;
        let mut published = false;
        for _ in 0..CAS_ATTEMPTS {
            let existing = self.store.load_call(call_id).await?;
            let version = existing.as_ref().map(|v| v.version);
            let before = existing.as_ref().map(|v| v.value.clone());
            let (call, pushes) = model::apply(before.clone(), call_id, update);
            if before.as_ref() == Some(&call) {
                return Ok(());
            }
            if !published {
                self.publish(pushes);
                published = true;
            }
            let saved = match version {
                Some(version) => {
                    self.store
                        .update_call(&call, version, Durability::Relaxed)
                        .await
                }
                None => {
                    self.store
                        .insert_call(&call, false, Durability::Relaxed)
                        .await
                }
            };
            match saved {
                Ok(_) => {
                    if call.state == switchboard_protocol::api::CallState::Connected
                        && before.as_ref().is_none_or(|b| b.connected_at.is_none())
                    {
                        self.note_connected(&call.user).await;
                    }
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CallingError::Conflict(format!(
            "call {call_id} kept changing"
        )))
    }

    async fn apply_permission_reply(&self, reply: &PermissionReply) -> Result<(), CallingError> {
        let event = self
            .update_permission(&reply.user, |permission| Ok(permission.apply_reply(reply)))
            .await?;
        // A reply older than what is known (replayed, or overtaken) changes nothing.
        if let Some(event) = event {
            self.hub.publish(Push {
                audience: Audience::Everyone,
                event,
            });
        }
        Ok(())
    }

    /// A connected call resets the permission-request counters for its user.
    async fn note_connected(&self, user: &User) {
        let now = now_secs();
        let result = self
            .update_permission(user, |permission| {
                permission.call_connected(now);
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot reset permission request counters");
        }
    }

    /// Read-modify-write of a user's permission record under its lock.
    async fn update_permission<T>(
        &self,
        user: &User,
        mut change: impl FnMut(&mut Permission) -> Result<T, CallingError>,
    ) -> Result<T, CallingError> {
        let key = permission_lock_key(user);
        let _guard = self.lock(&key).await;
        for _ in 0..CAS_ATTEMPTS {
            let stored = self.load_permission(user).await?;
            let version = stored.as_ref().map(|v| v.version);
            let mut permission = stored.map_or_else(
                || Permission::unknown(user.clone(), now_secs()),
                |v| v.value,
            );
            model::merge_user(&mut permission.user, user);
            let result = change(&mut permission)?;
            match self.store.save_permission(&permission, version).await {
                Ok(_) => return Ok(result),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CallingError::Conflict(
            "the permission record kept changing".into(),
        ))
    }

    async fn load_permission(
        &self,
        user: &User,
    ) -> Result<Option<Versioned<Permission>>, StoreError> {
        let bsuid = (!user.user_id.is_empty()).then_some(user.user_id.as_str());
        self.store
            .load_permission(user.wa_id.as_deref(), bsuid)
            .await
    }

    /// An agent calls a user. At most one live call per user: a second attempt is refused
    /// before Meta hears of it.
    pub async fn place(
        &self,
        agent: &str,
        to: &str,
        offer: &str,
    ) -> Result<CallRecord, CallingError> {
        let target = UserRef::parse(to).map_err(CallingError::Invalid)?;
        check_sdp(offer, "offer")?;
        let user = user_of(&target);
        let local_id = format!("{}{}", model::LOCAL_PREFIX, uuid::Uuid::new_v4());
        let now = now_secs();
        let placeholder = Call::dialing(local_id.clone(), user, agent.to_owned(), now);
        self.store
            .insert_call(&placeholder, true, Durability::Synced)
            .await?;
        match self.graph.connect(&target, offer.to_owned()).await {
            Ok(call_id) => self.promote(&local_id, placeholder, &call_id).await,
            Err(e) => {
                self.fail_placeholder(placeholder, &e).await;
                if e.meta_code() == Some(138006) {
                    self.forget_permission(&target).await;
                }
                Err(e.into())
            }
        }
    }

    /// Meta named the call: the placeholder takes Meta's id, merging with whatever
    /// webhooks already said about it.
    async fn promote(
        &self,
        local_id: &str,
        placeholder: Call,
        call_id: &str,
    ) -> Result<CallRecord, CallingError> {
        let _guard = self.lock(call_id).await;
        for _ in 0..CAS_ATTEMPTS {
            let existing = self.store.load_call(call_id).await?;
            let version = existing.as_ref().map(|v| v.version);
            let mut call = match &existing {
                Some(seen) => {
                    let mut merged = seen.value.clone();
                    merged.agent.clone_from(&placeholder.agent);
                    merged.created_at = placeholder.created_at;
                    merged.learn_user(&placeholder.user);
                    merged
                }
                None => placeholder.clone(),
            };
            call.id = call_id.to_owned();
            match self.store.promote_call(local_id, &call, version).await {
                Ok(_) => {
                    // Events that came before the agent was known are sent again now.
                    for event in call.replay_for(placeholder.agent.as_deref().unwrap_or_default()) {
                        self.hub.publish(Push {
                            audience: Audience::Agent(
                                placeholder.agent.clone().unwrap_or_default(),
                            ),
                            event,
                        });
                    }
                    if !call.is_live() {
                        self.hub.publish(Push {
                            audience: Audience::Agent(
                                placeholder.agent.clone().unwrap_or_default(),
                            ),
                            event: call.ended_event(),
                        });
                    }
                    return Ok(call.record());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CallingError::Conflict(format!(
            "call {call_id} kept changing"
        )))
    }

    /// Meta refused the call: the attempt stays in the call log, ended, with Meta's reason.
    async fn fail_placeholder(&self, mut placeholder: Call, error: &GraphError) {
        let reason = CallError {
            meta_code: error.meta_code(),
            message: error.to_string(),
        };
        let _ = model::end(
            &mut placeholder,
            EndStatus::Failed,
            Some(reason),
            now_secs(),
        );
        if let Err(e) = self
            .store
            .update_call(&placeholder, 1, Durability::Synced)
            .await
        {
            tracing::error!(error = %e, call = %placeholder.id, "cannot record a failed call");
        }
    }

    /// Meta says there is no permission: forget any grant we thought we had.
    async fn forget_permission(&self, target: &UserRef) {
        let user = user_of(target);
        let now = now_secs();
        let result = self
            .update_permission(&user, |permission| {
                permission.apply_meta("no_permission", None, now);
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot record a missing permission");
        }
    }

    async fn load_live(&self, call_id: &str) -> Result<Versioned<Call>, CallingError> {
        self.store
            .load_call(call_id)
            .await?
            .ok_or_else(|| CallingError::NotFound(format!("call {call_id}")))
    }

    /// Changes one call under its lock with compare-and-set.
    async fn change_call<T>(
        &self,
        call_id: &str,
        mut change: impl FnMut(&mut Call) -> Result<T, CallingError>,
    ) -> Result<(Call, T), CallingError> {
        let _guard = self.lock(call_id).await;
        for _ in 0..CAS_ATTEMPTS {
            let stored = self.load_live(call_id).await?;
            let mut call = stored.value;
            let result = change(&mut call)?;
            match self
                .store
                .update_call(&call, stored.version, Durability::Synced)
                .await
            {
                Ok(_) => return Ok((call, result)),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CallingError::Conflict(format!(
            "call {call_id} kept changing"
        )))
    }

    /// An agent answers an incoming call: the first to accept wins; Meta then hears
    /// `pre_accept` and `accept` with the same SDP, in that order.
    pub async fn accept(
        &self,
        agent: &str,
        call_id: &str,
        answer: &str,
    ) -> Result<CallRecord, CallingError> {
        check_sdp(answer, "answer")?;
        let (_, claimed) = self
            .change_call(call_id, |call| Ok(model::claim(call, agent, answer)?))
            .await?;
        self.hub.publish(claimed);
        let accepted = async {
            self.graph
                .answer(CallAction::PreAccept, call_id, answer)
                .await?;
            self.graph.answer(CallAction::Accept, call_id, answer).await
        }
        .await;
        match accepted {
            Ok(()) => {
                let now = now_secs();
                let (call, ()) = self
                    .change_call(call_id, |call| {
                        model::connected(call, now);
                        Ok(())
                    })
                    .await?;
                self.note_connected(&call.user).await;
                Ok(call.record())
            }
            Err(e) => {
                self.ring_again(call_id, agent).await;
                Err(e.into())
            }
        }
    }

    /// An agent declines an incoming call.
    pub async fn reject(&self, agent: &str, call_id: &str) -> Result<CallRecord, CallingError> {
        // Taken first, under the call's lock, as an accept would: an agent answering at
        // the same moment is told the call is gone instead of racing the reject to Meta.
        let (_, taken) = self
            .change_call(call_id, |call| Ok(model::take(call, agent, "rejected")?))
            .await?;
        self.hub.publish(taken);
        if let Err(e) = self.graph.end(CallAction::Reject, call_id).await {
            self.ring_again(call_id, agent).await;
            return Err(e.into());
        }
        self.finish(call_id, EndStatus::Rejected).await
    }

    /// Meta refused an agent's accept or reject: if the call still rings, it rings for the
    /// others again.
    async fn ring_again(&self, call_id: &str, agent: &str) {
        let released = self
            .change_call(call_id, |call| {
                model::release(call, agent);
                Ok(call.replay_for(""))
            })
            .await;
        if let Ok((_, events)) = released {
            for event in events {
                self.hub.publish(Push {
                    audience: Audience::Everyone,
                    event,
                });
            }
        }
    }

    /// Ends live calls nothing has been heard about for too long (see [`model::stale`]).
    pub async fn sweep(&self) -> Result<usize, CallingError> {
        let now = now_secs();
        let mut ended = 0;
        for call in self.store.live_calls().await? {
            let Some((status, why)) = model::stale(&call, now) else {
                continue;
            };
            let error = CallError {
                meta_code: None,
                message: why.to_owned(),
            };
            let result = self
                .change_call(&call.id, |call| {
                    Ok(model::stale(call, now)
                        .and_then(|_| model::end(call, status, Some(error.clone()), now)))
                })
                .await;
            match result {
                Ok((_, push)) => {
                    ended += usize::from(push.is_some());
                    self.publish(push);
                }
                Err(e) => tracing::warn!(error = %e, call = %call.id, "cannot end a stale call"),
            }
        }
        Ok(ended)
    }

    /// An agent hangs up.
    /// Who may: the agent on the call; anyone, for an outgoing call that has no agent
    /// (placed by another system on the same number, or whose placing timed out here); and
    /// an admin, for any call.
    pub async fn terminate(
        &self,
        agent: &str,
        is_admin: bool,
        call_id: &str,
    ) -> Result<CallRecord, CallingError> {
        let stored = self.load_live(call_id).await?.value;
        let allowed = is_admin
            || match (&stored.agent, stored.direction) {
                (Some(owner), _) => owner == agent,
                (None, switchboard_protocol::api::Direction::Outgoing) => true,
                (None, switchboard_protocol::api::Direction::Incoming) => false,
            };
        if !allowed {
            return Err(match stored.agent {
                Some(owner) => CallingError::Claimed { agent: owner },
                None => CallingError::Conflict(
                    "answer or reject a ringing call; it is not yours to hang up".into(),
                ),
            });
        }
        if !stored.is_live() {
            return Ok(stored.record());
        }
        match self.graph.end(CallAction::Terminate, call_id).await {
            Ok(()) => {}
            // Meta no longer knows the call (code 100, invalid parameter: it has ended):
            // record the end all the same. Any other refusal leaves the call live.
            Err(GraphError::Meta { code: 100, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let status = if stored.connected_at.is_some() {
            EndStatus::Completed
        } else {
            EndStatus::Failed
        };
        self.finish(call_id, status).await
    }

    async fn finish(&self, call_id: &str, status: EndStatus) -> Result<CallRecord, CallingError> {
        let now = now_secs();
        let (call, push) = self
            .change_call(call_id, |call| Ok(model::end(call, status, None, now)))
            .await?;
        self.publish(push);
        Ok(call.record())
    }

    pub async fn call(&self, call_id: &str) -> Result<CallRecord, CallingError> {
        Ok(self.load_live(call_id).await?.value.record())
    }

    pub async fn log(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<CallRecord>, CallingError> {
        let calls = self.store.list_calls(before, limit).await?;
        Ok(calls.iter().map(Call::record).collect())
    }

    /// What a (re)connecting agent must hear about calls still live.
    /// Call it after subscribing to the hub.
    pub async fn replay_for(&self, agent: &str) -> Result<Vec<ServerEvent>, CallingError> {
        let _gate = self.replay_gate.write().await;
        let calls = self.store.live_calls().await?;
        Ok(calls.iter().flat_map(|c| c.replay_for(agent)).collect())
    }

    /// Sends a call-permission request, within Meta's limits (checked here first).
    pub async fn request_permission(&self, to: &str) -> Result<PermissionState, CallingError> {
        let target = UserRef::parse(to).map_err(CallingError::Invalid)?;
        let user = user_of(&target);
        let now = now_secs();
        self.update_permission(&user, |permission| {
            permission
                .take_request(now)
                .map_err(|refused| match refused {
                    RequestRefused::Limit { retry_at } => CallingError::Limited {
                        reason: refused.to_string(),
                        retry_at,
                    },
                    RequestRefused::AlreadyPermanent => CallingError::Conflict(refused.to_string()),
                })
        })
        .await?;
        let (phone, bsuid) = match &target {
            UserRef::Phone(p) => (Some(p.clone()), None),
            UserRef::Bsuid(b) => (None, Some(b.clone())),
        };
        let request = match &self.style {
            PermissionRequestStyle::Interactive { text } => {
                MessageRequest::permission_request(phone, bsuid, text.clone())
            }
            PermissionRequestStyle::Template { name, language } => {
                MessageRequest::permission_template(phone, bsuid, name.clone(), language.clone())
            }
        };
        if let Err(e) = self.graph.send_message(&request).await {
            let undone = self
                .update_permission(&user, |permission| {
                    permission.return_request(now);
                    Ok(())
                })
                .await;
            if let Err(undo) = undone {
                tracing::warn!(error = %undo, "cannot return a refused permission request");
            }
            return Err(e.into());
        }
        let stored = self.load_permission(&user).await?;
        Ok(stored
            .map_or_else(|| Permission::unknown(user, now), |v| v.value)
            .state(now))
    }

    /// The permission state of a user: Meta's current view when Meta answers, else ours.
    pub async fn permission(&self, who: &str) -> Result<PermissionState, CallingError> {
        let target = UserRef::parse(who).map_err(CallingError::Invalid)?;
        let user = user_of(&target);
        let now = now_secs();
        match self.graph.call_permissions(&target).await {
            Ok(answer) => {
                let permission = self
                    .update_permission(&user, |permission| {
                        permission.apply_meta(
                            &answer.permission.status,
                            answer.permission.expiration_time,
                            now,
                        );
                        Ok(permission.clone())
                    })
                    .await?;
                Ok(permission.state(now))
            }
            Err(e) => {
                tracing::warn!(error = %e, "Meta's permission check failed; answering from what we know");
                let stored = self.load_permission(&user).await?;
                Ok(stored
                    .map_or_else(|| Permission::unknown(user, now), |v| v.value)
                    .state(now))
            }
        }
    }
}

fn user_of(target: &UserRef) -> User {
    match target {
        UserRef::Phone(phone) => User {
            wa_id: Some(phone.clone()),
            ..User::default()
        },
        UserRef::Bsuid(id) => User {
            user_id: id.clone(),
            ..User::default()
        },
    }
}

fn permission_lock_key(user: &User) -> String {
    // Both keys would be better, but one is enough within one process: a user is addressed
    // the same way by one agent's page.
    if user.user_id.is_empty() {
        format!("perm:{}", user.wa_id.as_deref().unwrap_or_default())
    } else {
        format!("perm:{}", user.user_id)
    }
}

/// A complete SDP, not a fragment: the dialer sends its local description after ICE
/// gathering, so it must at least have a version line and an audio section.
fn check_sdp(sdp: &str, what: &str) -> Result<(), CallingError> {
    if sdp.starts_with("v=0") && sdp.contains("m=audio") {
        Ok(())
    } else {
        Err(CallingError::Invalid(format!(
            "`sdp` must be a complete SDP {what} (starting with v=0, with an m=audio section)"
        )))
    }
}

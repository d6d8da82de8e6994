//! What agents ask of a call: place one, accept or reject an incoming one, hang up; and
//! the call log and the replay a (re)connecting agent hears.

use switchboard_protocol::api::CallRecord;
use switchboard_protocol::graph::CallAction;
use switchboard_protocol::ws::{CallError, EndStatus, ServerEvent};
use switchboard_protocol::CallId;
use switchboard_protocol::UserRef;

use super::{check_sdp, retry_on_conflict, Calling, CallingError};
use crate::domain::call::{self as model, Call};
use crate::domain::clock::now_secs;
use crate::domain::push::{Audience, Push};
use crate::meta::graph::GraphError;
use crate::store::Durability;

impl Calling {
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
        let user = target.to_user();
        let local_id = CallId::from(format!("{}{}", model::LOCAL_PREFIX, uuid::Uuid::new_v4()));
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
        local_id: &CallId,
        placeholder: Call,
        call_id: &CallId,
    ) -> Result<CallRecord, CallingError> {
        let _guard = self.lock(call_id).await;
        let call = retry_on_conflict!(format_args!("call {call_id}"), async {
            let existing = self.store.load_call(call_id).await?;
            let version = existing.as_ref().map(|v| v.version);
            let mut call = match existing {
                Some(seen) => {
                    let mut merged = seen.value;
                    merged.agent.clone_from(&placeholder.agent);
                    merged.created_at = placeholder.created_at;
                    merged.learn_user(&placeholder.user);
                    merged
                }
                None => placeholder.clone(),
            };
            call.id = call_id.clone();
            self.store.promote_call(local_id, &call, version).await?;
            Ok(call)
        })?;
        // Events that came before the agent was known are sent again now.
        let agent = placeholder.agent.clone().unwrap_or_default();
        for event in call.replay_for(&agent) {
            self.hub.publish(Push {
                audience: Audience::Agent(agent.clone()),
                event,
            });
        }
        if !call.is_live() {
            self.hub.publish(Push {
                audience: Audience::Agent(agent),
                event: call.ended_event(),
            });
        }
        Ok(call.record())
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
    pub(super) async fn forget_permission(&self, target: &UserRef) {
        let user = target.to_user();
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

    /// An agent answers an incoming call: the first to accept wins; Meta then hears
    /// `pre_accept` and `accept` with the same SDP, in that order.
    pub async fn accept(
        &self,
        agent: &str,
        call_id: &CallId,
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
    pub async fn reject(&self, agent: &str, call_id: &CallId) -> Result<CallRecord, CallingError> {
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
    pub(super) async fn ring_again(&self, call_id: &CallId, agent: &str) {
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
        call_id: &CallId,
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

    pub(super) async fn finish(
        &self,
        call_id: &CallId,
        status: EndStatus,
    ) -> Result<CallRecord, CallingError> {
        let now = now_secs();
        let (call, push) = self
            .change_call(call_id, |call| Ok(model::end(call, status, None, now)))
            .await?;
        self.publish(push);
        Ok(call.record())
    }

    pub async fn call(&self, call_id: &CallId) -> Result<CallRecord, CallingError> {
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
}

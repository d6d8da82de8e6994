//! Meta's calling webhooks, once stored: call and permission state moves on, and agents
//! hear about it. Safe to repeat: a webhook seen twice changes nothing the second time.

use switchboard_protocol::api::CallState;
use switchboard_protocol::CallId;
use switchboard_protocol::User;

use super::updates::{self, Read, Update};
use super::{retry_on_conflict, Calling, CallingError, RECOVERY_WINDOW_MS};
use crate::domain::call::{self as model, CallUpdate};
use crate::domain::clock::{now_millis, now_secs, Millis};
use crate::domain::event::EventKind;
use crate::domain::permission::PermissionReply;
use crate::domain::push::{Audience, Push};
use crate::store::Durability;

impl Calling {
    /// Reads a stored calling event, received at `received_at`, and acts on it. Safe to
    /// repeat: a webhook seen twice changes nothing the second time.
    pub async fn apply_event(
        &self,
        kind: &EventKind,
        payload: &[u8],
        received_at: Millis,
    ) -> Result<(), CallingError> {
        let context = updates::Context {
            phone_number_id: self.graph.phone_number_id(),
            received_at: received_at / 1000,
        };
        match updates::read(kind, payload, context) {
            Read::Update(Update::Call { call_id, update }) => {
                self.apply_call_update(&call_id, &update).await
            }
            Read::Update(Update::Permission(reply)) => self.apply_permission_reply(&reply).await,
            Read::OtherNumber(number) => {
                tracing::warn!(
                    %kind,
                    phone_number_id = %number,
                    ours = %context.phone_number_id,
                    "a calling webhook for another business number rings no one (it is stored and forwarded)"
                );
                Ok(())
            }
            Read::Nothing => Ok(()),
        }
    }

    /// Replays recent calling events after a restart: whatever a crash cut short between
    /// storing a webhook and acting on it is done now, as of when each was received.
    pub async fn recover(&self) -> Result<usize, CallingError> {
        let events = self
            .store
            .calling_events_since(now_millis() - RECOVERY_WINDOW_MS)
            .await?;
        for event in &events {
            let applied = self
                .apply_event(&event.kind, &event.payload, event.received_at)
                .await;
            if let Err(e) = applied {
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
        call_id: &CallId,
        update: &CallUpdate,
    ) -> Result<(), CallingError> {
        let _guard = self.lock(call_id).await;
        let _gate = self.replay_gate.read().await;
        let mut published = false;
        retry_on_conflict!(format_args!("call {call_id}"), async {
            let existing = self.store.load_call(call_id).await?;
            let version = existing.as_ref().map(|v| v.version);
            let before = existing.map(|v| v.value);
            let (call, pushes) = model::apply(before.clone(), call_id, update);
            if before.as_ref() == Some(&call) {
                return Ok(());
            }
            if !published {
                self.publish(pushes);
                published = true;
            }
            match version {
                Some(version) => {
                    self.store
                        .update_call(&call, version, Durability::Relaxed)
                        .await?
                }
                None => {
                    self.store
                        .insert_call(&call, false, Durability::Relaxed)
                        .await?
                }
            };
            let newly_connected = call.state == CallState::Connected
                && before.as_ref().is_none_or(|b| b.connected_at.is_none());
            if newly_connected {
                self.note_connected(&call.user).await;
            }
            Ok(())
        })
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
    pub(super) async fn note_connected(&self, user: &User) {
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
}

//! The router's WebSocket events for calls, and the catch-up after the socket comes back
//! (a call's record read again, turned into the event that was missed).

use switchboard_protocol::api::{CallRecord, CallState, Direction};
use switchboard_protocol::ws::{CallError, CallStatus, EndStatus, ServerEvent};
use switchboard_protocol::User;

use super::banner::{caller, Notice, Ring};
use super::state::{Answer, Call, Media, Millis, Outcome, Phase};
use super::{Dialer, Effect};
use crate::failure::Failure;

/// Most events held for a call whose id is not known yet.
const EARLY_LIMIT: usize = 32;

impl Dialer {
    pub(super) fn checked(&mut self, record: CallRecord, now: Millis) -> Vec<Effect> {
        let event = match (record.state, record.direction, &record.agent) {
            (CallState::Ended, _, _) => ServerEvent::CallEnded {
                call_id: record.call_id,
                status: record.end_status.unwrap_or(EndStatus::Failed),
                duration: record.duration,
                error: record.error,
            },
            (_, Direction::Incoming, Some(agent)) if *agent != self.agent => {
                ServerEvent::CallClaimed {
                    call_id: record.call_id,
                    agent: agent.clone(),
                }
            }
            (CallState::Connected, _, _) => ServerEvent::CallStatus {
                call_id: record.call_id,
                status: CallStatus::Accepted,
            },
            (CallState::Ringing, Direction::Outgoing, _) => ServerEvent::CallStatus {
                call_id: record.call_id,
                status: CallStatus::Ringing,
            },
            _ => return Vec::new(),
        };
        self.on_event(event, now)
    }

    pub(super) fn socket_opened(&self) -> Vec<Effect> {
        let current = self.live().and_then(|c| c.id.clone());
        current
            .into_iter()
            .chain(self.rings.iter().map(|r| r.call_id.clone()))
            .map(|call_id| Effect::CheckCall { call_id })
            .chain(std::iter::once(Effect::RefreshLog))
            .collect()
    }

    pub(super) fn on_event(&mut self, event: ServerEvent, now: Millis) -> Vec<Effect> {
        if let Some(call_id) = event_call_id(&event) {
            let known = self.call.as_ref().is_some_and(|c| c.is(call_id))
                || self.rings.iter().any(|r| r.call_id == call_id);
            let may_be_ours = matches!(
                event,
                ServerEvent::CallAnswered { .. }
                    | ServerEvent::CallStatus { .. }
                    | ServerEvent::CallEnded { .. }
            );
            if !known && may_be_ours && self.call.as_ref().is_some_and(Call::awaits_id) {
                if self.early.len() < EARLY_LIMIT {
                    self.early.push((event, now));
                }
                return Vec::new();
            }
        }
        match event {
            ServerEvent::Hello { agent } => {
                self.agent = agent;
                Vec::new()
            }
            ServerEvent::CallIncoming {
                call_id, user, sdp, ..
            } => {
                self.ring(call_id.into_string(), user, sdp);
                Vec::new()
            }
            ServerEvent::CallAnswered { call_id, sdp } => self.answered(&call_id, sdp, now),
            ServerEvent::CallStatus { call_id, status } => self.status(&call_id, status, now),
            ServerEvent::CallEnded {
                call_id,
                status,
                duration,
                error,
            } => self.ended(&call_id, status, duration, error.as_ref()),
            ServerEvent::CallClaimed { call_id, agent } => self.claimed(&call_id, agent),
            ServerEvent::PermissionUpdated { .. } => Vec::new(),
        }
    }

    fn ring(&mut self, call_id: String, user: User, offer: String) {
        let ours = self
            .call
            .as_ref()
            .is_some_and(|c| c.is(&call_id) && c.is_live());
        if ours || self.rings.iter().any(|r| r.call_id == call_id) {
            return;
        }
        if self.notice.as_ref().is_some_and(|n| n.call_id() == call_id) {
            self.notice = None;
        }
        self.rings.push(Ring {
            call_id,
            user,
            offer,
        });
    }

    fn answered(&mut self, call_id: &str, answer: String, now: Millis) -> Vec<Effect> {
        let Some(call) = self
            .call
            .as_mut()
            .filter(|c| c.is(call_id) && c.is_live() && c.direction == Direction::Outgoing)
        else {
            return Vec::new();
        };
        if call.answer != Answer::Awaited || call.media != Media::Described {
            return Vec::new();
        }
        call.answer = Answer::Applying { received_at: now };
        if call.phase == Phase::Dialing {
            call.phase = Phase::Ringing;
        }
        vec![Effect::ApplyAnswer {
            attempt: call.attempt,
            answer,
        }]
    }

    fn status(&mut self, call_id: &str, status: CallStatus, now: Millis) -> Vec<Effect> {
        let Some(call) = self.call.as_mut().filter(|c| c.is(call_id) && c.is_live()) else {
            return Vec::new();
        };
        match status {
            CallStatus::Ringing => {
                if call.phase == Phase::Dialing {
                    call.phase = Phase::Ringing;
                }
                Vec::new()
            }
            CallStatus::Accepted => {
                if matches!(
                    call.phase,
                    Phase::Dialing | Phase::Ringing | Phase::Accepting
                ) {
                    call.phase = Phase::Connected;
                    call.connected_at.get_or_insert(now);
                }
                Vec::new()
            }
            CallStatus::Rejected => {
                if call.direction != Direction::Outgoing {
                    return Vec::new();
                }
                let mut effects = self.finish(Outcome::Declined, false);
                effects.push(Effect::RefreshLog);
                effects
            }
        }
    }

    fn ended(
        &mut self,
        call_id: &str,
        status: EndStatus,
        duration: Option<u64>,
        error: Option<&CallError>,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self
            .call
            .as_ref()
            .is_some_and(|c| c.is(call_id) && c.is_live())
        {
            if let Some(error) = error {
                self.error = Some(Failure::from_call_error(error));
            }
            effects = self.finish(Outcome::Ended { status, duration }, false);
        } else if let Some(index) = self.rings.iter().position(|r| r.call_id == call_id) {
            let ring = self.rings.remove(index);
            self.notice = Some(Notice::Gone {
                call_id: ring.call_id,
                user: ring.user,
            });
            effects.extend(self.expire_notice());
        }
        effects.push(Effect::RefreshLog);
        effects
    }

    fn claimed(&mut self, call_id: &str, agent: String) -> Vec<Effect> {
        let mut effects = Vec::new();
        let user = if let Some(index) = self.rings.iter().position(|r| r.call_id == call_id) {
            // Taken by someone else, or by this agent in another window: either way it
            // no longer rings here.
            self.rings.remove(index).user
        } else if agent == self.agent {
            // Our own accept, seen by everyone.
            return effects;
        } else {
            let Some(call) = self
                .call
                .as_mut()
                .filter(|c| c.is(call_id) && c.direction == Direction::Incoming)
            else {
                return effects;
            };
            let user = caller(&call.peer);
            match (call.phase, &call.outcome) {
                // We were answering it too, and lost.
                (Phase::Accepting, _) => {
                    effects = self.finish(Outcome::TakenBy(Some(agent.clone())), false);
                }
                // The router refused our accept first; now we know who won.
                (Phase::Ended, Some(Outcome::TakenBy(None))) => {
                    call.outcome = Some(Outcome::TakenBy(Some(agent.clone())));
                }
                _ => return effects,
            }
            user
        };
        self.notice = Some(Notice::Taken {
            call_id: call_id.to_owned(),
            user,
            by: Some(agent),
        });
        effects.extend(self.expire_notice());
        effects
    }
}

pub(super) fn event_call_id(event: &ServerEvent) -> Option<&str> {
    match event {
        ServerEvent::CallIncoming { call_id, .. }
        | ServerEvent::CallAnswered { call_id, .. }
        | ServerEvent::CallStatus { call_id, .. }
        | ServerEvent::CallEnded { call_id, .. }
        | ServerEvent::CallClaimed { call_id, .. } => Some(call_id),
        ServerEvent::PermissionUpdated { .. } | ServerEvent::Hello { .. } => None,
    }
}

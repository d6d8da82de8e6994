//! The results of the work the state machine asked for: the microphone opened, a local
//! description made, Meta's answer applied, and the router's replies to placing and
//! accepting a call.

use switchboard_protocol::api::Direction;

use super::banner::{caller, Notice};
use super::events::event_call_id;
use super::state::{Answer, Attempt, Media, Millis, Outcome, Peer, Phase, Server};
use super::{Dialer, Effect};
use crate::failure::Failure;

impl Dialer {
    pub(super) fn media_opened(&mut self, attempt: Attempt) -> Vec<Effect> {
        let Some(call) = self.current(attempt).filter(|c| c.media == Media::Opening) else {
            // The call this microphone was opened for is over: close it again.
            return vec![Effect::CloseMedia { attempt }];
        };
        call.media = Media::Describing;
        let mut effects = Vec::new();
        if call.muted {
            effects.push(Effect::SetMuted {
                attempt,
                muted: true,
            });
        }
        effects.push(match (call.direction, &call.offer) {
            (Direction::Incoming, Some(offer)) => Effect::CreateAnswer {
                attempt,
                offer: offer.clone(),
            },
            _ => Effect::CreateOffer { attempt },
        });
        effects
    }

    pub(super) fn local_description(
        &mut self,
        attempt: Attempt,
        sdp: String,
        now: Millis,
    ) -> Vec<Effect> {
        let Some(call) = self
            .current(attempt)
            .filter(|c| c.media == Media::Describing)
        else {
            return Vec::new();
        };
        call.media = Media::Described;
        call.server = Server::Asked;
        let since_click = Some(now - call.started_at);
        match (call.direction, &call.peer, &call.id) {
            (Direction::Outgoing, Peer::Dialled(target), _) => {
                call.phase = Phase::Dialing;
                let to = target.as_str().to_owned();
                self.timings.click_to_offer_sent_ms = since_click;
                vec![Effect::PostCall { attempt, to, sdp }]
            }
            (Direction::Incoming, _, Some(call_id)) => {
                let call_id = call_id.clone();
                self.timings.click_to_answer_sent_ms = since_click;
                vec![Effect::PostAccept {
                    attempt,
                    call_id,
                    sdp,
                }]
            }
            // An outgoing call always has a target and an incoming one its id.
            _ => Vec::new(),
        }
    }

    pub(super) fn remote_applied(&mut self, attempt: Attempt, now: Millis) {
        let Some(call) = self.current(attempt) else {
            return;
        };
        if let Answer::Applying { received_at } = call.answer {
            call.answer = Answer::Applied;
            self.timings.answered_to_remote_applied_ms = Some(now - received_at);
        }
    }

    pub(super) fn placed(
        &mut self,
        attempt: Attempt,
        result: Result<String, Failure>,
    ) -> Vec<Effect> {
        let placed_id = result.as_ref().ok().map(String::as_str);
        if let Some(effects) = self.settle_hang_up_later(attempt, result.is_ok(), placed_id) {
            return effects;
        }
        let Some(call) = self
            .current(attempt)
            .filter(|c| c.server == Server::Asked && c.direction == Direction::Outgoing)
        else {
            return Vec::new();
        };
        match result {
            Ok(call_id) => {
                call.id = Some(call_id.clone());
                call.server = Server::Knows;
                let early = std::mem::take(&mut self.early);
                let mut effects = vec![Effect::RefreshLog];
                for (event, at) in early {
                    if event_call_id(&event) == Some(call_id.as_str()) {
                        effects.extend(self.on_event(event, at));
                    }
                }
                effects
            }
            Err(failure) => {
                call.server = Server::Unaware;
                self.early.clear();
                self.error = Some(failure);
                let mut effects = self.finish(Outcome::Failed, false);
                effects.push(Effect::RefreshLog);
                effects
            }
        }
    }

    pub(super) fn accepted(
        &mut self,
        attempt: Attempt,
        result: Result<(), Failure>,
        now: Millis,
    ) -> Vec<Effect> {
        if let Some(effects) = self.settle_hang_up_later(attempt, result.is_ok(), None) {
            return effects;
        }
        let Some(call) = self
            .current(attempt)
            .filter(|c| c.server == Server::Asked && c.direction == Direction::Incoming)
        else {
            return Vec::new();
        };
        match result {
            Ok(()) => {
                call.server = Server::Knows;
                call.phase = Phase::Connected;
                call.connected_at.get_or_insert(now);
                vec![Effect::RefreshLog]
            }
            Err(failure) => {
                call.server = Server::Unaware;
                let outcome = if failure.code.as_deref() == Some("claimed") {
                    let by = taken_by(&failure);
                    self.notice = call.id.clone().map(|call_id| Notice::Taken {
                        call_id,
                        user: caller(&call.peer),
                        by: by.clone(),
                    });
                    Outcome::TakenBy(by)
                } else {
                    self.error = Some(failure);
                    Outcome::Failed
                };
                let mut effects = self.finish(outcome, false);
                effects.push(Effect::RefreshLog);
                effects.extend(self.expire_notice());
                effects
            }
        }
    }

    /// A call the agent hung up while the router was still placing or accepting it: once
    /// the router has answered, Meta is told to end it. `None` if `attempt` is not one.
    fn settle_hang_up_later(
        &mut self,
        attempt: Attempt,
        succeeded: bool,
        placed_id: Option<&str>,
    ) -> Option<Vec<Effect>> {
        let index = self.hang_up_later.iter().position(|(a, _)| *a == attempt)?;
        let (_, known_id) = self.hang_up_later.remove(index);
        self.early.clear();
        let call_id = placed_id.map(str::to_owned).or(known_id);
        Some(match call_id {
            Some(call_id) if succeeded => vec![Effect::PostTerminate { call_id }],
            _ => vec![Effect::RefreshLog],
        })
    }
}

/// The winner's name from the router's `claimed` refusal ("this call was taken by ravi").
/// A byte search, not `rsplit_once(" by ")`: std's substring searcher costs the dialer's
/// bundle about 1.5 KB for this one use.
fn taken_by(failure: &Failure) -> Option<String> {
    const BY: &[u8] = b" by ";
    let message = &failure.message;
    let at = message
        .as_bytes()
        .windows(BY.len())
        .rposition(|w| w == BY)?;
    let name = message[at + BY.len()..].trim_end_matches('.').trim();
    (!name.is_empty()).then(|| name.to_owned())
}

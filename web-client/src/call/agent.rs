//! The agent's own actions: place a call, answer or decline one that rings, mute, and
//! hang up (which also ends a call whatever else ends it).

use switchboard_protocol::api::Direction;

use super::banner::Ring;
use super::state::{Answer, Call, Media, Millis, Outcome, Peer, Phase, Server, Timings};
use super::{Dialer, Effect};
use crate::display;
use crate::failure::Failure;

impl Dialer {
    pub(super) fn place(&mut self, to: &str, now: Millis) -> Vec<Effect> {
        if self.live().is_some() {
            // One call at a time: a second click, a repeated key or a double event is a
            // no-op, never a second call.
            return Vec::new();
        }
        let Some(target) = display::parse_target(to) else {
            self.error = Some(Failure::invalid_number(to));
            return Vec::new();
        };
        let attempt = self.next_attempt();
        self.start(Call {
            attempt,
            direction: Direction::Outgoing,
            peer: Peer::Dialled(target),
            id: None,
            phase: Phase::Preparing,
            media: Media::Opening,
            server: Server::Unaware,
            answer: Answer::Awaited,
            offer: None,
            muted: false,
            started_at: now,
            connected_at: None,
            outcome: None,
        })
    }

    pub(super) fn accept(&mut self, call_id: &str, now: Millis) -> Vec<Effect> {
        if self.live().is_some_and(|c| c.is(call_id)) {
            // A second click on "answer".
            return Vec::new();
        }
        if self.live().is_some() {
            self.error = Some(Failure::new(
                "Finish your current call before answering another.",
            ));
            return Vec::new();
        }
        let Some(index) = self.rings.iter().position(|r| r.call_id == call_id) else {
            return Vec::new();
        };
        let ring = self.rings.remove(index);
        let attempt = self.next_attempt();
        self.start(Call {
            attempt,
            direction: Direction::Incoming,
            peer: Peer::Caller(ring.user),
            id: Some(ring.call_id),
            phase: Phase::Accepting,
            media: Media::Opening,
            server: Server::Unaware,
            answer: Answer::Applied,
            offer: Some(ring.offer),
            muted: false,
            started_at: now,
            connected_at: None,
            outcome: None,
        })
    }

    fn start(&mut self, call: Call) -> Vec<Effect> {
        let attempt = call.attempt;
        self.call = Some(call);
        self.error = None;
        self.early.clear();
        self.timings = Timings::default();
        vec![Effect::OpenMedia { attempt }]
    }

    pub(super) fn reject(&mut self, call_id: &str) -> Vec<Effect> {
        let Some(index) = self.rings.iter().position(|r| r.call_id == call_id) else {
            return Vec::new();
        };
        self.rings.remove(index);
        vec![Effect::PostReject {
            call_id: call_id.to_owned(),
        }]
    }

    pub(super) fn toggle_mute(&mut self) -> Vec<Effect> {
        let Some(call) = self.call.as_mut().filter(|c| c.is_live()) else {
            return Vec::new();
        };
        call.muted = !call.muted;
        if call.media == Media::Opening {
            // Applied when the microphone is open.
            return Vec::new();
        }
        vec![Effect::SetMuted {
            attempt: call.attempt,
            muted: call.muted,
        }]
    }

    /// Ends the current call here. `tell_server`: the end is ours (hang-up, a local
    /// failure), so the router and Meta must hear of it; otherwise it came from them.
    pub(super) fn finish(&mut self, outcome: Outcome, tell_server: bool) -> Vec<Effect> {
        let Some(call) = self.call.as_mut().filter(|c| c.is_live()) else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        if call.media != Media::Closed {
            call.media = Media::Closed;
            effects.push(Effect::CloseMedia {
                attempt: call.attempt,
            });
        }
        call.phase = Phase::Ended;
        call.outcome = Some(outcome);
        if tell_server {
            match (call.server, &call.id) {
                (Server::Knows, Some(call_id)) => effects.push(Effect::PostTerminate {
                    call_id: call_id.clone(),
                }),
                (Server::Asked, id) => self.hang_up_later.push((call.attempt, id.clone())),
                // Nobody heard of our answer: the call still rings for every agent, so
                // it rings here again too.
                (_, Some(call_id)) if call.direction == Direction::Incoming => {
                    if let (Some(offer), Peer::Caller(user)) = (&call.offer, &call.peer) {
                        self.rings.insert(
                            0,
                            Ring {
                                call_id: call_id.clone(),
                                user: user.clone(),
                                offer: offer.clone(),
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        effects
    }
}

//! The call state machine.
//!
//! [`Dialer::handle`] takes one [`Input`] (an agent's click, an event from the router's
//! WebSocket, or the result of work the browser did) and returns the [`Effect`]s the
//! browser layer must carry out. Nothing here touches a browser, so every rule is tested
//! with plain `cargo test`:
//!
//! - an offer or answer is only ever asked for once the microphone track is on the peer
//!   connection ([`Effect::OpenMedia`] must report back before [`Effect::CreateOffer`] or
//!   [`Effect::CreateAnswer`] is emitted), and only a finished local description is sent;
//! - one call at a time: a second "call" click while one is in progress does nothing;
//! - events and results are matched to the call they belong to (by Meta's call id, and by
//!   [`Attempt`] for the browser's own work), so nothing meant for another call or an
//!   earlier attempt is ever applied;
//! - Meta's answer can beat `POST /api/calls`' reply (the router replays it to the agent
//!   before answering): events for an unknown call id are held while our call waits for
//!   its id, and applied the moment it arrives;
//! - a call hung up before the router has answered is still ended at Meta once its id is
//!   known.
//!
//! Layout: this file holds the [`Dialer`], the dispatch of each input and what the page
//! reads back; the rest is one file per job:
//!
//! - `state`: what the dialer knows of a call (its phase, media, the router's view, peer,
//!   outcome) and the timings it measures;
//! - `input` and `effect`: what goes in, and the work that comes out;
//! - `agent`: the agent's own actions (place, answer, decline, mute, hang up);
//! - `results`: the results of the work the machine asked for, from the browser and the
//!   router's replies to `POST`s;
//! - `events`: the router's WebSocket events, and the catch-up after a reconnect;
//! - `banner`: calls ringing for every agent, and the banner that shows them.

mod agent;
mod banner;
mod effect;
mod events;
mod input;
mod results;
mod state;

use switchboard_protocol::ws::ServerEvent;

use self::banner::Notice;
pub use self::banner::{Banner, BannerState, Ring};
pub use self::effect::Effect;
pub use self::input::Input;
pub use self::state::{Attempt, Millis, Outcome, Peer, Phase, Timings};
use self::state::{Call, Media, Server};
use crate::failure::Failure;

/// The dialer: one call at a time, the calls ringing, and what went wrong last.
#[derive(Debug, Clone, Default)]
pub struct Dialer {
    agent: String,
    attempts: u32,
    call: Option<Call>,
    rings: Vec<Ring>,
    notice: Option<Notice>,
    /// Events that may belong to our outgoing call, received before its id.
    early: Vec<(ServerEvent, Millis)>,
    /// Calls hung up while the router was still placing or accepting them: ended at Meta
    /// as soon as the router answers.
    hang_up_later: Vec<(Attempt, Option<String>)>,
    error: Option<Failure>,
    timings: Timings,
}

impl Dialer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one input and returns the work to do, in order.
    pub fn handle(&mut self, input: Input, now: Millis) -> Vec<Effect> {
        match input {
            Input::SignedIn { agent } => {
                self.agent = agent;
                Vec::new()
            }
            Input::Place { to } => self.place(&to, now),
            Input::Accept { call_id } => self.accept(&call_id, now),
            Input::Reject { call_id } => self.reject(&call_id),
            Input::HangUp => self.finish(Outcome::HungUp, true),
            Input::ToggleMute => self.toggle_mute(),
            Input::DismissNotice { call_id } => {
                if self.notice.as_ref().is_some_and(|n| n.call_id() == call_id) {
                    self.notice = None;
                }
                Vec::new()
            }
            Input::DismissError => {
                self.error = None;
                Vec::new()
            }
            Input::Problem(failure) => {
                self.error = Some(failure);
                Vec::new()
            }
            Input::MediaOpened { attempt } => self.media_opened(attempt),
            Input::LocalDescription { attempt, sdp } => self.local_description(attempt, sdp, now),
            Input::MediaFailed { attempt, failure } => {
                if !self.is_current(attempt) {
                    return Vec::new();
                }
                self.error = Some(failure);
                self.finish(Outcome::Failed, true)
            }
            Input::RemoteApplied { attempt } => {
                self.remote_applied(attempt, now);
                Vec::new()
            }
            Input::AudioPathFailed { attempt } => {
                if self.is_current(attempt) {
                    self.error = Some(Failure::audio_path_failed());
                }
                Vec::new()
            }
            Input::Placed { attempt, result } => self.placed(attempt, result),
            Input::Accepted { attempt, result } => self.accepted(attempt, result, now),
            Input::Checked(record) => self.checked(record, now),
            Input::SocketOpened => self.socket_opened(),
            Input::Server(event) => self.on_event(event, now),
        }
    }

    fn next_attempt(&mut self) -> Attempt {
        self.attempts = self.attempts.wrapping_add(1);
        Attempt(self.attempts)
    }

    fn live(&self) -> Option<&Call> {
        self.call.as_ref().filter(|c| c.is_live())
    }

    /// The live call this attempt belongs to, if it is still the current one.
    fn current(&mut self, attempt: Attempt) -> Option<&mut Call> {
        self.call
            .as_mut()
            .filter(|c| c.attempt == attempt && c.is_live())
    }

    fn is_current(&self, attempt: Attempt) -> bool {
        self.live().is_some_and(|c| c.attempt == attempt)
    }

    // What the page shows.

    pub fn agent(&self) -> &str {
        &self.agent
    }

    pub fn phase(&self) -> Phase {
        self.call.as_ref().map_or(Phase::Idle, |c| c.phase)
    }

    /// Whether a new call can be placed now.
    pub fn can_place(&self) -> bool {
        self.live().is_none()
    }

    pub fn peer(&self) -> Option<&Peer> {
        self.call.as_ref().map(|c| &c.peer)
    }

    pub fn call_id(&self) -> Option<&str> {
        self.call.as_ref().and_then(|c| c.id.as_deref())
    }

    pub fn muted(&self) -> bool {
        self.live().is_some_and(|c| c.muted)
    }

    /// When the live call connected, on the page's clock.
    pub fn connected_at(&self) -> Option<Millis> {
        self.live().and_then(|c| c.connected_at)
    }

    pub fn outcome(&self) -> Option<&Outcome> {
        self.call.as_ref().and_then(|c| c.outcome.as_ref())
    }

    pub fn error(&self) -> Option<&Failure> {
        self.error.as_ref()
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// Whether media opened for this attempt is still wanted (else it is closed at once).
    pub fn wants_media(&self, attempt: Attempt) -> bool {
        self.live()
            .is_some_and(|c| c.attempt == attempt && c.media != Media::Closed)
    }

    /// The call to end with a keep-alive request if the page goes away.
    pub fn call_to_end_on_exit(&self) -> Option<&str> {
        self.live()
            .filter(|c| c.server != Server::Unaware)
            .and_then(|c| c.id.as_deref())
    }
}

#[cfg(test)]
mod tests;

//! What the dialer knows of a call: where it stands, how far its media and the router have
//! come, who is on the other end, how it ended, and the timings measured along the way.

use switchboard_protocol::api::Direction;
use switchboard_protocol::ws::EndStatus;
use switchboard_protocol::{User, UserRef};

use crate::display;

/// Milliseconds on the page's monotonic clock (`performance.now()`).
pub type Millis = f64;

/// One try at a call. Work the browser does for a call reports back with its attempt, so
/// the result of something started for an earlier call is recognised and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempt(pub(super) u32);

impl Attempt {
    pub fn number(self) -> u32 {
        self.0
    }
}

/// Where the current call stands; the page's `#call-panel[data-state]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    /// Outgoing: opening the microphone, making the offer, gathering candidates.
    Preparing,
    /// Outgoing: the offer went to the router; no word from the phone yet.
    Dialing,
    /// Outgoing: the customer's phone is ringing.
    Ringing,
    /// Incoming: the agent answered; microphone, answer and `accept` under way.
    Accepting,
    Connected,
    Ended,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Preparing => "preparing",
            Phase::Dialing => "dialing",
            Phase::Ringing => "ringing",
            Phase::Accepting => "accepting",
            Phase::Connected => "connected",
            Phase::Ended => "ended",
        }
    }

    pub fn is_live(self) -> bool {
        !matches!(self, Phase::Idle | Phase::Ended)
    }
}

/// How far the browser's media for the call has come. An offer or answer is asked for
/// only on the step from `Opening` to `Describing`, which only
/// [`Input::MediaOpened`](super::Input::MediaOpened)
/// takes: by then the microphone track is on the peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Media {
    Opening,
    Describing,
    Described,
    Closed,
}

/// What the router knows of our side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Server {
    /// Nothing sent yet.
    Unaware,
    /// `POST /api/calls` or `/accept` is in flight.
    Asked,
    /// The router placed or accepted the call.
    Knows,
}

/// Meta's SDP answer to our offer (outgoing calls only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Answer {
    Awaited,
    Applying { received_at: Millis },
    Applied,
}

/// Who is on the other end, as far as the dialer knows.
#[derive(Debug, Clone, PartialEq)]
pub enum Peer {
    /// An outgoing call: what the agent dialled.
    Dialled(UserRef),
    /// An incoming call: who Meta says is calling.
    Caller(User),
}

impl Peer {
    pub fn label(&self) -> String {
        match self {
            Peer::Dialled(UserRef::Phone(number)) => format!("+{number}"),
            Peer::Dialled(UserRef::Bsuid(id)) => id.as_str().to_owned(),
            Peer::Caller(user) => display::who_line(user),
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The agent hung up (or gave up before the call got anywhere).
    HungUp,
    /// The router reported the end (the customer hung up, Meta ended it, nobody answered).
    Ended {
        status: EndStatus,
        duration: Option<u64>,
    },
    /// The customer declined the call.
    Declined,
    /// Another agent answered this incoming call first.
    TakenBy(Option<String>),
    /// Something failed; the error says what.
    Failed,
}

impl Outcome {
    /// One line for the call panel.
    pub fn summary(&self) -> String {
        match self {
            Outcome::HungUp => "Call ended.".to_owned(),
            Outcome::Ended {
                status: EndStatus::Completed,
                duration: Some(secs),
            } => format!("Call ended after {}.", display::duration(*secs)),
            Outcome::Ended {
                status: EndStatus::Completed,
                duration: None,
            } => "Call ended.".to_owned(),
            Outcome::Ended {
                status: EndStatus::Missed,
                ..
            } => "No answer.".to_owned(),
            Outcome::Ended {
                status: EndStatus::Rejected,
                ..
            }
            | Outcome::Declined => "The call was declined.".to_owned(),
            Outcome::Ended {
                status: EndStatus::Failed,
                ..
            }
            | Outcome::Failed => "The call failed.".to_owned(),
            Outcome::TakenBy(Some(agent)) => format!("{agent} answered this call."),
            Outcome::TakenBy(None) => "Another agent answered this call.".to_owned(),
        }
    }
}

/// The last call's timings, for the browser tests and the benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// From the "call" click to `POST /api/calls` leaving.
    pub click_to_offer_sent_ms: Option<f64>,
    /// From `call.answered` arriving to Meta's answer applied.
    pub answered_to_remote_applied_ms: Option<f64>,
    /// From the "answer" click to `POST /api/calls/{id}/accept` leaving.
    pub click_to_answer_sent_ms: Option<f64>,
}

/// The current (or last) call.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) attempt: Attempt,
    pub(super) direction: Direction,
    pub(super) peer: Peer,
    pub(super) id: Option<String>,
    pub(super) phase: Phase,
    pub(super) media: Media,
    pub(super) server: Server,
    pub(super) answer: Answer,
    /// Incoming: Meta's offer, kept so the call can ring again if the agent backs out.
    pub(super) offer: Option<String>,
    pub(super) muted: bool,
    pub(super) started_at: Millis,
    pub(super) connected_at: Option<Millis>,
    pub(super) outcome: Option<Outcome>,
}

impl Call {
    pub(super) fn is_live(&self) -> bool {
        self.phase.is_live()
    }

    pub(super) fn is(&self, call_id: &str) -> bool {
        self.id.as_deref() == Some(call_id)
    }

    /// An outgoing call whose id the router has not told us yet.
    pub(super) fn awaits_id(&self) -> bool {
        self.direction == Direction::Outgoing
            && self.id.is_none()
            && self.server == Server::Asked
            && self.is_live()
    }
}

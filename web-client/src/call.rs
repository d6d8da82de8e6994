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

use switchboard_protocol::api::{CallRecord, CallState, Direction};
use switchboard_protocol::ws::{CallStatus, EndStatus, ServerEvent};
use switchboard_protocol::{User, UserRef};

use crate::display;
use crate::failure::Failure;

/// Milliseconds on the page's monotonic clock (`performance.now()`).
pub type Millis = f64;

/// One try at a call. Work the browser does for a call reports back with its attempt, so
/// the result of something started for an earlier call is recognised and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempt(u32);

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
/// only on the step from `Opening` to `Describing`, which only [`Input::MediaOpened`]
/// takes: by then the microphone track is on the peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Opening,
    Describing,
    Described,
    Closed,
}

/// What the router knows of our side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// Nothing sent yet.
    Unaware,
    /// `POST /api/calls` or `/accept` is in flight.
    Asked,
    /// The router placed or accepted the call.
    Knows,
}

/// Meta's SDP answer to our offer (outgoing calls only).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
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
            Peer::Dialled(UserRef::Bsuid(id)) => id.clone(),
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

/// The browser work the state machine asks for. Each carries what it needs; results come
/// back as [`Input`]s carrying the same [`Attempt`].
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Open the microphone, create the peer connection with the ICE servers from
    /// `/api/config`, and add the microphone track. Reports [`Input::MediaOpened`] or
    /// [`Input::MediaFailed`].
    OpenMedia { attempt: Attempt },
    /// Create an offer, set it as the local description, wait for ICE gathering (or its
    /// timeout) and report [`Input::LocalDescription`] with `localDescription.sdp`.
    CreateOffer { attempt: Attempt },
    /// Apply Meta's offer, then as for `CreateOffer` with an answer.
    CreateAnswer { attempt: Attempt, offer: String },
    /// Apply Meta's answer; reports [`Input::RemoteApplied`].
    ApplyAnswer { attempt: Attempt, answer: String },
    /// `POST /api/calls`; reports [`Input::Placed`].
    PostCall {
        attempt: Attempt,
        to: String,
        sdp: String,
    },
    /// `POST /api/calls/{id}/accept`; reports [`Input::Accepted`].
    PostAccept {
        attempt: Attempt,
        call_id: String,
        sdp: String,
    },
    /// `POST /api/calls/{id}/reject`.
    PostReject { call_id: String },
    /// `POST /api/calls/{id}/terminate`.
    PostTerminate { call_id: String },
    /// Enable or disable the microphone track.
    SetMuted { attempt: Attempt, muted: bool },
    /// Stop the tracks, close the peer connection, drop its handlers.
    CloseMedia { attempt: Attempt },
    /// `GET /api/calls/{id}`, reported as [`Input::Checked`]: after the WebSocket comes
    /// back, a call may have ended unseen.
    CheckCall { call_id: String },
    /// Reload the call log.
    RefreshLog,
    /// Report [`Input::DismissNotice`] for this call after a few seconds.
    ExpireNotice { call_id: String },
}

/// Everything that can happen to the dialer.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The page knows who the agent is (sign-in, or the socket's `hello`).
    SignedIn {
        agent: String,
    },
    /// The agent clicked "call".
    Place {
        to: String,
    },
    /// The agent answered a ringing call.
    Accept {
        call_id: String,
    },
    /// The agent declined a ringing call.
    Reject {
        call_id: String,
    },
    HangUp,
    ToggleMute,
    /// The "taken" or "missed" banner has been seen.
    DismissNotice {
        call_id: String,
    },
    DismissError,
    /// A failure outside the call itself (a permission request, the call log).
    Problem(Failure),
    MediaOpened {
        attempt: Attempt,
    },
    LocalDescription {
        attempt: Attempt,
        sdp: String,
    },
    MediaFailed {
        attempt: Attempt,
        failure: Failure,
    },
    RemoteApplied {
        attempt: Attempt,
    },
    /// ICE failed: no network path for the audio.
    AudioPathFailed {
        attempt: Attempt,
    },
    Placed {
        attempt: Attempt,
        result: Result<String, Failure>,
    },
    Accepted {
        attempt: Attempt,
        result: Result<(), Failure>,
    },
    Checked(CallRecord),
    /// The WebSocket (re)connected: whatever happened while it was down is looked up.
    SocketOpened,
    Server(ServerEvent),
}

/// A call ringing for every agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring {
    pub call_id: String,
    pub user: User,
    offer: String,
}

/// What the incoming banner says after a call stops ringing.
#[derive(Debug, Clone, PartialEq)]
enum Notice {
    Taken {
        call_id: String,
        user: User,
        by: Option<String>,
    },
    Gone {
        call_id: String,
        user: User,
    },
}

impl Notice {
    fn call_id(&self) -> &str {
        match self {
            Notice::Taken { call_id, .. } | Notice::Gone { call_id, .. } => call_id,
        }
    }
}

/// `#incoming[data-state]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BannerState {
    Ringing,
    Claimed,
    Ended,
}

impl BannerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BannerState::Ringing => "ringing",
            BannerState::Claimed => "claimed",
            BannerState::Ended => "ended",
        }
    }
}

/// The incoming-call banner as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Banner<'a> {
    pub call_id: &'a str,
    pub user: &'a User,
    pub state: BannerState,
    /// Who answered, once claimed (`None` if the name is not known).
    pub taken_by: Option<&'a str>,
    /// Whether the agent can answer now (not while on another call).
    pub can_accept: bool,
    /// How many more calls are ringing behind this one.
    pub waiting: usize,
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
struct Call {
    attempt: Attempt,
    direction: Direction,
    peer: Peer,
    id: Option<String>,
    phase: Phase,
    media: Media,
    server: Server,
    answer: Answer,
    /// Incoming: Meta's offer, kept so the call can ring again if the agent backs out.
    offer: Option<String>,
    muted: bool,
    started_at: Millis,
    connected_at: Option<Millis>,
    outcome: Option<Outcome>,
}

impl Call {
    fn is_live(&self) -> bool {
        self.phase.is_live()
    }

    fn is(&self, call_id: &str) -> bool {
        self.id.as_deref() == Some(call_id)
    }

    /// An outgoing call whose id the router has not told us yet.
    fn awaits_id(&self) -> bool {
        self.direction == Direction::Outgoing
            && self.id.is_none()
            && self.server == Server::Asked
            && self.is_live()
    }
}

/// Most events held for a call whose id is not known yet.
const EARLY_LIMIT: usize = 32;

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

    fn place(&mut self, to: &str, now: Millis) -> Vec<Effect> {
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

    fn accept(&mut self, call_id: &str, now: Millis) -> Vec<Effect> {
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

    fn reject(&mut self, call_id: &str) -> Vec<Effect> {
        let Some(index) = self.rings.iter().position(|r| r.call_id == call_id) else {
            return Vec::new();
        };
        self.rings.remove(index);
        vec![Effect::PostReject {
            call_id: call_id.to_owned(),
        }]
    }

    fn toggle_mute(&mut self) -> Vec<Effect> {
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

    fn media_opened(&mut self, attempt: Attempt) -> Vec<Effect> {
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

    fn local_description(&mut self, attempt: Attempt, sdp: String, now: Millis) -> Vec<Effect> {
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

    fn remote_applied(&mut self, attempt: Attempt, now: Millis) {
        let Some(call) = self.current(attempt) else {
            return;
        };
        if let Answer::Applying { received_at } = call.answer {
            call.answer = Answer::Applied;
            self.timings.answered_to_remote_applied_ms = Some(now - received_at);
        }
    }

    fn placed(&mut self, attempt: Attempt, result: Result<String, Failure>) -> Vec<Effect> {
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

    fn accepted(
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

    /// Ends the current call here. `tell_server`: the end is ours (hang-up, a local
    /// failure), so the router and Meta must hear of it; otherwise it came from them.
    fn finish(&mut self, outcome: Outcome, tell_server: bool) -> Vec<Effect> {
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

    fn checked(&mut self, record: CallRecord, now: Millis) -> Vec<Effect> {
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

    fn socket_opened(&self) -> Vec<Effect> {
        let current = self.live().and_then(|c| c.id.clone());
        current
            .into_iter()
            .chain(self.rings.iter().map(|r| r.call_id.clone()))
            .map(|call_id| Effect::CheckCall { call_id })
            .chain(std::iter::once(Effect::RefreshLog))
            .collect()
    }

    fn on_event(&mut self, event: ServerEvent, now: Millis) -> Vec<Effect> {
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
                self.ring(call_id, user, sdp);
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
        error: Option<&switchboard_protocol::ws::CallError>,
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

    fn expire_notice(&self) -> Vec<Effect> {
        self.notice
            .as_ref()
            .map(|n| Effect::ExpireNotice {
                call_id: n.call_id().to_owned(),
            })
            .into_iter()
            .collect()
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

    pub fn banner(&self) -> Option<Banner<'_>> {
        let can_accept = self.live().is_none();
        if let Some(ring) = self.rings.first() {
            return Some(Banner {
                call_id: &ring.call_id,
                user: &ring.user,
                state: BannerState::Ringing,
                taken_by: None,
                can_accept,
                waiting: self.rings.len() - 1,
            });
        }
        self.notice.as_ref().map(|notice| match notice {
            Notice::Taken { call_id, user, by } => Banner {
                call_id,
                user,
                state: BannerState::Claimed,
                taken_by: by.as_deref(),
                can_accept: false,
                waiting: 0,
            },
            Notice::Gone { call_id, user } => Banner {
                call_id,
                user,
                state: BannerState::Ended,
                taken_by: None,
                can_accept: false,
                waiting: 0,
            },
        })
    }
}

fn caller(peer: &Peer) -> User {
    match peer {
        Peer::Caller(user) => user.clone(),
        Peer::Dialled(target) => User {
            user_id: target.as_str().to_owned(),
            ..User::default()
        },
    }
}

/// The winner's name from the router's `claimed` refusal ("this call was taken by ravi").
fn taken_by(failure: &Failure) -> Option<String> {
    failure
        .message
        .rsplit_once(" by ")
        .map(|(_, name)| name.trim_end_matches('.').trim().to_owned())
        .filter(|name| !name.is_empty())
}

fn event_call_id(event: &ServerEvent) -> Option<&str> {
    match event {
        ServerEvent::CallIncoming { call_id, .. }
        | ServerEvent::CallAnswered { call_id, .. }
        | ServerEvent::CallStatus { call_id, .. }
        | ServerEvent::CallEnded { call_id, .. }
        | ServerEvent::CallClaimed { call_id, .. } => Some(call_id),
        ServerEvent::PermissionUpdated { .. } | ServerEvent::Hello { .. } => None,
    }
}

#[cfg(test)]
mod tests;

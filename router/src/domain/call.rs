//! A call's state and how it changes, as pure functions: webhooks and API commands go in,
//! the new state and the events to push come out. Tolerant of webhooks that arrive twice
//! or out of order: a call never moves backwards and an ended call stays ended.

use serde::{Deserialize, Serialize};
use switchboard_protocol::api::{CallRecord, CallState, Direction};
use switchboard_protocol::ws::{CallError, CallStatus, EndStatus, ServerEvent};
use switchboard_protocol::{CallId, User};

use super::push::{Audience, Push};

/// Everything the router knows about one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// Meta's call id (`wacid.…`), or `local:<uuid>` while Meta has not yet named it.
    pub id: CallId,
    pub direction: Direction,
    pub user: User,
    /// The business number the user called (incoming calls).
    #[serde(default)]
    pub business_number: Option<String>,
    pub state: CallState,
    pub agent: Option<String>,
    pub created_at: i64,
    pub connected_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub duration: Option<u64>,
    pub end_status: Option<EndStatus>,
    pub error: Option<CallError>,
    /// The last call status Meta reported (outgoing calls).
    pub status: Option<CallStatus>,
    /// Meta's SDP offer (incoming) or answer (outgoing).
    pub meta_sdp: Option<String>,
    /// Our SDP answer to an incoming call: `accept` must repeat what `pre_accept` sent.
    pub our_answer: Option<String>,
}

pub const LOCAL_PREFIX: &str = "local:";

impl Call {
    /// An outgoing call before Meta has given it an id.
    pub fn dialing(local_id: CallId, user: User, agent: String, now: i64) -> Self {
        Self {
            user,
            agent: Some(agent),
            ..Self::first_seen(local_id, Direction::Outgoing, now)
        }
    }

    /// A call as first known: an outgoing one dialing, an incoming one ringing.
    fn first_seen(id: CallId, direction: Direction, created_at: i64) -> Self {
        Self {
            id,
            direction,
            user: User::default(),
            business_number: None,
            state: match direction {
                Direction::Incoming => CallState::Ringing,
                Direction::Outgoing => CallState::Dialing,
            },
            agent: None,
            created_at,
            connected_at: None,
            ended_at: None,
            duration: None,
            end_status: None,
            error: None,
            status: None,
            meta_sdp: None,
            our_answer: None,
        }
    }

    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }

    pub fn record(&self) -> CallRecord {
        CallRecord {
            call_id: self.id.clone(),
            direction: self.direction,
            user: self.user.clone(),
            state: self.state,
            agent: self.agent.clone(),
            created_at: self.created_at,
            connected_at: self.connected_at,
            ended_at: self.ended_at,
            duration: self.duration,
            end_status: self.end_status,
            error: self.error.clone(),
        }
    }

    /// Adds what a newer sighting of the user tells (a BSUID, a number, a name).
    pub fn learn_user(&mut self, seen: &User) {
        merge_user(&mut self.user, seen);
    }

    fn audience(&self) -> Audience {
        match (&self.direction, &self.agent) {
            (Direction::Outgoing, Some(agent)) => Audience::Agent(agent.clone()),
            _ => Audience::Everyone,
        }
    }

    fn push(&self, event: ServerEvent) -> Push {
        Push {
            audience: self.audience(),
            event,
        }
    }

    /// The events that tell a (re)connecting agent where this live call stands.
    pub fn replay_for(&self, agent: &str) -> Vec<ServerEvent> {
        if !self.is_live() {
            return Vec::new();
        }
        let mine = self.agent.as_deref() == Some(agent);
        match self.direction {
            Direction::Incoming if self.agent.is_none() => self
                .meta_sdp
                .clone()
                .map(|sdp| ServerEvent::CallIncoming {
                    call_id: self.id.clone(),
                    user: self.user.clone(),
                    to: self.business_number.clone().unwrap_or_default(),
                    sdp,
                })
                .into_iter()
                .collect(),
            Direction::Incoming if !mine => vec![ServerEvent::CallClaimed {
                call_id: self.id.clone(),
                agent: self.agent.clone().unwrap_or_default(),
            }],
            Direction::Incoming => vec![ServerEvent::CallStatus {
                call_id: self.id.clone(),
                status: CallStatus::Accepted,
            }],
            Direction::Outgoing if mine => {
                let mut events = Vec::new();
                if let Some(sdp) = &self.meta_sdp {
                    events.push(ServerEvent::CallAnswered {
                        call_id: self.id.clone(),
                        sdp: sdp.clone(),
                    });
                }
                if let Some(status) = self.status {
                    events.push(ServerEvent::CallStatus {
                        call_id: self.id.clone(),
                        status,
                    });
                }
                events
            }
            Direction::Outgoing => Vec::new(),
        }
    }

    pub fn ended_event(&self) -> ServerEvent {
        ServerEvent::CallEnded {
            call_id: self.id.clone(),
            status: self.end_status.unwrap_or(EndStatus::Failed),
            duration: self.duration,
            error: self.error.clone(),
        }
    }
}

/// Fills in what `into` lacks from `seen`; a username or name may change, so the newer wins.
pub fn merge_user(into: &mut User, seen: &User) {
    if seen.user_id.is_some() && into.user_id.is_none() {
        into.user_id = seen.user_id.clone();
    }
    if seen.wa_id.is_some() && into.wa_id.is_none() {
        into.wa_id = seen.wa_id.clone();
    }
    if seen.name.is_some() {
        into.name = seen.name.clone();
    }
    if seen.username.is_some() {
        into.username = seen.username.clone();
    }
}

/// A call webhook, reduced to what changes state.
#[derive(Debug, Clone, PartialEq)]
pub enum CallUpdate {
    /// A user is calling, with Meta's SDP offer.
    IncomingConnect {
        user: User,
        business_number: Option<String>,
        offer: String,
        at: i64,
    },
    /// Meta's SDP answer to our offer.
    OutgoingConnect { user: User, answer: String, at: i64 },
    Status {
        user: User,
        direction: Direction,
        status: CallStatus,
        at: i64,
    },
    Terminate {
        user: User,
        direction: Direction,
        /// Meta's `COMPLETED` (true) or `FAILED` (false).
        completed: bool,
        start: Option<i64>,
        end: Option<i64>,
        duration: Option<u64>,
        error: Option<CallError>,
        at: i64,
    },
}

impl CallUpdate {
    fn user(&self) -> &User {
        match self {
            CallUpdate::IncomingConnect { user, .. }
            | CallUpdate::OutgoingConnect { user, .. }
            | CallUpdate::Status { user, .. }
            | CallUpdate::Terminate { user, .. } => user,
        }
    }

    fn direction(&self) -> Direction {
        match self {
            CallUpdate::IncomingConnect { .. } => Direction::Incoming,
            CallUpdate::OutgoingConnect { .. } => Direction::Outgoing,
            CallUpdate::Status { direction, .. } | CallUpdate::Terminate { direction, .. } => {
                *direction
            }
        }
    }

    fn at(&self) -> i64 {
        match self {
            CallUpdate::IncomingConnect { at, .. }
            | CallUpdate::OutgoingConnect { at, .. }
            | CallUpdate::Status { at, .. }
            | CallUpdate::Terminate { at, .. } => *at,
        }
    }
}

/// Applies a webhook to the call it names (`None` if the router has not seen the call
/// yet). Returns the new state (unchanged if the webhook changed nothing) and the pushes.
pub fn apply(existing: Option<Call>, id: &CallId, update: &CallUpdate) -> (Call, Vec<Push>) {
    let mut call =
        existing.unwrap_or_else(|| Call::first_seen(id.clone(), update.direction(), update.at()));
    call.learn_user(update.user());
    let mut pushes = Vec::new();
    match update {
        CallUpdate::IncomingConnect {
            business_number,
            offer,
            ..
        } => {
            if call.is_live() && call.meta_sdp.is_none() {
                call.meta_sdp = Some(offer.clone());
                call.business_number.clone_from(business_number);
                pushes.push(call.push(ServerEvent::CallIncoming {
                    call_id: call.id.clone(),
                    user: call.user.clone(),
                    to: business_number.clone().unwrap_or_default(),
                    sdp: offer.clone(),
                }));
            }
        }
        CallUpdate::OutgoingConnect { answer, .. } => {
            if call.is_live() && call.meta_sdp.is_none() {
                call.meta_sdp = Some(answer.clone());
                if call.state == CallState::Dialing {
                    call.state = CallState::Ringing;
                }
                pushes.push(call.push(ServerEvent::CallAnswered {
                    call_id: call.id.clone(),
                    sdp: answer.clone(),
                }));
            }
        }
        CallUpdate::Status { status, at, .. } => {
            pushes.extend(apply_status(&mut call, *status, *at))
        }
        CallUpdate::Terminate {
            completed,
            start,
            end,
            duration,
            error,
            at,
            ..
        } => {
            let was_live = call.is_live();
            // Meta's figures are the truth even when we ended the call ourselves first.
            if let Some(start) = start {
                call.connected_at.get_or_insert(*start);
            }
            call.ended_at = Some(end.unwrap_or(*at));
            if duration.is_some() {
                call.duration = *duration;
            }
            if error.is_some() {
                call.error.clone_from(error);
            }
            if was_live {
                call.state = CallState::Ended;
                call.end_status = Some(end_status(&call, *completed));
                if call.duration.is_none() {
                    call.duration = computed_duration(&call);
                }
                pushes.push(Push {
                    // Everyone: an unanswered incoming call stops ringing on every screen.
                    audience: match call.direction {
                        Direction::Incoming => Audience::Everyone,
                        Direction::Outgoing => call.audience(),
                    },
                    event: call.ended_event(),
                });
            }
        }
    }
    (call, pushes)
}

/// Meta's status of an outgoing call; a status never moves a call backwards.
fn apply_status(call: &mut Call, status: CallStatus, at: i64) -> Option<Push> {
    if !call.is_live() || !status_moves_forward(call.status, status) {
        return None;
    }
    call.status = Some(status);
    match status {
        CallStatus::Ringing => {
            if call.state == CallState::Dialing {
                call.state = CallState::Ringing;
            }
        }
        CallStatus::Accepted => {
            call.state = CallState::Connected;
            call.connected_at.get_or_insert(at);
        }
        CallStatus::Rejected => call.end_status = Some(EndStatus::Rejected),
    }
    Some(call.push(ServerEvent::CallStatus {
        call_id: call.id.clone(),
        status,
    }))
}

fn status_moves_forward(current: Option<CallStatus>, next: CallStatus) -> bool {
    let rank = |s: CallStatus| match s {
        CallStatus::Ringing => 0,
        CallStatus::Accepted | CallStatus::Rejected => 1,
    };
    current.is_none_or(|current| rank(next) > rank(current))
}

fn end_status(call: &Call, completed: bool) -> EndStatus {
    if call.end_status == Some(EndStatus::Rejected) {
        return EndStatus::Rejected;
    }
    let connected = call.connected_at.is_some() || call.state == CallState::Connected;
    match (completed, connected, call.direction) {
        (true, true, _) => EndStatus::Completed,
        (_, false, Direction::Incoming) if call.error.is_none() => EndStatus::Missed,
        (true, false, Direction::Outgoing) => EndStatus::Missed,
        _ => EndStatus::Failed,
    }
}

fn computed_duration(call: &Call) -> Option<u64> {
    let start = call.connected_at?;
    let end = call.ended_at?;
    // Times come from signed webhooks, but nothing stops them being absurd.
    u64::try_from(end.checked_sub(start)?).ok()
}

/// Calls the router hears nothing more about (a crash between placing a call and Meta's
/// answer, a lost terminate webhook) must not stay live for ever: a live call blocks new
/// calls to its user and rings again on every reconnect.
const LOCAL_PLACEHOLDER_LIMIT: i64 = 120;
const UNANSWERED_LIMIT: i64 = 10 * 60;
const CONNECTED_LIMIT: i64 = 12 * 3600;

/// How a live call ends if it has been silent past its state's limit, else `None`.
pub fn stale(call: &Call, now: i64) -> Option<(EndStatus, &'static str)> {
    if !call.is_live() {
        return None;
    }
    let age = now.saturating_sub(call.created_at);
    if call.id.starts_with(LOCAL_PREFIX) {
        return (age > LOCAL_PLACEHOLDER_LIMIT).then_some((
            EndStatus::Failed,
            "the router stopped before Meta answered the call request",
        ));
    }
    match call.state {
        CallState::Connected => {
            let since = now.saturating_sub(call.connected_at.unwrap_or(call.created_at));
            (since > CONNECTED_LIMIT).then_some((
                EndStatus::Completed,
                "no word from Meta about this call for 12 hours",
            ))
        }
        CallState::Ringing if call.direction == Direction::Incoming && call.agent.is_none() => (age
            > UNANSWERED_LIMIT)
            .then_some((EndStatus::Missed, "no word from Meta for 10 minutes")),
        CallState::Dialing | CallState::Ringing | CallState::Accepting => (age > UNANSWERED_LIMIT)
            .then_some((EndStatus::Failed, "no word from Meta for 10 minutes")),
        CallState::Ended => None,
    }
}

/// Why an API command cannot be done in the call's present state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("call {0} was taken by {1}")]
    Claimed(CallId, String),
    #[error("call {0} has already ended")]
    Ended(CallId),
    #[error("call {0} cannot be {1} now")]
    WrongState(CallId, &'static str),
}

/// An agent takes an incoming call: the first one wins.
pub fn claim(call: &mut Call, agent: &str, answer: &str) -> Result<Push, CommandError> {
    let push = take(call, agent, "accepted")?;
    call.our_answer = Some(answer.to_owned());
    Ok(push)
}

/// An agent takes a ringing incoming call to answer or decline it; nobody else can then.
pub fn take(call: &mut Call, agent: &str, doing: &'static str) -> Result<Push, CommandError> {
    if !call.is_live() {
        return Err(CommandError::Ended(call.id.clone()));
    }
    if call.direction != Direction::Incoming {
        return Err(CommandError::WrongState(call.id.clone(), doing));
    }
    match &call.agent {
        Some(owner) if owner != agent => {
            return Err(CommandError::Claimed(call.id.clone(), owner.clone()));
        }
        Some(_) => return Err(CommandError::WrongState(call.id.clone(), "taken twice")),
        None => {}
    }
    call.agent = Some(agent.to_owned());
    call.state = CallState::Accepting;
    Ok(Push {
        audience: Audience::Everyone,
        event: ServerEvent::CallClaimed {
            call_id: call.id.clone(),
            agent: agent.to_owned(),
        },
    })
}

/// Meta accepted our answer: the call is up.
pub fn connected(call: &mut Call, now: i64) {
    if call.is_live() {
        call.state = CallState::Connected;
        call.connected_at.get_or_insert(now);
    }
}

/// The agent's accept failed at Meta: the call rings for others again, if still live.
pub fn release(call: &mut Call, agent: &str) {
    if call.is_live() && call.agent.as_deref() == Some(agent) {
        call.agent = None;
        call.state = CallState::Ringing;
        call.our_answer = None;
    }
}

/// We ended the call (hang-up, reject, or a failed connect). Meta's terminate webhook may
/// follow and fills in its own figures.
pub fn end(call: &mut Call, status: EndStatus, error: Option<CallError>, now: i64) -> Option<Push> {
    if !call.is_live() {
        return None;
    }
    call.state = CallState::Ended;
    call.ended_at = Some(now);
    call.end_status = Some(status);
    call.error = error;
    call.duration = computed_duration(call);
    Some(Push {
        audience: match call.direction {
            Direction::Incoming => Audience::Everyone,
            Direction::Outgoing => call.audience(),
        },
        event: call.ended_event(),
    })
}

#[cfg(test)]
mod tests;

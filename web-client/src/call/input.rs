//! Everything that can happen to the dialer: the agent's clicks, the router's events, and
//! the results of the work asked for in an [`Effect`](super::Effect).

use switchboard_protocol::api::CallRecord;
use switchboard_protocol::ws::ServerEvent;

use super::state::Attempt;
use crate::failure::Failure;

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

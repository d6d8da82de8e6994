//! The work the state machine asks the browser layer to do.

use super::state::Attempt;

/// The browser work the state machine asks for. Each carries what it needs; results come
/// back as [`Input`](super::Input)s carrying the same [`Attempt`].
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Open the microphone, create the peer connection with the ICE servers from
    /// `/api/config`, and add the microphone track. Reports
    /// [`Input::MediaOpened`](super::Input::MediaOpened) or
    /// [`Input::MediaFailed`](super::Input::MediaFailed).
    OpenMedia { attempt: Attempt },
    /// Create an offer, set it as the local description, wait for ICE gathering (or its
    /// timeout) and report [`Input::LocalDescription`](super::Input::LocalDescription) with
    /// `localDescription.sdp`.
    CreateOffer { attempt: Attempt },
    /// Apply Meta's offer, then as for `CreateOffer` with an answer.
    CreateAnswer { attempt: Attempt, offer: String },
    /// Apply Meta's answer; reports [`Input::RemoteApplied`](super::Input::RemoteApplied).
    ApplyAnswer { attempt: Attempt, answer: String },
    /// `POST /api/calls`; reports [`Input::Placed`](super::Input::Placed).
    PostCall {
        attempt: Attempt,
        to: String,
        sdp: String,
    },
    /// `POST /api/calls/{id}/accept`; reports [`Input::Accepted`](super::Input::Accepted).
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
    /// `GET /api/calls/{id}`, reported as [`Input::Checked`](super::Input::Checked): after
    /// the WebSocket comes back, a call may have ended unseen.
    CheckCall { call_id: String },
    /// Reload the call log.
    RefreshLog,
    /// Report [`Input::DismissNotice`](super::Input::DismissNotice) for this call after a
    /// few seconds.
    ExpireNotice { call_id: String },
}

//! Bodies of the router's REST API (DESIGN §5), shared with the dialer.

use serde::{Deserialize, Serialize};

use crate::ws::{CallError, EndStatus};
use crate::{CallId, User};

/// `POST /api/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Login {
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub agent: String,
    pub role: String,
}

/// `POST /api/calls`: `to` is a phone number or a BSUID; `sdp` a complete offer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlaceCall {
    pub to: String,
    pub sdp: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallPlaced {
    pub call_id: CallId,
}

/// `POST /api/calls/{id}/accept`: a complete SDP answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptCall {
    pub sdp: String,
}

/// `POST /api/permissions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestPermission {
    pub to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The business (an agent) called the user.
    Outgoing,
    /// The user called the business.
    Incoming,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Outgoing: sent to Meta, no answer yet.
    Dialing,
    /// Outgoing: the user's phone rings. Incoming: waiting for an agent.
    Ringing,
    /// Incoming: an agent took it; `pre_accept`/`accept` under way.
    Accepting,
    /// Media is up and both sides are on the line.
    Connected,
    Ended,
}

impl CallState {
    pub fn is_live(self) -> bool {
        !matches!(self, CallState::Ended)
    }
}

/// One call as the call log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: CallId,
    pub direction: Direction,
    pub user: User,
    pub state: CallState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_status: Option<EndStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CallError>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallLog {
    pub calls: Vec<CallRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionStatus {
    NoPermission,
    Temporary,
    Permanent,
    /// The user declined or revoked it.
    Rejected,
}

/// `GET /api/permissions/{user}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionState {
    pub user: User,
    pub status: PermissionStatus,
    /// Unix seconds; temporary permissions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// When the next permission request may be sent (Unix seconds), if not now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_request_at: Option<i64>,
    /// Whether a call may be placed now as far as the router knows.
    pub can_call: bool,
}

/// `GET /api/config`: what the dialer needs to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DialerConfig {
    pub agent: String,
    pub ice_servers: Vec<IceServer>,
    /// The business number's id at Meta.
    pub phone_number_id: String,
    /// How long the dialer waits for ICE gathering before sending what it has.
    pub ice_gathering_timeout_ms: u32,
}

/// Shaped like the browser's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Every API error: `{"error": {"code", "message", "meta_code"?, "retry_at"?}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_code: Option<i64>,
    /// For `429`: when to try again (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<i64>,
}

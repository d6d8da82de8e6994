//! wa-sim's control and inspection API (`/sim/...`): what tests and developers send to
//! make the simulated WhatsApp user act, and what they read back about calls, media and
//! the webhooks the simulator delivered.

use serde::{Deserialize, Serialize};

use crate::{Bsuid, CallId, User, WaId};

/// `POST /sim/calls`: the user calls the business. Give `from` (a phone number) for a user
/// with a visible number, or `user_id` and/or `username` for a user Meta shows without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PlaceCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Bsuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// The answer to `POST /sim/calls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedCall {
    pub call_id: CallId,
    pub user: User,
}

/// `POST /sim/users`: creates or updates a simulated user and how they behave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UserSetup {
    /// Phone number; absent for a user who shows only a username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<WaId>,
    /// BSUID; derived from the phone number or username when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Bsuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<PermissionGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_call: Option<OnCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_permission_request: Option<OnPermissionRequest>,
}

/// A simulated user as `GET /sim/users` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimUser {
    pub user: User,
    pub permission: PermissionGrant,
    /// Unix seconds; only for a temporary permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_expires_at: Option<i64>,
    pub on_call: OnCall,
    pub on_permission_request: OnPermissionRequest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionGrant {
    None,
    Temporary,
    Permanent,
}

/// What the user does when the business calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCall {
    Answer,
    Reject,
    NoAnswer,
}

/// What the user does with a call-permission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPermissionRequest {
    Accept,
    AcceptPermanent,
    Reject,
    Ignore,
}

/// One call as `GET /sim/calls` and `GET /sim/calls/{id}` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimCall {
    pub call_id: CallId,
    /// `USER_INITIATED` or `BUSINESS_INITIATED`, as in Meta's webhooks.
    pub direction: String,
    pub user: User,
    pub state: CallState,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<i64>,
    /// Why it ended, e.g. `business_terminated`, `media_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// `COMPLETED` or `FAILED`, as sent in the `terminate` webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminate_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    pub media: MediaReport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Business-initiated: the user's phone rings. User-initiated: the offer is out.
    Ringing,
    /// User-initiated: the business sent `pre_accept`.
    PreAccepted,
    Accepted,
    Ended,
}

/// What a WebRTC peer sent and received, measured on RTP packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MediaReport {
    /// The peer connection's state: `new`, `connecting`, `connected`, `failed`, `closed`.
    pub connection_state: String,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    /// Received packets judged to carry sound rather than silence or comfort noise.
    pub audible_packets_received: u64,
    /// Unix milliseconds of the first and the latest packet received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_packet_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_packet_at_ms: Option<i64>,
    /// The loudest level seen in the `ssrc-audio-level` header extension, in -dBov
    /// (0 is loudest, 127 silence); absent when the sender did not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudest_audio_level_dbov: Option<u8>,
}

/// One webhook delivery as `GET /sim/webhooks` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub id: u64,
    /// What it carries, as `kind:detail` (DESIGN §3), e.g. `call:connect`.
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    pub signature: String,
    pub body: serde_json::Value,
    pub attempts: Vec<WebhookAttempt>,
    /// True once an attempt was answered `200`.
    pub delivered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The HTTP status, absent when the request failed before one arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The body of the simulator's own control-API errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimError {
    pub error: SimErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimErrorBody {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_are_written_in_snake_case() {
        let setup: UserSetup = serde_json::from_str(
            r#"{"username":"@pablo","permission":"permanent","on_call":"no_answer","on_permission_request":"accept_permanent"}"#,
        )
        .unwrap();
        assert_eq!(setup.on_call, Some(OnCall::NoAnswer));
        assert_eq!(setup.permission, Some(PermissionGrant::Permanent));
        assert_eq!(
            serde_json::to_value(CallState::PreAccepted).unwrap(),
            "pre_accepted"
        );
        let placed: PlaceCall = serde_json::from_str(r#"{"from":"12125550100"}"#).unwrap();
        assert!(placed.user_id.is_none());
    }
}

//! Router → dialer events over WebSocket (DESIGN §6): JSON text frames tagged by `type`.

use serde::{Deserialize, Serialize};

use crate::{CallId, User};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerEvent {
    /// A user is calling (Meta's user-initiated `connect`, carrying its SDP offer).
    #[serde(rename = "call.incoming")]
    CallIncoming {
        call_id: CallId,
        user: User,
        /// The business number called.
        to: String,
        sdp: String,
    },
    /// Meta's SDP answer to an agent's outgoing call (business-initiated `connect`).
    #[serde(rename = "call.answered")]
    CallAnswered { call_id: CallId, sdp: String },
    #[serde(rename = "call.status")]
    CallStatus { call_id: CallId, status: CallStatus },
    #[serde(rename = "call.ended")]
    CallEnded {
        call_id: CallId,
        status: EndStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<CallError>,
    },
    /// Another agent accepted the incoming call.
    #[serde(rename = "call.claimed")]
    CallClaimed { call_id: CallId, agent: String },
    #[serde(rename = "permission.updated")]
    PermissionUpdated {
        user: User,
        response: PermissionResponse,
        permanent: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
    },
    /// Sent once after connecting: who the server thinks this socket belongs to.
    #[serde(rename = "hello")]
    Hello { agent: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    Ringing,
    Accepted,
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndStatus {
    /// The call was connected and ended normally.
    Completed,
    /// It ended without connecting, or with an error.
    Failed,
    /// The user or an agent declined it.
    Rejected,
    /// Nobody answered.
    Missed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionResponse {
    Accept,
    Reject,
}

/// Why a call failed, with Meta's code when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_code: Option<i64>,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_by_type_with_dotted_names() {
        let event = ServerEvent::CallEnded {
            call_id: "wacid.1".into(),
            status: EndStatus::Failed,
            duration: None,
            error: Some(CallError {
                meta_code: Some(138021),
                message: "no media".into(),
            }),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "call.ended");
        assert_eq!(json["status"], "failed");
        assert_eq!(json["error"]["meta_code"], 138021);
        assert!(json.get("duration").is_none());
        let back: ServerEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}

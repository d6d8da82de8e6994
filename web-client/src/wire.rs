//! Reading the router's WebSocket events into [`ServerEvent`] cheaply.
//!
//! On the wire an event is internally tagged (`{"type": "call.ended", "call_id": …}`).
//! serde reads internally tagged enums by first buffering every field into a generic
//! `Content` tree and then reading that tree again, which doubles the decoding code of
//! every variant: in the dialer's bundle that alone cost about 50 KB of wasm. The page
//! instead moves the tag to a wrapper key (`{"call.ended": {"call_id": …}}`, in the
//! browser layer's `socket::event_from_json`) and decodes that
//! externally tagged form straight into the protocol's own type through the mirror below.
//!
//! The mirror is serde's "remote derive": the compiler checks it against
//! [`ServerEvent`] (every variant and field must exist there with the same type), so it
//! cannot drift from the protocol silently; the tests check it reads what the router's
//! own serialisation writes.

use serde::{Deserialize, Deserializer};
use switchboard_protocol::ws::{CallError, CallStatus, EndStatus, PermissionResponse, ServerEvent};
use switchboard_protocol::{CallId, User};

#[derive(Deserialize)]
#[serde(remote = "ServerEvent")]
enum ServerEventMirror {
    #[serde(rename = "call.incoming")]
    CallIncoming {
        call_id: CallId,
        user: User,
        to: String,
        sdp: String,
    },
    #[serde(rename = "call.answered")]
    CallAnswered { call_id: CallId, sdp: String },
    #[serde(rename = "call.status")]
    CallStatus { call_id: CallId, status: CallStatus },
    #[serde(rename = "call.ended")]
    CallEnded {
        call_id: CallId,
        status: EndStatus,
        #[serde(default)]
        duration: Option<u64>,
        #[serde(default)]
        error: Option<CallError>,
    },
    #[serde(rename = "call.claimed")]
    CallClaimed { call_id: CallId, agent: String },
    #[serde(rename = "permission.updated")]
    PermissionUpdated {
        user: User,
        response: PermissionResponse,
        permanent: bool,
        #[serde(default)]
        expires_at: Option<i64>,
    },
    #[serde(rename = "hello")]
    Hello { agent: String },
}

/// A [`ServerEvent`] read from its externally tagged form.
pub struct External(pub ServerEvent);

impl<'de> Deserialize<'de> for External {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ServerEventMirror::deserialize(deserializer).map(External)
    }
}

/// The tag every event carries on the wire.
pub const TAG: &str = "type";

#[cfg(test)]
mod tests {
    use super::*;

    /// What the page does to each frame (on the browser's objects) before decoding it.
    fn to_external(mut event: serde_json::Value) -> Option<serde_json::Value> {
        let tag = event.as_object_mut()?.remove(TAG)?;
        let mut wrapper = serde_json::Map::new();
        wrapper.insert(tag.as_str()?.to_owned(), event);
        Some(serde_json::Value::Object(wrapper))
    }

    fn every_kind_of_event() -> Vec<ServerEvent> {
        let user = User {
            user_id: Some("US.1".into()),
            wa_id: Some("12125550100".into()),
            name: Some("Asha Verma".into()),
            username: None,
        };
        vec![
            ServerEvent::CallIncoming {
                call_id: "wacid.1".into(),
                user: user.clone(),
                to: "15550783881".into(),
                sdp: "v=0".into(),
            },
            ServerEvent::CallAnswered {
                call_id: "wacid.2".into(),
                sdp: "v=0".into(),
            },
            ServerEvent::CallStatus {
                call_id: "wacid.2".into(),
                status: CallStatus::Ringing,
            },
            ServerEvent::CallEnded {
                call_id: "wacid.2".into(),
                status: EndStatus::Failed,
                duration: Some(20),
                error: Some(CallError {
                    meta_code: Some(138021),
                    message: "no media".into(),
                }),
            },
            ServerEvent::CallEnded {
                call_id: "wacid.3".into(),
                status: EndStatus::Missed,
                duration: None,
                error: None,
            },
            ServerEvent::CallClaimed {
                call_id: "wacid.1".into(),
                agent: "ravi".into(),
            },
            ServerEvent::PermissionUpdated {
                user,
                response: PermissionResponse::Accept,
                permanent: false,
                expires_at: Some(1_800_000_000),
            },
            ServerEvent::Hello {
                agent: "asha".into(),
            },
        ]
    }

    /// Every variant, matched without a wildcard: a new event in the protocol stops this
    /// from compiling until the mirror (and the list above) learns it.
    fn kind(event: &ServerEvent) -> &'static str {
        match event {
            ServerEvent::CallIncoming { .. } => "call.incoming",
            ServerEvent::CallAnswered { .. } => "call.answered",
            ServerEvent::CallStatus { .. } => "call.status",
            ServerEvent::CallEnded { .. } => "call.ended",
            ServerEvent::CallClaimed { .. } => "call.claimed",
            ServerEvent::PermissionUpdated { .. } => "permission.updated",
            ServerEvent::Hello { .. } => "hello",
        }
    }

    #[test]
    fn the_mirror_reads_every_event_the_router_writes() {
        let mut kinds: Vec<_> = every_kind_of_event().iter().map(kind).collect();
        kinds.dedup();
        assert_eq!(kinds.len(), 7, "every kind of event is tried");
        for event in every_kind_of_event() {
            let wire = serde_json::to_value(&event).unwrap();
            let external = to_external(wire).unwrap();
            let External(read) = serde_json::from_value(external).unwrap();
            assert_eq!(read, event);
        }
    }

    #[test]
    fn unknown_fields_are_ignored_and_unknown_events_refused() {
        let wire = serde_json::json!({
            "type": "call.claimed", "call_id": "wacid.1", "agent": "ravi", "node": "b"
        });
        let External(read) = serde_json::from_value(to_external(wire).unwrap()).unwrap();
        assert!(matches!(read, ServerEvent::CallClaimed { .. }));
        let unknown = serde_json::json!({ "type": "call.transferred", "call_id": "wacid.1" });
        assert!(serde_json::from_value::<External>(to_external(unknown).unwrap()).is_err());
        assert!(to_external(serde_json::json!({ "call_id": "x" })).is_none());
    }
}

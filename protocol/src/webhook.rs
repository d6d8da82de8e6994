//! Meta's webhook envelope, typed for what calling reads and what wa-sim writes.
//!
//! Tolerant as Meta requires: every user-phone field is optional (users with a username
//! may arrive with a BSUID only), timestamps come as strings or numbers, and unknown fields
//! are ignored. Serialising leaves out what is absent, as Meta does.

use serde::{Deserialize, Deserializer, Serialize};

use crate::{Bsuid, CallId, WaId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub object: String,
    pub entry: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The WhatsApp Business Account id.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<serde_json::Value>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub value: ChangeValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ChangeValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<Status>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<Call>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub display_phone_number: String,
    pub phone_number_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Contact {
    #[serde(default)]
    pub profile: Profile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<WaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Bsuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<Bsuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// One element of `calls[]`: a `connect` or a `terminate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Call {
    pub id: CallId,
    /// The caller's number: the user's, or the business's display number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<WaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<WaId>,
    pub event: String,
    #[serde(
        default,
        deserialize_with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<Timestamp>,
    /// `USER_INITIATED` or `BUSINESS_INITIATED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<crate::graph::SdpSession>,
    /// `COMPLETED` or `FAILED` on `terminate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_time: Option<Timestamp>,
    #[serde(
        default,
        deserialize_with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub end_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_user_id: Option<Bsuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_user_id: Option<Bsuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
}

impl Call {
    pub fn is_user_initiated(&self) -> bool {
        self.direction.as_deref() == Some("USER_INITIATED")
    }
}

/// One element of `statuses[]`: a message status, or a call status on `field=calls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Status {
    pub id: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub status: String,
    #[serde(
        default,
        deserialize_with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<WaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_user_id: Option<Bsuid>,
    #[serde(
        default,
        alias = "parent_recipient_user_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub recipient_parent_user_id: Option<Bsuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
}

/// One element of `messages[]`; only what calling reads is typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Message {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<WaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_user_id: Option<Bsuid>,
    #[serde(
        default,
        deserialize_with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<Timestamp>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<MessageContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<InteractiveReply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<crate::graph::TextBody>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractiveReply {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_permission_reply: Option<PermissionReply>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionReply {
    /// `accept` or `reject`.
    pub response: String,
    #[serde(default)]
    pub is_permanent: bool,
    #[serde(
        default,
        deserialize_with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration_timestamp: Option<Timestamp>,
    /// `user_action` or `automatic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorItem {
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<serde_json::Value>,
}

/// Unix seconds. Meta sends them as strings; some fields and clients use numbers.
/// Serialised as a string, as Meta does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Timestamp(n)),
            Raw::Text(text) => text
                .trim()
                .parse()
                .map(Timestamp)
                .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a Unix time"))),
        }
    }
}

/// A timestamp that is dropped, not fatal, when Meta sends something unreadable.
fn lenient_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Timestamp>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

impl Envelope {
    /// The single change of a one-item envelope, as the router stores each event.
    pub fn first_change(&self) -> Option<&Change> {
        self.entry.first()?.changes.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONNECT: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"calls","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"username":"@pablo"},"user_id":"US.1"}],"calls":[{"id":"wacid.A","to":"15550783881","event":"connect","timestamp":"1753115233","direction":"USER_INITIATED","session":{"sdp":"v=0","sdp_type":"offer"},"from_user_id":"US.1"}]}}]}]}"#;

    #[test]
    fn a_call_from_a_user_without_a_number_parses() {
        let envelope: Envelope = serde_json::from_str(CONNECT).unwrap();
        let value = &envelope.first_change().unwrap().value;
        let call = &value.calls[0];
        assert!(call.from.is_none());
        assert_eq!(call.from_user_id.as_deref(), Some("US.1"));
        assert_eq!(call.timestamp, Some(Timestamp(1753115233)));
        assert!(call.is_user_initiated());
        assert_eq!(
            value.contacts[0].profile.username.as_deref(),
            Some("@pablo")
        );
    }

    #[test]
    fn timestamps_are_read_as_strings_or_numbers_and_written_as_strings() {
        let reply: PermissionReply = serde_json::from_str(
            r#"{"response":"accept","is_permanent":false,"expiration_timestamp":1768550400}"#,
        )
        .unwrap();
        assert_eq!(reply.expiration_timestamp, Some(Timestamp(1768550400)));
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json["expiration_timestamp"], "1768550400");
    }

    #[test]
    fn absent_fields_stay_absent_when_written() {
        let envelope: Envelope = serde_json::from_str(CONNECT).unwrap();
        let json = serde_json::to_string(&envelope).unwrap();
        assert!(!json.contains("\"from\""));
        assert!(!json.contains("statuses"));
        let again: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(again, envelope);
    }
}

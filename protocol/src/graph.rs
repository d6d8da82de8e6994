//! Meta's Graph API, as far as calling needs it: `/calls`, `/messages`, `/settings`,
//! `/call_permissions`, and the error envelope every failure comes in.

use crate::{Bsuid, CallId, WaId};
use serde::{Deserialize, Serialize};

pub const MESSAGING_PRODUCT: &str = "whatsapp";

fn whatsapp() -> String {
    MESSAGING_PRODUCT.to_owned()
}

/// `POST /{version}/{phone_number_id}/calls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRequest {
    #[serde(default = "whatsapp")]
    pub messaging_product: String,
    /// The user's phone number (`connect` only). Wins over `recipient` when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<WaId>,
    /// The user's BSUID (`connect` only), when no phone number is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Bsuid>,
    pub action: CallAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<CallId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SdpSession>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
}

impl CallRequest {
    fn new(action: CallAction) -> Self {
        Self {
            messaging_product: whatsapp(),
            to: None,
            recipient: None,
            action,
            call_id: None,
            session: None,
            biz_opaque_callback_data: None,
        }
    }

    pub fn connect(to: Option<WaId>, recipient: Option<Bsuid>, offer: String) -> Self {
        Self {
            to,
            recipient,
            session: Some(SdpSession {
                sdp_type: SdpType::Offer,
                sdp: offer,
            }),
            ..Self::new(CallAction::Connect)
        }
    }

    /// `pre_accept` or `accept` with the business's SDP answer.
    pub fn answer(action: CallAction, call_id: CallId, answer: String) -> Self {
        Self {
            call_id: Some(call_id),
            session: Some(SdpSession {
                sdp_type: SdpType::Answer,
                sdp: answer,
            }),
            ..Self::new(action)
        }
    }

    /// `reject` or `terminate`.
    pub fn end(action: CallAction, call_id: CallId) -> Self {
        Self {
            call_id: Some(call_id),
            ..Self::new(action)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallAction {
    Connect,
    PreAccept,
    Accept,
    Reject,
    Terminate,
}

impl CallAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CallAction::Connect => "connect",
            CallAction::PreAccept => "pre_accept",
            CallAction::Accept => "accept",
            CallAction::Reject => "reject",
            CallAction::Terminate => "terminate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdpSession {
    pub sdp_type: SdpType,
    pub sdp: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    Offer,
    Answer,
}

/// The answer to `connect`: `{"messaging_product":"whatsapp","calls":[{"id":"wacid.…"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectResponse {
    #[serde(default = "whatsapp")]
    pub messaging_product: String,
    pub calls: Vec<IdRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    pub id: String,
}

/// The answer to the other call actions and to settings updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    pub success: bool,
}

/// `{"error": {...}}`, the shape of every Graph failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: GraphError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphError {
    pub message: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<ErrorData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    pub details: String,
}

/// `POST /{version}/{phone_number_id}/messages`, for call-permission requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRequest {
    #[serde(default = "whatsapp")]
    pub messaging_product: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<WaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Bsuid>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<Interactive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,
}

impl MessageRequest {
    /// The free-form interactive request (inside a customer-service window).
    pub fn permission_request(
        to: Option<WaId>,
        recipient: Option<Bsuid>,
        text: Option<String>,
    ) -> Self {
        Self {
            messaging_product: whatsapp(),
            recipient_type: Some("individual".into()),
            to,
            recipient,
            kind: "interactive".into(),
            interactive: Some(Interactive {
                kind: "call_permission_request".into(),
                action: InteractiveAction {
                    name: "call_permission_request".into(),
                },
                body: text.map(|text| TextBody { text }),
            }),
            template: None,
        }
    }

    /// A template carrying a `call_permission_request` component (works outside the window).
    pub fn permission_template(
        to: Option<WaId>,
        recipient: Option<Bsuid>,
        name: String,
        language: String,
    ) -> Self {
        Self {
            messaging_product: whatsapp(),
            recipient_type: Some("individual".into()),
            to,
            recipient,
            kind: "template".into(),
            interactive: None,
            template: Some(Template {
                name,
                language: Language { code: language },
                components: None,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interactive {
    #[serde(rename = "type")]
    pub kind: String,
    pub action: InteractiveAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<TextBody>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractiveAction {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextBody {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub language: Language,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    pub code: String,
}

/// The answer to a message send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageResponse {
    #[serde(default = "whatsapp")]
    pub messaging_product: String,
    #[serde(default)]
    pub contacts: Vec<MessageContact>,
    pub messages: Vec<IdRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContact {
    pub input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<WaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Bsuid>,
}

/// `GET /{version}/{phone_number_id}/call_permissions?user_wa_id=…` (or `recipient=…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPermissionsResponse {
    #[serde(default = "whatsapp")]
    pub messaging_product: String,
    pub permission: Permission,
    #[serde(default)]
    pub actions: Vec<PermissionAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// `no_permission`, `temporary` or `permanent`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionAction {
    /// `send_call_permission_request` or `start_call`.
    pub action_name: String,
    pub can_perform_action: bool,
    #[serde(default)]
    pub limits: Vec<ActionLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLimit {
    /// ISO 8601 period: `PT24H`, `P7D`.
    pub time_period: String,
    pub max_allowed: u32,
    pub current_usage: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_expiration_time: Option<i64>,
}

/// `GET`/`POST /{version}/{phone_number_id}/settings`: the `calling` part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling: Option<CallingSettings>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CallingSettings {
    /// `ENABLED` or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_icon_visibility: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_permission_status: Option<String>,
    /// Hours, SIP, codecs and whatever Meta adds: kept as they came.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_request_has_metas_shape() {
        let request = CallRequest::connect(Some("12125550100".into()), None, "v=0".into());
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "messaging_product": "whatsapp",
                "to": "12125550100",
                "action": "connect",
                "session": {"sdp_type": "offer", "sdp": "v=0"}
            })
        );
        let pre = CallRequest::answer(CallAction::PreAccept, "wacid.1".into(), "v=0".into());
        let json = serde_json::to_value(&pre).unwrap();
        assert_eq!(json["action"], "pre_accept");
        assert_eq!(json["session"]["sdp_type"], "answer");
    }

    #[test]
    fn metas_error_envelope_parses() {
        let text = r#"{"error":{"message":"(#138006) No approved call permission","type":"OAuthException","code":138006,"error_data":{"messaging_product":"whatsapp","details":"No approved call permission from the recipient"},"fbtrace_id":"A1"}}"#;
        let envelope: ErrorEnvelope = serde_json::from_str(text).unwrap();
        assert_eq!(envelope.error.code, 138006);
        assert_eq!(
            envelope.error.error_data.unwrap().details,
            "No approved call permission from the recipient"
        );
    }
}

//! Turning Graph request bodies into validated domain requests, with Meta's error 100 and
//! a precise `details` for anything missing or malformed.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use switchboard_protocol::graph::{
    CallAction, CallRequest, CallingSettings, MessageRequest, SdpType, MESSAGING_PRODUCT,
};
use switchboard_protocol::UserRef;

use super::error::GraphApiError;
use crate::platform::calls::ConnectRequest;
use crate::platform::messages::OutboundMessage;
use crate::sdp::CheckedSdp;

const OPAQUE_DATA_LIMIT: usize = 512;

/// A validated `POST /calls`.
pub enum CallCommand {
    Connect(ConnectRequest),
    PreAccept {
        call_id: String,
        answer: CheckedSdp,
    },
    Accept {
        call_id: String,
        answer: CheckedSdp,
        biz_opaque_callback_data: Option<String>,
    },
    Reject {
        call_id: String,
    },
    Terminate {
        call_id: String,
    },
}

fn required(name: &str) -> GraphApiError {
    GraphApiError::invalid(format!("The parameter {name} is required."))
}

/// The body as a JSON object with `messaging_product: "whatsapp"`.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, GraphApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        GraphApiError::invalid(format!("The request body is not valid JSON: {error}"))
    })?;
    let Value::Object(object) = value else {
        return Err(GraphApiError::invalid(
            "The request body must be a JSON object.",
        ));
    };
    match object.get("messaging_product").and_then(Value::as_str) {
        None => Err(required("messaging_product")),
        Some(MESSAGING_PRODUCT) => Ok(object),
        Some(other) => Err(GraphApiError::invalid(format!(
            "Param messaging_product must be `whatsapp`, got `{other}`."
        ))),
    }
}

fn typed<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, GraphApiError> {
    serde_json::from_value(Value::Object(object))
        .map_err(|error| GraphApiError::invalid(format!("Invalid parameter: {error}")))
}

pub fn call_command(body: &[u8]) -> Result<CallCommand, GraphApiError> {
    let object = json_object(body)?;
    match object.get("action") {
        None => return Err(required("action")),
        Some(action) if serde_json::from_value::<CallAction>(action.clone()).is_err() => {
            return Err(GraphApiError::invalid(format!(
                "Param action must be one of {{connect, pre_accept, accept, reject, terminate}}, got {action}."
            )));
        }
        Some(_) => {}
    }
    let request: CallRequest = typed(object)?;
    let opaque_len = request
        .biz_opaque_callback_data
        .as_deref()
        .map_or(0, |data| data.chars().count());
    if opaque_len > OPAQUE_DATA_LIMIT {
        return Err(GraphApiError::invalid(format!(
            "Param biz_opaque_callback_data must be at most {OPAQUE_DATA_LIMIT} characters."
        )));
    }
    match request.action {
        CallAction::Connect => Ok(CallCommand::Connect(ConnectRequest {
            user: callee(request.to.as_deref(), request.recipient.as_deref())?,
            offer: session_sdp(&request, SdpType::Offer)?,
            biz_opaque_callback_data: request.biz_opaque_callback_data,
        })),
        CallAction::PreAccept => Ok(CallCommand::PreAccept {
            call_id: call_id(&request)?,
            answer: session_sdp(&request, SdpType::Answer)?,
        }),
        CallAction::Accept => Ok(CallCommand::Accept {
            call_id: call_id(&request)?,
            answer: session_sdp(&request, SdpType::Answer)?,
            biz_opaque_callback_data: request.biz_opaque_callback_data,
        }),
        CallAction::Reject => Ok(CallCommand::Reject {
            call_id: call_id(&request)?,
        }),
        CallAction::Terminate => Ok(CallCommand::Terminate {
            call_id: call_id(&request)?,
        }),
    }
}

fn call_id(request: &CallRequest) -> Result<String, GraphApiError> {
    match request.call_id.as_deref().map(str::trim) {
        None | Some("") => Err(required("call_id")),
        Some(id) => Ok(id.to_owned()),
    }
}

fn session_sdp(request: &CallRequest, expected: SdpType) -> Result<CheckedSdp, GraphApiError> {
    let session = request
        .session
        .as_ref()
        .ok_or_else(|| required("session"))?;
    if session.sdp_type != expected {
        let name = match expected {
            SdpType::Offer => "offer",
            SdpType::Answer => "answer",
        };
        return Err(GraphApiError::invalid(format!(
            "Param session.sdp_type must be `{name}` for action {}.",
            request.action.as_str()
        )));
    }
    CheckedSdp::parse(&session.sdp, expected)
        .map_err(|error| GraphApiError::invalid(error.to_string()))
}

/// `to` (a phone number) or `recipient` (a BSUID); `to` wins when both are given.
fn callee(to: Option<&str>, recipient: Option<&str>) -> Result<UserRef, GraphApiError> {
    match (to, recipient) {
        (Some(to), _) => match UserRef::parse(to) {
            Ok(phone @ UserRef::Phone(_)) => Ok(phone),
            _ => Err(GraphApiError::invalid(format!(
                "Param to must be the user's phone number in international format, got `{to}`."
            ))),
        },
        (None, Some(recipient)) => match UserRef::parse(recipient) {
            Ok(bsuid @ UserRef::Bsuid(_)) => Ok(bsuid),
            _ => Err(GraphApiError::invalid(format!(
                "Param recipient must be a business-scoped user id like US.13491208655302741918, got `{recipient}`."
            ))),
        },
        (None, None) => Err(required("to")),
    }
}

pub fn outbound_message(body: &[u8]) -> Result<OutboundMessage, GraphApiError> {
    let object = json_object(body)?;
    if object.get("type").is_none() {
        return Err(required("type"));
    }
    let request: MessageRequest = typed(object)?;
    let user = callee(request.to.as_deref(), request.recipient.as_deref())?;
    let input = match (&request.to, &request.recipient) {
        (Some(number), _) => number.to_string(),
        (None, Some(id)) => id.to_string(),
        (None, None) => String::new(),
    };
    let asks_call_permission = match request.kind.as_str() {
        "interactive" => {
            let interactive = request
                .interactive
                .as_ref()
                .ok_or_else(|| required("interactive"))?;
            if interactive.kind != "call_permission_request"
                || interactive.action.name != "call_permission_request"
            {
                return Err(GraphApiError::invalid(
                    "wa-sim supports interactive messages of type call_permission_request (with action.name call_permission_request) only.",
                ));
            }
            true
        }
        "template" => {
            let template = request
                .template
                .as_ref()
                .ok_or_else(|| required("template"))?;
            if template.name.trim().is_empty() {
                return Err(required("template.name"));
            }
            if template.language.code.trim().is_empty() {
                return Err(required("template.language.code"));
            }
            // Templates sent to the simulator are taken to be call-permission templates.
            true
        }
        "text" => false,
        other => {
            return Err(GraphApiError::invalid(format!(
                "Param type `{other}` is not supported by wa-sim; use interactive, template or text."
            )));
        }
    };
    Ok(OutboundMessage {
        user,
        input,
        asks_call_permission,
    })
}

/// `POST /settings` carries `{"calling": {...}}`.
pub fn calling_settings(body: &[u8]) -> Result<CallingSettings, GraphApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        GraphApiError::invalid(format!("The request body is not valid JSON: {error}"))
    })?;
    let calling = value
        .get("calling")
        .cloned()
        .ok_or_else(|| required("calling"))?;
    if !calling.is_object() {
        return Err(GraphApiError::invalid("Param calling must be an object."));
    }
    serde_json::from_value(calling)
        .map_err(|error| GraphApiError::invalid(format!("Invalid parameter: {error}")))
}

/// `GET /call_permissions?user_wa_id=` or `?recipient=`.
pub fn permission_subject(
    user_wa_id: Option<&str>,
    recipient: Option<&str>,
) -> Result<UserRef, GraphApiError> {
    match (user_wa_id, recipient) {
        (Some(phone), _) => match UserRef::parse(phone) {
            Ok(phone @ UserRef::Phone(_)) => Ok(phone),
            _ => Err(GraphApiError::invalid(format!(
                "Param user_wa_id must be a phone number, got `{phone}`."
            ))),
        },
        (None, Some(recipient)) => callee(None, Some(recipient)),
        (None, None) => Err(required("user_wa_id")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(error: GraphApiError) -> String {
        error.envelope().error.error_data.unwrap().details
    }

    #[test]
    fn missing_fields_are_named() {
        let cases = [
            (r#"{"action":"connect"}"#, "messaging_product"),
            (r#"{"messaging_product":"whatsapp"}"#, "action"),
            (
                r#"{"messaging_product":"whatsapp","action":"dial"}"#,
                "must be one of",
            ),
            (
                r#"{"messaging_product":"whatsapp","action":"connect","session":{"sdp_type":"offer","sdp":"v=0"}}"#,
                "parameter to",
            ),
            (
                r#"{"messaging_product":"whatsapp","action":"connect","to":"12125550100"}"#,
                "session",
            ),
            (
                r#"{"messaging_product":"whatsapp","action":"terminate"}"#,
                "call_id",
            ),
            (
                r#"{"messaging_product":"whatsapp","action":"connect","to":"hello","session":{"sdp_type":"offer","sdp":"v=0"}}"#,
                "Param to",
            ),
            (r#"[1]"#, "JSON object"),
            (r#"{"#, "not valid JSON"),
        ];
        for (body, expected) in cases {
            let error = match call_command(body.as_bytes()) {
                Ok(_) => panic!("{body} passed"),
                Err(error) => error,
            };
            assert_eq!(error.code(), 100);
            let details = detail(error);
            assert!(details.contains(expected), "{body}: {details}");
        }
    }

    #[test]
    fn to_wins_over_recipient() {
        let user = callee(Some("+12125550100"), Some("US.13491208655302741918")).unwrap();
        assert_eq!(user, UserRef::Phone("12125550100".into()));
        let user = callee(None, Some("US.13491208655302741918")).unwrap();
        assert!(matches!(user, UserRef::Bsuid(_)));
    }
}

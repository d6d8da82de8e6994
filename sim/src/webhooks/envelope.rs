//! Webhook bodies in Meta's envelope, shaped like the signed samples in
//! `fixtures/meta-webhooks/`: one change per delivery, `contacts[]` on every call and
//! message webhook with the user's BSUID (`user_id`), `*_user_id` fields beside the phone
//! fields, and the phone fields left out for a user Meta shows without a number.

use switchboard_protocol::graph::{SdpSession, MESSAGING_PRODUCT};
use switchboard_protocol::webhook::{
    Call, Change, ChangeValue, Contact, Entry, Envelope, ErrorItem, InteractiveReply, Message,
    MessageContext, Metadata, PermissionReply, Profile, Status, Timestamp,
};
use switchboard_protocol::User;

use super::json::to_meta_json;
use crate::config::Business;

/// One delivery ready to sign and send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub body: Vec<u8>,
    /// `kind:detail` of each item, as the router will classify them (DESIGN §3).
    pub events: Vec<String>,
    pub call_id: Option<String>,
}

/// Who is on a call, seen from Meta's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    UserInitiated,
    BusinessInitiated,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::UserInitiated => "USER_INITIATED",
            Direction::BusinessInitiated => "BUSINESS_INITIATED",
        }
    }
}

/// The facts about a call every call webhook repeats.
#[derive(Debug, Clone)]
pub struct CallFacts<'a> {
    pub id: &'a str,
    pub direction: Direction,
    pub user: &'a User,
    pub biz_opaque_callback_data: Option<&'a str>,
}

/// How a call ended, for `terminate`.
#[derive(Debug, Clone)]
pub struct Ending {
    /// `COMPLETED` or `FAILED`.
    pub status: &'static str,
    /// Unix seconds of pick-up and hang-up, only when the call was answered.
    pub answered: Option<(i64, i64)>,
    pub error: Option<ErrorItem>,
}

/// Builds envelopes for one business number.
#[derive(Debug, Clone)]
pub struct Envelopes {
    business: Business,
}

/// `contacts[].profile` content differs per webhook, as in Meta's samples.
#[derive(Clone, Copy)]
enum ProfileShape {
    NameAndUsername,
    UsernameOnly,
}

impl Envelopes {
    pub fn new(business: Business) -> Self {
        Self { business }
    }

    fn envelope(&self, field: &str, value: ChangeValue) -> Envelope {
        Envelope {
            object: "whatsapp_business_account".into(),
            entry: vec![Entry {
                id: self.business.waba_id.clone(),
                time: None,
                changes: vec![Change {
                    field: field.into(),
                    value: ChangeValue {
                        messaging_product: Some(MESSAGING_PRODUCT.into()),
                        metadata: Some(Metadata {
                            display_phone_number: self.business.display_phone_number.clone(),
                            phone_number_id: self.business.phone_number_id.clone(),
                        }),
                        ..value
                    },
                }],
            }],
        }
    }

    fn contact(user: &User, shape: ProfileShape) -> Contact {
        Contact {
            profile: Profile {
                name: match shape {
                    ProfileShape::NameAndUsername => user.name.clone(),
                    ProfileShape::UsernameOnly => None,
                },
                username: user.username.clone(),
            },
            wa_id: user.wa_id.clone(),
            user_id: user.user_id.clone(),
            parent_user_id: None,
        }
    }

    /// A `calls[]` item with the user on the side the direction puts them.
    fn call_item(&self, facts: &CallFacts<'_>, event: &str, now: i64) -> Call {
        let business = Some(self.business.display_phone_number.as_str().into());
        let user_phone = facts.user.wa_id.clone();
        let user_id = facts.user.user_id.clone();
        let (from, to, from_user_id, to_user_id) = match facts.direction {
            Direction::UserInitiated => (user_phone, business, user_id, None),
            Direction::BusinessInitiated => (business, user_phone, None, user_id),
        };
        Call {
            id: facts.id.into(),
            from,
            to,
            event: event.into(),
            timestamp: Some(Timestamp(now)),
            direction: Some(facts.direction.as_str().into()),
            from_user_id,
            to_user_id,
            biz_opaque_callback_data: facts.biz_opaque_callback_data.map(str::to_owned),
            ..Call::default()
        }
    }

    /// `connect`: the user's offer (user-initiated) or Meta's answer (business-initiated).
    pub fn call_connect(&self, facts: &CallFacts<'_>, session: SdpSession, now: i64) -> Outgoing {
        let call = Call {
            session: Some(session),
            ..self.call_item(facts, "connect", now)
        };
        self.calls_change(facts, call, vec![], "call:connect")
    }

    pub fn call_terminate(&self, facts: &CallFacts<'_>, ending: &Ending, now: i64) -> Outgoing {
        let errors: Vec<ErrorItem> = ending.error.iter().cloned().collect();
        let call = Call {
            status: Some(ending.status.into()),
            start_time: ending.answered.map(|(start, _)| Timestamp(start)),
            end_time: ending.answered.map(|(_, end)| Timestamp(end)),
            duration: ending
                .answered
                .map(|(start, end)| u64::try_from(end - start).unwrap_or(0)),
            errors: errors.clone(),
            ..self.call_item(facts, "terminate", now)
        };
        self.calls_change(facts, call, errors, "call:terminate")
    }

    fn calls_change(
        &self,
        facts: &CallFacts<'_>,
        call: Call,
        errors: Vec<ErrorItem>,
        event: &str,
    ) -> Outgoing {
        let value = ChangeValue {
            contacts: vec![Self::contact(facts.user, ProfileShape::NameAndUsername)],
            calls: vec![call],
            errors,
            ..ChangeValue::default()
        };
        self.finish(&self.envelope("calls", value), None, event, Some(facts.id))
    }

    /// A business-initiated call's `RINGING`, `ACCEPTED` or `REJECTED`.
    pub fn call_status(&self, facts: &CallFacts<'_>, status: &str, now: i64) -> Outgoing {
        let item = Status {
            id: facts.id.to_owned(),
            kind: Some("call".into()),
            status: status.into(),
            timestamp: Some(Timestamp(now)),
            recipient_id: facts.user.wa_id.clone(),
            recipient_user_id: facts.user.user_id.clone(),
            ..Status::default()
        };
        let value = ChangeValue {
            contacts: vec![Self::contact(facts.user, ProfileShape::UsernameOnly)],
            statuses: vec![item],
            ..ChangeValue::default()
        };
        let event = format!("call_status:{}", status.to_ascii_lowercase());
        self.finish(
            &self.envelope("calls", value),
            facts.biz_opaque_callback_data,
            &event,
            Some(facts.id),
        )
    }

    /// `sent`, `delivered` or `read` for a message the business sent.
    pub fn message_status(&self, user: &User, wamid: &str, status: &str, now: i64) -> Outgoing {
        let item = Status {
            id: wamid.to_owned(),
            kind: None,
            status: status.into(),
            timestamp: Some(Timestamp(now)),
            recipient_id: user.wa_id.clone(),
            recipient_user_id: user.user_id.clone(),
            ..Status::default()
        };
        // Meta shows the username on delivered and read, never on sent.
        let mut contact = Self::contact(user, ProfileShape::UsernameOnly);
        if status == "sent" {
            contact.profile.username = None;
        }
        let value = ChangeValue {
            contacts: vec![contact],
            statuses: vec![item],
            ..ChangeValue::default()
        };
        let event = format!("message_status:{status}");
        self.finish(&self.envelope("messages", value), None, &event, None)
    }

    /// The user's answer to a call-permission request (`messages[]`, `field=messages`).
    pub fn permission_reply(
        &self,
        user: &User,
        request_wamid: &str,
        reply: PermissionReply,
        now: i64,
    ) -> Outgoing {
        let event = format!("call_permission_reply:{}", reply.response);
        let message = Message {
            id: crate::ids::new_message_id(),
            from: user.wa_id.clone(),
            from_user_id: user.user_id.clone(),
            timestamp: Some(Timestamp(now)),
            kind: "interactive".into(),
            context: Some(MessageContext {
                from: Some(self.business.display_phone_number.clone()),
                id: Some(request_wamid.to_owned()),
            }),
            interactive: Some(InteractiveReply {
                kind: "call_permission_reply".into(),
                call_permission_reply: Some(reply),
            }),
            text: None,
        };
        let value = ChangeValue {
            contacts: vec![Self::contact(user, ProfileShape::NameAndUsername)],
            messages: vec![message],
            ..ChangeValue::default()
        };
        self.finish(&self.envelope("messages", value), None, &event, None)
    }

    /// Serialises with Meta's escaping. `biz_opaque_callback_data` is echoed on call
    /// statuses by Meta but the shared `Status` type has no field for it, so it is added
    /// to the one status here.
    fn finish(
        &self,
        envelope: &Envelope,
        status_opaque: Option<&str>,
        event: &str,
        call_id: Option<&str>,
    ) -> Outgoing {
        let body = match status_opaque {
            None => to_meta_json(envelope),
            Some(opaque) => serde_json::to_value(envelope).and_then(|mut value| {
                if let Some(status) = value
                    .pointer_mut("/entry/0/changes/0/value/statuses/0")
                    .and_then(serde_json::Value::as_object_mut)
                {
                    status.insert("biz_opaque_callback_data".into(), opaque.into());
                }
                to_meta_json(&value)
            }),
        };
        Outgoing {
            // Serialising plain structs and JSON values cannot fail.
            body: body.unwrap_or_default(),
            events: vec![event.to_owned()],
            call_id: call_id.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn phone_user() -> User {
        User {
            user_id: Some("US.10293847561029384756".into()),
            wa_id: Some("12125550100".into()),
            name: Some("Asha Verma".into()),
            username: None,
        }
    }

    fn username_user() -> User {
        User {
            user_id: Some("US.13491208655302741918".into()),
            wa_id: None,
            name: Some("Pablo".into()),
            username: Some("@pablomorales".into()),
        }
    }

    fn parse(outgoing: &Outgoing) -> Value {
        serde_json::from_slice(&outgoing.body).unwrap()
    }

    #[test]
    fn a_user_initiated_connect_has_the_fixtures_shape() {
        let envelopes = Envelopes::new(Business::default());
        let user = phone_user();
        let facts = CallFacts {
            id: "wacid.X",
            direction: Direction::UserInitiated,
            user: &user,
            biz_opaque_callback_data: None,
        };
        let session = SdpSession {
            sdp_type: switchboard_protocol::graph::SdpType::Offer,
            sdp: "v=0\r\n".into(),
        };
        let out = envelopes.call_connect(&facts, session, 1753115233);
        let json = parse(&out);
        let value = &json["entry"][0]["changes"][0]["value"];
        assert_eq!(json["object"], "whatsapp_business_account");
        assert_eq!(json["entry"][0]["id"], "102290129340398");
        assert_eq!(json["entry"][0]["changes"][0]["field"], "calls");
        assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
        assert_eq!(value["contacts"][0]["wa_id"], "12125550100");
        assert_eq!(
            value["contacts"][0]["user_id"].as_str(),
            user.user_id.as_deref()
        );
        assert_eq!(value["contacts"][0]["profile"]["name"], "Asha Verma");
        let call = &value["calls"][0];
        assert_eq!(call["from"], "12125550100");
        assert_eq!(call["to"], "15550783881");
        assert_eq!(call["from_user_id"].as_str(), user.user_id.as_deref());
        assert_eq!(call["direction"], "USER_INITIATED");
        assert_eq!(call["timestamp"], "1753115233");
        assert_eq!(call["session"]["sdp_type"], "offer");
        assert_eq!(out.events, ["call:connect"]);
        let text = String::from_utf8(out.body).unwrap();
        assert!(text.contains(r"v=0\r\n"));
    }

    #[test]
    fn a_user_without_a_visible_number_has_no_phone_fields() {
        let envelopes = Envelopes::new(Business::default());
        let user = username_user();
        let facts = CallFacts {
            id: "wacid.Y",
            direction: Direction::BusinessInitiated,
            user: &user,
            biz_opaque_callback_data: Some("order-42"),
        };
        let status = parse(&envelopes.call_status(&facts, "RINGING", 1));
        let value = &status["entry"][0]["changes"][0]["value"];
        assert!(value["statuses"][0].get("recipient_id").is_none());
        assert_eq!(
            value["statuses"][0]["recipient_user_id"].as_str(),
            user.user_id.as_deref()
        );
        assert_eq!(value["statuses"][0]["biz_opaque_callback_data"], "order-42");
        assert_eq!(value["statuses"][0]["type"], "call");
        assert!(value["contacts"][0].get("wa_id").is_none());
        assert_eq!(value["contacts"][0]["profile"]["username"], "@pablomorales");
        let ending = Ending {
            status: "COMPLETED",
            answered: Some((100, 142)),
            error: None,
        };
        let terminate = parse(&envelopes.call_terminate(&facts, &ending, 142));
        let call = &terminate["entry"][0]["changes"][0]["value"]["calls"][0];
        assert!(call.get("to").is_none());
        assert_eq!(call["from"], "15550783881");
        assert_eq!(call["to_user_id"].as_str(), user.user_id.as_deref());
        assert_eq!(call["duration"], 42);
        assert_eq!(call["start_time"], "100");
        assert_eq!(call["biz_opaque_callback_data"], "order-42");
    }
}

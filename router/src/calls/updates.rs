//! Reading call and permission webhooks (each stored as a one-item Meta envelope) into
//! the updates the state machines take.

use switchboard_protocol::api::Direction;
use switchboard_protocol::webhook::{
    Call as MetaCall, ChangeValue, Contact, Envelope, ErrorItem, Message, Status, Timestamp,
};
use switchboard_protocol::ws::{CallError, CallStatus, PermissionResponse};
use switchboard_protocol::{Bsuid, CallId, User, WaId};

use crate::domain::call::CallUpdate;
use crate::domain::event::{EventKind, Kind};
use crate::domain::permission::PermissionReply;

/// What a calling-related event says.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Call { call_id: CallId, update: CallUpdate },
    Permission(PermissionReply),
}

/// The events the calling plane reads.
pub fn wants(kind: &EventKind) -> bool {
    match kind.kind {
        Kind::Call | Kind::CallStatus | Kind::CallPermissionReply => true,
        Kind::Message | Kind::MessageStatus | Kind::Other => false,
    }
}

/// What the calling plane knows of an event beyond its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The business number this router answers calls for (`meta.phone_number_id`).
    pub phone_number_id: &'a str,
    /// When this router received the event, Unix seconds.
    pub received_at: i64,
}

/// How far back Meta's timestamp of an event may lie before its receipt: Meta retries a
/// webhook for up to 7 days. Earlier ones, and any in the future (a clock ahead of ours),
/// are clamped into `[received - MAX_LAG, received]`.
pub const MAX_LAG: i64 = 7 * 24 * 3600;

/// What one calling-related event means for the calling plane.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    Update(Update),
    /// For a business number other than ours: stored and forwarded, but it rings no one.
    OtherNumber(String),
    /// Not a well-formed calling event (still stored and forwarded, just not acted on).
    Nothing,
}

/// Reads one event's payload. Times in it are Meta's, clamped to a window around the
/// event's receipt (see [`MAX_LAG`]), so a skewed clock cannot reorder or expire state.
pub fn read(kind: &EventKind, payload: &[u8], context: Context<'_>) -> Read {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(payload) else {
        return Read::Nothing;
    };
    let Some(change) = envelope.first_change() else {
        return Read::Nothing;
    };
    let value = &change.value;
    if let Some(metadata) = &value.metadata {
        if metadata.phone_number_id != context.phone_number_id {
            return Read::OtherNumber(metadata.phone_number_id.clone());
        }
    }
    let clock = Clock(context.received_at);
    let update = match kind.kind {
        Kind::Call => value.calls.first().and_then(|c| read_call(value, c, clock)),
        Kind::CallStatus => (value.statuses.first()).and_then(|s| read_status(value, s, clock)),
        Kind::CallPermissionReply => {
            (value.messages.first()).and_then(|m| read_permission(value, m, clock))
        }
        Kind::Message | Kind::MessageStatus | Kind::Other => None,
    };
    update.map_or(Read::Nothing, Read::Update)
}

/// Meta's times, seen from the receipt of the event that carries them.
#[derive(Debug, Clone, Copy)]
struct Clock(i64);

impl Clock {
    /// A time Meta stated, clamped to the window around receipt; receipt if none.
    fn at(self, meta: Option<Timestamp>) -> i64 {
        meta.map_or(self.0, |t| self.clamp(t.0))
    }

    fn clamp(self, time: i64) -> i64 {
        time.clamp(self.0.saturating_sub(MAX_LAG), self.0)
    }

    /// A time Meta stated that may lie ahead (a permission's expiry): only bounded.
    fn ahead(self, time: i64) -> i64 {
        time.clamp(
            self.0.saturating_sub(MAX_LAG),
            self.0.saturating_add(MAX_LAG),
        )
    }
}

fn contact_user(contact: Option<&Contact>) -> User {
    contact.map_or_else(User::default, |c| User {
        user_id: c.user_id.clone(),
        wa_id: c.wa_id.clone(),
        name: c.profile.name.clone(),
        username: c.profile.username.clone(),
    })
}

/// The user from the item's own fields, completed from the contact that names the same
/// user (research §12.9). In a batch, `contacts[0]` may be somebody else: only a contact
/// whose number or BSUID matches is used, or the only contact there is.
fn user(value: &ChangeValue, user_id: Option<&Bsuid>, phone: Option<&WaId>) -> User {
    let same = |c: &&Contact| {
        (user_id.is_some() && c.user_id.as_ref() == user_id)
            || (phone.is_some() && c.wa_id.as_ref() == phone)
    };
    let contact = value
        .contacts
        .iter()
        .find(same)
        .or(match value.contacts.as_slice() {
            [only] if user_id.is_none() && phone.is_none() => Some(only),
            _ => None,
        });
    let mut user = contact_user(contact);
    if let Some(id) = user_id {
        user.user_id = Some(id.clone());
    }
    if let Some(phone) = phone {
        user.wa_id = Some(phone.clone());
    }
    user
}

fn first_error(item: &[ErrorItem], value: &ChangeValue) -> Option<CallError> {
    item.first().or(value.errors.first()).map(|e| CallError {
        meta_code: Some(e.code),
        message: e
            .message
            .clone()
            .or_else(|| e.title.clone())
            .unwrap_or_else(|| format!("Meta error {}", e.code)),
    })
}

fn read_call(value: &ChangeValue, call: &MetaCall, clock: Clock) -> Option<Update> {
    let at = clock.at(call.timestamp);
    let (direction, user) = if call.is_user_initiated() {
        (
            Direction::Incoming,
            user(value, call.from_user_id.as_ref(), call.from.as_ref()),
        )
    } else {
        (
            Direction::Outgoing,
            user(value, call.to_user_id.as_ref(), call.to.as_ref()),
        )
    };
    let update = match call.event.as_str() {
        "connect" => {
            let sdp = call.session.as_ref()?.sdp.clone();
            match direction {
                Direction::Incoming => CallUpdate::IncomingConnect {
                    user,
                    business_number: call.to.clone().map(WaId::into_string),
                    offer: sdp,
                    at,
                },
                Direction::Outgoing => CallUpdate::OutgoingConnect {
                    user,
                    answer: sdp,
                    at,
                },
            }
        }
        "terminate" => CallUpdate::Terminate {
            user,
            direction,
            completed: call
                .status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("COMPLETED")),
            start: call.start_time.map(|t| clock.clamp(t.0)),
            end: call.end_time.map(|t| clock.clamp(t.0)),
            duration: call.duration,
            error: first_error(&call.errors, value),
            at,
        },
        _ => return None,
    };
    Some(Update::Call {
        call_id: CallId::from(call.id.as_str()),
        update,
    })
}

fn read_status(value: &ChangeValue, status: &Status, clock: Clock) -> Option<Update> {
    let call_status = match status.status.to_ascii_uppercase().as_str() {
        "RINGING" => CallStatus::Ringing,
        "ACCEPTED" => CallStatus::Accepted,
        "REJECTED" => CallStatus::Rejected,
        _ => return None,
    };
    Some(Update::Call {
        call_id: CallId::from(status.id.as_str()),
        update: CallUpdate::Status {
            user: user(
                value,
                status.recipient_user_id.as_ref(),
                status.recipient_id.as_ref(),
            ),
            direction: Direction::Outgoing,
            status: call_status,
            at: clock.at(status.timestamp),
        },
    })
}

fn read_permission(value: &ChangeValue, message: &Message, clock: Clock) -> Option<Update> {
    let reply = message
        .interactive
        .as_ref()?
        .call_permission_reply
        .as_ref()?;
    let response = match reply.response.as_str() {
        "accept" => PermissionResponse::Accept,
        "reject" => PermissionResponse::Reject,
        _ => return None,
    };
    Some(Update::Permission(PermissionReply {
        user: user(value, message.from_user_id.as_ref(), message.from.as_ref()),
        response,
        permanent: reply.is_permanent,
        expires_at: reply.expiration_timestamp.map(|t| clock.ahead(t.0)),
        at: clock.at(message.timestamp),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::events::split;
    use crate::meta::signature::{verify, AppSecret};
    use secrecy::SecretString;

    /// The fixtures' number, received a minute after their last timestamp.
    const OURS: Context<'static> = Context {
        phone_number_id: "106540352242922",
        received_at: 1_753_115_400,
    };

    fn update(read: Read) -> Update {
        match read {
            Read::Update(update) => update,
            other => panic!("not an update: {other:?}"),
        }
    }

    fn fixture_updates(name: &str) -> Vec<Update> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/meta-webhooks")
            .join(name);
        let body = bytes::Bytes::from(std::fs::read(path).unwrap());
        let secret = AppSecret::parse(SecretString::from("k".to_owned())).unwrap();
        let delivery = verify(
            std::slice::from_ref(&secret),
            Some(&secret.sign(&body)),
            body,
        )
        .unwrap();
        split(&delivery)
            .iter()
            .filter(|e| wants(&e.kind))
            .map(|e| update(read(&e.kind, &e.payload, OURS)))
            .collect()
    }

    #[test]
    fn a_user_initiated_connect_carries_the_offer_and_the_caller() {
        let updates = fixture_updates("06-call-connect-user-initiated-offer.json");
        let Update::Call {
            call_id,
            update:
                CallUpdate::IncomingConnect {
                    user,
                    offer,
                    business_number,
                    ..
                },
        } = &updates[0]
        else {
            panic!("{updates:?}");
        };
        assert!(call_id.starts_with("wacid."));
        assert_eq!(user.user_id.as_deref(), Some("US.10293847561029384756"));
        assert_eq!(user.wa_id.as_deref(), Some("12125550100"));
        assert_eq!(user.name.as_deref(), Some("Asha Verma"));
        assert_eq!(business_number.as_deref(), Some("15550783881"));
        assert!(offer.contains("a=ice-lite"));
    }

    #[test]
    fn in_a_batch_each_item_gets_its_own_contact() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
            "contacts":[{"profile":{"name":"First"},"wa_id":"111111","user_id":"US.1"},
                        {"profile":{"name":"Second"},"wa_id":"222222","user_id":"US.2"}],
            "messages":[
              {"id":"wamid.a","from":"111111","from_user_id":"US.1","type":"interactive","interactive":{"type":"call_permission_reply","call_permission_reply":{"response":"accept"}}},
              {"id":"wamid.b","from_user_id":"US.2","type":"interactive","interactive":{"type":"call_permission_reply","call_permission_reply":{"response":"reject"}}}]}}]}]}"#;
        let secret = AppSecret::parse(SecretString::from("k".to_owned())).unwrap();
        let body = bytes::Bytes::from(body.to_owned());
        let delivery = verify(
            std::slice::from_ref(&secret),
            Some(&secret.sign(&body)),
            body,
        )
        .unwrap();
        let users: Vec<User> = split(&delivery)
            .iter()
            .map(|e| match update(read(&e.kind, &e.payload, OURS)) {
                Update::Permission(reply) => reply.user,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(users[0].name.as_deref(), Some("First"));
        assert_eq!(users[1].name.as_deref(), Some("Second"));
        assert_eq!(
            users[1].wa_id.as_deref(),
            Some("222222"),
            "completed from its contact"
        );
    }

    #[test]
    fn every_calling_fixture_reads() {
        for (file, count) in [
            ("04-call-permission-reply-accept.json", 1),
            ("05-call-permission-reply-reject.json", 1),
            ("07-call-connect-business-initiated-answer.json", 1),
            ("08-call-status-ringing.json", 1),
            ("09-call-status-accepted.json", 1),
            ("10-call-status-rejected.json", 1),
            ("11-call-terminate-completed.json", 1),
            ("12-mixed-batch.json", 1),
        ] {
            assert_eq!(fixture_updates(file).len(), count, "{file}");
        }
        let terminate = fixture_updates("11-call-terminate-completed.json");
        assert!(matches!(
            &terminate[0],
            Update::Call {
                update: CallUpdate::Terminate {
                    completed: true,
                    duration: Some(95),
                    ..
                },
                ..
            }
        ));
        let accept = fixture_updates("04-call-permission-reply-accept.json");
        assert!(matches!(
            &accept[0],
            Update::Permission(PermissionReply {
                response: PermissionResponse::Accept,
                permanent: true,
                ..
            })
        ));
    }

    fn connect_at(received_at: i64, timestamp: i64, number: &str) -> Read {
        let payload = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"calls","value":{{
                "metadata":{{"display_phone_number":"15550783881","phone_number_id":"{number}"}},
                "calls":[{{"id":"wacid.A","from":"12125550100","to":"15550783881","event":"connect","timestamp":"{timestamp}",
                           "direction":"USER_INITIATED","session":{{"sdp_type":"offer","sdp":"v=0"}}}}]}}}}]}}]}}"#
        );
        let kind = EventKind::new(Kind::Call, "connect");
        let context = Context {
            phone_number_id: "106540352242922",
            received_at,
        };
        read(&kind, payload.as_bytes(), context)
    }

    fn connect_time(read: Read) -> i64 {
        match read {
            Read::Update(Update::Call {
                update: CallUpdate::IncomingConnect { at, .. },
                ..
            }) => at,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn metas_time_is_kept_inside_the_window_and_clamped_outside_it() {
        let received = 1_800_000_000;
        let ours = "106540352242922";
        assert_eq!(
            connect_time(connect_at(received, received - 30, ours)),
            received - 30
        );
        assert_eq!(
            connect_time(connect_at(received, received + 3600, ours)),
            received,
            "a clock ahead of ours cannot date an event after its receipt"
        );
        assert_eq!(
            connect_time(connect_at(received, 1_000, ours)),
            received - MAX_LAG,
            "nor further back than Meta retries"
        );
    }

    #[test]
    fn a_calling_event_for_another_business_number_is_not_ours() {
        let read = connect_at(1_800_000_000, 1_800_000_000, "999999999999999");
        assert_eq!(read, Read::OtherNumber("999999999999999".into()));
    }

    #[test]
    fn a_permissions_expiry_is_bounded_around_its_receipt() {
        let received = 1_800_000_000;
        let payload = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{
                "messages":[{{"id":"wamid.a","from":"111111","timestamp":"{received}","type":"interactive",
                  "interactive":{{"type":"call_permission_reply","call_permission_reply":{{"response":"accept","expiration_timestamp":{far}}}}}}}]}}}}]}}]}}"#,
            far = received + 400 * 24 * 3600
        );
        let kind = EventKind::new(Kind::CallPermissionReply, "accept");
        let context = Context {
            phone_number_id: "106540352242922",
            received_at: received,
        };
        match read(&kind, payload.as_bytes(), context) {
            Read::Update(Update::Permission(reply)) => {
                assert_eq!(reply.at, received);
                assert_eq!(reply.expires_at, Some(received + MAX_LAG));
            }
            other => panic!("{other:?}"),
        }
    }
}

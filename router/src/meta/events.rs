//! Splitting a verified delivery into typed events (DESIGN §3).
//!
//! One event per element of `messages[]`, `statuses[]` and `calls[]` in every change of
//! every entry, one per change for any other field, and one `other:unparsed` event for
//! signed bytes that are not a Meta envelope: nothing Meta signed is ever dropped.

use bytes::Bytes;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::signature::VerifiedDelivery;
use crate::domain::event::{EventId, EventKind, Kind};

/// One event cut out of a delivery.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: EventId,
    pub kind: EventKind,
    /// The `event`-mode body: Meta's envelope trimmed to this one item (DESIGN §7), or the
    /// raw bytes for `other:unparsed`.
    pub payload: Bytes,
}

/// Splits a verified delivery into its events, in document order.
pub fn split(delivery: &VerifiedDelivery) -> Vec<Event> {
    let body = delivery.body();
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(root)) if root.get("entry").is_some_and(Value::is_array) => {
            split_envelope(&root)
        }
        _ => vec![unparsed(body)],
    }
}

fn unparsed(body: &Bytes) -> Event {
    Event {
        id: EventId::derive(&[b"unparsed", &Sha256::digest(body)]),
        kind: EventKind::unparsed(),
        payload: body.clone(),
    }
}

/// The arrays whose elements each become one event.
const ITEM_ARRAYS: [&str; 3] = ["messages", "statuses", "calls"];

fn split_envelope(root: &Map<String, Value>) -> Vec<Event> {
    let object = root.get("object").cloned().unwrap_or(Value::Null);
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut events = Vec::new();
    for entry in entries {
        let changes = entry
            .get("changes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for change in changes {
            let envelope = Envelope {
                object: &object,
                entry,
                change,
            };
            envelope.split_change(&mut events);
        }
    }
    events
}

/// The parts of Meta's envelope around one change.
struct Envelope<'a> {
    object: &'a Value,
    entry: &'a Value,
    change: &'a Value,
}

impl Envelope<'_> {
    fn field(&self) -> &str {
        self.change
            .get("field")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
    }

    fn split_change(&self, events: &mut Vec<Event>) {
        let field = self.field();
        let value = self.change.get("value").and_then(Value::as_object);
        let mut found_items = false;
        if let Some(value) = value {
            for array in ITEM_ARRAYS {
                let Some(items) = value.get(array).and_then(Value::as_array) else {
                    continue;
                };
                for item in items {
                    found_items = true;
                    let kind = classify(field, array, item);
                    events.push(Event {
                        id: item_id(&kind, item),
                        payload: self.item_payload(value, array, item),
                        kind,
                    });
                }
            }
        }
        if !found_items {
            // A change with no items (an account update, or a `messages` change carrying
            // only `errors`) is one event of its own, so it is never lost.
            events.push(self.whole_change_event(field));
        }
    }

    fn whole_change_event(&self, field: &str) -> Event {
        let canonical = serde_json::to_vec(self.change).unwrap_or_default();
        let entry_id = self
            .entry
            .get("id")
            .map(Value::to_string)
            .unwrap_or_default();
        let entry_time = self
            .entry
            .get("time")
            .map(Value::to_string)
            .unwrap_or_default();
        Event {
            id: EventId::derive(&[
                b"other",
                entry_id.as_bytes(),
                entry_time.as_bytes(),
                &Sha256::digest(&canonical),
            ]),
            kind: EventKind::new(Kind::Other, field),
            payload: self.wrap(self.change.clone()),
        }
    }

    /// Meta's envelope holding only `item`: the value keeps every key (metadata, contacts,
    /// …) except the item arrays, and gets a one-element array of `array`.
    fn item_payload(&self, value: &Map<String, Value>, array: &str, item: &Value) -> Bytes {
        let mut trimmed: Map<String, Value> = value
            .iter()
            .filter(|(key, _)| !ITEM_ARRAYS.contains(&key.as_str()))
            .map(|(key, v)| (key.clone(), v.clone()))
            .collect();
        if let Some(Value::Array(contacts)) = trimmed.get_mut("contacts") {
            keep_own_contacts(contacts, item);
        }
        trimmed.insert(array.to_owned(), Value::Array(vec![item.clone()]));
        let mut change = Map::new();
        change.insert("field".into(), Value::String(self.field().to_owned()));
        change.insert("value".into(), Value::Object(trimmed));
        self.wrap(Value::Object(change))
    }

    fn wrap(&self, change: Value) -> Bytes {
        let mut entry = Map::new();
        if let Some(id) = self.entry.get("id") {
            entry.insert("id".into(), id.clone());
        }
        if let Some(time) = self.entry.get("time") {
            entry.insert("time".into(), time.clone());
        }
        entry.insert("changes".into(), Value::Array(vec![change]));
        let mut root = Map::new();
        root.insert("object".into(), self.object.clone());
        root.insert("entry".into(), Value::Array(vec![Value::Object(entry)]));
        Bytes::from(serde_json::to_vec(&Value::Object(root)).unwrap_or_default())
    }
}

/// The fields of an item that name its user (a phone number or a BSUID).
const USER_FIELDS: [&str; 6] = [
    "from",
    "from_user_id",
    "to",
    "to_user_id",
    "recipient_id",
    "recipient_user_id",
];

/// Trims a batch's `contacts` to those of the item's own user, so one event does not carry
/// every other user of the batch. When none matches (an unusual payload), all are kept.
fn keep_own_contacts(contacts: &mut Vec<Value>, item: &Value) {
    let names: Vec<&str> = USER_FIELDS
        .iter()
        .filter_map(|f| str_field(item, f))
        .collect();
    let own = |contact: &Value| {
        ["wa_id", "user_id"]
            .iter()
            .filter_map(|f| str_field(contact, f))
            .any(|id| names.contains(&id))
    };
    if contacts.iter().any(own) {
        contacts.retain(own);
    }
}

fn str_field<'a>(item: &'a Value, key: &str) -> Option<&'a str> {
    item.get(key).and_then(Value::as_str)
}

fn classify(field: &str, array: &str, item: &Value) -> EventKind {
    let lower = |s: Option<&str>| s.unwrap_or("unknown").to_ascii_lowercase();
    match array {
        "messages" => {
            let interactive = item.get("interactive");
            let is_permission_reply = interactive
                .and_then(|i| str_field(i, "type"))
                .is_some_and(|t| t == "call_permission_reply");
            if is_permission_reply {
                let response = interactive
                    .and_then(|i| i.get("call_permission_reply"))
                    .and_then(|r| str_field(r, "response"));
                EventKind::new(Kind::CallPermissionReply, lower(response))
            } else {
                EventKind::new(Kind::Message, lower(str_field(item, "type")))
            }
        }
        "calls" => EventKind::new(Kind::Call, lower(str_field(item, "event"))),
        // `statuses[]` arrives on both fields; which field it came on is what tells a call
        // status from a message status.
        _ if field == "calls" => EventKind::new(Kind::CallStatus, lower(str_field(item, "status"))),
        _ => EventKind::new(Kind::MessageStatus, lower(str_field(item, "status"))),
    }
}

/// The item's own Meta id plus what makes this event distinct from others on the same id.
fn item_id(kind: &EventKind, item: &Value) -> EventId {
    let kind_name = kind.kind.as_str().as_bytes();
    let Some(meta_id) = str_field(item, "id") else {
        // No Meta id to key on: the item's full content is the next best identity.
        let canonical = serde_json::to_vec(item).unwrap_or_default();
        return EventId::derive(&[kind_name, b"content", &Sha256::digest(&canonical)]);
    };
    let detail = kind.detail.as_bytes();
    match kind.kind {
        Kind::Message | Kind::CallPermissionReply => {
            EventId::derive(&[b"message", meta_id.as_bytes()])
        }
        Kind::MessageStatus => {
            // A group send reports one status per participant under one wamid.
            let participant = str_field(item, "recipient_participant_id").unwrap_or_default();
            EventId::derive(&[
                kind_name,
                meta_id.as_bytes(),
                detail,
                participant.as_bytes(),
            ])
        }
        Kind::Call | Kind::CallStatus | Kind::Other => {
            EventId::derive(&[kind_name, meta_id.as_bytes(), detail])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::signature::{verify, AppSecret};
    use secrecy::SecretString;

    fn verified(body: &str) -> VerifiedDelivery {
        let secret = AppSecret::parse(SecretString::from("s".to_owned())).unwrap();
        let header = secret.sign(body.as_bytes());
        verify(&[secret], Some(&header), Bytes::from(body.to_owned())).unwrap()
    }

    fn kinds(body: &str) -> Vec<String> {
        split(&verified(body))
            .iter()
            .map(|e| e.kind.to_string())
            .collect()
    }

    #[test]
    fn statuses_on_the_calls_field_are_call_statuses_not_message_statuses() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"calls","value":{"statuses":[{"id":"wacid.1","status":"RINGING"}]}},
            {"field":"messages","value":{"statuses":[{"id":"wamid.1","status":"read"}]}}]}]}"#;
        assert_eq!(kinds(body), ["call_status:ringing", "message_status:read"]);
    }

    #[test]
    fn every_entry_change_and_item_becomes_an_event() {
        let body = r#"{"object":"whatsapp_business_account","entry":[
            {"id":"1","changes":[{"field":"messages","value":{"messages":[
                {"id":"wamid.a","type":"text"},{"id":"wamid.b","type":"image"}]}}]},
            {"id":"2","changes":[{"field":"calls","value":{"calls":[
                {"id":"wacid.c","event":"connect"},{"id":"wacid.c","event":"terminate"}]}}]}]}"#;
        assert_eq!(
            kinds(body),
            [
                "message:text",
                "message:image",
                "call:connect",
                "call:terminate"
            ]
        );
    }

    #[test]
    fn a_change_without_items_is_kept_as_an_other_event() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"messages","value":{"errors":[{"code":131000}]}}]}]}"#;
        assert_eq!(kinds(body), ["other:messages"]);
    }

    #[test]
    fn signed_bytes_that_are_not_an_envelope_are_one_unparsed_event() {
        for body in ["not json", "[1,2]", r#"{"object":"x"}"#, ""] {
            let events = split(&verified(body));
            assert_eq!(events.len(), 1, "{body}");
            assert_eq!(events[0].kind, EventKind::unparsed());
            assert_eq!(events[0].payload, body.as_bytes());
        }
    }

    #[test]
    fn the_same_item_gets_the_same_id_in_any_delivery() {
        let a = r#"{"object":"o","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.x","status":"read","timestamp":"1"}]}}]}]}"#;
        let b = r#"{"entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{},"statuses":[{"id":"wamid.x","status":"read","timestamp":"1"}]}}]}],"object":"o"}"#;
        let c = r#"{"object":"o","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.x","status":"delivered","timestamp":"1"}]}}]}]}"#;
        let id = |body| split(&verified(body))[0].id.clone();
        assert_eq!(id(a), id(b));
        assert_ne!(id(a), id(c));
    }

    #[test]
    fn an_event_payload_is_metas_envelope_with_one_item() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"9","changes":[{"field":"messages","value":{
            "messaging_product":"whatsapp","metadata":{"phone_number_id":"5"},"contacts":[{"wa_id":"1"}],
            "messages":[{"id":"wamid.a","type":"text"},{"id":"wamid.b","type":"text"}]}}]}]}"#;
        let events = split(&verified(body));
        let second: Value = serde_json::from_slice(&events[1].payload).unwrap();
        assert_eq!(second["object"], "whatsapp_business_account");
        assert_eq!(second["entry"][0]["id"], "9");
        let change = &second["entry"][0]["changes"][0];
        assert_eq!(change["field"], "messages");
        assert_eq!(change["value"]["messaging_product"], "whatsapp");
        assert_eq!(change["value"]["metadata"]["phone_number_id"], "5");
        assert_eq!(change["value"]["contacts"][0]["wa_id"], "1");
        assert_eq!(change["value"]["messages"].as_array().unwrap().len(), 1);
        assert_eq!(change["value"]["messages"][0]["id"], "wamid.b");
    }

    #[test]
    fn each_event_carries_only_its_own_users_contact() {
        let body = r#"{"object":"o","entry":[{"id":"9","changes":[{"field":"messages","value":{
            "contacts":[{"wa_id":"111","user_id":"US.1"},{"wa_id":"222","user_id":"US.2"}],
            "messages":[{"id":"wamid.a","from":"111","type":"text"},{"id":"wamid.b","from_user_id":"US.2","type":"text"},
                        {"id":"wamid.c","from":"999","type":"text"}]}}]}]}"#;
        let events = split(&verified(body));
        let contacts = |i: usize| {
            let json: Value = serde_json::from_slice(&events[i].payload).unwrap();
            json["entry"][0]["changes"][0]["value"]["contacts"].clone()
        };
        assert_eq!(
            contacts(0),
            serde_json::json!([{"wa_id":"111","user_id":"US.1"}])
        );
        assert_eq!(
            contacts(1),
            serde_json::json!([{"wa_id":"222","user_id":"US.2"}])
        );
        assert_eq!(
            contacts(2).as_array().unwrap().len(),
            2,
            "no match: all kept"
        );
    }

    #[test]
    fn event_ids_round_trip_and_garbage_is_refused() {
        let id = split(&verified("x"))[0].id.clone();
        assert_eq!(EventId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "",
            "evt_",
            "evt_XYZ",
            "msg_0123456789abcdef0123456789abcdef",
        ] {
            assert!(EventId::parse(bad).is_err(), "{bad}");
        }
    }
}

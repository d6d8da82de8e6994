//! Splitting a verified delivery into typed events (DESIGN §3).
//!
//! One event per element of `messages[]`, `statuses[]` and `calls[]` in every change of
//! every entry, one per change for any other field, and one `other:unparsed` event for
//! signed bytes that are not a Meta envelope (an `entry` array whose every entry has a
//! `changes` array, with at least one change among them): nothing Meta signed is ever
//! dropped. A delivery past its [`Limits`] is kept whole as one `other:oversize` event.
//!
//! An item's event carries the item and the little of its change it needs (Meta's
//! `messaging_product`, `metadata`, `errors` and the item's own contact), written straight
//! from the parsed delivery: the parts a change's items share are never copied per item.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::envelope::{self, Contacts, ItemChange, ItemValue, TooLarge};
use super::signature::VerifiedDelivery;
use crate::domain::event::{EventId, EventKind, Kind};

/// One event cut out of a delivery.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: EventId,
    pub kind: EventKind,
    /// The `event`-mode body: Meta's envelope trimmed to this one item (DESIGN §7), or the
    /// raw bytes for `other:unparsed` and `other:oversize`.
    pub payload: Bytes,
    /// When Meta says it happened (the item's `timestamp`, or the entry's `time` for a
    /// change without items), Unix seconds; `None` when Meta gave no time.
    pub sent_at: Option<i64>,
}

/// How much one delivery may split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most events one delivery may make (Meta batches up to 1,000 updates).
    pub max_items: usize,
    /// The most bytes one event's payload may take.
    pub max_event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_items: 1000,
            max_event_bytes: 64 * 1024,
        }
    }
}

/// Why a delivery was kept whole, as one `other:oversize` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversize {
    /// It held more items than [`Limits::max_items`].
    Items,
    /// One of its events would have been larger than [`Limits::max_event_bytes`].
    EventBytes,
}

impl Oversize {
    pub fn label(self) -> &'static str {
        match self {
            Oversize::Items => "items",
            Oversize::EventBytes => "event_bytes",
        }
    }
}

/// A delivery's events, and whether it was too large to split.
#[derive(Debug)]
pub struct Split {
    pub events: Vec<Event>,
    pub oversize: Option<Oversize>,
}

/// Splits a verified delivery into its events, in document order, within the default
/// [`Limits`].
pub fn split(delivery: &VerifiedDelivery) -> Vec<Event> {
    split_within(delivery, Limits::default()).events
}

/// Splits a verified delivery into its events, in document order; past `limits`, the
/// delivery is one `other:oversize` event holding its raw bytes.
pub fn split_within(delivery: &VerifiedDelivery, limits: Limits) -> Split {
    let body = delivery.body();
    let root = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(root)) if is_envelope(&root) => root,
        _ => {
            return Split {
                events: vec![whole(body, "unparsed")],
                oversize: None,
            }
        }
    };
    let changes = changes(&root);
    let items = changes
        .iter()
        .fold(0usize, |sum, c| sum.saturating_add(c.event_count()));
    if items > limits.max_items {
        return oversize(body, Oversize::Items);
    }
    let mut events = Vec::with_capacity(items);
    for change in &changes {
        if change
            .split_change(&mut events, limits.max_event_bytes)
            .is_err()
        {
            return oversize(body, Oversize::EventBytes);
        }
    }
    Split {
        events,
        oversize: None,
    }
}

/// Whether the split can account for everything in `root`: an entry without a `changes`
/// array, or an envelope with no change at all, would otherwise make no event.
fn is_envelope(root: &Map<String, Value>) -> bool {
    let Some(entries) = root.get("entry").and_then(Value::as_array) else {
        return false;
    };
    let changes = |entry: &Value| entry.get("changes").and_then(Value::as_array).map(Vec::len);
    entries.iter().all(|entry| changes(entry).is_some())
        && entries.iter().any(|entry| changes(entry) > Some(0))
}

/// The delivery's raw bytes as one `other:<detail>` event, named by their digest.
fn whole(body: &Bytes, detail: &str) -> Event {
    Event {
        id: EventId::derive(&[detail.as_bytes(), &Sha256::digest(body)]),
        kind: EventKind::new(Kind::Other, detail),
        payload: body.clone(),
        sent_at: None,
    }
}

fn oversize(body: &Bytes, why: Oversize) -> Split {
    Split {
        events: vec![whole(body, "oversize")],
        oversize: Some(why),
    }
}

/// Meta writes times as Unix seconds, in a string or a number.
fn unix_seconds(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The arrays whose elements each become one event.
const ITEM_ARRAYS: [&str; 3] = ["messages", "statuses", "calls"];

/// The keys of a change's `value` an item's event keeps besides `contacts` (trimmed to the
/// item's own) and its one-element array: what Meta documents beside the items.
const CONTEXT_KEYS: [&str; 3] = ["errors", "messaging_product", "metadata"];

/// `null`, for a delivery with no `object`.
const NULL: &Value = &Value::Null;

/// Every change of every entry, with the parts of the envelope around it.
fn changes(root: &Map<String, Value>) -> Vec<Envelope<'_>> {
    fn as_slice(value: Option<&Value>) -> Option<&[Value]> {
        value.and_then(Value::as_array).map(Vec::as_slice)
    }
    let object = root.get("object").unwrap_or(NULL);
    as_slice(root.get("entry"))
        .unwrap_or_default()
        .iter()
        .flat_map(|entry| {
            as_slice(entry.get("changes"))
                .unwrap_or_default()
                .iter()
                .map(move |change| Envelope {
                    object,
                    entry,
                    change,
                })
        })
        .collect()
}

/// The parts of Meta's envelope around one change.
struct Envelope<'a> {
    object: &'a Value,
    entry: &'a Value,
    change: &'a Value,
}

impl<'a> Envelope<'a> {
    fn field(&self) -> &'a str {
        self.change
            .get("field")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
    }

    fn value(&self) -> Option<&'a Map<String, Value>> {
        self.change.get("value").and_then(Value::as_object)
    }

    fn items(&self) -> impl Iterator<Item = (&'static str, &'a Value)> {
        let value = self.value();
        ITEM_ARRAYS.into_iter().flat_map(move |array| {
            value
                .and_then(|v| v.get(array))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(move |item| (array, item))
        })
    }

    /// One per item, or one for a change without items.
    fn event_count(&self) -> usize {
        self.items().count().max(1)
    }

    fn split_change(&self, events: &mut Vec<Event>, max_bytes: usize) -> Result<(), TooLarge> {
        let field = self.field();
        let context = self.context();
        let mut found_items = false;
        for (array, item) in self.items() {
            found_items = true;
            let kind = classify(field, array, item);
            let value = ItemValue {
                context: &context,
                contacts: self.own_contacts(item),
                array,
                item,
            };
            events.push(Event {
                id: item_id(&kind, item),
                payload: self.encode(ItemChange { field, value }, max_bytes)?,
                kind,
                sent_at: unix_seconds(item.get("timestamp")),
            });
        }
        if !found_items {
            // A change with no items (an account update, or a `messages` change carrying
            // only `errors`) is one event of its own, so it is never lost.
            events.push(self.whole_change_event(field, max_bytes)?);
        }
        Ok(())
    }

    fn whole_change_event(&self, field: &str, max_bytes: usize) -> Result<Event, TooLarge> {
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
        Ok(Event {
            id: EventId::derive(&[
                b"other",
                entry_id.as_bytes(),
                entry_time.as_bytes(),
                &Sha256::digest(&canonical),
            ]),
            kind: EventKind::new(Kind::Other, field),
            payload: self.encode(self.change, max_bytes)?,
            sent_at: unix_seconds(self.entry.get("time")),
        })
    }

    /// The keys of the change's `value` every item's event keeps, borrowed.
    fn context(&self) -> Vec<(&'a str, &'a Value)> {
        let Some(value) = self.value() else {
            return Vec::new();
        };
        CONTEXT_KEYS
            .iter()
            .filter_map(|key| value.get(*key).map(|v| (*key, v)))
            .collect()
    }

    /// The change's `contacts`, as an item's event keeps them.
    fn own_contacts(&self, item: &Value) -> Option<Contacts<'a>> {
        match self.value()?.get("contacts")? {
            Value::Array(all) => Some(Contacts::Some(own_contacts(all, item))),
            other => Some(Contacts::AsIs(other)),
        }
    }

    /// Meta's envelope around `change` alone, within `max_bytes`.
    fn encode(&self, change: impl Serialize, max_bytes: usize) -> Result<Bytes, TooLarge> {
        envelope::encode(self.object, self.entry, change, max_bytes)
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

/// A batch's `contacts` trimmed to those of the item's own user, so one event does not carry
/// every other user of the batch. When none matches (an unusual payload), all are kept.
fn own_contacts<'a>(contacts: &'a [Value], item: &Value) -> Vec<&'a Value> {
    let names: Vec<&str> = USER_FIELDS
        .iter()
        .filter_map(|f| str_field(item, f))
        .collect();
    let own = |contact: &&Value| {
        ["wa_id", "user_id"]
            .iter()
            .filter_map(|f| str_field(contact, f))
            .any(|id| names.contains(&id))
    };
    let mine: Vec<&Value> = contacts.iter().filter(own).collect();
    if mine.is_empty() {
        contacts.iter().collect()
    } else {
        mine
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
mod tests;

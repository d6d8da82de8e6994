//! Meta's envelope around one change, or around one item of a change, written straight from
//! the parsed delivery's parts (nothing is copied) and refused once it passes a size limit.

use std::io;

use bytes::Bytes;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

/// An envelope would pass its size limit.
#[derive(Debug)]
pub struct TooLarge;

/// `{"object", "entry": [{"id", "time", "changes": [change]}]}` in at most `max_bytes`.
pub fn encode(
    object: &Value,
    entry: &Value,
    change: impl Serialize,
    max_bytes: usize,
) -> Result<Bytes, TooLarge> {
    let envelope = OneChange {
        entry: [OneEntry {
            changes: [change],
            id: entry.get("id"),
            time: entry.get("time"),
        }],
        object,
    };
    let mut out = Capped {
        bytes: Vec::new(),
        room: max_bytes,
    };
    serde_json::to_writer(&mut out, &envelope).map_err(|_| TooLarge)?;
    Ok(Bytes::from(out.bytes))
}

/// Meta's envelope holding one change. Fields are in the order serde_json writes a parsed
/// object's keys (sorted), as the payloads have always been written.
#[derive(Serialize)]
struct OneChange<'a, C> {
    entry: [OneEntry<'a, C>; 1],
    object: &'a Value,
}

#[derive(Serialize)]
struct OneEntry<'a, C> {
    changes: [C; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<&'a Value>,
}

/// A change trimmed to one item.
#[derive(Serialize)]
pub struct ItemChange<'a> {
    pub field: &'a str,
    pub value: ItemValue<'a>,
}

/// A change's `value` trimmed to one item: its context, its own contacts, and a
/// one-element array of the item.
pub struct ItemValue<'a> {
    pub context: &'a [(&'a str, &'a Value)],
    pub contacts: Option<Contacts<'a>>,
    pub array: &'a str,
    pub item: &'a Value,
}

pub enum Contacts<'a> {
    Some(Vec<&'a Value>),
    /// Not an array: kept as Meta sent it.
    AsIs(&'a Value),
}

impl Serialize for Contacts<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Contacts::Some(list) => list.serialize(serializer),
            Contacts::AsIs(value) => value.serialize(serializer),
        }
    }
}

/// One entry of an [`ItemValue`].
enum Part<'a> {
    Value(&'a Value),
    Contacts(&'a Contacts<'a>),
    Item(&'a Value),
}

impl Serialize for Part<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Part::Value(value) => value.serialize(serializer),
            Part::Contacts(contacts) => contacts.serialize(serializer),
            Part::Item(item) => std::slice::from_ref(*item).serialize(serializer),
        }
    }
}

impl Serialize for ItemValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut parts: Vec<(&str, Part<'_>)> = self
            .context
            .iter()
            .map(|(key, value)| (*key, Part::Value(value)))
            .collect();
        if let Some(contacts) = &self.contacts {
            parts.push(("contacts", Part::Contacts(contacts)));
        }
        parts.push((self.array, Part::Item(self.item)));
        parts.sort_by_key(|(key, _)| *key);
        let mut map = serializer.serialize_map(Some(parts.len()))?;
        for (key, part) in &parts {
            map.serialize_entry(key, part)?;
        }
        map.end()
    }
}

/// A writer that refuses to grow past its room.
struct Capped {
    bytes: Vec<u8>,
    room: usize,
}

impl io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.room - self.bytes.len() {
            return Err(io::Error::other("over the event size limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

//! Events: their kinds (`kind:detail`, the vocabulary of routes, metrics and logs) and
//! their stable ids.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The six kinds of event, the first half of `kind:detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Message,
    CallPermissionReply,
    MessageStatus,
    Call,
    CallStatus,
    Other,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Message,
        Kind::CallPermissionReply,
        Kind::MessageStatus,
        Kind::Call,
        Kind::CallStatus,
        Kind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::CallPermissionReply => "call_permission_reply",
            Kind::MessageStatus => "message_status",
            Kind::Call => "call",
            Kind::CallStatus => "call_status",
            Kind::Other => "other",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// `kind:detail`, e.g. `call_status:ringing` or `other:unparsed`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventKind {
    pub kind: Kind,
    pub detail: String,
}

impl EventKind {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    /// Parses `kind:detail` as stored and printed.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, detail) = text.split_once(':')?;
        Some(Self::new(Kind::parse(kind)?, detail))
    }

    pub fn unparsed() -> Self {
        Self::new(Kind::Other, "unparsed")
    }
}

/// Written as `kind:detail`, as routes, logs and the admin API name it.
impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.detail)
    }
}

/// A stable event id: the same Meta item (same wamid/wacid and same status or call event)
/// always gets the same id, so retried and duplicated deliveries are recognised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    const PREFIX: &'static str = "evt_";

    /// The id of the Meta item named by `parts` (kind, Meta's id, status or event).
    pub fn derive(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            // Length-prefix each part so ("ab","c") and ("a","bc") differ.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        let digest = hasher.finalize();
        Self(format!("{}{}", Self::PREFIX, hex::encode(&digest[..16])))
    }

    /// Accepts only what [`EventId::derive`] produces: `evt_` and 32 lower-case hex digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid = text.strip_prefix(Self::PREFIX).is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not an event id (evt_ and 32 hex digits)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

//! Routes as values: a route's name, what events it selects, and how it forwards them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::event::{EventKind, Kind};

/// How a route forwards: one request per event, or Meta's delivery as it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMode {
    #[default]
    Event,
    Original,
}

impl ForwardMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardMode::Event => "event",
            ForwardMode::Original => "original",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [ForwardMode::Event, ForwardMode::Original]
            .into_iter()
            .find(|mode| mode.as_str() == text)
    }
}

/// A route's name: short, printable, safe in URLs, logs and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RouteName(String);

impl RouteName {
    pub fn parse(name: &str) -> Result<Self, String> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!(
                "`{name}` is not a route name (1-64 letters, digits, `-`, `_` or `.`)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RouteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One entry of a route's `events`: `*`, a kind, or `kind:detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSelector {
    Everything,
    Kind(Kind),
    Exact(EventKind),
}

impl EventSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let unknown = || {
            let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!(
                "`{text}` is not `*`, a kind or kind:detail (kinds: {})",
                kinds.join(", ")
            )
        };
        if text == "*" {
            return Ok(Self::Everything);
        }
        match text.split_once(':') {
            None => Kind::parse(text).map(Self::Kind).ok_or_else(unknown),
            Some((_, "")) => Err(unknown()),
            Some(_) => EventKind::parse(text).map(Self::Exact).ok_or_else(unknown),
        }
    }

    pub fn matches(&self, event: &EventKind) -> bool {
        match self {
            EventSelector::Everything => true,
            EventSelector::Kind(kind) => event.kind == *kind,
            EventSelector::Exact(exact) => exact == event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_kinds_and_details() {
        let ringing = EventKind::new(Kind::CallStatus, "ringing");
        let read = EventKind::new(Kind::MessageStatus, "read");
        let call_status = EventSelector::parse("call_status").unwrap();
        let only_ringing = EventSelector::parse("call_status:ringing").unwrap();
        let everything = EventSelector::parse("*").unwrap();
        assert!(call_status.matches(&ringing));
        assert!(!call_status.matches(&read));
        assert!(only_ringing.matches(&ringing));
        assert!(!only_ringing.matches(&EventKind::new(Kind::CallStatus, "accepted")));
        assert!(everything.matches(&read));
    }

    #[test]
    fn unknown_selectors_are_refused() {
        for bad in ["calls", "", "call_status:", "nope:x", ":x"] {
            assert!(EventSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn route_names_are_checked() {
        assert!(RouteName::parse("legacy-forward").is_ok());
        for bad in ["", "has space", "a/b", &"x".repeat(65)] {
            assert!(RouteName::parse(bad).is_err(), "{bad}");
        }
    }
}

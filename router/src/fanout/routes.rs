//! Routes: which consumers get which events, and how (DESIGN §7).

use std::fmt;
use std::time::Duration;

use super::outbound::Signer;
use crate::config::{ForwardMode, RouteSettings};
use crate::meta::events::{EventKind, Kind};

/// A route's name: short, printable, safe in URLs, logs and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// A configured consumer, checked and ready to use.
#[derive(Clone)]
pub struct Route {
    pub name: RouteName,
    pub selectors: Vec<EventSelector>,
    pub url: reqwest::Url,
    pub mode: ForwardMode,
    pub signer: Option<Signer>,
    pub timeout: Duration,
    pub concurrency: usize,
    pub retry_schedule: Vec<Duration>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            // Scheme, host and path only: a query may carry a secret.
            .field(
                "url",
                &format!(
                    "{}{}",
                    self.url.origin().ascii_serialization(),
                    self.url.path()
                ),
            )
            .field("mode", &self.mode)
            .field("signed", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

impl Route {
    /// Builds a route from settings that [`crate::config::Settings`] has already validated.
    pub fn from_settings(settings: &RouteSettings) -> Result<Self, String> {
        let signer = settings
            .secret
            .as_ref()
            .map(Signer::parse)
            .transpose()
            .map_err(|e| format!("route {}: bad secret: {e}", settings.name))?;
        Ok(Self {
            name: RouteName::parse(&settings.name)?,
            selectors: settings
                .events
                .iter()
                .map(|s| EventSelector::parse(s))
                .collect::<Result<_, _>>()?,
            url: reqwest::Url::parse(&settings.url).map_err(|e| e.to_string())?,
            mode: settings.mode,
            signer,
            timeout: settings.timeout,
            concurrency: settings.concurrency,
            retry_schedule: settings.retry_schedule.clone(),
        })
    }

    pub fn wants(&self, event: &EventKind) -> bool {
        self.selectors.iter().any(|s| s.matches(event))
    }

    /// How many attempts a job gets in all: the immediate one plus one per delay.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.retry_schedule.len() + 1).unwrap_or(u32::MAX)
    }
}

/// Every configured route.
#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<Route>);

impl Routes {
    pub fn new(routes: Vec<Route>) -> Self {
        Self(routes)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.0.iter()
    }

    pub fn get(&self, name: &RouteName) -> Option<&Route> {
        self.0.iter().find(|r| &r.name == name)
    }

    pub fn matching<'a>(&'a self, event: &'a EventKind) -> impl Iterator<Item = &'a Route> + 'a {
        self.0.iter().filter(move |r| r.wants(event))
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

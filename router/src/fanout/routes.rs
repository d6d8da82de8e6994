//! Routes: which consumers get which events, and how (DESIGN §7).

use std::fmt;
use std::time::Duration;

use super::outbound::Signer;
use crate::domain::event::EventKind;
use crate::domain::route::{EventSelector, ForwardMode, RouteName};

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

//! Call permission per user: what the user granted, and how many requests we may still
//! send (Meta allows 1 per 24 h and 2 per 7 days per business–user pair; a connected call
//! resets both counters).

use serde::{Deserialize, Serialize};
use switchboard_protocol::api::{PermissionState, PermissionStatus};
use switchboard_protocol::ws::{PermissionResponse, ServerEvent};
use switchboard_protocol::User;

/// A user's answer to a permission request, as Meta reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionReply {
    pub user: User,
    pub response: PermissionResponse,
    pub permanent: bool,
    pub expires_at: Option<i64>,
    pub at: i64,
}

const DAY: i64 = 24 * 3600;
const WEEK: i64 = 7 * DAY;
/// A temporary grant lasts 7 days when Meta does not say.
const TEMPORARY: i64 = WEEK;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Permission {
    pub user: User,
    pub status: PermissionStatus,
    pub expires_at: Option<i64>,
    /// When we sent permission requests (Unix seconds), newest last; only the last week.
    pub requests: Vec<i64>,
    pub updated_at: i64,
    /// When the grant last changed (the reply's time, or when Meta was asked): an older
    /// reply, replayed or overtaken, must not undo a newer state.
    #[serde(default)]
    pub state_at: i64,
}

impl Permission {
    pub fn unknown(user: User, now: i64) -> Self {
        Self {
            user,
            status: PermissionStatus::NoPermission,
            expires_at: None,
            requests: Vec::new(),
            updated_at: now,
            state_at: 0,
        }
    }

    /// The status at `now`: a temporary grant past its expiry no longer counts (Meta sends
    /// no webhook when it lapses).
    pub fn status_at(&self, now: i64) -> PermissionStatus {
        match (self.status, self.expires_at) {
            (PermissionStatus::Temporary, Some(expiry)) if expiry <= now => {
                PermissionStatus::NoPermission
            }
            (status, _) => status,
        }
    }

    /// When the next request may go out, or `None` if now.
    pub fn next_request_at(&self, now: i64) -> Option<i64> {
        let in_day: Vec<i64> = self
            .requests
            .iter()
            .copied()
            .filter(|t| *t > now - DAY)
            .collect();
        let in_week: Vec<i64> = self
            .requests
            .iter()
            .copied()
            .filter(|t| *t > now - WEEK)
            .collect();
        let day_free = in_day.first().map(|t| t + DAY);
        let week_free = in_week.first().map(|t| t + WEEK);
        match (!in_day.is_empty(), in_week.len() >= 2) {
            (false, false) => None,
            (true, false) => day_free,
            (false, true) => week_free,
            (true, true) => day_free.max(week_free),
        }
    }

    pub fn state(&self, now: i64) -> PermissionState {
        let status = self.status_at(now);
        PermissionState {
            user: self.user.clone(),
            status,
            expires_at: match status {
                PermissionStatus::Temporary => self.expires_at,
                _ => None,
            },
            next_request_at: self.next_request_at(now),
            can_call: matches!(
                status,
                PermissionStatus::Temporary | PermissionStatus::Permanent
            ),
        }
    }

    /// Counts a request about to be sent, if the limits allow it.
    pub fn take_request(&mut self, now: i64) -> Result<(), RequestRefused> {
        if self.status_at(now) == PermissionStatus::Permanent {
            return Err(RequestRefused::AlreadyPermanent);
        }
        if let Some(at) = self.next_request_at(now) {
            return Err(RequestRefused::Limit { retry_at: at });
        }
        self.requests.retain(|t| *t > now - WEEK);
        self.requests.push(now);
        self.updated_at = now;
        Ok(())
    }

    /// Meta did not take the request after all: it does not count.
    pub fn return_request(&mut self, sent_at: i64) {
        if let Some(index) = self.requests.iter().rposition(|t| *t == sent_at) {
            self.requests.remove(index);
        }
    }

    /// A connected call in either direction resets the request counters.
    pub fn call_connected(&mut self, now: i64) {
        self.requests.clear();
        self.updated_at = now;
    }

    /// Takes the user's reply; `None` when it is older than what is known, or repeats it.
    pub fn apply_reply(&mut self, reply: &PermissionReply) -> Option<ServerEvent> {
        super::call::merge_user(&mut self.user, &reply.user);
        if reply.at < self.state_at {
            return None;
        }
        let before = (self.status, self.expires_at);
        match reply.response {
            PermissionResponse::Accept if reply.permanent => {
                self.status = PermissionStatus::Permanent;
                self.expires_at = None;
            }
            PermissionResponse::Accept => {
                self.status = PermissionStatus::Temporary;
                self.expires_at = Some(
                    reply
                        .expires_at
                        .unwrap_or(reply.at.saturating_add(TEMPORARY)),
                );
            }
            PermissionResponse::Reject => {
                self.status = PermissionStatus::Rejected;
                self.expires_at = None;
            }
        }
        self.updated_at = reply.at;
        self.state_at = reply.at;
        let repeated = before == (self.status, self.expires_at);
        (!repeated).then(|| ServerEvent::PermissionUpdated {
            user: self.user.clone(),
            response: reply.response,
            permanent: reply.permanent,
            expires_at: self.expires_at,
        })
    }

    /// Takes Meta's own view (`GET call_permissions`) as the truth about the grant.
    pub fn apply_meta(&mut self, status: &str, expiration: Option<i64>, now: i64) {
        self.status = match status {
            "permanent" => PermissionStatus::Permanent,
            "temporary" => PermissionStatus::Temporary,
            _ if self.status == PermissionStatus::Rejected => PermissionStatus::Rejected,
            _ => PermissionStatus::NoPermission,
        };
        self.expires_at = match self.status {
            PermissionStatus::Temporary => expiration,
            _ => None,
        };
        self.updated_at = now;
        self.state_at = now;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestRefused {
    #[error("Meta allows one call-permission request per 24 hours and two per 7 days")]
    Limit { retry_at: i64 },
    #[error("the user has already given permanent permission")]
    AlreadyPermanent,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(
        response: PermissionResponse,
        permanent: bool,
        expires_at: Option<i64>,
    ) -> PermissionReply {
        PermissionReply {
            user: User::default(),
            response,
            permanent,
            expires_at,
            at: 1_000,
        }
    }

    #[test]
    fn requests_are_limited_to_one_a_day_and_two_a_week() {
        let mut permission = Permission::unknown(User::default(), 0);
        let start = 10 * WEEK;
        permission.take_request(start).unwrap();
        assert_eq!(
            permission.take_request(start + 60),
            Err(RequestRefused::Limit {
                retry_at: start + DAY
            })
        );
        permission.take_request(start + DAY).unwrap();
        // Two in the week: the third waits for the first to leave the week.
        assert_eq!(
            permission.take_request(start + 2 * DAY),
            Err(RequestRefused::Limit {
                retry_at: start + WEEK
            })
        );
        permission.take_request(start + WEEK).unwrap();
    }

    #[test]
    fn a_connected_call_resets_the_counters() {
        let mut permission = Permission::unknown(User::default(), 0);
        permission.take_request(100).unwrap();
        permission.call_connected(200);
        assert!(permission.take_request(300).is_ok());
    }

    #[test]
    fn a_temporary_grant_expires_and_a_permanent_one_does_not() {
        let mut permission = Permission::unknown(User::default(), 0);
        permission.apply_reply(&reply(PermissionResponse::Accept, false, Some(5_000)));
        assert_eq!(permission.status_at(4_999), PermissionStatus::Temporary);
        assert_eq!(permission.status_at(5_000), PermissionStatus::NoPermission);
        assert!(permission.state(4_000).can_call);
        permission.apply_reply(&reply(PermissionResponse::Accept, true, None));
        assert_eq!(permission.status_at(i64::MAX), PermissionStatus::Permanent);
        assert_eq!(
            permission.take_request(2_000),
            Err(RequestRefused::AlreadyPermanent)
        );
        permission.apply_reply(&reply(PermissionResponse::Reject, false, None));
        assert_eq!(permission.status_at(2_000), PermissionStatus::Rejected);
    }

    #[test]
    fn an_older_or_repeated_reply_changes_nothing() {
        let mut permission = Permission::unknown(User::default(), 0);
        let mut later = reply(PermissionResponse::Reject, false, None);
        later.at = 2_000;
        assert!(permission.apply_reply(&later).is_some());
        // The accept at 1,000 arrives (or is replayed) after the reject at 2,000.
        assert!(permission
            .apply_reply(&reply(PermissionResponse::Accept, true, None))
            .is_none());
        assert_eq!(permission.status_at(3_000), PermissionStatus::Rejected);
        assert!(
            permission.apply_reply(&later).is_none(),
            "a repeat publishes nothing"
        );
        // What Meta says when asked is newer than any reply before it.
        permission.apply_meta("permanent", None, 5_000);
        let mut replayed = later.clone();
        replayed.at = 4_000;
        assert!(permission.apply_reply(&replayed).is_none());
        assert_eq!(permission.status_at(6_000), PermissionStatus::Permanent);
    }

    #[test]
    fn a_request_meta_refused_does_not_count() {
        let mut permission = Permission::unknown(User::default(), 0);
        permission.take_request(100).unwrap();
        permission.return_request(100);
        assert!(permission.take_request(101).is_ok());
    }
}

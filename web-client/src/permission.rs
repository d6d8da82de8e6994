//! A customer's permission to be called, as the dialer shows it next to the number.

use switchboard_protocol::api::{PermissionState, PermissionStatus};
use switchboard_protocol::ws::PermissionResponse;
use switchboard_protocol::User;

use crate::display;

/// What the page knows about the permission of the number in the dial box.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Known {
    /// Not looked up (yet), or the lookup failed.
    #[default]
    Unknown,
    Status {
        status: PermissionStatus,
        /// Unix seconds; temporary permissions only.
        expires_at: Option<i64>,
        /// When the next request may be sent (Unix seconds), if not now.
        next_request_at: Option<i64>,
    },
}

impl Known {
    pub fn from_state(state: &PermissionState) -> Self {
        Known::Status {
            status: state.status,
            expires_at: state.expires_at,
            next_request_at: state.next_request_at,
        }
    }

    /// What a `permission.updated` event says.
    pub fn from_reply(
        response: PermissionResponse,
        permanent: bool,
        expires_at: Option<i64>,
    ) -> Self {
        let status = match (response, permanent) {
            (PermissionResponse::Accept, true) => PermissionStatus::Permanent,
            (PermissionResponse::Accept, false) => PermissionStatus::Temporary,
            (PermissionResponse::Reject, _) => PermissionStatus::Rejected,
        };
        Known::Status {
            status,
            expires_at,
            next_request_at: None,
        }
    }

    /// The value of `data-status`.
    pub fn code(&self) -> &'static str {
        match self {
            Known::Unknown => "unknown",
            Known::Status { status, .. } => match status {
                PermissionStatus::NoPermission => "no_permission",
                PermissionStatus::Temporary => "temporary",
                PermissionStatus::Permanent => "permanent",
                PermissionStatus::Rejected => "rejected",
            },
        }
    }

    /// A sentence for the agent. `now` and `offset_min` place times in the agent's day.
    pub fn describe(&self, now: i64, offset_min: i64) -> String {
        let Known::Status {
            status,
            expires_at,
            next_request_at,
        } = self
        else {
            return "Permission not checked yet.".to_owned();
        };
        let next = next_request_at
            .filter(|at| *at > now)
            .map(|at| {
                format!(
                    " You can ask again at {}.",
                    display::when(at, now, offset_min)
                )
            })
            .unwrap_or_default();
        match status {
            PermissionStatus::NoPermission => {
                format!("No permission to call yet. Ask for permission first.{next}")
            }
            PermissionStatus::Temporary => match expires_at {
                Some(at) => format!(
                    "May be called until {}.",
                    display::when(*at, now, offset_min)
                ),
                None => "May be called for now.".to_owned(),
            },
            PermissionStatus::Permanent => "May be called any time.".to_owned(),
            PermissionStatus::Rejected => {
                format!("Declined to be called.{next}")
            }
        }
    }
}

/// Whether a `permission.updated` event is about the number in the dial box.
pub fn concerns(user: &User, typed: &str) -> bool {
    let Some(target) = display::parse_target(typed) else {
        return false;
    };
    let target = target.as_str();
    user.wa_id.as_deref() == Some(target) || user.user_id.as_deref() == Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_becomes_the_status_the_page_shows() {
        let accepted = Known::from_reply(PermissionResponse::Accept, false, Some(100));
        assert_eq!(accepted.code(), "temporary");
        assert_eq!(
            Known::from_reply(PermissionResponse::Accept, true, None).code(),
            "permanent"
        );
        assert_eq!(
            Known::from_reply(PermissionResponse::Reject, false, None).code(),
            "rejected"
        );
        assert_eq!(Known::Unknown.code(), "unknown");
    }

    #[test]
    fn the_status_says_when_to_ask_again() {
        let now = 1_795_269_900; // 14:05 UTC
        let known = Known::Status {
            status: PermissionStatus::NoPermission,
            expires_at: None,
            next_request_at: Some(now + 3600),
        };
        assert_eq!(
            known.describe(now, 0),
            "No permission to call yet. Ask for permission first. You can ask again at 15:05."
        );
    }

    #[test]
    fn an_update_concerns_the_typed_number_or_user_id() {
        let user = User {
            user_id: Some("US.1".into()),
            wa_id: Some("12125550100".into()),
            ..User::default()
        };
        assert!(concerns(&user, "+1 212 555 0100"));
        assert!(concerns(&user, "US.1"));
        assert!(!concerns(&user, "12125550101"));
        assert!(!concerns(&User::default(), ""));
    }
}

//! Wire types shared by the router, the dialer and wa-sim.
//!
//! - [`ws`]: the events the router pushes to agents over WebSocket (DESIGN §6).
//! - [`api`]: the JSON bodies of the router's REST API (DESIGN §5).
//! - [`graph`]: Meta's Graph API requests, answers and error envelope, as the router sends
//!   them and wa-sim checks them.
//! - [`webhook`]: Meta's webhook envelope, typed for the parts calling needs.
//! - [`sim`]: wa-sim's control and inspection API.
//!
//! Serde only, so it builds for `wasm32-unknown-unknown`.

pub mod api;
pub mod graph;
mod ids;
pub mod sim;
pub mod webhook;
pub mod ws;

use serde::{Deserialize, Serialize};

pub use ids::{Bsuid, CallId, WaId};

/// A WhatsApp user as Meta identifies them since April 2026: always a business-scoped
/// user id (BSUID), a phone number only when Meta may share it, and a username only when
/// the user adopted one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct User {
    /// The BSUID, e.g. `US.13491208655302741918`. Absent only for records made before
    /// Meta sent BSUIDs (which stored it as empty text, read here as absent).
    #[serde(
        default,
        deserialize_with = "ids::non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<Bsuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<WaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl User {
    /// What to show an agent: the name, else the username, else the number, else the id.
    pub fn display_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.username.as_deref())
            .or(self.wa_id.as_deref())
            .or(self.user_id.as_deref())
            .unwrap_or_default()
    }
}

/// How a user is addressed in a request: a phone number (digits, optional leading `+`) or
/// a BSUID (`CC.` then alphanumerics, parent BSUIDs with `ENT.`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserRef {
    Phone(WaId),
    Bsuid(Bsuid),
}

impl UserRef {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let digits = text.strip_prefix('+').unwrap_or(text);
        if (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self::Phone(digits.into()));
        }
        if is_bsuid(text) {
            return Ok(Self::Bsuid(text.into()));
        }
        Err(format!(
            "`{text}` is neither a phone number (6-15 digits) nor a WhatsApp user id like US.1349…"
        ))
    }

    /// As Meta's requests take it: a phone number as `to`, a BSUID as `recipient`.
    pub fn to_and_recipient(&self) -> (Option<WaId>, Option<Bsuid>) {
        match self {
            UserRef::Phone(number) => (Some(number.clone()), None),
            UserRef::Bsuid(id) => (None, Some(id.clone())),
        }
    }

    /// The user as far as this reference knows them.
    pub fn to_user(&self) -> User {
        let (wa_id, user_id) = self.to_and_recipient();
        User {
            user_id,
            wa_id,
            ..User::default()
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            UserRef::Phone(number) => number,
            UserRef::Bsuid(id) => id,
        }
    }
}

impl std::fmt::Display for UserRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `CC.` + up to 128 alphanumerics, or a parent id `CC.ENT.` + alphanumerics.
pub fn is_bsuid(text: &str) -> bool {
    let Some((country, rest)) = text.split_once('.') else {
        return false;
    };
    let rest = rest.strip_prefix("ENT.").unwrap_or(rest);
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && (1..=128).contains(&rest.len())
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_addressed_by_phone_or_bsuid() {
        assert_eq!(
            UserRef::parse("+12125550100"),
            Ok(UserRef::Phone("12125550100".into()))
        );
        assert_eq!(
            UserRef::parse("US.13491208655302741918"),
            Ok(UserRef::Bsuid("US.13491208655302741918".into()))
        );
        assert!(matches!(
            UserRef::parse("US.ENT.11815799212886844830"),
            Ok(UserRef::Bsuid(_))
        ));
        for bad in ["", "12", "abc", "us.123", "US.", "US.12-3", "+1 212 555"] {
            assert!(UserRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_user_without_a_number_is_shown_by_username() {
        let user = User {
            user_id: Some("US.1".into()),
            username: Some("@pablo".into()),
            ..User::default()
        };
        assert_eq!(user.display_name(), "@pablo");
    }

    #[test]
    fn a_stored_user_with_an_empty_id_reads_as_unknown() {
        let user: User = serde_json::from_str(r#"{"user_id":"","wa_id":"12125550100"}"#).unwrap();
        assert_eq!(user.user_id, None);
        assert_eq!(user.wa_id.as_deref(), Some("12125550100"));
        let written = serde_json::to_string(&user).unwrap();
        assert_eq!(written, r#"{"wa_id":"12125550100"}"#);
    }
}

//! Calls ringing for every agent, what the banner says once one stops ringing (taken by
//! another agent, or gone), and the banner as the page shows it.

use switchboard_protocol::{User, UserRef};

use super::state::Peer;
use super::{Dialer, Effect};

/// A call ringing for every agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring {
    pub call_id: String,
    pub user: User,
    pub(super) offer: String,
}

/// What the incoming banner says after a call stops ringing.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Notice {
    Taken {
        call_id: String,
        user: User,
        by: Option<String>,
    },
    Gone {
        call_id: String,
        user: User,
    },
}

impl Notice {
    pub(super) fn call_id(&self) -> &str {
        match self {
            Notice::Taken { call_id, .. } | Notice::Gone { call_id, .. } => call_id,
        }
    }
}

/// `#incoming[data-state]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BannerState {
    Ringing,
    Claimed,
    Ended,
}

impl BannerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BannerState::Ringing => "ringing",
            BannerState::Claimed => "claimed",
            BannerState::Ended => "ended",
        }
    }
}

/// The incoming-call banner as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Banner<'a> {
    pub call_id: &'a str,
    pub user: &'a User,
    pub state: BannerState,
    /// Who answered, once claimed (`None` if the name is not known).
    pub taken_by: Option<&'a str>,
    /// Whether the agent can answer now (not while on another call).
    pub can_accept: bool,
    /// How many more calls are ringing behind this one.
    pub waiting: usize,
}

impl Dialer {
    pub fn banner(&self) -> Option<Banner<'_>> {
        let can_accept = self.live().is_none();
        if let Some(ring) = self.rings.first() {
            return Some(Banner {
                call_id: &ring.call_id,
                user: &ring.user,
                state: BannerState::Ringing,
                taken_by: None,
                can_accept,
                waiting: self.rings.len() - 1,
            });
        }
        self.notice.as_ref().map(|notice| match notice {
            Notice::Taken { call_id, user, by } => Banner {
                call_id,
                user,
                state: BannerState::Claimed,
                taken_by: by.as_deref(),
                can_accept: false,
                waiting: 0,
            },
            Notice::Gone { call_id, user } => Banner {
                call_id,
                user,
                state: BannerState::Ended,
                taken_by: None,
                can_accept: false,
                waiting: 0,
            },
        })
    }

    pub(super) fn expire_notice(&self) -> Vec<Effect> {
        self.notice
            .as_ref()
            .map(|n| Effect::ExpireNotice {
                call_id: n.call_id().to_owned(),
            })
            .into_iter()
            .collect()
    }
}

pub(super) fn caller(peer: &Peer) -> User {
    match peer {
        Peer::Caller(user) => user.clone(),
        Peer::Dialled(UserRef::Phone(number)) => User {
            wa_id: Some(number.clone()),
            ..User::default()
        },
        Peer::Dialled(UserRef::Bsuid(id)) => User {
            user_id: Some(id.clone()),
            ..User::default()
        },
    }
}

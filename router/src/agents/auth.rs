//! Agent identity: a token whose SHA-256 is in the configuration, or a session cookie made
//! from one at sign-in; and the origins a cookie may be used from.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::revocation::Revocations;
use super::session::{SessionKey, SessionRef};
use super::throttle::{Attempt, LoginThrottle};
use crate::domain::agent::Agent;
use crate::store::StoreError;

/// One configured agent: who it is, and the SHA-256 of its token (never the token).
pub struct AgentEntry {
    pub agent: Agent,
    pub token_sha256: [u8; 32],
}

/// The configured agents.
pub struct Agents(Vec<AgentEntry>);

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|e| &e.agent))
            .finish()
    }
}

impl Agents {
    pub fn new(entries: Vec<AgentEntry>) -> Self {
        Self(entries)
    }

    pub fn named(&self, name: &str) -> Option<Agent> {
        self.0
            .iter()
            .find(|e| e.agent.name == name)
            .map(|e| e.agent.clone())
    }

    /// A short name for an agent's current token (not the token, and too little of a hash
    /// of its hash to help anyone), carried in its sessions so that replacing the token in
    /// the configuration ends them.
    pub fn generation(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|e| e.agent.name == name)
            .map(|e| hex::encode(&Sha256::digest(e.token_sha256)[..6]))
    }

    /// The agent holding `token`. Every entry is compared, in constant time, so the time
    /// taken says nothing about which entry (if any) matched.
    pub fn authenticate(&self, token: &str) -> Option<Agent> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for entry in &self.0 {
            if bool::from(entry.token_sha256.ct_eq(&digest)) {
                found = Some(entry.agent.clone());
            }
        }
        found
    }
}

/// Who may use the API: the configured agents, the key their browser sessions are signed
/// with, the sessions ended early, the sign-in throttle and the origins of the dialer's
/// pages.
pub struct Access {
    pub agents: Agents,
    pub sessions: SessionKey,
    pub revocations: Revocations,
    pub throttle: LoginThrottle,
    /// How long a session lasts from sign-in.
    pub session_lifetime: Duration,
    pub origins: AllowedOrigins,
}

/// What a request carries to say who it is.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// The session cookie set at sign-in.
    Session(&'a str),
}

/// Who is asking, and the session they ride if they came with the cookie.
#[derive(Debug, Clone)]
pub struct Caller {
    pub agent: Agent,
    /// `None` for a bearer token: it is no session, and nothing ends it but the
    /// configuration.
    pub session: Option<SessionRef>,
}

/// A session made at sign-in: the agent, the cookie's value, and the session it names.
#[derive(Debug)]
pub struct SignedIn {
    pub agent: Agent,
    pub cookie: String,
    pub session: SessionRef,
}

impl Access {
    /// Who a credential names, if it is valid at `now` (Unix seconds).
    pub fn identify(&self, credential: Credential<'_>, now: i64) -> Option<Caller> {
        match credential {
            Credential::Bearer(token) => Some(Caller {
                agent: self.agents.authenticate(token)?,
                session: None,
            }),
            Credential::Session(value) => {
                let claims = self.sessions.verify(value, now)?;
                // The configuration is the truth: an agent removed from it, or given a new
                // token, loses its sessions.
                if self.agents.generation(&claims.agent).as_deref()
                    != Some(claims.generation.as_str())
                {
                    return None;
                }
                if self.revocations.is_revoked(&claims.session.id) {
                    return None;
                }
                Some(Caller {
                    agent: self.agents.named(&claims.agent)?,
                    session: Some(claims.session),
                })
            }
        }
    }

    /// Signs an agent in by token from `client` at `now` (Unix seconds): a new session,
    /// unless the token is wrong or the address has failed too often lately. Failures are
    /// logged with the address, never the token.
    pub fn sign_in(&self, client: IpAddr, token: &str, now: i64) -> Attempt<SignedIn> {
        let lifetime = i64::try_from(self.session_lifetime.as_secs()).unwrap_or(i64::MAX);
        let attempt = self.throttle.attempt(client, Instant::now(), || {
            let agent = self.agents.authenticate(token)?;
            let generation = self.agents.generation(&agent.name).unwrap_or_default();
            let expires = now.saturating_add(lifetime);
            let (cookie, session) = self.sessions.issue(&agent.name, &generation, expires);
            Some(SignedIn {
                agent,
                cookie,
                session,
            })
        });
        match &attempt {
            Attempt::Accepted(signed_in) => {
                tracing::info!(agent = %signed_in.agent.name, %client, "agent signed in");
            }
            Attempt::Refused => {
                tracing::warn!(%client, "sign-in failed: the token matches no agent");
            }
            Attempt::Throttled(throttled) => tracing::warn!(
                %client,
                retry_after_s = throttled.retry_after.as_secs(),
                "sign-in refused unchecked: too many failures from this address"
            ),
        }
        attempt
    }

    /// Ends `caller`'s session for good, if it came with one: its cookie stops working
    /// here and after a restart, and its open sockets close.
    pub async fn sign_out(&self, caller: &Caller, now: i64) -> Result<(), StoreError> {
        let Some(session) = &caller.session else {
            return Ok(());
        };
        self.revocations.revoke(session, now).await?;
        tracing::info!(agent = %caller.agent.name, "agent signed out");
        Ok(())
    }
}

/// The origins the dialer's pages are served from: `public_url`'s and
/// `server.allowed_origins`.
pub struct AllowedOrigins(pub Vec<String>);

/// A request whose `Origin` may not use the credential it carries.
#[derive(Debug, thiserror::Error)]
pub enum ForeignOrigin {
    #[error(
        "a request signed in with the session cookie must come from the dialer's own origin; \
         this one has no Origin header"
    )]
    Missing,
    #[error(
        "the origin `{0}` may not use this server's sessions or sockets \
         (only public_url's origin and server.allowed_origins may)"
    )]
    NotAllowed(String),
}

impl AllowedOrigins {
    pub fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|allowed| allowed == origin)
    }

    /// A request that rides the cookie, where that matters (an unsafe method, or the
    /// WebSocket): its `Origin` must be one of ours. Browsers send `Origin` on every such
    /// request, same-origin or cross-origin, so one without it did not come from the
    /// dialer's page and is refused too.
    pub fn check_cookie(&self, origin: Option<&str>) -> Result<(), ForeignOrigin> {
        match origin {
            None => Err(ForeignOrigin::Missing),
            Some(origin) if self.allows(origin) => Ok(()),
            Some(origin) => Err(ForeignOrigin::NotAllowed(origin.to_owned())),
        }
    }

    /// A request with no ambient credential (a bearer token, or none yet at sign-in):
    /// clients that are not browsers send no `Origin`, but a page that sent one must be
    /// ours.
    pub fn check_present(&self, origin: Option<&str>) -> Result<(), ForeignOrigin> {
        match origin {
            Some(origin) if !self.allows(origin) => {
                Err(ForeignOrigin::NotAllowed(origin.to_owned()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::agent::Role;

    fn entry(name: &str, token: &str, role: Role) -> AgentEntry {
        AgentEntry {
            agent: Agent {
                name: name.into(),
                role,
            },
            token_sha256: Sha256::digest(token.as_bytes()).into(),
        }
    }

    #[test]
    fn a_new_token_is_a_new_generation_so_old_sessions_end() {
        let before = Agents::new(vec![entry("asha", "old", Role::Agent)]);
        let again = Agents::new(vec![entry("asha", "old", Role::Agent)]);
        let after = Agents::new(vec![entry("asha", "new", Role::Agent)]);
        assert_eq!(before.generation("asha"), again.generation("asha"));
        assert_ne!(before.generation("asha"), after.generation("asha"));
        assert_eq!(after.generation("nobody"), None);
    }

    #[test]
    fn the_cookie_needs_an_allowed_origin_and_a_token_only_no_foreign_one() {
        let origins = AllowedOrigins(vec!["https://dial.example".into()]);
        assert!(origins.check_cookie(Some("https://dial.example")).is_ok());
        for refused in [None, Some("https://evil.example"), Some("null"), Some("")] {
            assert!(origins.check_cookie(refused).is_err(), "{refused:?}");
        }
        // Ports and sibling subdomains are other origins.
        assert!(origins
            .check_cookie(Some("https://dial.example:8443"))
            .is_err());
        assert!(origins
            .check_cookie(Some("https://x.dial.example"))
            .is_err());
        assert!(origins.check_present(None).is_ok());
        assert!(origins.check_present(Some("https://dial.example")).is_ok());
        assert!(origins.check_present(Some("https://evil.example")).is_err());
    }

    #[test]
    fn a_token_is_known_by_its_hash_only() {
        let agents = Agents::new(vec![
            entry("asha", "t-asha", Role::Agent),
            entry("root", "t-root", Role::Admin),
        ]);
        assert_eq!(agents.authenticate("t-asha").unwrap().name, "asha");
        assert_eq!(agents.authenticate("t-root").unwrap().role, Role::Admin);
        assert!(agents.authenticate("t-nobody").is_none());
        assert!(agents.authenticate("").is_none());
    }
}

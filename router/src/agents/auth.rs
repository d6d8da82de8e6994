//! Agent identity: a token whose SHA-256 is in the configuration.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::session::SessionKey;
use crate::domain::agent::Agent;

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

/// Who may use the API: the configured agents and the key their browser sessions are
/// signed with.
pub struct Access {
    pub agents: Agents,
    pub sessions: SessionKey,
}

/// What a request carries to say who it is.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// The session cookie set at sign-in.
    Session(&'a str),
}

impl Access {
    /// The agent a credential names, if it is valid at `now` (Unix seconds).
    pub fn identify(&self, credential: Credential<'_>, now: i64) -> Option<Agent> {
        match credential {
            Credential::Bearer(token) => self.agents.authenticate(token),
            Credential::Session(value) => {
                let (name, generation) = self.sessions.verify(value, now)?;
                // The configuration is the truth: an agent removed from it, or given a new
                // token, loses its sessions.
                if self.agents.generation(&name).as_deref() != Some(generation.as_str()) {
                    return None;
                }
                self.agents.named(&name)
            }
        }
    }

    /// Signs an agent in by token: the agent and a session value valid until `expires`.
    pub fn sign_in(&self, token: &str, expires: i64) -> Option<(Agent, String)> {
        let agent = self.agents.authenticate(token)?;
        let generation = self.agents.generation(&agent.name).unwrap_or_default();
        let session = self.sessions.issue(&agent.name, &generation, expires);
        Some((agent, session))
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

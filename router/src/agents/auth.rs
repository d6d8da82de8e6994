//! Agent identity: a token whose SHA-256 is in the configuration.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::session::SessionKey;
use crate::config::AgentSettings;
use crate::domain::agent::Agent;

struct Entry {
    agent: Agent,
    token_sha256: [u8; 32],
}

/// The configured agents.
pub struct Agents(Vec<Entry>);

impl Agents {
    pub fn from_settings(settings: &[AgentSettings]) -> Result<Self, String> {
        settings
            .iter()
            .map(|s| {
                let mut token_sha256 = [0u8; 32];
                hex::decode_to_slice(&s.token_sha256, &mut token_sha256)
                    .map_err(|e| format!("agent {}: token_sha256: {e}", s.name))?;
                Ok(Entry {
                    agent: Agent {
                        name: s.name.clone(),
                        role: s.role,
                    },
                    token_sha256,
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
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

    fn settings(name: &str, token: &str, role: Role) -> AgentSettings {
        AgentSettings {
            name: name.into(),
            token_sha256: hex::encode(Sha256::digest(token.as_bytes())),
            role,
        }
    }

    #[test]
    fn a_new_token_is_a_new_generation_so_old_sessions_end() {
        let before = Agents::from_settings(&[settings("asha", "old", Role::Agent)]).unwrap();
        let again = Agents::from_settings(&[settings("asha", "old", Role::Agent)]).unwrap();
        let after = Agents::from_settings(&[settings("asha", "new", Role::Agent)]).unwrap();
        assert_eq!(before.generation("asha"), again.generation("asha"));
        assert_ne!(before.generation("asha"), after.generation("asha"));
        assert_eq!(after.generation("nobody"), None);
    }

    #[test]
    fn a_token_is_known_by_its_hash_only() {
        let agents = Agents::from_settings(&[
            settings("asha", "t-asha", Role::Agent),
            settings("root", "t-root", Role::Admin),
        ])
        .unwrap();
        assert_eq!(agents.authenticate("t-asha").unwrap().name, "asha");
        assert_eq!(agents.authenticate("t-root").unwrap().role, Role::Admin);
        assert!(agents.authenticate("t-nobody").is_none());
        assert!(agents.authenticate("").is_none());
    }
}

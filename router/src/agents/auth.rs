//! Agent identity: a token whose SHA-256 is in the configuration.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{AgentSettings, Role};
use crate::http::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub name: String,
    pub role: Role,
}

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

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?;
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn identify(req: &HttpRequest) -> Result<Agent, ApiError> {
    let agents = req
        .app_data::<web::Data<Agents>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("agents are not configured")))?;
    if let Some(token) = bearer_token(req) {
        return agents.authenticate(token).ok_or(ApiError::Unauthorized);
    }
    let cookie = req
        .cookie(super::session::COOKIE)
        .ok_or(ApiError::Unauthorized)?;
    let key = req
        .app_data::<web::Data<super::session::SessionKey>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("sessions are not configured")))?;
    let (name, generation) = key
        .verify(cookie.value(), crate::store::now_millis() / 1000)
        .ok_or(ApiError::Unauthorized)?;
    // The configuration is the truth: an agent removed from it, or given a new token,
    // loses its sessions.
    if agents.generation(&name).as_deref() != Some(generation.as_str()) {
        return Err(ApiError::Unauthorized);
    }
    agents.named(&name).ok_or(ApiError::Unauthorized)
}

impl FromRequest for Agent {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identify(req))
    }
}

/// An agent with `role = "admin"`.
#[derive(Debug, Clone)]
pub struct Admin(pub Agent);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identify(req).and_then(|agent| match agent.role {
            Role::Admin => Ok(Admin(agent)),
            Role::Agent => Err(ApiError::Forbidden),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

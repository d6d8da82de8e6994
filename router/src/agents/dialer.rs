//! What the dialer needs to start (`GET /api/config`): ICE servers, with TURN credentials
//! minted for the agent asking, and the calling settings it runs with.

use secrecy::SecretString;
use switchboard_protocol::api::{DialerConfig, IceServer};

use super::turn;
use crate::domain::agent::Agent;

/// What `GET /api/config` is made from.
pub struct DialerSettings {
    pub ice_servers: Vec<IceServer>,
    pub turn: Option<TurnMint>,
    pub phone_number_id: String,
    pub ice_gathering_timeout_ms: u32,
    /// Cookies are marked `Secure` when the public URL is HTTPS.
    pub secure_cookies: bool,
}

/// A TURN server whose credentials are minted per agent from a shared secret.
pub struct TurnMint {
    pub urls: Vec<String>,
    pub secret: SecretString,
    pub ttl_secs: i64,
}

impl DialerSettings {
    /// The dialer's configuration for `agent` at `now` (Unix seconds).
    pub fn config_for(&self, agent: &Agent, now: i64) -> DialerConfig {
        let mut ice_servers = self.ice_servers.clone();
        if let Some(mint) = &self.turn {
            let expires = now.saturating_add(mint.ttl_secs);
            let (username, credential) = turn::credentials(&mint.secret, &agent.name, expires);
            ice_servers.push(IceServer {
                urls: mint.urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        DialerConfig {
            agent: agent.name.clone(),
            ice_servers,
            phone_number_id: self.phone_number_id.clone(),
            ice_gathering_timeout_ms: self.ice_gathering_timeout_ms,
        }
    }
}

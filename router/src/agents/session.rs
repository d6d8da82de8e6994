//! Browser sessions: after `POST /api/login`, an `HttpOnly`, `SameSite=Strict` cookie
//! naming the agent, its token's generation, its expiry and a random session id, signed
//! with a key kept in the data directory (so sessions survive a restart and no secret
//! needs configuring). The id is what signing out revokes
//! ([`super::revocation::Revocations`]).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const COOKIE: &str = "switchboard_session";

/// What a valid session cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub agent: String,
    /// The agent's token when the session was made ([`crate::agents::auth::Agents::generation`]).
    pub generation: String,
    pub session: SessionRef,
}

/// One session: its id, and when it ends (Unix seconds) unless it is revoked first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub id: String,
    pub expires: i64,
}

/// A new random session id: 16 bytes, URL-safe base64.
fn new_session_id() -> String {
    let mut id = [0u8; 16];
    rand::rng().fill_bytes(&mut id);
    URL_SAFE_NO_PAD.encode(id)
}

#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

impl SessionKey {
    /// Reads `data_dir/session.key`, creating it (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("session.key");
        if let Ok(bytes) = std::fs::read(&path) {
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display()))?;
            return Ok(Self(key));
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(&key)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self(key))
    }

    #[cfg(test)]
    pub fn fixed(key: [u8; 32]) -> Self {
        Self(key)
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(payload.as_bytes());
        mac
    }

    /// A new session for `agent`, valid until `expires` (Unix seconds): the cookie value
    /// and the session it stands for. `generation` names the agent's token (see
    /// [`crate::agents::auth::Agents::generation`]): when the token is replaced in the
    /// configuration, sessions made with the old one end.
    pub fn issue(&self, agent: &str, generation: &str, expires: i64) -> (String, SessionRef) {
        let id = new_session_id();
        let payload = format!(
            "{}.{}.{expires}.{id}",
            URL_SAFE_NO_PAD.encode(agent),
            URL_SAFE_NO_PAD.encode(generation)
        );
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        (format!("{payload}.{tag}"), SessionRef { id, expires })
    }

    /// What a cookie says, if its signature holds and it has not expired at `now`.
    pub fn verify(&self, value: &str, now: i64) -> Option<Claims> {
        let (payload, tag) = value.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(payload).verify_slice(&tag).ok()?;
        let mut parts = payload.split('.');
        let (agent, generation, expires, id) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let expires = expires.parse::<i64>().ok()?;
        if parts.next().is_some() || expires <= now || id.is_empty() {
            return None;
        }
        let text = |part: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(part).ok()?).ok();
        Some(Claims {
            agent: text(agent)?,
            generation: text(generation)?,
            session: SessionRef {
                id: id.to_owned(),
                expires,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_names_its_agent_until_it_expires() {
        let key = SessionKey::fixed([7; 32]);
        let (cookie, session) = key.issue("asha", "g1", 1_000);
        let claims = key.verify(&cookie, 999).unwrap();
        assert_eq!(
            (claims.agent.as_str(), claims.generation.as_str()),
            ("asha", "g1")
        );
        assert_eq!(claims.session, session);
        assert_eq!(session.expires, 1_000);
        assert_eq!(key.verify(&cookie, 1_000), None);
    }

    #[test]
    fn every_sign_in_is_a_session_of_its_own() {
        let key = SessionKey::fixed([7; 32]);
        let (_, first) = key.issue("asha", "g1", 1_000);
        let (_, second) = key.issue("asha", "g1", 1_000);
        assert_ne!(first.id, second.id);
        assert_eq!(first.id.len(), 22, "16 random bytes");
    }

    #[test]
    fn a_forged_or_altered_session_is_refused() {
        let key = SessionKey::fixed([7; 32]);
        let (cookie, _) = key.issue("asha", "g1", 1_000);
        let (other, _) = SessionKey::fixed([8; 32]).issue("asha", "g1", 1_000);
        assert_eq!(key.verify(&other, 0), None);
        let promoted = cookie.replacen(
            &URL_SAFE_NO_PAD.encode("asha"),
            &URL_SAFE_NO_PAD.encode("root"),
            1,
        );
        assert_eq!(key.verify(&promoted, 0), None);
        assert_eq!(key.verify("garbage", 0), None);
        // A cookie from before sessions had ids, signed with the right key, names no
        // session that could be revoked: refused.
        let old = format!(
            "{}.{}.1000",
            URL_SAFE_NO_PAD.encode("asha"),
            URL_SAFE_NO_PAD.encode("g1")
        );
        let tag = URL_SAFE_NO_PAD.encode(key.mac(&old).finalize().into_bytes());
        assert_eq!(key.verify(&format!("{old}.{tag}"), 0), None);
    }

    #[test]
    fn the_key_is_kept_across_restarts() {
        let dir = tempfile::TempDir::new().unwrap();
        let first = SessionKey::load_or_create(dir.path()).unwrap();
        let again = SessionKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.0, again.0);
    }
}

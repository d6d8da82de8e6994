//! Browser sessions: after `POST /api/login`, an `HttpOnly`, `SameSite=Strict` cookie
//! naming the agent and its expiry, signed with a key kept in the data directory (so
//! sessions survive a restart and no secret needs configuring).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const COOKIE: &str = "switchboard_session";
/// An agent signs in once per working day.
pub const LIFETIME_SECS: i64 = 12 * 3600;

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

    /// The cookie value for `agent`, valid until `expires` (Unix seconds). `generation`
    /// names the agent's token (see [`crate::agents::auth::Agents::generation`]): when the
    /// token is replaced in the configuration, sessions made with the old one end.
    pub fn issue(&self, agent: &str, generation: &str, expires: i64) -> String {
        let payload = format!(
            "{}.{}.{expires}",
            URL_SAFE_NO_PAD.encode(agent),
            URL_SAFE_NO_PAD.encode(generation)
        );
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The agent a cookie names and its token generation, if the signature holds and it
    /// has not expired.
    pub fn verify(&self, value: &str, now: i64) -> Option<(String, String)> {
        let (payload, tag) = value.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(payload).verify_slice(&tag).ok()?;
        let mut parts = payload.split('.');
        let (agent, generation, expires) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || expires.parse::<i64>().ok()? <= now {
            return None;
        }
        let text = |part: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(part).ok()?).ok();
        Some((text(agent)?, text(generation)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_names_its_agent_until_it_expires() {
        let key = SessionKey::fixed([7; 32]);
        let cookie = key.issue("asha", "g1", 1_000);
        assert_eq!(key.verify(&cookie, 999), Some(("asha".into(), "g1".into())));
        assert_eq!(key.verify(&cookie, 1_000), None);
    }

    #[test]
    fn a_forged_or_altered_session_is_refused() {
        let key = SessionKey::fixed([7; 32]);
        let cookie = key.issue("asha", "g1", 1_000);
        let other = SessionKey::fixed([8; 32]).issue("asha", "g1", 1_000);
        assert_eq!(key.verify(&other, 0), None);
        let promoted = cookie.replacen(
            &URL_SAFE_NO_PAD.encode("asha"),
            &URL_SAFE_NO_PAD.encode("root"),
            1,
        );
        assert_eq!(key.verify(&promoted, 0), None);
        assert_eq!(key.verify("garbage", 0), None);
    }

    #[test]
    fn the_key_is_kept_across_restarts() {
        let dir = tempfile::TempDir::new().unwrap();
        let first = SessionKey::load_or_create(dir.path()).unwrap();
        let again = SessionKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.0, again.0);
    }
}

//! The session cookie an agent's browser presents on `/ws` and the API
//! (`agents::session::SessionKey::verify`), under a known key.
//!
//! Input: a cookie value. It is checked as sent (almost always refused: a forged
//! signature), then again with a correct signature over everything before its last dot,
//! so the fuzzer reaches the parsing a valid signature lets through; and its bytes, cut at
//! the first NUL, name an agent and a token generation for a fresh session.
//!
//! What must hold, besides no panic: an accepted cookie has not expired and names a
//! session; the same claims issued again verify to the same claims; a fresh session for any
//! agent and generation verifies back to them, and not once expired.

#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use switchboard::agents::session::SessionKey;

/// A fixed "now" (2026-01-01), so a run is reproducible.
const NOW: i64 = 1_767_225_600;
const KEY: [u8; 32] = [0x5a; 32];

/// The router's key type, holding [`KEY`]: written where the router keeps it, read back.
fn key() -> &'static SessionKey {
    static SESSION_KEY: OnceLock<SessionKey> = OnceLock::new();
    SESSION_KEY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("switchboard-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        std::fs::write(dir.join("session.key"), KEY).expect("the key written");
        let key = SessionKey::load_or_create(&dir).expect("the key read");
        let _ = std::fs::remove_dir_all(&dir);
        key
    })
}

/// `payload.tag`, signed as the router signs its cookies.
fn signed(payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&KEY).expect("HMAC takes any key");
    mac.update(payload.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{tag}")
}

fuzz_target!(|data: &[u8]| {
    let key = key();
    let text = String::from_utf8_lossy(data);
    let _ = key.verify(&text, NOW);

    let payload = text.rsplit_once('.').map_or(&*text, |(payload, _)| payload);
    if let Some(claims) = key.verify(&signed(payload), NOW) {
        assert!(claims.session.expires > NOW);
        assert!(!claims.session.id.is_empty());
        let (again, session) = key.issue(&claims.agent, &claims.generation, claims.session.expires);
        let reread = key.verify(&again, NOW).expect("a cookie just issued");
        assert_eq!(
            (reread.agent, reread.generation),
            (claims.agent, claims.generation)
        );
        assert_eq!(reread.session, session);
    }

    let (agent, generation) = text.split_once('\0').unwrap_or((&text, ""));
    let (cookie, session) = key.issue(agent, generation, NOW + 60);
    let claims = key.verify(&cookie, NOW).expect("a fresh session verifies");
    assert_eq!(
        (claims.agent.as_str(), claims.generation.as_str()),
        (agent, generation)
    );
    assert_eq!(claims.session, session);
    assert_eq!(key.verify(&cookie, NOW + 60), None, "an expired session");
});

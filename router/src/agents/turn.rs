//! Short-lived TURN credentials from a coturn-style shared secret (the "TURN REST API"
//! scheme): username `<expiry>:<agent>`, password `base64(HMAC-SHA1(secret, username))`.
//! The browser gets credentials that stop working at the expiry, never the secret.

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;

/// `(username, credential)` for `agent`, valid until `expires` (Unix seconds).
pub fn credentials(secret: &SecretString, agent: &str, expires: i64) -> (String, String) {
    let username = format!("{expires}:{agent}");
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes any key");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        let secret = SecretString::from("north".to_owned());
        let (username, credential) = credentials(&secret, "asha", 1_700_000_000);
        assert_eq!(username, "1700000000:asha");
        // HMAC-SHA1("north", "1700000000:asha") in base64, computed independently with
        // Python's hmac module: what coturn computes to check the password.
        assert_eq!(credential, "uDRqq6+ICMy9cckW9fbtXCEvGTA=");
    }
}

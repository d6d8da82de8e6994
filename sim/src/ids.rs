//! Identifiers the simulator hands out the way Meta does: `wacid.` call ids, `wamid.`
//! message ids, and business-scoped user ids (BSUIDs) for users.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use switchboard_protocol::Bsuid;

/// A call id, `wacid.` and base64. URL-safe base64, so an id can sit in a URL path
/// (`/sim/calls/{id}`, the router's `/api/calls/{id}`) without escaping.
pub fn new_call_id() -> String {
    format!("wacid.{}", random_base64(36))
}

/// A message id, `wamid.` and base64.
pub fn new_message_id() -> String {
    format!("wamid.{}", random_base64(30))
}

/// Graph's `fbtrace_id`: an opaque token support would ask for.
pub fn new_trace_id() -> String {
    random_base64(9).replace(['-', '_', '='], "A")
}

fn random_base64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    // Meta's ids start with the same protobuf prefix; keep the look.
    bytes[0] = 0x1c;
    bytes[1] = 0x18;
    URL_SAFE.encode(bytes)
}

/// The BSUID Meta would give the user with this phone number in this business portfolio:
/// the country's ISO code, a dot, and 20 digits, stable for the pair.
pub fn bsuid_for_phone(portfolio: &str, phone: &str) -> Bsuid {
    format!("{}.{}", country_of(phone), digits(portfolio, phone)).into()
}

/// The BSUID of a user known only by username.
pub fn bsuid_for_username(portfolio: &str, username: &str) -> Bsuid {
    format!("US.{}", digits(portfolio, username)).into()
}

fn digits(portfolio: &str, who: &str) -> String {
    let digest = Sha256::new()
        .chain_update(portfolio.as_bytes())
        .chain_update([0u8])
        .chain_update(who.as_bytes())
        .finalize();
    let mut text: String = digest
        .iter()
        .map(|byte| char::from(b'0' + byte % 10))
        .take(20)
        .collect();
    // A leading zero would look odd; Meta's never have one.
    if text.starts_with('0') {
        text.replace_range(0..1, "1");
    }
    text
}

/// The country of a phone number from its calling code, for the BSUID prefix.
fn country_of(phone: &str) -> &'static str {
    const CODES: [(&str, &str); 18] = [
        ("234", "NG"),
        ("1", "US"),
        ("7", "RU"),
        ("20", "EG"),
        ("27", "ZA"),
        ("33", "FR"),
        ("34", "ES"),
        ("39", "IT"),
        ("44", "GB"),
        ("49", "DE"),
        ("51", "PE"),
        ("52", "MX"),
        ("55", "BR"),
        ("57", "CO"),
        ("60", "MY"),
        ("62", "ID"),
        ("65", "SG"),
        ("91", "IN"),
    ];
    CODES
        .iter()
        .filter(|(code, _)| phone.starts_with(code))
        .max_by_key(|(code, _)| code.len())
        .map_or("US", |(_, country)| country)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::is_bsuid;

    #[test]
    fn bsuids_are_stable_per_user_and_look_like_metas() {
        let a = bsuid_for_phone("102290129340398", "12125550100");
        assert_eq!(a, bsuid_for_phone("102290129340398", "12125550100"));
        assert!(a.starts_with("US."), "{a}");
        assert!(is_bsuid(&a), "{a}");
        assert_ne!(a, bsuid_for_phone("another-portfolio", "12125550100"));
        assert!(bsuid_for_phone("p", "919876543210").starts_with("IN."));
        assert!(is_bsuid(&bsuid_for_username("p", "@pablo")));
    }

    #[test]
    fn call_ids_fit_in_a_url_path() {
        for _ in 0..50 {
            let id = new_call_id();
            assert!(id.starts_with("wacid."));
            assert!(!id.contains('/') && !id.contains('+'), "{id}");
        }
    }
}

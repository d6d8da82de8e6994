//! Meta's `X-Hub-Signature-256`: an HMAC-SHA256 of the raw body, keyed with the app secret.
//!
//! Only [`verify`] can turn raw bytes into a [`VerifiedDelivery`], and only a verified
//! delivery can be split into events, so unsigned bytes never reach the parser or the store.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header Meta signs every webhook with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// One Meta app secret. Several may be configured at once while a secret is rotated.
#[derive(Clone)]
pub struct AppSecret(SecretString);

impl AppSecret {
    pub fn parse(secret: SecretString) -> Result<Self, String> {
        if secret.expose_secret().trim().is_empty() {
            return Err("the app secret is empty".into());
        }
        Ok(Self(secret))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        HmacSha256::new_from_slice(self.0.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length")
    }

    /// `sha256=<lowercase hex>` over `body`: what Meta would send. Used by wa-sim-style
    /// senders, tests and the `original` forwarding mode's checks.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppSecret([redacted])")
    }
}

/// A well-formed `sha256=<64 hex digits>` header value (either case of hex).
#[derive(Debug, Clone)]
pub struct Signature([u8; 32]);

impl Signature {
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let hex_digest = header
            .trim()
            .strip_prefix("sha256=")
            .ok_or(SignatureError::Malformed(
                "the value does not start with `sha256=`",
            ))?;
        if hex_digest.len() != 64 {
            return Err(SignatureError::Malformed(
                "the digest is not 64 hexadecimal digits",
            ));
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut digest)
            .map_err(|_| SignatureError::Malformed("the digest is not hexadecimal"))?;
        Ok(Self(digest))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Raw bytes whose signature matched one of the app secrets. The field is private: the
/// only way to make one is [`verify`].
#[derive(Debug, Clone)]
pub struct VerifiedDelivery {
    body: Bytes,
    signature_header: String,
}

impl VerifiedDelivery {
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The header exactly as Meta sent it, kept for `original`-mode forwarding.
    pub fn signature_header(&self) -> &str {
        &self.signature_header
    }
}

/// Checks `header` against `body` under each secret, in constant time per comparison.
pub fn verify(
    secrets: &[AppSecret],
    header: Option<&str>,
    body: Bytes,
) -> Result<VerifiedDelivery, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let signature = Signature::parse(header)?;
    let matches = secrets.iter().any(|secret| {
        let mut mac = secret.mac();
        mac.update(&body);
        mac.verify_slice(&signature.0).is_ok()
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    Ok(VerifiedDelivery {
        body,
        signature_header: header.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> AppSecret {
        AppSecret::parse(SecretString::from(s.to_owned())).unwrap()
    }

    #[test]
    fn a_signature_made_with_any_configured_secret_is_accepted() {
        let body = Bytes::from_static(b"{\"object\":\"whatsapp_business_account\"}");
        let old = secret("old-secret");
        let new = secret("new-secret");
        let header = old.sign(&body);
        let verified = verify(&[new, old], Some(&header), body.clone()).unwrap();
        assert_eq!(verified.body(), &body);
        assert_eq!(verified.signature_header(), header);
    }

    #[test]
    fn a_signature_from_an_unknown_secret_is_a_mismatch() {
        let body = Bytes::from_static(b"{}");
        let header = secret("other").sign(&body);
        let err = verify(&[secret("mine")], Some(&header), body).unwrap_err();
        assert_eq!(err, SignatureError::Mismatch);
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let body = Bytes::from_static(b"{}");
        let s = secret("k");
        let header = s.sign(&body);
        let upper = format!("sha256={}", header["sha256=".len()..].to_uppercase());
        assert!(verify(&[s], Some(&upper), body).is_ok());
    }

    #[test]
    fn the_secret_is_never_printed() {
        assert_eq!(format!("{:?}", secret("hunter2")), "AppSecret([redacted])");
    }
}

//! The HTTP request a consumer receives for one job (DESIGN §7).

use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::domain::delivery::JobBody;
use crate::meta::signature::SIGNATURE_HEADER;

pub const EVENT_HEADER: &str = "x-switchboard-event";
pub const DELIVERY_HEADER: &str = "x-switchboard-delivery";

/// A route's Standard Webhooks signing key.
#[derive(Clone)]
pub struct Signer {
    webhook: std::sync::Arc<standardwebhooks::Webhook>,
    key: Vec<u8>,
}

impl Signer {
    /// `whsec_` and base64, as the Standard Webhooks specification writes secrets.
    pub fn parse(secret: &SecretString) -> Result<Self, String> {
        let text = secret.expose_secret();
        let encoded = text.strip_prefix("whsec_").unwrap_or(text);
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "must be `whsec_` followed by base64 (Standard Webhooks)".to_owned())?;
        if key.is_empty() {
            return Err("the signing key is empty".into());
        }
        Ok(Self {
            webhook: std::sync::Arc::new(
                standardwebhooks::Webhook::from_bytes(key.clone()).map_err(|e| e.to_string())?,
            ),
            key,
        })
    }

    /// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        match self.webhook.sign(id, timestamp, body) {
            Ok(signature) => signature,
            // The crate signs text only; a body Meta signed that is not UTF-8 (kept as
            // `other:unparsed`) is signed here by the same rule over its bytes.
            Err(_) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
                    .expect("HMAC takes keys of any length");
                mac.update(format!("{id}.{timestamp}.").as_bytes());
                mac.update(body);
                let digest = mac.finalize().into_bytes();
                format!(
                    "v1,{}",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                )
            }
        }
    }
}

/// Headers and body for one attempt of a job.
pub struct Outbound {
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub fn build(job: &JobBody, signer: Option<&Signer>, timestamp: i64) -> Outbound {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let (message_id, body) = match job {
        JobBody::Event { id, kind, payload } => {
            insert(&mut headers, EVENT_HEADER, &kind.to_string());
            (id.to_string(), payload.clone())
        }
        JobBody::Original {
            delivery_id,
            signature,
            body,
        } => {
            insert(&mut headers, SIGNATURE_HEADER, signature);
            insert(&mut headers, DELIVERY_HEADER, &delivery_id.to_string());
            (format!("dlv_{delivery_id}"), body.clone())
        }
    };
    insert(
        &mut headers,
        standardwebhooks::HEADER_WEBHOOK_ID,
        &message_id,
    );
    insert(
        &mut headers,
        standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
        &timestamp.to_string(),
    );
    if let Some(signer) = signer {
        let signature = signer.sign(&message_id, timestamp, &body);
        insert(
            &mut headers,
            standardwebhooks::HEADER_WEBHOOK_SIGNATURE,
            &signature,
        );
    }
    Outbound { headers, body }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    // Every value here is ASCII we made or Meta's header that already passed as one.
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks specification.
    #[test]
    fn signing_matches_the_specifications_test_vector() {
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let signer = Signer::parse(&secret).unwrap();
        let signature = signer.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn bytes_that_are_not_text_are_signed_by_the_same_rule() {
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let signer = Signer::parse(&secret).unwrap();
        let text = signer.sign("id", 1, b"abc");
        let mut mac = Hmac::<Sha256>::new_from_slice(&signer.key).unwrap();
        mac.update(b"id.1.abc");
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(text, format!("v1,{expected}"));
        // And a non-UTF-8 body still gets a signature over its exact bytes.
        let raw = signer.sign("id", 1, &[0xff, 0xfe]);
        assert!(raw.starts_with("v1,") && raw != text);
    }

    #[test]
    fn secrets_that_are_not_base64_are_refused() {
        for bad in ["whsec_!!!", "whsec_", ""] {
            assert!(
                Signer::parse(&SecretString::from(bad.to_owned())).is_err(),
                "{bad}"
            );
        }
    }
}

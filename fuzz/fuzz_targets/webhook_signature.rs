//! `X-Hub-Signature-256` against a webhook's raw bytes, as `POST /webhook` checks it.
//!
//! Input: the header's bytes, a newline, then the body. The header goes through the same
//! steps as in `http/webhook.rs` (an HTTP header value, read as text or as empty), then
//! `meta::signature::verify` under two secrets, one of them the fixtures' `test-app-secret`.
//!
//! What must hold: no panic; a delivery is accepted exactly when the header, trimmed, is
//! `sha256=` and the HMAC of the body under one of the secrets in hex of either case; an
//! accepted delivery keeps the body's bytes and the trimmed header as they came.

#![no_main]

use actix_web::http::header::HeaderValue;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use switchboard::meta::signature::{verify, AppSecret, SignatureError};

fn secret(text: &str) -> AppSecret {
    AppSecret::parse(SecretString::from(text.to_owned())).expect("a non-empty secret")
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    // What `http/webhook.rs` hands on: absent when the bytes cannot be a header value,
    // empty when they are not visible ASCII.
    let value = HeaderValue::from_bytes(header).ok();
    let text = value.as_ref().map(|v| v.to_str().unwrap_or_default());
    let secrets = [secret("rotated-out-secret"), secret("test-app-secret")];
    let body = Bytes::copy_from_slice(body);
    let result = verify(&secrets, text, body.clone());

    let expected = text.is_some_and(|text| {
        let given = text.trim();
        secrets
            .iter()
            .any(|s| given.eq_ignore_ascii_case(&s.sign(&body)) && given.starts_with("sha256="))
    });
    match result {
        Ok(delivery) => {
            assert!(
                expected,
                "accepted a header that is not a signature of the body"
            );
            assert_eq!(delivery.body(), &body);
            assert_eq!(Some(delivery.signature_header()), text.map(str::trim));
        }
        Err(SignatureError::Missing) => assert!(text.is_none()),
        Err(SignatureError::Malformed(_) | SignatureError::Mismatch) => {
            assert!(!expected, "refused a correct signature");
        }
    }
});

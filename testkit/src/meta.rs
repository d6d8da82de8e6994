//! What Meta and the router agree on in every test: the app secret that signs webhooks, the
//! tokens, the business number; and signing a body as Meta does.

use secrecy::SecretString;
use switchboard::meta::signature::AppSecret;

/// The app secret Meta signs webhooks with.
pub const APP_SECRET: &str = "test-app-secret";
/// The token of Meta's subscription handshake.
pub const VERIFY_TOKEN: &str = "verify-me";
/// The business's Graph API access token.
pub const ACCESS_TOKEN: &str = "EAAG-test";
/// The business number's Graph id.
pub const PHONE_NUMBER_ID: &str = "106540352242922";

/// [`APP_SECRET`] as the router holds it.
pub fn app_secret() -> AppSecret {
    AppSecret::parse(SecretString::from(APP_SECRET.to_owned())).expect("a non-empty secret")
}

/// The `X-Hub-Signature-256` header Meta would send with `body`.
pub fn sign(body: &[u8]) -> String {
    app_secret().sign(body)
}

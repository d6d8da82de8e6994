//! The configuration loader: TOML text into typed `Settings`, as start-up reads the file
//! (`config::Settings::from_toml`, the same parse without the environment).
//!
//! Input: the file's bytes (the corpus starts from `config/*.toml` and the tests' files).
//!
//! What must hold: any text is either `Settings` or an error that says something, never a
//! panic; and loaded settings never print their Meta secrets.

#![no_main]

use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;
use switchboard::config::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Settings::from_toml(text) {
        Ok(settings) => {
            let printed = format!("{settings:?}");
            let meta = &settings.meta;
            for secret in [
                meta.verify_token.expose_secret(),
                meta.access_token.expose_secret(),
            ] {
                // A secret written once, long enough not to be some other field's value.
                if secret.len() >= 8 && text.matches(secret).count() == 1 {
                    assert!(!printed.contains(secret), "Settings printed a secret");
                }
            }
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});

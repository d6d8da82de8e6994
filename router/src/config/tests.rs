//! Parsing the configuration: the design's example, and each bad value named by its key.

use super::raw::default_retry_schedule;
use super::*;
use crate::domain::route::ForwardMode;

const EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
data_dir = "./data"

[meta]
app_secret = "test-app-secret"
verify_token = "verify-me"
access_token = "EAAG-test"
phone_number_id = "106540352242922"
graph_api_base = "https://graph.facebook.com"
graph_api_version = "v23.0"

[calls]
ice_servers = [ { urls = ["stun:stun.l.google.com:19302"] } ]

[[agents]]
name = "asha"
token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
role = "agent"

[[routes]]
name = "crm"
events = ["message", "message_status", "call_permission_reply"]
url = "http://127.0.0.1:9100/whatsapp"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
mode = "event"

[[routes]]
name = "legacy-forward"
events = ["call", "call_status"]
url = "http://127.0.0.1:9200/webhook/forward"
mode = "original"
"#;

#[test]
fn the_design_example_loads_as_written() {
    let settings = Settings::from_toml(EXAMPLE).unwrap();
    let routes: Vec<_> = settings.routes.iter().collect();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[1].mode, ForwardMode::Original);
    assert_eq!(routes[0].retry_schedule, default_retry_schedule());
    assert_eq!(settings.meta.app_secrets.len(), 1);
}

#[test]
fn invalid_settings_name_the_key() {
    let cases = [
        (
            "listen = \"127.0.0.1:8080\"",
            "listen = \"nowhere\"",
            "server.listen",
        ),
        (
            "events = [\"call\", \"call_status\"]",
            "events = [\"calls\"]",
            "routes[1].events",
        ),
        (
            "url = \"http://127.0.0.1:9200/webhook/forward\"",
            "url = \"ftp://x\"",
            "routes[1].url",
        ),
        (
            "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
            "secret = \"whsec_!!\"",
            "routes[0].secret",
        ),
        (
            "name = \"legacy-forward\"",
            "name = \"crm\"",
            "routes[1].name",
        ),
        (
            "token_sha256 = \"9f86",
            "token_sha256 = \"zz86",
            "agents[0].token_sha256",
        ),
        (
            "app_secret = \"test-app-secret\"",
            "app_secret = []",
            "meta.app_secret",
        ),
    ];
    for (from, to, key) in cases {
        let text = EXAMPLE.replacen(from, to, 1);
        assert_ne!(text, EXAMPLE, "{from} not found");
        let err = Settings::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[test]
fn a_missing_section_is_reported_by_name() {
    let text = EXAMPLE.replacen("verify_token = \"verify-me\"\n", "", 1);
    let err = Settings::from_toml(&text).unwrap_err().to_string();
    assert!(err.contains("verify_token"), "{err}");
}

#[test]
fn several_app_secrets_are_allowed_for_rotation() {
    let text = EXAMPLE.replacen(
        "app_secret = \"test-app-secret\"",
        "app_secret = [\"new\", \"test-app-secret\"]",
        1,
    );
    assert_eq!(
        Settings::from_toml(&text).unwrap().meta.app_secrets.len(),
        2
    );
}

#[test]
fn secrets_are_redacted_when_printed() {
    let settings = Settings::from_toml(EXAMPLE).unwrap();
    let printed = format!("{settings:?}");
    assert!(!printed.contains("test-app-secret"));
    assert!(!printed.contains("EAAG-test"));
    assert!(!printed.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
}

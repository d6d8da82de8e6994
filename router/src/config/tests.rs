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

/// What `make run` uses, as it is in the repository.
const MAKE_RUN: &str = include_str!("../../../config/switchboard.toml");

/// Replaces `from` (which must be there) with `to`, once.
fn edit(text: &str, from: &str, to: &str) -> String {
    let edited = text.replacen(from, to, 1);
    assert_ne!(edited, text, "{from} not found");
    edited
}

fn refused_key(text: &str) -> String {
    match Settings::from_toml(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(ConfigError::Invalid { key, .. }) => key,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_make_run_config_loads_as_it_is() {
    let settings = Settings::from_toml(MAKE_RUN).unwrap();
    assert!(settings.server.listen.ip().is_loopback());
    assert_eq!(
        settings.meta.graph_api_base.as_str(),
        "http://127.0.0.1:8090/"
    );
}

/// Each published value of the example is named in turn; replaced by one of the
/// operator's own, the next one is; with all replaced, the server may start.
fn published_values_are_refused_one_by_one(mut text: String) {
    let fresh_hash = "0b2c9bd6ec6ecb8f4c5ea3ef1e0bc5fa6b11f1d5b7f8d8b3f6fa5c79a1c1f00d";
    let own_values = [
        (
            "meta.app_secret",
            "\"test-app-secret\"",
            "\"an-own-app-secret\"",
        ),
        (
            "meta.verify_token",
            "\"verify-me\"",
            "\"an-own-verify-token\"",
        ),
        (
            "meta.access_token",
            "\"EAAG-test\"",
            "\"EAAG-an-own-token\"",
        ),
        (
            "agents[0].token_sha256",
            "461ebf6d4b05429948791eef4c4b12032c438a092bee97eeca46ec0bb29806a2",
            fresh_hash,
        ),
        (
            "agents[1].token_sha256",
            "1734d503f6aa6a047c36d113cbad769f719c93784b469b771c4c3e7c63adbefd",
            &fresh_hash.replace('0', "1"),
        ),
    ];
    for (key, published, own) in own_values {
        let err = Settings::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        assert!(err.contains("published"), "{err}");
        assert!(!err.contains(published.trim_matches('"')) || key.starts_with("agents"));
        text = edit(&text, published, own);
    }
    Settings::from_toml(&text).unwrap();
}

#[test]
fn the_example_configs_published_values_are_refused_on_a_public_address() {
    let public = edit(
        MAKE_RUN,
        "listen = \"127.0.0.1:8080\"",
        "listen = \"0.0.0.0:8080\"",
    );
    let err = Settings::from_toml(&public).unwrap_err().to_string();
    assert!(err.contains("0.0.0.0:8080"), "says why: {err}");
    published_values_are_refused_one_by_one(public);
}

#[test]
fn the_example_configs_published_values_are_refused_behind_https() {
    let https = edit(
        MAKE_RUN,
        "public_url = \"http://127.0.0.1:8080\"",
        "public_url = \"https://switchboard.example.com\"",
    );
    let err = Settings::from_toml(&https).unwrap_err().to_string();
    assert!(err.contains("https"), "says why: {err}");
    published_values_are_refused_one_by_one(https);
}

/// The design's example with its own Meta secrets, listening on every address.
fn public_example() -> String {
    let text = edit(
        EXAMPLE,
        "listen = \"127.0.0.1:8080\"",
        "listen = \"[::]:8080\"",
    );
    let text = edit(&text, "\"test-app-secret\"", "\"an-own-app-secret\"");
    let text = edit(&text, "\"verify-me\"", "\"an-own-verify-token\"");
    edit(&text, "\"EAAG-test\"", "\"EAAG-an-own-token\"")
}

#[test]
fn a_published_route_secret_or_a_rotated_app_secret_is_refused_on_a_public_address() {
    let public = public_example();
    assert_eq!(refused_key(&public), "routes[0].secret");
    let own_route_secret = edit(
        &public,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_b3duLXJvdXRlLXNlY3JldA==",
    );
    Settings::from_toml(&own_route_secret).unwrap();
    let rotating = edit(
        &own_route_secret,
        "app_secret = \"an-own-app-secret\"",
        "app_secret = [\"an-own-app-secret\", \"test-app-secret\"]",
    );
    assert_eq!(refused_key(&rotating), "meta.app_secret");
}

#[test]
fn empty_secrets_are_refused_wherever_the_server_listens() {
    let cases = [
        (
            "access_token = \"EAAG-test\"",
            "access_token = \"\"",
            "meta.access_token",
        ),
        (
            "verify_token = \"verify-me\"",
            "verify_token = \"  \"",
            "meta.verify_token",
        ),
        (
            "app_secret = \"test-app-secret\"",
            "app_secret = [\"new\", \"\"]",
            "meta.app_secret",
        ),
        (
            "[calls]\n",
            "[calls]\nturn = { urls = [\"turn:127.0.0.1:3478\"], shared_secret = \"\" }\n",
            "calls.turn.shared_secret",
        ),
    ];
    for (from, to, key) in cases {
        assert_eq!(refused_key(&edit(EXAMPLE, from, to)), key, "{to}");
    }
}

#[test]
fn two_agents_with_one_name_or_one_token_are_refused() {
    let second = |name: &str, hash: &str| {
        format!(
            "[[agents]]\nname = \"{name}\"\ntoken_sha256 = \"{hash}\"\nrole = \"admin\"\n\n[[routes]]"
        )
    };
    let asha_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let other_hash = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
    let same_name = EXAMPLE.replacen("[[routes]]", &second("Asha", other_hash), 1);
    let err = Settings::from_toml(&same_name).unwrap_err().to_string();
    assert!(
        err.contains("`agents[1].name`") && err.contains("agents[0]"),
        "{err}"
    );
    let same_token = EXAMPLE.replacen("[[routes]]", &second("ops", &asha_hash.to_uppercase()), 1);
    let err = Settings::from_toml(&same_token).unwrap_err().to_string();
    assert!(
        err.contains("`agents[1].token_sha256`") && err.contains("agents[0]"),
        "{err}"
    );
    let distinct = EXAMPLE.replacen("[[routes]]", &second("ops", other_hash), 1);
    Settings::from_toml(&distinct).unwrap();
}

#[test]
fn the_graph_api_base_must_be_https_unless_it_is_this_machine() {
    let with_base = |base: &str| {
        edit(
            EXAMPLE,
            "graph_api_base = \"https://graph.facebook.com\"",
            &format!("graph_api_base = \"{base}\""),
        )
    };
    for refused in [
        "http://graph.facebook.com",
        "http://10.0.0.7:8090",
        "http://127.0.0.1.example.com",
        "ftp://127.0.0.1",
    ] {
        assert_eq!(
            refused_key(&with_base(refused)),
            "meta.graph_api_base",
            "{refused}"
        );
    }
    // The example itself has https://graph.facebook.com.
    for allowed in [
        "https://graph.example.com/meta",
        "http://127.0.0.1:8090",
        "http://127.8.0.1:8090",
        "http://localhost:8090",
        "http://[::1]:8090",
    ] {
        Settings::from_toml(&with_base(allowed)).unwrap();
    }
    let err = Settings::from_toml(&with_base("http://graph.facebook.com"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("in clear"), "{err}");
}

#[test]
fn the_store_queue_and_a_metrics_listener_are_read_and_zero_bounds_refused() {
    let defaults = Settings::from_toml(EXAMPLE).unwrap();
    assert_eq!(defaults.store.write_queue, 1024);
    assert_eq!(defaults.store.write_timeout, Duration::from_secs(5));
    assert_eq!(defaults.server.metrics_listen, None);

    let text = EXAMPLE
        .replacen(
            "data_dir = \"./data\"",
            "data_dir = \"./data\"\nmetrics_listen = \"127.0.0.1:9090\"",
            1,
        )
        .replacen(
            "[calls]",
            "[store]\nwrite_queue = 8\nwrite_timeout = \"250ms\"\n\n[calls]",
            1,
        );
    let settings = Settings::from_toml(&text).unwrap();
    assert_eq!(settings.store.write_queue, 8);
    assert_eq!(settings.store.write_timeout, Duration::from_millis(250));
    assert_eq!(
        settings.server.metrics_listen,
        Some("127.0.0.1:9090".parse().unwrap())
    );

    for (from, to, key) in [
        ("write_queue = 8", "write_queue = 0", "store.write_queue"),
        (
            "write_timeout = \"250ms\"",
            "write_timeout = \"0s\"",
            "store.write_timeout",
        ),
        (
            "metrics_listen = \"127.0.0.1:9090\"",
            "metrics_listen = \"nowhere\"",
            "server.metrics_listen",
        ),
    ] {
        let bad = text.replacen(from, to, 1);
        let err = Settings::from_toml(&bad).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}

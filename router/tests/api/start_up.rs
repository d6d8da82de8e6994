//! What the real binary refuses to start with, and the store it keeps to its owner.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use switchboard_testkit::meta::sign;
use switchboard_testkit::router::sha256_hex;
use tempfile::TempDir;

use crate::binary::{Server, BINARY};
use crate::helpers::{config_toml, text_message, AGENT_TOKEN};

/// What `make run` uses, as it is in the repository.
fn make_run_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/switchboard.toml")
}

/// An unsafe configuration: the file (or `None` for `make run`'s), the environment it
/// runs with, and the key start-up must name.
struct Unsafe {
    what: &'static str,
    toml: Option<String>,
    env: &'static [(&'static str, &'static str)],
    key: &'static str,
    says: &'static str,
}

/// The test configuration (loopback, the published secrets) with `from` made `to`.
fn test_config(from: &str, to: &str) -> Option<String> {
    let toml = config_toml(Path::new("./data"), "");
    let edited = toml.replacen(from, to, 1);
    assert_ne!(edited, toml, "{from} not found");
    Some(edited)
}

/// The test configuration with a third agent, after `root` and `asha`.
fn with_third_agent(name: &str, token: &str) -> Option<String> {
    let agent = format!(
        "[[agents]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\n",
        sha256_hex(token)
    );
    Some(config_toml(Path::new("./data"), &agent))
}

fn unsafe_configurations() -> Vec<Unsafe> {
    let own_meta_secrets: &[(&str, &str)] = &[
        (
            "SWITCHBOARD__SERVER__PUBLIC_URL",
            "https://switchboard.example.com",
        ),
        ("META_APP_SECRET", "an-app-secret-of-its-own"),
        ("META_VERIFY_TOKEN", "a-verify-token-of-its-own"),
        ("META_ACCESS_TOKEN", "EAAG-a-token-of-its-own"),
    ];
    vec![
        Unsafe {
            what: "make run's config listening on every address",
            toml: None,
            env: &[("SWITCHBOARD__SERVER__LISTEN", "0.0.0.0:0")],
            key: "meta.app_secret",
            says: "server.listen (0.0.0.0:0) is not a loopback address",
        },
        Unsafe {
            what: "make run's config behind https with Meta's secrets of its own",
            toml: None,
            env: own_meta_secrets,
            key: "agents[0].token_sha256",
            says: "the hash of `dev-agent-token`",
        },
        Unsafe {
            what: "an empty access token",
            toml: test_config("access_token = \"EAAG-test\"", "access_token = \"\""),
            env: &[],
            key: "meta.access_token",
            says: "must not be empty",
        },
        Unsafe {
            what: "two agents named asha",
            toml: with_third_agent("asha", "a-third-token"),
            env: &[],
            key: "agents[2].name",
            says: "`asha` is already the name of",
        },
        Unsafe {
            what: "two agents with one token",
            toml: with_third_agent("ops", AGENT_TOKEN),
            env: &[],
            key: "agents[2].token_sha256",
            says: "every agent needs a token of its own",
        },
        Unsafe {
            what: "a plain-http Graph API on another machine",
            toml: test_config("http://127.0.0.1:9", "http://graph.facebook.com"),
            env: &[],
            key: "meta.graph_api_base",
            says: "would send the access token in clear",
        },
    ]
}

#[test]
fn unsafe_configurations_stop_start_up_naming_the_key_and_create_nothing() {
    for case in unsafe_configurations() {
        let dir = TempDir::new().unwrap();
        let config = match &case.toml {
            Some(toml) => {
                let path = dir.path().join("switchboard.toml");
                std::fs::write(&path, toml).unwrap();
                path
            }
            None => make_run_config(),
        };
        // Both configurations keep the store in `./data`, which is where this runs.
        let output = Command::new(BINARY)
            .current_dir(dir.path())
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("META_APP_SECRET")
            .env_remove("META_VERIFY_TOKEN")
            .env_remove("META_ACCESS_TOKEN")
            .envs(case.env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{}: started", case.what);
        let key = format!("invalid configuration key `{}`", case.key);
        assert!(stderr.contains(&key), "{}: {stderr}", case.what);
        assert!(stderr.contains(case.says), "{}: {stderr}", case.what);
        for secret in [
            "test-app-secret",
            "verify-me",
            "EAAG-test",
            "an-app-secret-of-its-own",
            "a-verify-token-of-its-own",
            "EAAG-a-token-of-its-own",
        ] {
            assert!(!stderr.contains(secret), "{}: {secret} printed", case.what);
        }
        assert!(!dir.path().join("data").exists(), "{}: created", case.what);
    }
}

/// The mode bits of `path` that say who may use it.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

const STORE_FILES: [&str; 4] = [
    "switchboard.db",
    "switchboard.db-wal",
    "switchboard.db-shm",
    "switchboard.lock",
];

async fn post_first_message(server: &Server) -> serde_json::Value {
    let body = text_message(1);
    reqwest::Client::new()
        .post(format!("{}/webhook", server.address))
        .header("X-Hub-Signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_kept_to_its_owner_and_tightened_at_start_when_it_was_not() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, config_toml(&data, "")).unwrap();

    let mut server = Server::start(&config);
    let receipt = post_first_message(&server).await;
    assert_eq!(receipt["events"][0]["duplicate"], false, "{receipt}");
    assert_eq!(mode(&data), 0o700, "the data directory");
    for name in STORE_FILES {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }

    // Killed, so the WAL stays; then opened up to everyone, as an older version left it.
    server.kill();
    chmod(&data, 0o755);
    for name in STORE_FILES {
        chmod(&data.join(name), 0o644);
    }
    let server = Server::start(&config);
    assert_eq!(mode(&data), 0o700, "the data directory");
    for name in STORE_FILES {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    let logs = server.logs.lock().unwrap().join("\n");
    for path in std::iter::once(data.clone()).chain(STORE_FILES.map(|name| data.join(name))) {
        let logged = logs.lines().any(|line| {
            line.contains("now only its owner can read it")
                && line.contains(&format!("path={} ", path.display()))
        });
        assert!(logged, "{} not logged:\n{logs}", path.display());
    }
    let again = post_first_message(&server).await;
    assert_eq!(
        again["events"][0]["duplicate"], true,
        "the store is intact: {again}"
    );
}

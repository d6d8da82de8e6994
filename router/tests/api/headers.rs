//! The security headers on every answer: the dialer's page and files, the API, the webhook,
//! health, errors and pages that do not exist; HSTS only when the public URL is https.

use std::path::Path;

use reqwest::Method;
use switchboard::http::headers::CONTENT_SECURITY_POLICY;
use switchboard_testkit::router::RouterConfig;
use tempfile::TempDir;

use crate::helpers::{config, AGENT_TOKEN};

fn www() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../www")
}

/// Requests of every kind the router answers, each with the status it should get.
const ANSWERS: [(Method, &str, bool, u16); 10] = [
    (Method::GET, "/", false, 200),
    (Method::GET, "/dialer.css", false, 200),
    (Method::GET, "/boot.js", false, 200),
    (Method::GET, "/no-such-page", false, 404),
    (Method::GET, "/healthz", false, 200),
    (Method::GET, "/metrics", false, 200),
    (Method::GET, "/api/me", false, 401),
    (Method::GET, "/api/config", true, 200),
    (Method::POST, "/webhook", false, 401),
    (Method::GET, "/webhook?hub.mode=subscribe", false, 403),
];

async fn answers(router: &str) -> Vec<(String, reqwest::Response)> {
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for (method, path, as_agent, status) in ANSWERS {
        let mut request = client.request(method.clone(), format!("{router}{path}"));
        if as_agent {
            request = request.bearer_auth(AGENT_TOKEN);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        answers.push((format!("{method} {path}"), response));
    }
    answers
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn every_page_and_api_answer_carries_the_security_headers() {
    let dir = TempDir::new().unwrap();
    let router = RouterConfig {
        static_dir: Some(www()),
        ..config(&dir.path().join("data"), "")
    }
    .start()
    .await
    .unwrap();
    for (request, response) in answers(&router.url).await {
        for (name, value) in [
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
        ] {
            assert_eq!(header(&response, name), Some(value), "{name} on {request}");
        }
        assert_eq!(
            header(&response, "strict-transport-security"),
            None,
            "HSTS over plain http: {request}"
        );
    }
    router.stop().await;
}

#[test]
fn the_content_security_policy_allows_webassembly_and_nothing_inline() {
    let directives: Vec<&str> = CONTENT_SECURITY_POLICY.split(';').map(str::trim).collect();
    for wanted in [
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(directives.contains(&wanted), "{wanted}: {directives:?}");
    }
    for unwanted in ["'unsafe-inline'", "'unsafe-eval'", "*", "data:", "blob:"] {
        assert!(
            !directives
                .iter()
                .flat_map(|d| d.split_whitespace())
                .any(|source| source == unwanted),
            "{unwanted} in {CONTENT_SECURITY_POLICY}"
        );
    }
}

#[tokio::test]
async fn behind_https_every_answer_also_tells_browsers_to_keep_to_https() {
    let dir = TempDir::new().unwrap();
    let settings = RouterConfig {
        static_dir: Some(www()),
        public_url: "https://switchboard.example.com".into(),
        ..config(&dir.path().join("data"), "")
    };
    // The published development secrets are refused behind https: these are the
    // deployment's own.
    let toml = settings
        .toml()
        .replace("\"test-app-secret\"", "\"an-app-secret-of-its-own\"")
        .replace("\"verify-me\"", "\"a-verify-token-of-its-own\"")
        .replace("\"EAAG-test\"", "\"EAAG-a-token-of-its-own\"");
    let app = switchboard::startup::Application::build(
        switchboard::config::Settings::from_toml(&toml).unwrap(),
    )
    .await
    .unwrap();
    let router = switchboard_testkit::server::Running::spawn(app);
    for (request, response) in answers(&router.url).await {
        assert_eq!(
            header(&response, "strict-transport-security"),
            Some("max-age=31536000"),
            "{request}"
        );
        assert_eq!(
            header(&response, "content-security-policy"),
            Some(CONTENT_SECURITY_POLICY),
            "{request}"
        );
    }
    router.stop().await;
}

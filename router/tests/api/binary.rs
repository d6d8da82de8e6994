//! The real `switchboard` binary as operators run it: killed mid-stream, misconfigured,
//! and driven from its command line.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use switchboard_testkit::meta::sign;
use switchboard_testkit::receiver::{Receiver, Request};
use switchboard_testkit::server::free_port;
use switchboard_testkit::wait::PATIENCE;

use crate::helpers::{config_toml, route, text_message};

pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");

/// A running `switchboard serve`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) address: String,
    /// Everything it wrote to stderr so far.
    pub(crate) logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub(crate) fn start(config: &Path) -> Self {
        let mut child = Command::new(BINARY)
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let stderr = child.stderr.take().expect("stderr");
        let (port_tx, port_rx) = mpsc::channel();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = logs.clone();
        // Keep reading stderr for the life of the process so its pipe never fills up.
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let Some(tx) = port_tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let port = port_rx
            .recv_timeout(PATIENCE)
            .expect("server reports its port");
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            logs,
        }
    }

    pub(crate) fn kill(&mut self) {
        // SIGKILL: no shutdown code runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn switchboard(config: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BINARY)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn message_number(request: &Request) -> u64 {
    let json = request.json();
    let id = json["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        .as_str()
        .expect("message id");
    id.trim_start_matches("wamid.test-")
        .parse()
        .expect("number")
}

async fn wait_for_all(consumer: &Receiver, wanted: &BTreeSet<u64>) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            seen = consumer.requests().iter().map(message_number).collect();
            if wanted.is_subset(&seen) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_webhook_reaches_every_consumer_after_a_sigkill() {
    let dir = tempfile::TempDir::new().unwrap();
    let crm = Receiver::start().await;
    let legacy = Receiver::start().await;
    let routes = [
        route("crm", r#"["message"]"#, &crm.url, ""),
        route(
            "legacy",
            r#"["message"]"#,
            &legacy.url,
            "mode = \"original\"",
        ),
    ]
    .concat();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, config_toml(&dir.path().join("data"), &routes)).unwrap();
    let mut server = Server::start(&config);

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let next = Arc::new(AtomicU64::new(0));
    let stopped = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (acked, next, stopped) = (acked.clone(), next.clone(), stopped.clone());
        let url = format!("{}/webhook", server.address);
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            // Bounded: a sender stops at the kill, or after 20,000 webhooks in all.
            while !stopped.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= 20_000 {
                    break;
                }
                let body = text_message(n);
                let signature = sign(&body);
                let sent = client
                    .post(&url)
                    .header("X-Hub-Signature-256", signature)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        acked.lock().unwrap().insert(n);
                    }
                    _ => break,
                }
            }
        }));
    }
    tokio::time::timeout(PATIENCE, async {
        while acked.lock().unwrap().len() < 2_000 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("2,000 webhooks acknowledged");
    server.kill();
    stopped.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let sent = next.load(Ordering::Relaxed);
    assert!(acked.len() >= 2_000);
    eprintln!("killed after {} acknowledged of {sent} sent", acked.len());

    let _restarted = Server::start(&config);
    for consumer in [&crm, &legacy] {
        let seen = wait_for_all(consumer, &acked).await;
        let lost: Vec<_> = acked.difference(&seen).take(10).collect();
        assert!(
            lost.is_empty(),
            "{} of {} acknowledged webhooks never reached {} (sent {sent}); first: {lost:?}",
            acked.difference(&seen).count(),
            acked.len(),
            consumer.url
        );
    }
}

#[test]
fn an_invalid_config_stops_start_up_naming_the_key() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("switchboard.toml");
    let routes = route("crm", r#"["messages"]"#, "http://127.0.0.1:9/hook", "");
    std::fs::write(&config, config_toml(&dir.path().join("data"), &routes)).unwrap();
    let (ok, _, stderr) = switchboard(&config, &["serve"]);
    assert!(!ok);
    assert!(stderr.contains("routes[0].events"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "nothing was created");

    let missing = dir.path().join("nowhere.toml");
    let (ok, _, stderr) = switchboard(&missing, &["serve"]);
    assert!(!ok);
    assert!(stderr.contains("nowhere.toml"), "{stderr}");
}

#[test]
fn a_second_server_on_the_same_store_is_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, config_toml(&dir.path().join("data"), "")).unwrap();
    let _first = Server::start(&config);
    let (ok, _, stderr) = switchboard(&config, &["serve"]);
    assert!(!ok);
    assert!(stderr.contains("another switchboard server"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_listed_retried_and_replayed_from_the_command_line() {
    let dir = tempfile::TempDir::new().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let routes = route("crm", r#"["message"]"#, &url, "retry_schedule = [\"50ms\"]");
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, config_toml(&dir.path().join("data"), &routes)).unwrap();
    let server = Server::start(&config);
    let body = text_message(42);
    let receipt: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/webhook", server.address))
        .header("X-Hub-Signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event = receipt["events"][0]["id"].as_str().unwrap().to_owned();

    let listing = tokio::time::timeout(PATIENCE, async {
        loop {
            let (ok, stdout, stderr) =
                switchboard(&config, &["deliveries", "list", "--state", "failed"]);
            assert!(ok, "{stderr}");
            if stdout.contains(&event) {
                return stdout;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the job fails and is listed");
    assert!(
        listing.contains("crm") && listing.contains("failed"),
        "{listing}"
    );
    let job_id = listing
        .lines()
        .find(|l| l.contains(&event))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();

    let consumer = Receiver::start_on(port).await;
    let (ok, stdout, stderr) = switchboard(&config, &["deliveries", "retry", &job_id]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&job_id), "{stdout}");
    consumer.wait_for(1).await;

    let (ok, _, stderr) = switchboard(&config, &["replay", &event]);
    assert!(ok, "{stderr}");
    let received = consumer.wait_for(2).await;
    assert_eq!(received[1].header("webhook-id"), Some(event.as_str()));

    let (ok, _, stderr) = switchboard(&config, &["replay", "evt_nonsense"]);
    assert!(!ok);
    assert!(stderr.contains("not an event id"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_requests_never_reach_the_logs() {
    let dir = tempfile::TempDir::new().unwrap();
    let routes = route(
        "crm",
        r#"["message"]"#,
        &format!(
            "http://127.0.0.1:{}/hook?token=route-query-secret",
            free_port()
        ),
        "retry_schedule = [\"50ms\"]",
    );
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, config_toml(&dir.path().join("data"), &routes)).unwrap();
    let server = Server::start(&config);
    let client = reqwest::Client::new();
    let handshake = format!(
        "{}/webhook?hub.mode=subscribe&hub.verify_token=guessed-token-secret&hub.challenge=1",
        server.address
    );
    assert_eq!(client.get(&handshake).send().await.unwrap().status(), 403);
    let body = text_message(1);
    let sent = client
        .post(format!("{}/webhook", server.address))
        .header("X-Hub-Signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    // Wait until the forward to the unreachable consumer has failed for good and been logged.
    tokio::time::timeout(PATIENCE, async {
        while !server
            .logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("forward failed for good"))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the failure is logged");
    let logs = server.logs.lock().unwrap().join("\n");
    for secret in [
        "guessed-token-secret",
        "route-query-secret",
        "test-app-secret",
        "EAAG-test",
    ] {
        assert!(!logs.contains(secret), "{secret} is in the logs:\n{logs}");
    }
}

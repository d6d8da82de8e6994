//! Every input bounded, through the real server: request bodies that do not arrive in
//! time, webhooks in flight, deliveries too large to split, metric labels from Meta's
//! strings. Each limit is set low in the test's config and trips at exactly that value.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use switchboard::config::Settings;
use switchboard::startup::Application;
use switchboard_protocol::ws::ServerEvent;
use switchboard_testkit::agent::AgentSocket;
use switchboard_testkit::meta::sign;
use switchboard_testkit::receiver::Receiver;
use switchboard_testkit::server::Running;
use switchboard_testkit::wait::{poll, PATIENCE};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{config, fixture, route, text_message, AGENT_TOKEN};

/// The router with `server_keys` added to its `[server]` table and `extra` tables after.
struct LimitedApp {
    address: String,
    port: u16,
    /// Serving until the test ends.
    _router: Running<Application>,
    client: reqwest::Client,
    data_dir: PathBuf,
    _dir: TempDir,
}

async fn spawn_limited(server_keys: &str, extra: &str) -> LimitedApp {
    let dir = TempDir::new().expect("temp dir");
    let data_dir = dir.path().join("data");
    let settings = Settings::from_toml(&toml_with(&data_dir, server_keys, extra)).expect("config");
    let router = Running::spawn(Application::build(settings).await.expect("the app builds"));
    LimitedApp {
        address: router.url.clone(),
        port: router.port(),
        _router: router,
        client: reqwest::Client::new(),
        data_dir,
        _dir: dir,
    }
}

fn toml_with(data_dir: &Path, server_keys: &str, extra: &str) -> String {
    config(data_dir, extra)
        .toml()
        .replacen("[server]\n", &format!("[server]\n{server_keys}\n"), 1)
}

impl LimitedApp {
    async fn post_signed(&self, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(format!("{}/webhook", self.address))
            .header("X-Hub-Signature-256", sign(&body))
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    fn count_rows(&self, table: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.data_dir.join("switchboard.db")).expect("db");
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .expect("count")
    }

    /// Stored events as (kind, payload), in the order they were stored.
    fn stored_events(&self) -> Vec<(String, Vec<u8>)> {
        let conn = rusqlite::Connection::open(self.data_dir.join("switchboard.db")).expect("db");
        let mut statement = conn
            .prepare("SELECT kind, payload FROM events ORDER BY rowid")
            .expect("query");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("events")
    }

    async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// The value of one metric line (`name{labels}` as Prometheus prints it), 0 if absent.
    async fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits until `series` reads `value`.
    async fn metric_reaches(&self, series: &str, value: f64) {
        let reached = poll(Duration::from_millis(20), async || {
            (self.metric(series).await == value).then_some(())
        })
        .await;
        assert!(reached.is_some(), "{series} never reached {value}");
    }

    /// A connection that has sent a request's head and the first `sent` bytes of its body.
    async fn stalled(&self, path: &str, headers: &str, body: &[u8], sent: usize) -> TcpStream {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n{headers}\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        stream
            .write_all(&body[..sent])
            .await
            .expect("part of the body");
        stream
    }
}

/// Reads one HTTP/1.1 answer: its status and body. Panics if none comes in [`PATIENCE`].
async fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let read = async {
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")?
                            .parse()
                            .ok()
                    })
                    .unwrap_or(0usize);
                if body.len() >= length {
                    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
                    return (status.expect("a status line"), body.to_owned());
                }
            }
            let n = stream.read(&mut buffer).await.expect("read");
            assert!(n > 0, "the connection closed without an answer: {text:?}");
            bytes.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("an answer in time")
}

/// Whether the server closes the connection (end of file or reset) within [`PATIENCE`].
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 64];
    matches!(
        tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await,
        Ok(Ok(0) | Err(_))
    )
}

fn signature_header(body: &[u8]) -> String {
    format!("x-hub-signature-256: {}\r\n", sign(body))
}

#[tokio::test]
async fn a_webhook_body_that_stalls_gets_408_once_its_deadline_passes_and_nothing_is_stored() {
    let app = spawn_limited("body_timeout = \"1s\"", "").await;
    let body = fixture("01-text-message.json");
    let started = Instant::now();
    let mut stream = app
        .stalled("/webhook", &signature_header(&body), &body, body.len() / 2)
        .await;
    let (status, answer) = read_answer(&mut stream).await;
    assert_eq!(status, 408, "{answer}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the deadline"
    );
    let error: serde_json::Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(error["error"]["code"], "request_timeout");
    assert!(
        closed_by_server(&mut stream).await,
        "the connection is closed"
    );
    assert_eq!(app.count_rows("deliveries"), 0);
    assert_eq!(app.count_rows("events"), 0);
    let timeouts = r#"switchboard_webhook_deliveries_total{outcome="body_timeout"}"#;
    assert_eq!(app.metric(timeouts).await, 1.0);
    // The same body sent whole is taken: only lateness was refused.
    assert_eq!(app.post_signed(body).await.status(), 200);
}

#[tokio::test]
async fn a_body_trickled_a_byte_at_a_time_is_cut_off_at_its_deadline() {
    let app = spawn_limited("body_timeout = \"1s\"", "").await;
    let body = fixture("02-message-status-delivered.json");
    let mut stream = app
        .stalled("/webhook", &signature_header(&body), &body, 0)
        .await;
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        // At most one byte per 50 ms for the whole body: far slower than the deadline.
        for byte in &body {
            if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let answer = async {
        let mut first = [0u8; 12];
        reader.read_exact(&mut first).await.expect("an answer");
        String::from_utf8_lossy(&first).into_owned()
    };
    let status_line = tokio::select! {
        status = answer => status,
        () = trickle => panic!("the whole body went through without an answer"),
    };
    assert_eq!(status_line, "HTTP/1.1 408");
    assert_eq!(app.count_rows("deliveries"), 0);
}

#[tokio::test]
async fn a_chunked_webhook_body_that_stalls_gets_408() {
    let app = spawn_limited("body_timeout = \"1s\"", "").await;
    let body = fixture("01-text-message.json");
    let mut stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n{}\r\n",
        signature_header(&body)
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(format!("{:x}\r\n", 20).as_bytes())
        .await
        .expect("chunk size");
    stream.write_all(&body[..20]).await.expect("chunk");
    stream.write_all(b"\r\n").await.expect("chunk end");
    let (status, _) = read_answer(&mut stream).await;
    assert_eq!(status, 408);
    assert!(
        closed_by_server(&mut stream).await,
        "the connection is closed"
    );
    assert_eq!(app.count_rows("deliveries"), 0);
}

#[tokio::test]
async fn an_api_body_that_stalls_gets_408_too() {
    let app = spawn_limited("body_timeout = \"1s\"", "").await;
    let body = format!(r#"{{"token": "{AGENT_TOKEN}"}}"#).into_bytes();
    let mut stream = app.stalled("/api/login", "", &body, 5).await;
    let (status, answer) = read_answer(&mut stream).await;
    assert_eq!(status, 408, "{answer}");
    assert!(
        closed_by_server(&mut stream).await,
        "the connection is closed"
    );
    let login = app
        .client
        .post(format!("{}/api/login", app.address))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200, "sent whole, the same body is taken");
}

#[tokio::test]
async fn an_agent_websocket_outlives_the_body_deadline() {
    let app = spawn_limited("body_timeout = \"1s\"", "").await;
    let mut socket = AgentSocket::open(&app.address, AGENT_TOKEN, None)
        .await
        .expect("socket");
    assert!(matches!(socket.next().await, ServerEvent::Hello { .. }));
    // Past the deadline: a socket's frames are not a body that must end.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let call = fixture("06-call-connect-user-initiated-offer.json");
    assert_eq!(app.post_signed(call).await.status(), 200);
    assert!(matches!(
        socket.next().await,
        ServerEvent::CallIncoming { .. }
    ));
}

const IN_FLIGHT: &str = "switchboard_webhooks_in_flight";

#[tokio::test]
async fn the_cap_on_webhooks_in_flight_trips_at_its_configured_value_with_503() {
    let app = spawn_limited("max_webhooks_in_flight = 2", "").await;
    let (first, second) = (text_message(1), text_message(2));
    let mut one = app
        .stalled("/webhook", &signature_header(&first), &first, 10)
        .await;
    app.metric_reaches(IN_FLIGHT, 1.0).await;
    assert_eq!(
        app.post_signed(text_message(3)).await.status(),
        200,
        "1 of 2 taken"
    );
    let mut two = app
        .stalled("/webhook", &signature_header(&second), &second, 10)
        .await;
    app.metric_reaches(IN_FLIGHT, 2.0).await;

    let refused = app.post_signed(text_message(4)).await;
    assert_eq!(refused.status(), 503);
    let error: serde_json::Value = refused.json().await.expect("json error");
    assert_eq!(error["error"]["code"], "busy");
    assert!(error["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains('2')));
    assert_eq!(app.count_rows("deliveries"), 1, "only the one taken before");
    let busy = r#"switchboard_webhook_deliveries_total{outcome="busy"}"#;
    assert_eq!(app.metric(busy).await, 1.0);

    // The stalled bodies finish; their places come back and webhooks are taken again.
    for (stream, body) in [(&mut one, &first), (&mut two, &second)] {
        stream.write_all(&body[10..]).await.expect("the rest");
        assert_eq!(read_answer(stream).await.0, 200);
    }
    app.metric_reaches(IN_FLIGHT, 0.0).await;
    assert_eq!(app.post_signed(text_message(4)).await.status(), 200);
    assert_eq!(app.count_rows("deliveries"), 4);
}

/// `n` read statuses in one change, each with its own wamid.
fn statuses(n: usize) -> Vec<u8> {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(r#"{{"id":"wamid.cap-{i}","status":"read","timestamp":"1753115160","recipient_id":"12125550100"}}"#)
        })
        .collect();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"statuses":[{}]}}}}]}}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

fn receipt_kinds(receipt: &serde_json::Value) -> Vec<String> {
    receipt["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

#[tokio::test]
async fn a_delivery_past_the_item_cap_is_answered_200_and_kept_whole_as_one_oversize_event() {
    let consumer = Receiver::start().await;
    let routes = route(
        "ops",
        r#"["other"]"#,
        &format!("http://127.0.0.1:{}/hook", consumer.port()),
        "",
    );
    let app = spawn_limited("max_delivery_items = 3", &routes).await;
    let at_cap: serde_json::Value = app
        .post_signed(statuses(3))
        .await
        .json()
        .await
        .expect("receipt");
    assert_eq!(receipt_kinds(&at_cap), ["message_status:read"; 3]);

    let over = statuses(4);
    let response = app.post_signed(over.clone()).await;
    assert_eq!(response.status(), 200);
    let receipt: serde_json::Value = response.json().await.expect("receipt");
    assert_eq!(receipt_kinds(&receipt), ["other:oversize"]);
    let stored = app.stored_events();
    assert_eq!(stored.len(), 4);
    assert_eq!(
        stored[3],
        ("other:oversize".to_owned(), over.clone()),
        "the raw delivery"
    );
    let reason = r#"switchboard_oversize_deliveries_total{reason="items"}"#;
    assert_eq!(app.metric(reason).await, 1.0);

    // Meta's retry of it is the same event, a duplicate; the consumer gets it once.
    let again: serde_json::Value = app
        .post_signed(over.clone())
        .await
        .json()
        .await
        .expect("receipt");
    assert_eq!(again["events"][0]["id"], receipt["events"][0]["id"]);
    assert_eq!(again["events"][0]["duplicate"], true);
    let forwarded = consumer.wait_for(1).await;
    assert_eq!(
        forwarded[0].header("x-switchboard-event"),
        Some("other:oversize")
    );
    assert_eq!(forwarded[0].body, over);
}

/// A text message whose body is `len` characters.
fn long_text(len: usize) -> Vec<u8> {
    let text = "x".repeat(len);
    String::from_utf8(text_message(7))
        .expect("utf-8")
        .replace("hello 7", &text)
        .into_bytes()
}

#[tokio::test]
async fn a_delivery_with_an_event_past_the_byte_cap_is_kept_whole_as_one_oversize_event() {
    let app = spawn_limited("max_event_bytes = 1000", "").await;
    let fits: serde_json::Value = app
        .post_signed(long_text(100))
        .await
        .json()
        .await
        .expect("receipt");
    assert_eq!(receipt_kinds(&fits), ["message:text"]);
    let stored = app.stored_events();
    let largest_fit = stored[0].1.len();
    assert!(largest_fit <= 1000);

    // The same message made just long enough that its event passes 1,000 bytes.
    let over = long_text(100 + (1000 - largest_fit) + 1);
    let response = app.post_signed(over.clone()).await;
    assert_eq!(response.status(), 200);
    let receipt: serde_json::Value = response.json().await.expect("receipt");
    assert_eq!(receipt_kinds(&receipt), ["other:oversize"]);
    assert_eq!(app.stored_events()[1].1, over);
    let reason = r#"switchboard_oversize_deliveries_total{reason="event_bytes"}"#;
    assert_eq!(app.metric(reason).await, 1.0);
    // One byte less fits exactly.
    let exact = long_text(100 + (1000 - largest_fit));
    let exact = String::from_utf8(exact)
        .expect("utf-8")
        .replace("wamid.test-7", "wamid.test-8");
    let receipt: serde_json::Value = app
        .post_signed(exact.into_bytes())
        .await
        .json()
        .await
        .expect("receipt");
    assert_eq!(receipt_kinds(&receipt), ["message:text"]);
    assert_eq!(app.stored_events()[2].1.len(), 1000);
}

#[tokio::test]
async fn items_sharing_a_large_value_are_stored_without_copies_of_it() {
    let app = spawn_limited("", "").await;
    let shared = "s".repeat(1_000_000);
    let body = String::from_utf8(statuses(1000))
        .expect("utf-8")
        .replace(
            r#""messaging_product":"whatsapp""#,
            &format!(r#""messaging_product":"whatsapp","shared":"{shared}""#),
        )
        .into_bytes();
    assert!(body.len() > 1_000_000);
    let receipt: serde_json::Value = app.post_signed(body).await.json().await.expect("receipt");
    assert_eq!(receipt_kinds(&receipt).len(), 1000);
    let stored = app.stored_events();
    assert_eq!(stored.len(), 1000);
    for (kind, payload) in &stored {
        assert_eq!(kind, "message_status:read");
        assert!(payload.len() < 1000, "{} bytes", payload.len());
        let json: serde_json::Value = serde_json::from_slice(payload).expect("json");
        let value = &json["entry"][0]["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
        assert_eq!(value["statuses"].as_array().map(Vec::len), Some(1));
        assert!(value.get("shared").is_none());
    }
}

#[tokio::test]
async fn unknown_statuses_types_and_fields_count_as_other_never_as_new_series() {
    let app = spawn_limited("", "").await;
    let mut posted = Vec::new();
    for n in 0..20 {
        let status = format!("status-{n}");
        let kind = format!("type-{n}");
        let field = format!("field_{n}");
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[
            {{"field":"messages","value":{{"statuses":[{{"id":"wamid.s{n}","status":"{status}"}}],
                                           "messages":[{{"id":"wamid.m{n}","type":"{kind}"}}]}}}},
            {{"field":"{field}","value":{{"n":{n}}}}}]}}]}}"#
        );
        let receipt: serde_json::Value = app
            .post_signed(body.into_bytes())
            .await
            .json()
            .await
            .expect("receipt");
        // Routes and receipts still see what Meta sent.
        assert_eq!(
            receipt_kinds(&receipt),
            [
                format!("message:{kind}"),
                format!("message_status:{status}"),
                format!("other:{field}")
            ]
        );
        posted.extend([status, kind, field]);
    }
    let metrics = app.metrics().await;
    for text in &posted {
        assert!(!metrics.contains(text.as_str()), "{text} became a label");
    }
    let events: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("switchboard_events_total{"))
        .collect();
    assert_eq!(
        events,
        [
            r#"switchboard_events_total{kind="message:other"} 20"#,
            r#"switchboard_events_total{kind="message_status:other"} 20"#,
            r#"switchboard_events_total{kind="other:other"} 20"#,
        ]
    );
}

#[test]
fn limits_outside_their_range_stop_start_up_naming_the_key() {
    let dir = TempDir::new().expect("temp dir");
    for (keys, key) in [
        ("body_timeout = \"0s\"", "server.body_timeout"),
        ("body_timeout = \"31s\"", "server.body_timeout"),
        (
            "max_webhooks_in_flight = 0",
            "server.max_webhooks_in_flight",
        ),
        ("max_delivery_items = 0", "server.max_delivery_items"),
        ("max_event_bytes = 0", "server.max_event_bytes"),
    ] {
        let error = Settings::from_toml(&toml_with(dir.path(), keys, ""))
            .expect_err(keys)
            .to_string();
        assert!(error.contains(key), "{keys}: {error}");
    }
    let defaults = Settings::from_toml(&toml_with(dir.path(), "", "")).expect("defaults");
    assert_eq!(defaults.server.body_timeout, Duration::from_secs(30));
    assert_eq!(defaults.server.max_webhooks_in_flight, 64);
    assert_eq!(defaults.server.delivery_limits.max_items, 1000);
    assert_eq!(defaults.server.delivery_limits.max_event_bytes, 65536);
}

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use secrecy::SecretString;
use sha2::Digest;
use switchboard::config::Settings;
use switchboard::meta::signature::AppSecret;
use switchboard::startup::Application;
use tempfile::TempDir;
use tokio::sync::Notify;

pub const APP_SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "verify-me";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
pub const AGENT_TOKEN: &str = "agent-token-for-tests";
pub const ROUTE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How long a test waits for something that should happen at once; only a bound.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meta-webhooks")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).expect("fixture exists")
}

pub fn sign(body: &[u8]) -> String {
    AppSecret::parse(SecretString::from(APP_SECRET.to_owned()))
        .expect("valid secret")
        .sign(body)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// A text message with its own wamid, so each call makes a new event.
pub fn text_message(n: u64) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Asha Verma"}},"wa_id":"12125550100","user_id":"US.10293847561029384756"}}],"messages":[{{"from":"12125550100","id":"wamid.test-{n}","timestamp":"1753115100","text":{{"body":"hello {n}"}},"type":"text"}}]}}}}]}}]}}"#
    )
    .into_bytes()
}

/// The full configuration a test server runs with; `extra` holds `[[routes]]` tables.
pub fn config_toml(listen: &str, data_dir: &Path, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "{listen}"
public_url = "http://127.0.0.1:8080"
data_dir = "{data_dir}"

[meta]
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
access_token = "EAAG-test"
phone_number_id = "106540352242922"
graph_api_base = "http://127.0.0.1:9"

[[agents]]
name = "root"
token_sha256 = "{admin}"
role = "admin"

[[agents]]
name = "asha"
token_sha256 = "{agent}"
role = "agent"

{extra}
"#,
        data_dir = data_dir.display(),
        admin = sha256_hex(ADMIN_TOKEN),
        agent = sha256_hex(AGENT_TOKEN),
    )
}

/// A `[[routes]]` table.
pub fn route(name: &str, events: &str, url: &str, options: &str) -> String {
    format!("[[routes]]\nname = \"{name}\"\nevents = {events}\nurl = \"{url}\"\n{options}\n")
}

pub struct TestApp {
    pub address: String,
    stop: switchboard::startup::Stopper,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    _dir: Option<TempDir>,
}

pub async fn spawn_app(routes: &str) -> TestApp {
    let dir = TempDir::new().expect("temp dir");
    let data_dir = dir.path().join("data");
    let mut app = spawn_app_in(&data_dir, routes).await;
    app._dir = Some(dir);
    app
}

/// A server on an existing data directory, as after a restart.
pub async fn spawn_app_in(data_dir: &Path, routes: &str) -> TestApp {
    let settings =
        Settings::from_toml(&config_toml("127.0.0.1:0", data_dir, routes)).expect("valid config");
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let stop = app.stopper();
    let running = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        stop,
        running,
        client: reqwest::Client::new(),
        data_dir: data_dir.to_owned(),
        _dir: None,
    }
}

impl TestApp {
    /// Stops the server as SIGTERM would and waits for its workers.
    pub async fn stop(self) {
        self.stop.stop().await;
        self.running.await.expect("joined").expect("clean stop");
    }

    pub async fn post_webhook(&self, body: Vec<u8>, signature: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/webhook", self.address))
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send().await.expect("request sent")
    }

    /// Posts `body` signed with the app secret and expects `200`.
    pub async fn post_signed(&self, body: Vec<u8>) -> serde_json::Value {
        let signature = sign(&body);
        let response = self.post_webhook(body, Some(&signature)).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("receipt")
    }

    pub async fn admin_get(&self, path: &str) -> serde_json::Value {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json")
    }

    pub async fn admin_post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn jobs(&self, query: &str) -> Vec<serde_json::Value> {
        self.admin_get(&format!("/api/deliveries?{query}")).await["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until no job is pending, polling the admin API.
    pub async fn wait_until_idle(&self) {
        let waited = tokio::time::timeout(PATIENCE, async {
            while !self.jobs("state=pending").await.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "jobs still pending after {PATIENCE:?}");
    }

    /// Rows in a table of the store's SQLite file, read directly.
    pub fn count_rows(&self, table: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.data_dir.join("switchboard.db")).expect("db");
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .expect("count")
    }
}

/// One request a consumer received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

/// How a consumer answers.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub status: u16,
    pub retry_after: Option<String>,
    pub delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            status: 200,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Clone, Default)]
struct ConsumerState {
    received: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    arrived: Arc<Notify>,
}

/// A real HTTP consumer on loopback that records what it gets.
pub struct Consumer {
    pub url: String,
    state: ConsumerState,
}

impl Consumer {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind consumer");
        let port = listener.local_addr().expect("addr").port();
        let state = ConsumerState::default();
        let shared = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(record))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
        }
    }

    pub fn behave(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().expect("lock") = behaviour;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests have arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                let notified = self.state.arrived.notified();
                if self.received().len() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await;
        let received = self.received();
        assert!(
            waited.is_ok(),
            "expected {n} requests at {}, got {}",
            self.url,
            received.len()
        );
        received
    }
}

/// A port with nothing listening on it (it was free a moment ago).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn record(req: HttpRequest, body: Bytes, state: web::Data<ConsumerState>) -> HttpResponse {
    let behaviour = state.behaviour.lock().expect("lock").clone();
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    state.received.lock().expect("lock").push(Received {
        headers,
        body,
        at: std::time::Instant::now(),
    });
    state.arrived.notify_waiters();
    let mut response = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(behaviour.status).expect("status"),
    );
    if let Some(after) = behaviour.retry_after {
        response.insert_header(("Retry-After", after));
    }
    response.finish()
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestApp {
    /// Opens `/ws` as `token`, sending `origin` if given; the HTTP status if refused.
    pub async fn socket(&self, token: &str, origin: Option<&str>) -> Result<Socket, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/ws", self.address.replace("http://", "ws://"));
        let mut request = url.into_client_request().expect("request");
        let headers = request.headers_mut();
        headers.insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        if let Some(origin) = origin {
            headers.insert("origin", origin.parse().expect("header"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(e) => panic!("websocket failed: {e}"),
        }
    }

    pub async fn agent_get(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }
}

/// The next call event on a socket (pings and pongs skipped), within [`PATIENCE`].
pub async fn next_event(socket: &mut Socket) -> switchboard_protocol::ws::ServerEvent {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text).expect("a server event");
                }
                Some(Ok(_)) => continue,
                other => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await;
    waited.expect("an event within the patience")
}

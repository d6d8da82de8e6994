//! The router on port 0 with its test agents and routes, Meta's webhooks signed with the
//! test app secret, and requests as the admin and agents make them. Servers, consumers,
//! signing and sockets come from `switchboard_testkit`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchboard::startup::Application;
use switchboard_testkit::agent::AgentSocket;
use switchboard_testkit::meta::sign;
use switchboard_testkit::router::{Agent, RouterConfig};
use switchboard_testkit::server::Running;
use switchboard_testkit::wait::{poll, PATIENCE};
use tempfile::TempDir;

pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
pub const AGENT_TOKEN: &str = "agent-token-for-tests";
pub const ROUTE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meta-webhooks")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).expect("fixture exists")
}

/// A text message with its own wamid, so each call makes a new event.
pub fn text_message(n: u64) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Asha Verma"}},"wa_id":"12125550100","user_id":"US.10293847561029384756"}}],"messages":[{{"from":"12125550100","id":"wamid.test-{n}","timestamp":"1753115100","text":{{"body":"hello {n}"}},"type":"text"}}]}}}}]}}]}}"#
    )
    .into_bytes()
}

/// The configuration a test server runs with: an admin (`root`) and an agent (`asha`);
/// `extra` holds `[[routes]]` and other tables.
pub fn config(data_dir: &Path, extra: &str) -> RouterConfig {
    RouterConfig {
        agents: vec![
            Agent::admin("root", ADMIN_TOKEN),
            Agent::new("asha", AGENT_TOKEN),
        ],
        extra: extra.to_owned(),
        ..RouterConfig::new(data_dir)
    }
}

/// [`config`] as the file `switchboard serve --config` reads.
pub fn config_toml(data_dir: &Path, extra: &str) -> String {
    config(data_dir, extra).toml()
}

/// A `[[routes]]` table.
pub fn route(name: &str, events: &str, url: &str, options: &str) -> String {
    format!("[[routes]]\nname = \"{name}\"\nevents = {events}\nurl = \"{url}\"\n{options}\n")
}

pub struct TestApp {
    pub address: String,
    router: Running<Application>,
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

/// [`spawn_app`] with its configuration changed first.
pub async fn spawn_app_with(routes: &str, change: impl FnOnce(&mut RouterConfig)) -> TestApp {
    let dir = TempDir::new().expect("temp dir");
    let data_dir = dir.path().join("data");
    let mut settings = config(&data_dir, routes);
    change(&mut settings);
    let mut app = start(settings, &data_dir).await;
    app._dir = Some(dir);
    app
}

/// A server on an existing data directory, as after a restart.
pub async fn spawn_app_in(data_dir: &Path, routes: &str) -> TestApp {
    start(config(data_dir, routes), data_dir).await
}

async fn start(settings: RouterConfig, data_dir: &Path) -> TestApp {
    let router = settings.start().await.expect("the app builds");
    TestApp {
        address: router.url.clone(),
        router,
        client: reqwest::Client::new(),
        data_dir: data_dir.to_owned(),
        _dir: None,
    }
}

impl TestApp {
    /// Stops the server as SIGTERM would and waits for its workers.
    pub async fn stop(self) {
        self.router.stop().await;
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

    /// `/metrics` as Prometheus text.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200);
        response.text().await.expect("text")
    }

    pub async fn admin_get(&self, path: &str) -> serde_json::Value {
        let response = self.agent_get(ADMIN_TOKEN, path).await;
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

    pub async fn agent_get(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
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
        let idle = poll(Duration::from_millis(50), async || {
            self.jobs("state=pending").await.is_empty().then_some(())
        })
        .await;
        assert!(idle.is_some(), "jobs still pending after {PATIENCE:?}");
    }

    /// Rows in a table of the store's SQLite file, read directly.
    pub fn count_rows(&self, table: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.data_dir.join("switchboard.db")).expect("db");
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .expect("count")
    }

    /// Opens `/ws` as `token`, sending `origin` if given; the HTTP status if refused.
    pub async fn socket(&self, token: &str, origin: Option<&str>) -> Result<AgentSocket, u16> {
        AgentSocket::open(&self.address, token, origin).await
    }
}

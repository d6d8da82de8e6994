//! The router and wa-sim in this process, each on its own loopback port and wired to
//! the other, with agents signed in over the router's public API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use switchboard::config::Settings;
use switchboard::startup::Application;
use switchboard_protocol::ws::ServerEvent;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::{agents_toml, free_port, PATIENCE};

pub use crate::AGENTS;

pub struct Stack {
    pub router: String,
    pub sim: String,
    pub http: reqwest::Client,
    sim_stopper: wa_sim::startup::Stopper,
    router_handle: RouterHandle,
}

/// A router on its own store, talking to the Graph API at `graph_port`.
pub struct RouterHandle {
    pub url: String,
    stopper: switchboard::startup::Stopper,
    _dir: tempfile::TempDir,
}

impl RouterHandle {
    pub async fn start(graph_port: u16) -> anyhow::Result<Self> {
        let dir = tempfile::TempDir::new()?;
        let agents = agents_toml();
        let toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
data_dir = "{data}"

[meta]
app_secret = "test-app-secret"
verify_token = "verify-me"
access_token = "EAAG-test"
phone_number_id = "106540352242922"
graph_api_base = "http://127.0.0.1:{graph_port}"

[calls]
ice_gathering_timeout = "2s"

{agents}"#,
            data = dir.path().join("data").display(),
        );
        let app = Application::build(Settings::from_toml(&toml)?).await?;
        let url = format!("http://127.0.0.1:{}", app.port());
        let stopper = app.stopper();
        tokio::spawn(app.run_until_stopped());
        Ok(Self {
            url,
            stopper,
            _dir: dir,
        })
    }

    pub async fn stop(self) {
        self.stopper.stop().await;
    }
}

/// wa-sim's timings shortened for tests (Meta's are seconds to minutes).
pub fn quick_sim(config: &mut wa_sim::Config) {
    config.timings.answer_delay = Duration::from_millis(300);
    config.timings.permission_reply_delay = Duration::from_millis(100);
    config.webhook_retries = vec![Duration::from_millis(100), Duration::from_millis(500)];
}

impl Stack {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(quick_sim).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut wa_sim::Config)) -> anyhow::Result<Self> {
        let sim_port = free_port();
        let router_handle = RouterHandle::start(sim_port).await?;
        let router = router_handle.url.clone();
        let mut config = wa_sim::Config::new(format!("{router}/webhook"));
        config.listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), sim_port);
        adjust(&mut config);
        let simulator = wa_sim::Simulator::build(config)?;
        let sim = format!("http://127.0.0.1:{}", simulator.port());
        let sim_stopper = simulator.stopper();
        tokio::spawn(simulator.run_until_stopped());
        Ok(Self {
            router,
            sim,
            http: reqwest::Client::new(),
            sim_stopper,
            router_handle,
        })
    }

    /// Another router with its own store on the same Meta: Meta then knows of calls and
    /// requests this one does not, as when another system shares the business number.
    pub async fn second_router(&self) -> anyhow::Result<RouterHandle> {
        let port = self
            .sim
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default();
        RouterHandle::start(port).await
    }

    pub async fn stop(self) {
        self.sim_stopper.stop().await;
        self.router_handle.stop().await;
    }

    /// `POST` to the router as an agent; the status and the JSON body.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.post_to(&self.router, token, path, body).await
    }

    /// `POST` to any router as an agent.
    pub async fn post_to(
        &self,
        router: &str,
        token: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{router}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("the router answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET` from the router as an agent; the status and the JSON body.
    pub async fn get_status(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.router))
            .bearer_auth(token)
            .send()
            .await
            .expect("the router answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, token: &str, path: &str) -> Value {
        self.get_from(&self.router, token, path).await
    }

    pub async fn get_from(&self, router: &str, token: &str, path: &str) -> Value {
        self.http
            .get(format!("{router}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("the router answers")
            .json()
            .await
            .expect("json")
    }

    /// `POST` to wa-sim's control API.
    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{path}", self.sim))
            .json(&body)
            .send()
            .await
            .expect("wa-sim answers")
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sim))
            .send()
            .await
            .expect("wa-sim answers")
            .json()
            .await
            .expect("json")
    }

    /// Sets up a simulated user (see wa-sim's `POST /sim/users`).
    pub async fn sim_user(&self, setup: Value) {
        self.sim_post("/sim/users", setup).await;
    }

    /// Opens an agent's WebSocket and reads its `hello`.
    pub async fn socket(&self, token: &str) -> AgentSocket {
        let url = format!("{}/ws", self.router.replace("http://", "ws://"));
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the socket opens");
        let mut socket = AgentSocket { stream };
        let hello = socket.next().await;
        assert!(matches!(hello, ServerEvent::Hello { .. }), "{hello:?}");
        socket
    }
}

pub struct AgentSocket {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl AgentSocket {
    /// The next call event, within [`PATIENCE`].
    pub async fn next(&mut self) -> ServerEvent {
        let event = tokio::time::timeout(PATIENCE, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        return serde_json::from_str::<ServerEvent>(&text).expect("an event");
                    }
                    Some(Ok(_)) => continue,
                    other => panic!("the socket ended: {other:?}"),
                }
            }
        })
        .await;
        event.expect("an event within the patience")
    }

    /// Skips events until one matches, within [`PATIENCE`].
    pub async fn until(&mut self, wanted: impl Fn(&ServerEvent) -> bool) -> ServerEvent {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let event = tokio::time::timeout_at(deadline, self.next())
                .await
                .expect("the awaited event arrives");
            if wanted(&event) {
                return event;
            }
        }
    }
}

/// A body for `POST /api/calls`.
pub fn place(to: &str, sdp: &str) -> Value {
    json!({ "to": to, "sdp": sdp })
}

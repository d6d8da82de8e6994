//! The router and wa-sim in this process, each on its own loopback port and wired to
//! the other, with agents signed in over the router's public API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};
use switchboard::startup::Application;
use switchboard_protocol::ws::ServerEvent;
use switchboard_testkit::agent::AgentSocket;
use switchboard_testkit::http::JsonAnswer;
use switchboard_testkit::router::RouterConfig;
use switchboard_testkit::server::{free_port, Running};
use switchboard_testkit::sim::start_sim;
use wa_sim::Simulator;

use crate::agents;

pub use crate::AGENTS;

pub struct Stack {
    pub router: String,
    pub sim: String,
    pub http: reqwest::Client,
    running_sim: Running<Simulator>,
    router_handle: RouterHandle,
}

/// A router on its own store, talking to the Graph API at `graph_port`.
pub struct RouterHandle {
    pub url: String,
    running: Running<Application>,
    _dir: tempfile::TempDir,
}

impl RouterHandle {
    pub async fn start(graph_port: u16) -> anyhow::Result<Self> {
        let dir = tempfile::TempDir::new()?;
        let config = RouterConfig {
            graph_api_base: format!("http://127.0.0.1:{graph_port}"),
            agents: agents(),
            extra: "[calls]\nice_gathering_timeout = \"2s\"\n".into(),
            ..RouterConfig::new(dir.path().join("data"))
        };
        let running = config.start().await?;
        Ok(Self {
            url: running.url.clone(),
            running,
            _dir: dir,
        })
    }

    pub async fn stop(self) {
        self.running.stop().await;
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
        let running_sim = start_sim(config)?;
        Ok(Self {
            router,
            sim: running_sim.url.clone(),
            http: reqwest::Client::new(),
            running_sim,
            router_handle,
        })
    }

    /// Another router with its own store on the same Meta: Meta then knows of calls and
    /// requests this one does not, as when another system shares the business number.
    pub async fn second_router(&self) -> anyhow::Result<RouterHandle> {
        RouterHandle::start(self.running_sim.port()).await
    }

    pub async fn stop(self) {
        self.running_sim.stop().await;
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
        self.http
            .post(format!("{router}{path}"))
            .bearer_auth(token)
            .json(&body)
            .status_and_json()
            .await
    }

    /// `GET` from the router as an agent; the status and the JSON body.
    pub async fn get_status(&self, token: &str, path: &str) -> (u16, Value) {
        self.http
            .get(format!("{}{path}", self.router))
            .bearer_auth(token)
            .status_and_json()
            .await
    }

    pub async fn get(&self, token: &str, path: &str) -> Value {
        self.get_from(&self.router, token, path).await
    }

    pub async fn get_from(&self, router: &str, token: &str, path: &str) -> Value {
        self.http
            .get(format!("{router}{path}"))
            .bearer_auth(token)
            .json_body()
            .await
    }

    /// `POST` to wa-sim's control API.
    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        let (_, answer) = self
            .http
            .post(format!("{}{path}", self.sim))
            .json(&body)
            .status_and_json()
            .await;
        answer
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sim))
            .json_body()
            .await
    }

    /// Sets up a simulated user (see wa-sim's `POST /sim/users`).
    pub async fn sim_user(&self, setup: Value) {
        self.sim_post("/sim/users", setup).await;
    }

    /// Opens an agent's WebSocket and reads its `hello`.
    pub async fn socket(&self, token: &str) -> AgentSocket {
        let mut socket = AgentSocket::open(&self.router, token, None)
            .await
            .expect("the socket opens");
        let hello = socket.next().await;
        assert!(matches!(hello, ServerEvent::Hello { .. }), "{hello:?}");
        socket
    }
}

/// A body for `POST /api/calls`.
pub fn place(to: &str, sdp: &str) -> Value {
    json!({ "to": to, "sdp": sdp })
}

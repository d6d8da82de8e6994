//! The product as users run it: the `switchboard` and `wa-sim` binaries as processes on
//! loopback, the router serving the dialer from `www/`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use switchboard_testkit::meta::{ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID};
use switchboard_testkit::router::RouterConfig;
use switchboard_testkit::server::free_port;

use crate::{agents, wait_until_ready, workspace_binary, workspace_root, Process};

pub use crate::{path_segment, AGENTS};

pub struct Product {
    pub router: String,
    pub sim: String,
    pub http: reqwest::Client,
    pub log_dir: PathBuf,
    router_process: Process,
    sim_process: Process,
    _dir: tempfile::TempDir,
}

impl Product {
    /// Starts both processes; `sim_args` are extra `wa-sim serve` options.
    pub async fn start(name: &str, sim_args: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::TempDir::new()?;
        let log_dir = workspace_root().join("target/e2e").join(name);
        std::fs::create_dir_all(&log_dir)?;
        let (router_port, sim_port) = (free_port(), free_port());
        let router = format!("http://127.0.0.1:{router_port}");
        let sim = format!("http://127.0.0.1:{sim_port}");
        let config = dir.path().join("switchboard.toml");
        let settings = RouterConfig {
            listen: format!("127.0.0.1:{router_port}"),
            public_url: router.clone(),
            static_dir: Some(workspace_root().join("www")),
            graph_api_base: sim.clone(),
            agents: agents(),
            extra: "[calls]\nice_gathering_timeout = \"3s\"\n".into(),
            ..RouterConfig::new(dir.path().join("data"))
        };
        std::fs::write(&config, settings.toml())?;
        let mut command = Command::new(workspace_binary("switchboard")?);
        command.arg("serve").arg("--config").arg(&config);
        let mut router_process = Process::start("switchboard", command, &log_dir)?;
        wait_until_ready(&mut router_process, &format!("{router}/readyz")).await?;

        let mut command = Command::new(workspace_binary("wa-sim")?);
        command
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{sim_port}")])
            .args(["--webhook-url", &format!("{router}/webhook")])
            .args(["--app-secret", APP_SECRET])
            .args(["--access-token", ACCESS_TOKEN])
            .args(["--phone-number-id", PHONE_NUMBER_ID])
            .args(sim_args);
        let mut sim_process = Process::start("wa-sim", command, &log_dir)?;
        wait_until_ready(&mut sim_process, &format!("{sim}/healthz")).await?;
        Ok(Self {
            router,
            sim,
            http: reqwest::Client::new(),
            log_dir,
            router_process,
            sim_process,
            _dir: dir,
        })
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.sim))
            .json(&body)
            .send()
            .await?;
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    pub async fn sim_get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.sim))
            .send()
            .await?
            .json()
            .await?)
    }

    /// Both processes' recent logs, for a failing test's message.
    pub fn logs(&self) -> String {
        format!(
            "{}\n{}",
            self.router_process.tail(30),
            self.sim_process.tail(30)
        )
    }
}

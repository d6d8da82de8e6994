//! The router's configuration as tests write it, and the router started from it in this
//! process.

use std::fmt::Write as _;
use std::path::PathBuf;

use sha2::Digest;
use switchboard::config::Settings;
use switchboard::startup::Application;

use crate::meta::{ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN};
use crate::server::Running;

/// An `[[agents]]` entry: who signs in with which token, in which role.
#[derive(Debug, Clone, Copy)]
pub struct Agent {
    pub name: &'static str,
    pub token: &'static str,
    pub role: &'static str,
}

impl Agent {
    /// An agent who takes and places calls.
    pub const fn new(name: &'static str, token: &'static str) -> Self {
        Self {
            name,
            token,
            role: "agent",
        }
    }

    /// An administrator: calls, and the delivery API too.
    pub const fn admin(name: &'static str, token: &'static str) -> Self {
        Self {
            name,
            token,
            role: "admin",
        }
    }
}

/// The router's configuration file for a test: Meta's side is always [`crate::meta`]'s;
/// the rest is set per test, starting from [`RouterConfig::new`].
#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub listen: String,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub static_dir: Option<PathBuf>,
    pub graph_api_base: String,
    pub agents: Vec<Agent>,
    /// Further tables as written, after the agents (`[calls]`, `[[routes]]`).
    pub extra: String,
    /// `server.ignore_replays`: off unless a test turns it on, because the fixtures are
    /// Meta's samples, dated 2025, which the router would take for replays.
    pub ignore_replays: bool,
}

impl RouterConfig {
    /// Port 0 on loopback, a store in `data_dir`, no agents, and a Graph API on a port
    /// where nothing listens (`127.0.0.1:9`).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            public_url: "http://127.0.0.1:8080".into(),
            data_dir: data_dir.into(),
            static_dir: None,
            graph_api_base: "http://127.0.0.1:9".into(),
            agents: Vec::new(),
            extra: String::new(),
            ignore_replays: false,
        }
    }

    /// The configuration as a TOML file.
    pub fn toml(&self) -> String {
        let mut toml = format!(
            "[server]\nlisten = \"{}\"\npublic_url = \"{}\"\ndata_dir = \"{}\"\nignore_replays = {}\n",
            self.listen,
            self.public_url,
            self.data_dir.display(),
            self.ignore_replays
        );
        if let Some(www) = &self.static_dir {
            let _ = writeln!(toml, "static_dir = \"{}\"", www.display());
        }
        let _ = write!(
            toml,
            "\n[meta]\napp_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n\
             access_token = \"{ACCESS_TOKEN}\"\nphone_number_id = \"{PHONE_NUMBER_ID}\"\n\
             graph_api_base = \"{}\"\n",
            self.graph_api_base
        );
        for agent in &self.agents {
            let _ = write!(
                toml,
                "\n[[agents]]\nname = \"{}\"\ntoken_sha256 = \"{}\"\nrole = \"{}\"\n",
                agent.name,
                sha256_hex(agent.token),
                agent.role
            );
        }
        let _ = write!(toml, "\n{}\n", self.extra);
        toml
    }

    /// The router built from this configuration, serving in this process.
    pub async fn start(&self) -> anyhow::Result<Running<Application>> {
        let settings = Settings::from_toml(&self.toml())?;
        Ok(Running::spawn(Application::build(settings).await?))
    }
}

/// How the router's configuration holds an agent's token.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

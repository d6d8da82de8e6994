//! Settings (DESIGN §4): one TOML file and the environment, read into [`raw`] structs and
//! parsed once, as a whole, into typed [`Settings`] that the server, the command line and
//! the tests all use. An error names the key it is about.

mod parse;
pub mod raw;
mod safety;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;
use switchboard_protocol::api::IceServer;

use self::raw::RawSettings;
use crate::agents::address::TrustedProxies;
use crate::agents::auth::Agents;
use crate::agents::socket::SocketLimits;
use crate::agents::throttle::ThrottleSettings;
use crate::calls::PermissionRequestStyle;
use crate::fanout::routes::Routes;
use crate::meta::events::Limits as DeliveryLimits;
use crate::meta::signature::AppSecret;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Everything Switchboard is configured with, checked.
#[derive(Debug)]
pub struct Settings {
    pub server: ServerSettings,
    pub meta: MetaSettings,
    pub calls: CallSettings,
    pub agents: Agents,
    pub routes: Routes,
    pub store: StoreSettings,
}

/// The embedded store's writer queue.
#[derive(Debug, Clone, Copy)]
pub struct StoreSettings {
    /// Writes queued or being written at once; one more is refused.
    pub write_queue: usize,
    /// How long a write may take, queue included, before it is refused.
    pub write_timeout: Duration,
}

#[derive(Debug)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub public_url: Url,
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    /// Where the dialer's static files are served from.
    pub static_dir: PathBuf,
    /// How long delivered webhooks are kept before they are pruned.
    pub retention: Duration,
    /// The most agent WebSockets open at once.
    pub max_websockets: usize,
    /// Origins besides `public_url`'s allowed to open the WebSocket and use the session
    /// cookie.
    pub allowed_origins: Vec<String>,
    /// How long a request's body may take to arrive after its head.
    pub body_timeout: Duration,
    /// Webhook bodies being read or stored at once.
    pub max_webhooks_in_flight: usize,
    /// Whether a delivery dated before the store's memory is answered and not taken again.
    pub ignore_replays: bool,
    /// How much one delivery may split into.
    pub delivery_limits: DeliveryLimits,
    /// Whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// How long a browser session lasts from sign-in.
    pub session_lifetime: Duration,
    /// Failed sign-ins allowed per client address.
    pub login_throttle: ThrottleSettings,
    /// The most WebSockets one agent may have open at once.
    pub max_websockets_per_agent: usize,
    /// What one agent WebSocket may send, and how long a send may wait for it.
    pub websocket_limits: SocketLimits,
    /// Where `/metrics` is served instead of `listen`, if set.
    pub metrics_listen: Option<SocketAddr>,
}

impl ServerSettings {
    /// The origin browsers send for pages served from `public_url`.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// Every origin a page may open the WebSocket from, or use the session cookie from:
    /// `public_url`'s, then the others.
    pub fn origins(&self) -> Vec<String> {
        std::iter::once(self.public_origin())
            .chain(self.allowed_origins.iter().cloned())
            .collect()
    }

    /// Whether agents reach the server over HTTPS (through a TLS proxy in front of it).
    pub fn https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// Cookies are marked `Secure` when the public URL is HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.https()
    }
}

/// Meta's side: the secrets webhooks are signed with, and the Graph API client's settings.
#[derive(Debug)]
pub struct MetaSettings {
    /// One or more (while one is rotated out).
    pub app_secrets: Vec<AppSecret>,
    pub verify_token: SecretString,
    pub access_token: SecretString,
    pub phone_number_id: String,
    pub graph_api_base: Url,
    pub graph_api_version: String,
}

#[derive(Debug)]
pub struct CallSettings {
    /// STUN/TURN servers handed to the dialer as they are.
    pub ice_servers: Vec<IceServer>,
    /// A TURN server whose credentials are minted per agent from a shared secret.
    pub turn: Option<TurnSettings>,
    /// How long the dialer waits for ICE gathering before sending what it has.
    pub ice_gathering_timeout: Duration,
    /// How permission requests are sent.
    pub permission_style: PermissionRequestStyle,
    /// How long one Graph API request may take.
    pub graph_timeout: Duration,
}

#[derive(Debug)]
pub struct TurnSettings {
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub shared_secret: SecretString,
    /// How long minted credentials stay valid.
    pub ttl: Duration,
}

impl Settings {
    /// Reads `path` and applies `SWITCHBOARD__SECTION__KEY` overrides and the conventional
    /// `META_*` secret variables, then parses.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("SWITCHBOARD")
                    .prefix_separator("__")
                    .separator("__"),
            );
        for (variable, key) in [
            ("META_VERIFY_TOKEN", "meta.verify_token"),
            ("META_ACCESS_TOKEN", "meta.access_token"),
            ("META_PHONE_NUMBER_ID", "meta.phone_number_id"),
        ] {
            builder = builder.set_override_option(key, std::env::var(variable).ok())?;
        }
        if let Ok(secrets) = std::env::var("META_APP_SECRET") {
            // A comma-separated list lets an old and a new secret overlap during rotation.
            let list: Vec<String> = secrets.split(',').map(|s| s.trim().to_owned()).collect();
            builder = builder.set_override("meta.app_secret", list)?;
        }
        let raw: RawSettings = builder.build()?.try_deserialize()?;
        Self::try_from(raw)
    }

    /// Parses TOML text with no environment applied; for tests and tools.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawSettings = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        Self::try_from(raw)
    }
}

//! Typed configuration (DESIGN §4), loaded from one TOML file and the environment and
//! checked as a whole before anything starts.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::agent::Role;
use crate::domain::route::{EventSelector, ForwardMode, RouteName};
use crate::fanout::outbound::Signer;
use crate::meta::signature::AppSecret;

/// Default body limit: Meta sends up to 3 MB.
const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub meta: MetaSettings,
    #[serde(default)]
    pub calls: CallSettings,
    #[serde(default)]
    pub agents: Vec<AgentSettings>,
    #[serde(default)]
    pub routes: Vec<RouteSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub public_url: String,
    pub data_dir: PathBuf,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Where the dialer's static files are served from.
    #[serde(default = "default_static_dir")]
    pub static_dir: PathBuf,
    /// How long delivered webhooks are kept before they are pruned. Meta retries for up
    /// to 7 days, and duplicates are recognised only while their events are kept.
    #[serde(default = "default_retention", deserialize_with = "duration")]
    pub retention: Duration,
    /// The most agent WebSockets open at once.
    #[serde(default = "default_max_websockets")]
    pub max_websockets: usize,
    /// Origins besides `public_url`'s allowed to open the WebSocket.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

fn default_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

/// Shorter than Meta's retry window, a retried webhook could be taken for a new one.
const MIN_RETENTION: Duration = Duration::from_secs(8 * 24 * 3600);

fn default_max_websockets() -> usize {
    1000
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_static_dir() -> PathBuf {
    PathBuf::from("www")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSettings {
    pub app_secret: OneOrMany,
    pub verify_token: SecretString,
    pub access_token: SecretString,
    pub phone_number_id: String,
    #[serde(default = "default_graph_base")]
    pub graph_api_base: String,
    #[serde(default = "default_graph_version")]
    pub graph_api_version: String,
}

fn default_graph_base() -> String {
    "https://graph.facebook.com".into()
}

fn default_graph_version() -> String {
    "v23.0".into()
}

/// One secret, or a list of them while one is being rotated out.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(SecretString),
    Many(Vec<SecretString>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSettings {
    /// STUN/TURN servers handed to the dialer as they are.
    #[serde(default)]
    pub ice_servers: Vec<switchboard_protocol::api::IceServer>,
    /// A TURN server whose credentials are minted per agent from a shared secret.
    #[serde(default)]
    pub turn: Option<TurnSettings>,
    /// How long the dialer waits for ICE gathering before sending what it has.
    #[serde(default = "default_gathering_timeout", deserialize_with = "duration")]
    pub ice_gathering_timeout: Duration,
    /// Send permission requests as this approved template instead of the free-form
    /// interactive message (which works only inside a customer-service window).
    #[serde(default)]
    pub permission_template: Option<TemplateSettings>,
    /// The body of the free-form permission request.
    #[serde(default)]
    pub permission_request_text: Option<String>,
    /// How long one Graph API request may take.
    #[serde(default = "default_graph_timeout", deserialize_with = "duration")]
    pub graph_timeout: Duration,
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            turn: None,
            ice_gathering_timeout: default_gathering_timeout(),
            permission_template: None,
            permission_request_text: None,
            graph_timeout: default_graph_timeout(),
        }
    }
}

fn default_gathering_timeout() -> Duration {
    Duration::from_secs(3)
}

fn default_graph_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnSettings {
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub shared_secret: SecretString,
    /// How long minted credentials stay valid.
    #[serde(default = "default_turn_ttl", deserialize_with = "duration")]
    pub ttl: Duration,
}

fn default_turn_ttl() -> Duration {
    Duration::from_secs(12 * 3600)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    pub name: String,
    /// The template's language code, e.g. `en_US`.
    pub language: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    pub name: String,
    pub token_sha256: String,
    #[serde(default = "default_role")]
    pub role: Role,
}

fn default_role() -> Role {
    Role::Agent
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    pub name: String,
    pub events: Vec<String>,
    pub url: String,
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde(default)]
    pub mode: ForwardMode,
    /// How long one forward may take before it counts as failed.
    #[serde(default = "default_route_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Forwards in flight at once for this route.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Delays between attempts; the first attempt is immediate.
    #[serde(default = "default_retry_schedule", deserialize_with = "durations")]
    pub retry_schedule: Vec<Duration>,
}

fn default_route_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_concurrency() -> usize {
    16
}

/// DESIGN §7: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub fn default_retry_schedule() -> Vec<Duration> {
    [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

/// A duration written the human way: `"10s"`, `"1m 30s"`.
fn duration<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}")))
}

/// A list of durations written the human way: `["5s", "5m", "2h"]`.
fn durations<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Duration>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(|t| {
            humantime::parse_duration(t)
                .map_err(|e| serde::de::Error::custom(format!("`{t}`: {e}")))
        })
        .collect()
}

impl Settings {
    /// Reads `path` and applies `SWITCHBOARD__SECTION__KEY` overrides and the conventional
    /// `META_*` secret variables, then validates.
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
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses TOML text with no environment applied; for tests and tools.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        reqwest::Url::parse(&self.server.public_url)
            .map_err(|e| invalid("server.public_url", e.to_string()))?;
        if self.server.retention < MIN_RETENTION {
            return Err(invalid(
                "server.retention",
                "must be at least 8 days: Meta retries a webhook for up to 7",
            ));
        }
        if self.server.max_websockets == 0 {
            return Err(invalid("server.max_websockets", "must be above zero"));
        }
        if let Some(turn) = &self.calls.turn {
            if turn.urls.is_empty() {
                return Err(invalid("calls.turn.urls", "list at least one turn: URL"));
            }
            if turn.shared_secret.expose_secret().is_empty() {
                return Err(invalid("calls.turn.shared_secret", "must not be empty"));
            }
        }
        for (i, server) in self.calls.ice_servers.iter().enumerate() {
            if server.urls.is_empty() {
                return Err(invalid(
                    format!("calls.ice_servers[{i}].urls"),
                    "list at least one URL",
                ));
            }
        }
        if self.server.max_body_bytes == 0 {
            return Err(invalid("server.max_body_bytes", "must be above zero"));
        }
        self.app_secrets()?;
        if self.meta.verify_token.expose_secret().is_empty() {
            return Err(invalid("meta.verify_token", "must not be empty"));
        }
        if self.meta.phone_number_id.trim().is_empty() {
            return Err(invalid("meta.phone_number_id", "must not be empty"));
        }
        reqwest::Url::parse(&self.meta.graph_api_base)
            .map_err(|e| invalid("meta.graph_api_base", e.to_string()))?;
        for (i, agent) in self.agents.iter().enumerate() {
            if agent.name.trim().is_empty() {
                return Err(invalid(format!("agents[{i}].name"), "must not be empty"));
            }
            let hash_ok = agent.token_sha256.len() == 64
                && agent.token_sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !hash_ok {
                return Err(invalid(
                    format!("agents[{i}].token_sha256"),
                    "must be the 64 hex digits of the token's SHA-256",
                ));
            }
        }
        let mut names = HashSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            route.validate(&format!("routes[{i}]"))?;
            if !names.insert(route.name.as_str()) {
                return Err(invalid(
                    format!("routes[{i}].name"),
                    format!("`{}` is used by two routes", route.name),
                ));
            }
        }
        Ok(())
    }

    /// The origin browsers send for pages served from `public_url`.
    pub fn public_origin(&self) -> String {
        reqwest::Url::parse(&self.server.public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .listen
            .parse()
            .map_err(|e| invalid("server.listen", format!("`{}`: {e}", self.server.listen)))
    }

    pub fn app_secrets(&self) -> Result<Vec<AppSecret>, ConfigError> {
        let secrets = match &self.meta.app_secret {
            OneOrMany::One(secret) => vec![secret.clone()],
            OneOrMany::Many(list) => list.clone(),
        };
        if secrets.is_empty() {
            return Err(invalid("meta.app_secret", "at least one secret is needed"));
        }
        secrets
            .into_iter()
            .map(|s| AppSecret::parse(s).map_err(|e| invalid("meta.app_secret", e)))
            .collect()
    }
}

impl RouteSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        RouteName::parse(&self.name).map_err(|e| invalid(format!("{key}.name"), e))?;
        if self.events.is_empty() {
            return Err(invalid(
                format!("{key}.events"),
                "list at least one event kind",
            ));
        }
        for selector in &self.events {
            EventSelector::parse(selector).map_err(|e| invalid(format!("{key}.events"), e))?;
        }
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| invalid(format!("{key}.url"), e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                format!("{key}.url"),
                "must be an http or https URL",
            ));
        }
        if let Some(secret) = &self.secret {
            Signer::parse(secret).map_err(|e| invalid(format!("{key}.secret"), e))?;
        }
        if self.concurrency == 0 {
            return Err(invalid(format!("{key}.concurrency"), "must be above zero"));
        }
        if self.timeout.is_zero() {
            return Err(invalid(format!("{key}.timeout"), "must be above zero"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
data_dir = "./data"

[meta]
app_secret = "test-app-secret"
verify_token = "verify-me"
access_token = "EAAG-test"
phone_number_id = "106540352242922"
graph_api_base = "https://graph.facebook.com"
graph_api_version = "v23.0"

[calls]
ice_servers = [ { urls = ["stun:stun.l.google.com:19302"] } ]

[[agents]]
name = "asha"
token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
role = "agent"

[[routes]]
name = "crm"
events = ["message", "message_status", "call_permission_reply"]
url = "http://127.0.0.1:9100/whatsapp"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
mode = "event"

[[routes]]
name = "legacy-forward"
events = ["call", "call_status"]
url = "http://127.0.0.1:9200/webhook/forward"
mode = "original"
"#;

    #[test]
    fn the_design_example_loads_as_written() {
        let settings = Settings::from_toml(EXAMPLE).unwrap();
        assert_eq!(settings.routes.len(), 2);
        assert_eq!(settings.routes[1].mode, ForwardMode::Original);
        assert_eq!(settings.routes[0].retry_schedule, default_retry_schedule());
        assert_eq!(settings.app_secrets().unwrap().len(), 1);
    }

    #[test]
    fn invalid_settings_name_the_key() {
        let cases = [
            (
                "listen = \"127.0.0.1:8080\"",
                "listen = \"nowhere\"",
                "server.listen",
            ),
            (
                "events = [\"call\", \"call_status\"]",
                "events = [\"calls\"]",
                "routes[1].events",
            ),
            (
                "url = \"http://127.0.0.1:9200/webhook/forward\"",
                "url = \"ftp://x\"",
                "routes[1].url",
            ),
            (
                "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
                "secret = \"whsec_!!\"",
                "routes[0].secret",
            ),
            (
                "name = \"legacy-forward\"",
                "name = \"crm\"",
                "routes[1].name",
            ),
            (
                "token_sha256 = \"9f86",
                "token_sha256 = \"zz86",
                "agents[0].token_sha256",
            ),
            (
                "app_secret = \"test-app-secret\"",
                "app_secret = []",
                "meta.app_secret",
            ),
        ];
        for (from, to, key) in cases {
            let text = EXAMPLE.replacen(from, to, 1);
            assert_ne!(text, EXAMPLE, "{from} not found");
            let err = Settings::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn a_missing_section_is_reported_by_name() {
        let text = EXAMPLE.replacen("verify_token = \"verify-me\"\n", "", 1);
        let err = Settings::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("verify_token"), "{err}");
    }

    #[test]
    fn several_app_secrets_are_allowed_for_rotation() {
        let text = EXAMPLE.replacen(
            "app_secret = \"test-app-secret\"",
            "app_secret = [\"new\", \"test-app-secret\"]",
            1,
        );
        assert_eq!(
            Settings::from_toml(&text)
                .unwrap()
                .app_secrets()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn secrets_are_redacted_when_printed() {
        let settings = Settings::from_toml(EXAMPLE).unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("test-app-secret"));
        assert!(!printed.contains("EAAG-test"));
        assert!(!printed.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    }
}

//! The configuration as written: TOML (and environment overrides) read into plain serde
//! structs with their defaults. Nothing here is checked: [`super::Settings`] parses it.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::agent::Role;
use crate::domain::route::ForwardMode;

/// Default body limit: Meta sends up to 3 MB.
const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub server: RawServer,
    pub meta: RawMeta,
    #[serde(default)]
    pub calls: RawCalls,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub agents: Vec<RawAgent>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
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
    /// How long a request's body may take to arrive after its head (at most 30 s).
    #[serde(default = "default_body_timeout", deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// Webhook bodies being read or stored at once; more are answered `503`.
    #[serde(default = "default_max_webhooks_in_flight")]
    pub max_webhooks_in_flight: usize,
    /// Answer a delivery all of whose items Meta dated before `retention` less a day, but
    /// do not take it again: its events may already be pruned, so it would count as new.
    #[serde(default = "default_ignore_replays")]
    pub ignore_replays: bool,
    /// The most events one delivery may split into; a larger one is kept whole.
    #[serde(default = "default_max_delivery_items")]
    pub max_delivery_items: usize,
    /// The most bytes one event's payload may take; past it the delivery is kept whole.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// Proxies (IP addresses or CIDR networks) whose `X-Forwarded-For` names the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// How long a browser session lasts from sign-in.
    #[serde(default = "default_session_lifetime", deserialize_with = "duration")]
    pub session_lifetime: Duration,
    /// Failed sign-ins one client address may make within `failed_login_window`.
    #[serde(default = "default_max_failed_logins")]
    pub max_failed_logins: usize,
    #[serde(default = "default_failed_login_window", deserialize_with = "duration")]
    pub failed_login_window: Duration,
    /// The most WebSockets one agent may have open at once.
    #[serde(default = "default_max_websockets_per_agent")]
    pub max_websockets_per_agent: usize,
    /// The largest WebSocket frame a client may send.
    #[serde(default = "default_websocket_max_frame_bytes")]
    pub websocket_max_frame_bytes: usize,
    /// WebSocket messages a client may send per `websocket_message_window`.
    #[serde(default = "default_websocket_max_messages")]
    pub websocket_max_messages: u32,
    #[serde(
        default = "default_websocket_message_window",
        deserialize_with = "duration"
    )]
    pub websocket_message_window: Duration,
    /// How long one send to a WebSocket may wait for the client to drain.
    #[serde(
        default = "default_websocket_send_timeout",
        deserialize_with = "duration"
    )]
    pub websocket_send_timeout: Duration,
    /// Where `/metrics` is served instead of `listen`, if anywhere.
    #[serde(default)]
    pub metrics_listen: Option<String>,
}

/// The embedded store's writer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// Writes queued for the writer at once; one more is refused (`503` for a webhook).
    #[serde(default = "default_write_queue")]
    pub write_queue: usize,
    /// How long a write may take, queue included, before its caller hears it failed.
    #[serde(default = "default_write_timeout", deserialize_with = "duration")]
    pub write_timeout: Duration,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            write_queue: default_write_queue(),
            write_timeout: default_write_timeout(),
        }
    }
}

/// Far more than the webhooks and forwards in flight at once by default (64, and 16 per
/// route), so only a store that stopped keeping up fills it.
fn default_write_queue() -> usize {
    1024
}

/// A commit takes milliseconds; seconds mean the disk or a lock is stuck, and Meta had
/// better send the delivery again later than wait.
fn default_write_timeout() -> Duration {
    Duration::from_secs(5)
}

/// An agent signs in once per working day.
fn default_session_lifetime() -> Duration {
    Duration::from_secs(12 * 3600)
}

fn default_max_failed_logins() -> usize {
    10
}

fn default_failed_login_window() -> Duration {
    Duration::from_secs(15 * 60)
}

/// A few tabs and devices of one agent; not enough for one token to crowd out the rest.
fn default_max_websockets_per_agent() -> usize {
    5
}

/// The dialer sends only pongs; 16 KiB leaves room without buffering much.
fn default_websocket_max_frame_bytes() -> usize {
    16 * 1024
}

/// The dialer sends a pong every 15 s; a hundred a minute is far above any client's need.
fn default_websocket_max_messages() -> u32 {
    100
}

fn default_websocket_message_window() -> Duration {
    Duration::from_secs(60)
}

fn default_websocket_send_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_ignore_replays() -> bool {
    true
}

fn default_max_webhooks_in_flight() -> usize {
    64
}

/// Meta batches up to 1,000 updates in one delivery.
fn default_max_delivery_items() -> usize {
    1000
}

fn default_max_event_bytes() -> usize {
    64 * 1024
}

fn default_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

fn default_max_websockets() -> usize {
    1000
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_static_dir() -> PathBuf {
    PathBuf::from("www")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeta {
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
#[derive(Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(SecretString),
    Many(Vec<SecretString>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalls {
    /// STUN/TURN servers handed to the dialer as they are.
    #[serde(default)]
    pub ice_servers: Vec<switchboard_protocol::api::IceServer>,
    /// A TURN server whose credentials are minted per agent from a shared secret.
    #[serde(default)]
    pub turn: Option<RawTurn>,
    /// How long the dialer waits for ICE gathering before sending what it has.
    #[serde(default = "default_gathering_timeout", deserialize_with = "duration")]
    pub ice_gathering_timeout: Duration,
    /// Send permission requests as this approved template instead of the free-form
    /// interactive message (which works only inside a customer-service window).
    #[serde(default)]
    pub permission_template: Option<RawTemplate>,
    /// The body of the free-form permission request.
    #[serde(default)]
    pub permission_request_text: Option<String>,
    /// How long one Graph API request may take.
    #[serde(default = "default_graph_timeout", deserialize_with = "duration")]
    pub graph_timeout: Duration,
}

impl Default for RawCalls {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTurn {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    pub name: String,
    /// The template's language code, e.g. `en_US`.
    pub language: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub name: String,
    pub token_sha256: String,
    #[serde(default = "default_role")]
    pub role: Role,
}

fn default_role() -> Role {
    Role::Agent
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
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

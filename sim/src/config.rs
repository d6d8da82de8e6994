//! The simulator's typed configuration: where it listens, where webhooks go, the
//! business it plays, how the simulated users behave, and how long things take.
//!
//! Durations default to Meta's values where Meta documents them, so a developer sees
//! realistic behaviour; tests shorten them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use secrecy::SecretString;
use switchboard_protocol::sim::{OnCall, OnPermissionRequest, PermissionGrant};

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the Graph and control APIs listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The router's `POST /webhook` URL.
    pub webhook_url: String,
    pub app_secret: SecretString,
    /// The bearer token every Graph request must carry.
    pub access_token: SecretString,
    pub business: Business,
    /// The address the WebRTC peer binds and offers as its only host candidate.
    pub media_ip: IpAddr,
    pub users: UserDefaults,
    pub timings: Timings,
    /// Waits before each retry of a webhook that was not answered `200`.
    pub webhook_retries: Vec<Duration>,
    pub webhook_timeout: Duration,
    /// Meta's concurrent-call limit per business number (138002).
    pub max_concurrent_calls: usize,
}

/// The business number the simulator serves.
#[derive(Debug, Clone)]
pub struct Business {
    pub phone_number_id: String,
    pub display_phone_number: String,
    /// The WhatsApp Business Account id, `entry[].id` in webhooks.
    pub waba_id: String,
    /// Starting value of `settings.calling.status`.
    pub calling_enabled: bool,
}

/// How users the simulator has not been told about behave.
#[derive(Debug, Clone, Copy)]
pub struct UserDefaults {
    pub on_call: OnCall,
    pub on_permission_request: OnPermissionRequest,
    /// The permission a user has before any request.
    pub initial_permission: PermissionGrant,
}

#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// From `RINGING` to the user picking up (or declining).
    pub answer_delay: Duration,
    /// How long a business-initiated call rings before it ends unanswered.
    pub ring_timeout: Duration,
    /// How long a user-initiated call waits for the business's `accept`.
    pub accept_timeout: Duration,
    /// No media from the business this long after the call is answered: 138021.
    pub media_timeout: Duration,
    /// Media from the business stops this long mid-call: 138021.
    pub media_gap_timeout: Duration,
    /// From a permission request to the user's reply.
    pub permission_reply_delay: Duration,
    /// A temporary permission lasts this long.
    pub temporary_permission: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            answer_delay: Duration::from_secs(3),
            ring_timeout: Duration::from_secs(45),
            accept_timeout: Duration::from_secs(60),
            media_timeout: Duration::from_secs(20),
            media_gap_timeout: Duration::from_secs(30),
            permission_reply_delay: Duration::from_secs(1),
            temporary_permission: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Default for UserDefaults {
    fn default() -> Self {
        Self {
            on_call: OnCall::Answer,
            on_permission_request: OnPermissionRequest::Accept,
            initial_permission: PermissionGrant::None,
        }
    }
}

impl Default for Business {
    fn default() -> Self {
        Self {
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            waba_id: "102290129340398".into(),
            calling_enabled: true,
        }
    }
}

/// The retry waits used unless configured: one retry at once, then a few with growing
/// gaps, like Meta's (which go on for 7 days).
pub fn default_webhook_retries() -> Vec<Duration> {
    [0, 2, 10, 60, 300]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

impl Config {
    /// A configuration with the values of DESIGN §4's example config and Meta's timings,
    /// sending webhooks to `webhook_url`, listening on a free loopback port.
    pub fn new(webhook_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            webhook_url: webhook_url.into(),
            app_secret: SecretString::from("test-app-secret"),
            access_token: SecretString::from("EAAG-test"),
            business: Business::default(),
            media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            users: UserDefaults::default(),
            timings: Timings::default(),
            webhook_retries: default_webhook_retries(),
            webhook_timeout: Duration::from_secs(10),
            max_concurrent_calls: 1000,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        use secrecy::ExposeSecret;
        if self.app_secret.expose_secret().is_empty() {
            return Err("--app-secret must not be empty".into());
        }
        if self.access_token.expose_secret().is_empty() {
            return Err("--access-token must not be empty".into());
        }
        let id = &self.business.phone_number_id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("--phone-number-id `{id}` must be digits"));
        }
        let url = &self.webhook_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("--webhook-url `{url}` must be an http(s) URL"));
        }
        if self.media_ip.is_unspecified() {
            return Err("--media-ip must be one address (e.g. 127.0.0.1), not a wildcard".into());
        }
        Ok(())
    }
}

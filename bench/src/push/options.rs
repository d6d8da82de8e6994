//! What a push run is asked to do: where the webhooks and the sockets go, how many agents,
//! how fast, for how long.

use std::time::Duration;

use crate::ws::Tokens;

#[derive(Debug)]
pub struct PushOptions {
    /// `http://host:port/webhook`.
    pub webhook_url: String,
    /// `ws://host:port/ws`.
    pub ws_url: String,
    pub secret: String,
    pub tokens: Tokens,
    pub agents: usize,
    pub rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
    /// Webhook connections, hence the most webhooks in flight.
    pub connections: usize,
    /// Per webhook.
    pub timeout: Duration,
    /// Per socket, for connecting and its hello.
    pub connect_timeout: Duration,
    /// How long after the last webhook is answered to wait for pushes still owed.
    pub drain_timeout: Duration,
    pub run_id: u32,
}

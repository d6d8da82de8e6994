//! Webhooks to the router: Meta's envelope, Meta's JSON escaping, signing and retries.

pub mod envelope;
pub mod json;
pub mod sender;

pub use envelope::{CallFacts, Direction, Ending, Envelopes, Outgoing};
pub use sender::WebhookSender;

//! Pushes: call events on their way to agents, and the port they leave through.

use switchboard_protocol::ws::ServerEvent;

/// Who should hear about an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every connected agent (incoming calls ring everyone).
    Everyone,
    /// The agent handling the call.
    Agent(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub audience: Audience,
    pub event: ServerEvent,
}

/// Where the calling plane sends events for agents: the hub of this process, or a bus
/// that carries them to every router of a cluster.
pub trait Publish: Send + Sync {
    fn publish(&self, push: Push);
}

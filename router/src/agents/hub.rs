//! The hub: call events fanned out to every connected agent's WebSocket.
//!
//! A cheap clonable handle over a broadcast channel. Each event is serialised once and
//! tagged with its audience; each socket keeps what is for everyone or for its agent. The
//! number of sockets is bounded, in all and per agent. Publishing goes through
//! [`Publish`], a port of the domain, so a deployment with several routers can put a
//! cross-node bus behind it; the end of a session travels the same way, so its sockets
//! close wherever they are.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::domain::push::{Audience, Publish, Push};

/// Events a slow socket may fall behind by before it is told to reconnect and resync.
const BACKLOG: usize = 1024;

/// What the hub carries to every socket.
#[derive(Debug)]
pub enum Frame {
    /// A call event, serialised once for all sockets.
    Event { audience: Audience, json: String },
    /// The session with this id was revoked: its sockets close.
    EndSession(String),
}

impl Frame {
    /// Whether this is an event `agent` should hear.
    pub fn is_for(&self, agent: &str) -> bool {
        match self {
            Frame::Event { audience, .. } => match audience {
                Audience::Everyone => true,
                Audience::Agent(name) => name == agent,
            },
            Frame::EndSession(_) => false,
        }
    }
}

/// How many sockets the hub holds: in all, and for any one agent.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    pub max_connections: usize,
    pub max_per_agent: usize,
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    sender: broadcast::Sender<Arc<Frame>>,
    counts: Mutex<Counts>,
    limits: HubLimits,
    /// Cancelled when the server stops: every socket closes.
    closing: CancellationToken,
}

/// Sockets open, in all and per agent.
#[derive(Default)]
struct Counts {
    total: usize,
    per_agent: HashMap<String, usize>,
}

/// Why a socket found no place in the hub.
#[derive(Debug, thiserror::Error)]
pub enum HubFull {
    #[error("the hub already holds {0} connections")]
    Everyone(usize),
    #[error(
        "{agent} already has {max} sockets open, the most one agent may have; close one first"
    )]
    Agent { agent: String, max: usize },
}

/// A socket's place in the hub; the counts go down when it is dropped.
pub struct Subscription {
    pub receiver: broadcast::Receiver<Arc<Frame>>,
    agent: String,
    inner: Arc<Inner>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut counts = self.inner.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_agent.get_mut(&self.agent) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_agent.remove(&self.agent);
            }
        }
    }
}

impl Inner {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hub {
    pub fn new(limits: HubLimits, closing: CancellationToken) -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        Self {
            inner: Arc::new(Inner {
                sender,
                counts: Mutex::new(Counts::default()),
                limits,
                closing,
            }),
        }
    }

    /// Cancelled when the server is stopping.
    pub fn closing(&self) -> CancellationToken {
        self.inner.closing.clone()
    }

    /// A place in the hub for one of `agent`'s sockets, if neither the hub nor the agent
    /// is at its limit.
    pub fn subscribe(&self, agent: &str) -> Result<Subscription, HubFull> {
        let inner = &self.inner;
        let limits = inner.limits;
        let mut counts = inner.counts();
        if counts.total >= limits.max_connections {
            return Err(HubFull::Everyone(limits.max_connections));
        }
        let mine = counts.per_agent.get(agent).copied().unwrap_or(0);
        if mine >= limits.max_per_agent {
            return Err(HubFull::Agent {
                agent: agent.to_owned(),
                max: limits.max_per_agent,
            });
        }
        counts.total += 1;
        counts.per_agent.insert(agent.to_owned(), mine + 1);
        Ok(Subscription {
            receiver: inner.sender.subscribe(),
            agent: agent.to_owned(),
            inner: inner.clone(),
        })
    }

    pub fn connections(&self) -> usize {
        self.inner.counts().total
    }

    /// Closes every socket of the session `id`.
    pub fn end_session(&self, id: &str) {
        // No receivers is fine: nobody is connected.
        let _ = self
            .inner
            .sender
            .send(Arc::new(Frame::EndSession(id.to_owned())));
    }
}

impl Publish for Hub {
    fn publish(&self, push: Push) {
        let json = match serde_json::to_string(&push.event) {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise a hub event");
                return;
            }
        };
        // No receivers is fine: nobody is connected.
        let _ = self.inner.sender.send(Arc::new(Frame::Event {
            audience: push.audience,
            json,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::ws::ServerEvent;

    fn push(audience: Audience) -> Push {
        Push {
            audience,
            event: ServerEvent::CallClaimed {
                call_id: "wacid.1".into(),
                agent: "asha".into(),
            },
        }
    }

    fn hub(max_connections: usize, max_per_agent: usize) -> Hub {
        let limits = HubLimits {
            max_connections,
            max_per_agent,
        };
        Hub::new(limits, CancellationToken::new())
    }

    #[tokio::test]
    async fn events_reach_their_audience() {
        let hub = hub(10, 10);
        let mut sub = hub.subscribe("asha").unwrap();
        hub.publish(push(Audience::Agent("ravi".into())));
        hub.publish(push(Audience::Everyone));
        let first = sub.receiver.recv().await.unwrap();
        assert!(!first.is_for("asha"));
        assert!(first.is_for("ravi"));
        let second = sub.receiver.recv().await.unwrap();
        assert!(second.is_for("asha"));
        let Frame::Event { json, .. } = second.as_ref() else {
            panic!("an event");
        };
        assert!(json.contains("\"type\":\"call.claimed\""));
        hub.end_session("s1");
        let end = sub.receiver.recv().await.unwrap();
        assert!(matches!(end.as_ref(), Frame::EndSession(id) if id == "s1"));
        assert!(!end.is_for("asha"));
    }

    #[test]
    fn connections_are_bounded_and_freed_on_drop() {
        let hub = hub(2, 2);
        let a = hub.subscribe("asha").unwrap();
        let _b = hub.subscribe("ravi").unwrap();
        assert!(matches!(hub.subscribe("root"), Err(HubFull::Everyone(2))));
        drop(a);
        assert_eq!(hub.connections(), 1);
        assert!(hub.subscribe("root").is_ok());
    }

    #[test]
    fn each_agent_has_a_cap_of_its_own() {
        let hub = hub(10, 2);
        let first = hub.subscribe("asha").unwrap();
        let _second = hub.subscribe("asha").unwrap();
        assert!(matches!(
            hub.subscribe("asha"),
            Err(HubFull::Agent { max: 2, .. })
        ));
        assert!(hub.subscribe("ravi").is_ok(), "others are not held back");
        drop(first);
        assert!(hub.subscribe("asha").is_ok());
    }
}

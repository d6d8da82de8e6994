//! The hub: call events fanned out to every connected agent's WebSocket.
//!
//! A cheap clonable handle over a broadcast channel. Each event is serialised once and
//! tagged with its audience; each socket keeps what is for everyone or for its agent. The
//! number of sockets is bounded. Publishing goes through [`Publish`], a port of the
//! domain, so a deployment with several routers can put a cross-node bus behind it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::domain::push::{Audience, Publish, Push};

/// Events a slow socket may fall behind by before it is told to reconnect and resync.
const BACKLOG: usize = 1024;

/// One event, serialised once for all sockets.
#[derive(Debug)]
pub struct Frame {
    pub audience: Audience,
    pub json: String,
}

impl Frame {
    pub fn is_for(&self, agent: &str) -> bool {
        match &self.audience {
            Audience::Everyone => true,
            Audience::Agent(name) => name == agent,
        }
    }
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    sender: broadcast::Sender<Arc<Frame>>,
    connections: AtomicUsize,
    max_connections: usize,
    /// Cancelled when the server stops: every socket closes.
    closing: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
#[error("the hub already holds {0} connections")]
pub struct HubFull(pub usize);

/// A socket's place in the hub; the count goes down when it is dropped.
pub struct Subscription {
    pub receiver: broadcast::Receiver<Arc<Frame>>,
    inner: Arc<Inner>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.inner.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    pub fn new(max_connections: usize, closing: CancellationToken) -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        Self {
            inner: Arc::new(Inner {
                sender,
                connections: AtomicUsize::new(0),
                max_connections,
                closing,
            }),
        }
    }

    /// Cancelled when the server is stopping.
    pub fn closing(&self) -> CancellationToken {
        self.inner.closing.clone()
    }

    pub fn subscribe(&self) -> Result<Subscription, HubFull> {
        let inner = &self.inner;
        let previous = inner
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < inner.max_connections).then_some(n + 1)
            });
        match previous {
            Ok(_) => Ok(Subscription {
                receiver: inner.sender.subscribe(),
                inner: inner.clone(),
            }),
            Err(_) => Err(HubFull(inner.max_connections)),
        }
    }

    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::Acquire)
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
        let _ = self.inner.sender.send(Arc::new(Frame {
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

    #[tokio::test]
    async fn events_reach_their_audience() {
        let hub = Hub::new(10, CancellationToken::new());
        let mut sub = hub.subscribe().unwrap();
        hub.publish(push(Audience::Agent("ravi".into())));
        hub.publish(push(Audience::Everyone));
        let first = sub.receiver.recv().await.unwrap();
        assert!(!first.is_for("asha"));
        assert!(first.is_for("ravi"));
        let second = sub.receiver.recv().await.unwrap();
        assert!(second.is_for("asha"));
        assert!(second.json.contains("\"type\":\"call.claimed\""));
    }

    #[test]
    fn connections_are_bounded_and_freed_on_drop() {
        let hub = Hub::new(2, CancellationToken::new());
        let a = hub.subscribe().unwrap();
        let _b = hub.subscribe().unwrap();
        assert!(hub.subscribe().is_err());
        drop(a);
        assert_eq!(hub.connections(), 1);
        assert!(hub.subscribe().is_ok());
    }
}

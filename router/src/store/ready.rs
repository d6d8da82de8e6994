//! Whether the store is up, as `/readyz` asks it: the last ping's answer is kept for a
//! moment, so probes however frequent cost the store at most one ping per moment, and
//! concurrent probes share one ping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::Store;

/// How long a ping's answer stands.
pub const READY_FOR: Duration = Duration::from_secs(1);

/// The store's readiness, pinged at most once per [`READY_FOR`].
pub struct Readiness {
    store: Arc<dyn Store>,
    /// When the last ping finished and whether it succeeded.
    last: Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            last: Mutex::new(None),
        }
    }

    /// Whether the store served a read and a write at its last ping, pinging again if that
    /// answer is older than [`READY_FOR`].
    pub async fn ready(&self) -> bool {
        // Held across the ping: a burst of probes waits for one ping instead of sending one
        // each.
        let mut last = self.last.lock().await;
        if let Some((at, ready)) = *last {
            if at.elapsed() < READY_FOR {
                return ready;
            }
        }
        let ready = match self.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = ?e, "not ready: the store does not answer");
                false
            }
        };
        *last = Some((Instant::now(), ready));
        ready
    }
}

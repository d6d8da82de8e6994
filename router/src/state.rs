//! What every request handler shares: the services, built once at start-up.

use crate::agents::auth::Access;
use crate::agents::dialer::DialerSettings;
use crate::agents::hub::Hub;
use crate::agents::socket::SocketLimits;
use crate::calls::Calling;
use crate::fanout::admin::Deliveries;
use crate::ingest::Ingest;
use crate::store::Readiness;
use crate::telemetry::Metrics;

pub struct AppState {
    /// Webhooks in: signature, split, durable write.
    pub ingest: Ingest,
    /// The operator's view of deliveries and events.
    pub deliveries: Deliveries,
    /// The calling control plane.
    pub calling: Calling,
    /// Who may use the API and from where, and their sessions.
    pub access: Access,
    /// What the dialer is configured with.
    pub dialer: DialerSettings,
    /// Agents' WebSockets.
    pub hub: Hub,
    /// What one agent WebSocket may send, and how long a send may wait for it.
    pub sockets: SocketLimits,
    /// For readiness checks: the store's last ping, kept for a moment.
    pub readiness: Readiness,
    pub metrics: Metrics,
}

//! An agent's WebSocket (DESIGN §6): who may open one, what it hears first, and the loop
//! that carries the hub's events to it.
//!
//! The order matters: the socket subscribes to the hub before the live calls are read for
//! its replay, so no event falls between the two (one may arrive twice; the dialer ignores
//! a call it already shows).

use std::time::{Duration, Instant};

use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use futures::StreamExt;
use switchboard_protocol::ws::ServerEvent;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, HubFull, Subscription};
use crate::calls::{Calling, CallingError};
use crate::domain::agent::Agent;

/// How often the server pings, and how long it waits for any sign of life.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// The origins a browser page may open the socket from.
pub struct AllowedOrigins(pub Vec<String>);

impl AllowedOrigins {
    /// A browser always sends `Origin`; a page on another site must not ride the cookie.
    /// Clients that are not browsers send none.
    pub fn admits(&self, origin: Option<&str>) -> bool {
        origin.is_none_or(|origin| self.0.iter().any(|allowed| allowed == origin))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Full(#[from] HubFull),
    #[error(transparent)]
    Calling(#[from] CallingError),
}

/// A socket that may be served: its place in the hub and what it must hear first.
pub struct Opened {
    subscription: Subscription,
    replay: Vec<ServerEvent>,
    closing: CancellationToken,
    agent: String,
}

/// Takes a place in the hub for `agent`, then reads the live calls it must hear about.
pub async fn open(hub: &Hub, calling: &Calling, agent: &Agent) -> Result<Opened, OpenError> {
    let subscription = hub.subscribe()?;
    let replay = calling.replay_for(&agent.name).await?;
    Ok(Opened {
        subscription,
        replay,
        closing: hub.closing(),
        agent: agent.name.clone(),
    })
}

async fn send(session: &mut Session, event: &ServerEvent) -> Result<(), actix_ws::Closed> {
    let json = serde_json::to_string(event).unwrap_or_default();
    session.text(json).await
}

impl Opened {
    /// Serves one socket: hello, the live calls, then the hub's events for this agent,
    /// with pings, until either side closes or the server stops.
    pub async fn serve(self, mut session: Session, mut stream: MessageStream) {
        let Opened {
            mut subscription,
            replay,
            closing,
            agent,
        } = self;
        let hello = ServerEvent::Hello {
            agent: agent.clone(),
        };
        for event in std::iter::once(&hello).chain(&replay) {
            if send(&mut session, event).await.is_err() {
                return;
            }
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut heard = Instant::now();
        let reason = loop {
            tokio::select! {
                () = closing.cancelled() => break Some(CloseReason {
                    code: CloseCode::Restart,
                    description: Some("the server is restarting".into()),
                }),
                frame = subscription.receiver.recv() => match frame {
                    Ok(frame) if frame.is_for(&agent) => {
                        if session.text(frame.json.clone()).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // Too far behind to catch up event by event: reconnecting replays the truth.
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(%agent, missed, "a slow WebSocket is told to resync");
                        break Some(CloseReason { code: CloseCode::Again, description: Some("resync".into()) });
                    }
                    Err(RecvError::Closed) => break Some(CloseCode::Restart.into()),
                },
                message = stream.next() => match message {
                    Some(Ok(Message::Ping(bytes))) => {
                        heard = Instant::now();
                        if session.pong(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => heard = Instant::now(),
                },
                _ = ping.tick() => {
                    if heard.elapsed() > SILENCE_LIMIT {
                        tracing::info!(%agent, "WebSocket silent too long; closing");
                        break Some(CloseCode::Away.into());
                    }
                    if session.ping(b"").await.is_err() {
                        return;
                    }
                }
            }
        };
        let _ = session.close(reason).await;
    }
}

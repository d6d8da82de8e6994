//! An agent's WebSocket (DESIGN §6): who may open one, what it hears first, the loop that
//! carries the hub's events to it, and the limits it lives within.
//!
//! The order matters: the socket subscribes to the hub before the live calls are read for
//! its replay, so no event falls between the two (one may arrive twice; the dialer ignores
//! a call it already shows).
//!
//! A socket closes, with a close frame that says why, when the server stops, when its
//! session is revoked or expires, when the client sends a frame over the size limit or
//! more messages than the rate limit allows, or when it falls silent. A socket whose client
//! does not drain what it is sent is dropped once a send has waited `send_timeout`: its
//! place in the hub is freed, and the slow client cannot hold the hub or its agent's cap.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{CloseCode, CloseReason, Closed, Message, MessageStream, ProtocolError, Session};
use futures::StreamExt;
use switchboard_protocol::ws::ServerEvent;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::auth::Caller;
use super::hub::{Frame, Hub, HubFull, Subscription};
use super::session::SessionRef;
use crate::calls::{Calling, CallingError};
use crate::domain::clock::now_secs;

/// How often the server pings, and how long it waits for any sign of life.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// What one socket may do and how long it may keep the server waiting.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// The largest frame a client may send; a larger one closes the socket (1009).
    pub max_frame_bytes: usize,
    /// Messages (of any kind) a client may send per `message_window`; one more closes
    /// the socket (1008).
    pub max_messages: u32,
    pub message_window: Duration,
    /// How long one send may wait for the client to drain; then the socket is dropped.
    pub send_timeout: Duration,
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
    session: Option<SessionRef>,
    limits: SocketLimits,
}

/// Takes a place in the hub for `caller`, then reads the live calls it must hear about.
pub async fn open(
    hub: &Hub,
    calling: &Calling,
    caller: &Caller,
    limits: SocketLimits,
) -> Result<Opened, OpenError> {
    let subscription = hub.subscribe(&caller.agent.name)?;
    let replay = calling.replay_for(&caller.agent.name).await?;
    Ok(Opened {
        subscription,
        replay,
        closing: hub.closing(),
        agent: caller.agent.name.clone(),
        session: caller.session.clone(),
        limits,
    })
}

/// How a socket's loop ended.
enum End {
    /// The socket is closed with this reason (none: answering the client's own close).
    Close(Option<CloseReason>),
    /// The client went away or stopped draining: nothing more can be sent.
    Gone,
}

fn close(code: CloseCode, why: impl Into<String>) -> End {
    End::Close(Some(CloseReason {
        code,
        description: Some(why.into()),
    }))
}

/// One send, waiting at most `timeout` for the client to make room.
async fn deliver(
    timeout: Duration,
    agent: &str,
    send: impl Future<Output = Result<(), Closed>>,
) -> Result<(), End> {
    match tokio::time::timeout(timeout, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Closed)) => Err(End::Gone),
        Err(_) => {
            tracing::warn!(%agent, ?timeout, "a WebSocket did not drain in time; dropped");
            Err(End::Gone)
        }
    }
}

/// Messages counted in fixed windows: at most `max` in each.
struct RateWindow {
    max: u32,
    window: Duration,
    started: Instant,
    count: u32,
}

impl RateWindow {
    fn new(max: u32, window: Duration, now: Instant) -> Self {
        Self {
            max,
            window,
            started: now,
            count: 0,
        }
    }

    /// Counts one message at `now`; whether it is within the limit.
    fn admit(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.started) >= self.window {
            self.started = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count <= self.max
    }
}

/// A socket being served.
struct Served {
    session: Session,
    agent: String,
    session_id: Option<String>,
    limits: SocketLimits,
    inbound: RateWindow,
    /// When the client last sent anything.
    heard: Instant,
}

impl Opened {
    /// Serves one socket: hello, the live calls, then the hub's events for this agent,
    /// with pings, until it closes for one of the reasons in the module's header.
    pub async fn serve(self, session: Session, stream: MessageStream) {
        let Opened {
            subscription,
            replay,
            closing,
            agent,
            session: signed_in,
            limits,
        } = self;
        let now = Instant::now();
        let mut served = Served {
            session,
            agent,
            session_id: signed_in.as_ref().map(|s| s.id.clone()),
            limits,
            inbound: RateWindow::new(limits.max_messages, limits.message_window, now),
            heard: now,
        };
        let stream = stream.max_frame_size(limits.max_frame_bytes);
        let expiry = signed_in.map(|s| {
            let left = u64::try_from(s.expires.saturating_sub(now_secs())).unwrap_or(0);
            Duration::from_secs(left)
        });
        let end = match served.greet(&replay).await {
            Ok(()) => served.run(subscription, stream, closing, expiry).await,
            Err(end) => end,
        };
        if let End::Close(reason) = end {
            let timeout = served.limits.send_timeout;
            let _ = tokio::time::timeout(timeout, served.session.close(reason)).await;
        }
    }
}

impl Served {
    async fn text(&mut self, json: String) -> Result<(), End> {
        let timeout = self.limits.send_timeout;
        deliver(timeout, &self.agent, self.session.text(json)).await
    }

    async fn greet(&mut self, replay: &[ServerEvent]) -> Result<(), End> {
        let hello = ServerEvent::Hello {
            agent: self.agent.clone(),
        };
        for event in std::iter::once(&hello).chain(replay) {
            self.text(serde_json::to_string(event).unwrap_or_default())
                .await?;
        }
        Ok(())
    }

    async fn run(
        &mut self,
        mut subscription: Subscription,
        mut stream: MessageStream,
        closing: CancellationToken,
        expiry: Option<Duration>,
    ) -> End {
        let expired = async {
            match expiry {
                Some(left) => tokio::time::sleep(left).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            let step = tokio::select! {
                () = closing.cancelled() => Err(close(CloseCode::Restart, "the server is restarting")),
                () = &mut expired => {
                    tracing::info!(agent = %self.agent, "session expired; closing its WebSocket");
                    Err(close(CloseCode::Policy, "the session expired; sign in again"))
                }
                frame = subscription.receiver.recv() => self.on_frame(frame).await,
                message = stream.next() => self.on_message(message).await,
                _ = ping.tick() => self.on_tick().await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn on_frame(&mut self, frame: Result<Arc<Frame>, RecvError>) -> Result<(), End> {
        let frame = match frame {
            Ok(frame) => frame,
            // Too far behind to catch up event by event: reconnecting replays the truth.
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(agent = %self.agent, missed, "a slow WebSocket is told to resync");
                return Err(close(CloseCode::Again, "resync"));
            }
            Err(RecvError::Closed) => return Err(End::Close(Some(CloseCode::Restart.into()))),
        };
        match frame.as_ref() {
            Frame::Event { json, .. } if frame.is_for(&self.agent) => self.text(json.clone()).await,
            Frame::EndSession(id) if self.session_id.as_deref() == Some(id.as_str()) => {
                tracing::info!(agent = %self.agent, "session ended; closing its WebSocket");
                Err(close(
                    CloseCode::Policy,
                    "signed out: the session has ended",
                ))
            }
            Frame::Event { .. } | Frame::EndSession(_) => Ok(()),
        }
    }

    async fn on_message(
        &mut self,
        message: Option<Result<Message, ProtocolError>>,
    ) -> Result<(), End> {
        let message = match message {
            Some(Ok(Message::Close(_))) => return Err(End::Close(None)),
            None | Some(Err(ProtocolError::Io(_))) => return Err(End::Gone),
            Some(Err(ProtocolError::Overflow)) => {
                let max = self.limits.max_frame_bytes;
                tracing::warn!(agent = %self.agent, max, "WebSocket frame over the limit; closing");
                return Err(close(
                    CloseCode::Size,
                    format!("a frame larger than the limit of {max} bytes"),
                ));
            }
            Some(Err(e)) => {
                tracing::warn!(agent = %self.agent, error = %e, "bad WebSocket frame; closing");
                return Err(close(CloseCode::Protocol, "not a valid WebSocket frame"));
            }
            Some(Ok(message)) => message,
        };
        let now = Instant::now();
        self.heard = now;
        if !self.inbound.admit(now) {
            let (max, window) = (self.limits.max_messages, self.limits.message_window);
            tracing::warn!(agent = %self.agent, max, ?window, "WebSocket over its message rate; closing");
            return Err(close(
                CloseCode::Policy,
                format!(
                    "too many messages: at most {max} per {}",
                    humantime::format_duration(window)
                ),
            ));
        }
        match message {
            Message::Ping(bytes) => {
                let timeout = self.limits.send_timeout;
                deliver(timeout, &self.agent, self.session.pong(&bytes)).await
            }
            // Nothing the dialer sends carries meaning yet; every message counts above.
            _ => Ok(()),
        }
    }

    async fn on_tick(&mut self) -> Result<(), End> {
        if self.heard.elapsed() > SILENCE_LIMIT {
            tracing::info!(agent = %self.agent, "WebSocket silent too long; closing");
            return Err(End::Close(Some(CloseCode::Away.into())));
        }
        let timeout = self.limits.send_timeout;
        deliver(timeout, &self.agent, self.session.ping(b"")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_after_the_last_allowed_in_a_window_is_refused() {
        let start = Instant::now();
        let mut rate = RateWindow::new(3, Duration::from_secs(10), start);
        for _ in 0..3 {
            assert!(rate.admit(start));
        }
        assert!(!rate.admit(start + Duration::from_secs(9)));
        // A new window starts afresh.
        assert!(rate.admit(start + Duration::from_secs(20)));
    }
}

//! `GET /ws`: the agent's WebSocket of call events (DESIGN §6).

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, Session};
use futures::StreamExt;
use switchboard_protocol::ws::ServerEvent;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use crate::agents::auth::Agent;
use crate::agents::hub::{Hub, Subscription};
use crate::calls::Calling;

/// How often the server pings, and how long it waits for any sign of life.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// The origins a browser page may open the socket from.
pub struct AllowedOrigins(pub Vec<String>);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(connect));
}

async fn connect(
    req: HttpRequest,
    body: web::Payload,
    agent: Agent,
    origins: web::Data<AllowedOrigins>,
    hub: web::Data<Hub>,
    calling: web::Data<Calling>,
) -> Result<HttpResponse, ApiError> {
    // A browser always sends Origin; a page on another site must not ride the cookie.
    if let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !origins.0.iter().any(|allowed| allowed == origin) {
            tracing::warn!(%origin, agent = %agent.name, "WebSocket from a foreign origin refused");
            return Err(ApiError::ForbiddenOrigin);
        }
    }
    let subscription = hub.subscribe().map_err(|e| ApiError::Busy(e.to_string()))?;
    let replay = calling.replay_for(&agent.name).await?;
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket upgrade: {e}")))?;
    let closing = hub.closing();
    actix_web::rt::spawn(serve(
        session,
        stream,
        subscription,
        agent.name,
        replay,
        closing,
    ));
    Ok(response)
}

async fn send(session: &mut Session, event: &ServerEvent) -> Result<(), actix_ws::Closed> {
    let json = serde_json::to_string(event).unwrap_or_default();
    session.text(json).await
}

/// One socket: hello, the live calls, then the hub's events for this agent, with pings.
async fn serve(
    mut session: Session,
    mut stream: actix_ws::MessageStream,
    mut subscription: Subscription,
    agent: String,
    replay: Vec<ServerEvent>,
    closing: tokio_util::sync::CancellationToken,
) {
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

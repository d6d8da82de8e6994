//! `GET /ws`: upgrades an agent's request to its WebSocket of call events; the protocol
//! itself is [`crate::agents::socket`].
//!
//! A socket opened with the session cookie needs an allowed `Origin` (browsers always send
//! one on a WebSocket); one opened with a bearer token may come without, but not from a
//! page of another origin.

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth;
use super::error::ApiError;
use crate::agents::auth::Caller;
use crate::agents::socket;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(connect));
}

async fn connect(
    req: HttpRequest,
    body: web::Payload,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let origin = auth::origin(&req);
    let origins = &state.access.origins;
    let checked = match caller.session {
        Some(_) => origins.check_cookie(origin),
        None => origins.check_present(origin),
    };
    if let Err(refused) = checked {
        tracing::warn!(
            origin = origin.unwrap_or_default(),
            agent = %caller.agent.name,
            "WebSocket from a foreign origin refused"
        );
        return Err(refused.into());
    }
    let opened = socket::open(&state.hub, &state.calling, &caller, state.sockets).await?;
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket upgrade: {e}")))?;
    actix_web::rt::spawn(opened.serve(session, stream));
    Ok(response)
}

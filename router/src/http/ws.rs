//! `GET /ws`: upgrades an agent's request to its WebSocket of call events; the protocol
//! itself is [`crate::agents::socket`].

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use crate::agents::socket;
use crate::domain::agent::Agent;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(connect));
}

async fn connect(
    req: HttpRequest,
    body: web::Payload,
    agent: Agent,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let origin = req
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .map(|origin| origin.to_str().unwrap_or_default());
    if !state.origins.admits(origin) {
        tracing::warn!(origin = origin.unwrap_or_default(), agent = %agent.name, "WebSocket from a foreign origin refused");
        return Err(ApiError::ForbiddenOrigin);
    }
    let opened = socket::open(&state.hub, &state.calling, &agent).await?;
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket upgrade: {e}")))?;
    actix_web::rt::spawn(opened.serve(session, stream));
    Ok(response)
}

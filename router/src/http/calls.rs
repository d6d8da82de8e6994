//! The agents' calling API (DESIGN §5): calls, the call log and permissions.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use switchboard_protocol::api::{AcceptCall, CallLog, CallPlaced, PlaceCall, RequestPermission};
use switchboard_protocol::CallId;

use super::error::ApiError;
use crate::domain::agent::{Agent, Role};
use crate::state::AppState;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/calls")
            .route(web::post().to(place))
            .route(web::get().to(log)),
    )
    .route("/api/calls/{id}", web::get().to(show))
    .route("/api/calls/{id}/accept", web::post().to(accept))
    .route("/api/calls/{id}/reject", web::post().to(reject))
    .route("/api/calls/{id}/terminate", web::post().to(terminate))
    .route("/api/permissions", web::post().to(request_permission))
    .route("/api/permissions/{user}", web::get().to(permission));
}

async fn place(
    agent: Agent,
    body: web::Json<PlaceCall>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let call = state
        .calling
        .place(&agent.name, &body.to, &body.sdp)
        .await?;
    tracing::info!(agent = %agent.name, call = %call.call_id, "call placed");
    Ok(HttpResponse::Created().json(CallPlaced {
        call_id: call.call_id,
    }))
}

#[derive(Deserialize)]
struct LogQuery {
    before: Option<i64>,
    limit: Option<usize>,
}

async fn log(
    _agent: Agent,
    query: web::Query<LogQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    let calls = state.calling.log(query.before, limit).await?;
    Ok(HttpResponse::Ok().json(CallLog { calls }))
}

async fn show(
    _agent: Agent,
    path: web::Path<CallId>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.calling.call(&path.into_inner()).await?))
}

async fn accept(
    agent: Agent,
    path: web::Path<CallId>,
    body: web::Json<AcceptCall>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let call = state
        .calling
        .accept(&agent.name, &path.into_inner(), &body.sdp)
        .await?;
    tracing::info!(agent = %agent.name, call = %call.call_id, "call accepted");
    Ok(HttpResponse::Ok().json(call))
}

async fn reject(
    agent: Agent,
    path: web::Path<CallId>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.calling.reject(&agent.name, &path).await?))
}

async fn terminate(
    agent: Agent,
    path: web::Path<CallId>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let is_admin = agent.role == Role::Admin;
    Ok(HttpResponse::Ok().json(
        state
            .calling
            .terminate(&agent.name, is_admin, &path)
            .await?,
    ))
}

async fn request_permission(
    _agent: Agent,
    body: web::Json<RequestPermission>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Accepted().json(state.calling.request_permission(&body.to).await?))
}

async fn permission(
    _agent: Agent,
    path: web::Path<CallId>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.calling.permission(&path.into_inner()).await?))
}

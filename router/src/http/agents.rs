//! Signing in and what the dialer needs to start: `POST /api/login`, `POST /api/logout`,
//! `GET /api/me`, `GET /api/config`.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, HttpResponse};
use switchboard_protocol::api::{Login, Session};

use super::error::ApiError;
use crate::agents::session::{COOKIE, LIFETIME_SECS};
use crate::domain::agent::Agent;
use crate::domain::clock::now_secs;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/login", web::post().to(login))
        .route("/api/logout", web::post().to(logout))
        .route("/api/me", web::get().to(me))
        .route("/api/config", web::get().to(config));
}

async fn login(
    body: web::Json<Login>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let expires = now_secs() + LIFETIME_SECS;
    let (agent, session) = state
        .access
        .sign_in(&body.token, expires)
        .ok_or(ApiError::Unauthorized)?;
    let cookie = Cookie::build(COOKIE, session)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.dialer.secure_cookies)
        .max_age(CookieDuration::seconds(LIFETIME_SECS))
        .finish();
    tracing::info!(agent = %agent.name, "agent signed in");
    Ok(HttpResponse::Ok().cookie(cookie).json(Session {
        agent: agent.name,
        role: agent.role.as_str().to_owned(),
    }))
}

async fn logout() -> HttpResponse {
    let mut cookie = Cookie::build(COOKIE, "").path("/").finish();
    cookie.make_removal();
    HttpResponse::NoContent().cookie(cookie).finish()
}

async fn me(agent: Agent) -> HttpResponse {
    HttpResponse::Ok().json(Session {
        role: agent.role.as_str().to_owned(),
        agent: agent.name,
    })
}

async fn config(agent: Agent, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(state.dialer.config_for(&agent, now_secs()))
}

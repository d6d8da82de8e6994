//! Signing in and what the dialer needs to start: `POST /api/login`, `POST /api/logout`,
//! `GET /api/me`, `GET /api/config`.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use switchboard_protocol::api::{Login, Session};

use super::auth::{self, ClientAddress};
use super::error::ApiError;
use crate::agents::session::COOKIE;
use crate::agents::throttle::Attempt;
use crate::domain::agent::Agent;
use crate::domain::clock::now_secs;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/login", web::post().to(login))
        .route("/api/logout", web::post().to(logout))
        .route("/api/me", web::get().to(me))
        .route("/api/config", web::get().to(config));
}

/// A token for a session cookie. A page of another origin may not sign the browser in
/// (to an account of its choosing); failed attempts are limited per client address.
async fn login(
    req: HttpRequest,
    client: ClientAddress,
    body: web::Json<Login>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.access.origins.check_present(auth::origin(&req))?;
    let signed_in = match state.access.sign_in(client.0, &body.token, now_secs()) {
        Attempt::Accepted(signed_in) => signed_in,
        Attempt::Refused => return Err(ApiError::Unauthorized),
        Attempt::Throttled(throttled) => {
            // Whole seconds, rounded up: a client that waits that long is let through.
            let wait = throttled.retry_after.as_secs()
                + u64::from(throttled.retry_after.subsec_nanos() > 0);
            return Err(ApiError::Throttled(wait.max(1)));
        }
    };
    let lifetime = i64::try_from(state.access.session_lifetime.as_secs()).unwrap_or(i64::MAX);
    let cookie = Cookie::build(COOKIE, signed_in.cookie)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.dialer.secure_cookies)
        .max_age(CookieDuration::seconds(lifetime))
        .finish();
    let agent = signed_in.agent;
    Ok(HttpResponse::Ok().cookie(cookie).json(Session {
        agent: agent.name,
        role: agent.role.as_str().to_owned(),
    }))
}

/// Ends the cookie's session for good (its open sockets close) and drops the cookie. With
/// no valid session there is nothing to end, and the answer is the same.
async fn logout(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match auth::caller(&req) {
        Ok(caller) => state.access.sign_out(&caller, now_secs()).await?,
        Err(ApiError::Unauthorized) => {}
        Err(refused) => return Err(refused),
    }
    let mut cookie = Cookie::build(COOKIE, "").path("/").finish();
    cookie.make_removal();
    Ok(HttpResponse::NoContent().cookie(cookie).finish())
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

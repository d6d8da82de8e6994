//! Signing in and what the dialer needs to start: `POST /api/login`, `POST /api/logout`,
//! `GET /api/me`, `GET /api/config`.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, HttpResponse};
use switchboard_protocol::api::{DialerConfig, IceServer, Login, Session};

use super::error::ApiError;
use crate::agents::auth::{Agent, Agents};
use crate::agents::session::{SessionKey, COOKIE, LIFETIME_SECS};
use crate::agents::turn;
use crate::config::Role;
use crate::store::now_millis;

/// What `GET /api/config` is made from.
pub struct DialerSettings {
    pub ice_servers: Vec<IceServer>,
    pub turn: Option<TurnMint>,
    pub phone_number_id: String,
    pub ice_gathering_timeout_ms: u32,
    /// Cookies are marked `Secure` when the public URL is HTTPS.
    pub secure_cookies: bool,
}

pub struct TurnMint {
    pub urls: Vec<String>,
    pub secret: secrecy::SecretString,
    pub ttl_secs: i64,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/login", web::post().to(login))
        .route("/api/logout", web::post().to(logout))
        .route("/api/me", web::get().to(me))
        .route("/api/config", web::get().to(config));
}

fn role_name(role: Role) -> String {
    match role {
        Role::Agent => "agent".into(),
        Role::Admin => "admin".into(),
    }
}

async fn login(
    body: web::Json<Login>,
    agents: web::Data<Agents>,
    key: web::Data<SessionKey>,
    settings: web::Data<DialerSettings>,
) -> Result<HttpResponse, ApiError> {
    let agent = agents
        .authenticate(&body.token)
        .ok_or(ApiError::Unauthorized)?;
    let expires = now_millis() / 1000 + LIFETIME_SECS;
    let generation = agents.generation(&agent.name).unwrap_or_default();
    let cookie = Cookie::build(COOKIE, key.issue(&agent.name, &generation, expires))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(settings.secure_cookies)
        .max_age(CookieDuration::seconds(LIFETIME_SECS))
        .finish();
    tracing::info!(agent = %agent.name, "agent signed in");
    Ok(HttpResponse::Ok().cookie(cookie).json(Session {
        agent: agent.name,
        role: role_name(agent.role),
    }))
}

async fn logout() -> HttpResponse {
    let mut cookie = Cookie::build(COOKIE, "").path("/").finish();
    cookie.make_removal();
    HttpResponse::NoContent().cookie(cookie).finish()
}

async fn me(agent: Agent) -> HttpResponse {
    HttpResponse::Ok().json(Session {
        agent: agent.name,
        role: role_name(agent.role),
    })
}

async fn config(agent: Agent, settings: web::Data<DialerSettings>) -> HttpResponse {
    let mut ice_servers = settings.ice_servers.clone();
    if let Some(mint) = &settings.turn {
        let expires = now_millis() / 1000 + mint.ttl_secs;
        let (username, credential) = turn::credentials(&mint.secret, &agent.name, expires);
        ice_servers.push(IceServer {
            urls: mint.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(DialerConfig {
            agent: agent.name,
            ice_servers,
            phone_number_id: settings.phone_number_id.clone(),
            ice_gathering_timeout_ms: settings.ice_gathering_timeout_ms,
        })
}

//! Who is asking: the [`Agent`] and [`Admin`] extractors, from a bearer token or the
//! session cookie.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::error::ApiError;
use crate::agents::auth::Credential;
use crate::agents::session::COOKIE;
use crate::domain::agent::{Agent, Role};
use crate::domain::clock::now_secs;
use crate::state::AppState;

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?;
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn identify(req: &HttpRequest) -> Result<Agent, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the application state is missing")))?;
    let cookie = req.cookie(COOKIE);
    let credential = match (bearer_token(req), &cookie) {
        (Some(token), _) => Credential::Bearer(token),
        (None, Some(cookie)) => Credential::Session(cookie.value()),
        (None, None) => return Err(ApiError::Unauthorized),
    };
    state
        .access
        .identify(credential, now_secs())
        .ok_or(ApiError::Unauthorized)
}

impl FromRequest for Agent {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identify(req))
    }
}

/// An agent with `role = "admin"`.
#[derive(Debug, Clone)]
pub struct Admin(pub Agent);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identify(req).and_then(|agent| match agent.role {
            Role::Admin => Ok(Admin(agent)),
            Role::Agent => Err(ApiError::Forbidden),
        }))
    }
}

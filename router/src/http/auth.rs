//! Who is asking: the [`Caller`], [`Agent`] and [`Admin`] extractors, from a bearer token
//! or the session cookie; and from which address ([`ClientAddress`], resolved once per
//! request by [`resolve_client`]).
//!
//! A request that rides the cookie with an unsafe method (anything but `GET`, `HEAD`,
//! `OPTIONS`, `TRACE`) must carry an allowed `Origin`: the cookie is sent by the browser on
//! its own, and `SameSite` does not tell one port or sibling subdomain from another.

use std::future::{ready, Ready};
use std::net::{IpAddr, Ipv4Addr};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, FORWARDED, ORIGIN, X_FORWARDED_FOR};
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, HttpMessage, HttpRequest};

use super::error::ApiError;
use crate::agents::address::TrustedProxies;
use crate::agents::auth::{Caller, Credential};
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

/// The request's `Origin`, if it sent one (one that is not text is no origin of ours).
pub(super) fn origin(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(ORIGIN)
        .map(|origin| origin.to_str().unwrap_or_default())
}

pub(super) fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the application state is missing")))
}

/// Who is asking, with the `Origin` rule for unsafe methods on the cookie applied.
pub(super) fn caller(req: &HttpRequest) -> Result<Caller, ApiError> {
    let state = state(req)?;
    let cookie = req.cookie(COOKIE);
    let credential = match (bearer_token(req), &cookie) {
        (Some(token), _) => Credential::Bearer(token),
        (None, Some(cookie)) => Credential::Session(cookie.value()),
        (None, None) => return Err(ApiError::Unauthorized),
    };
    let caller = state
        .access
        .identify(credential, now_secs())
        .ok_or(ApiError::Unauthorized)?;
    if caller.session.is_some() && !req.method().is_safe() {
        if let Err(refused) = state.access.origins.check_cookie(origin(req)) {
            tracing::warn!(
                agent = %caller.agent.name,
                method = %req.method(),
                origin = origin(req).unwrap_or_default(),
                "a cookie request from a foreign origin refused"
            );
            return Err(refused.into());
        }
    }
    Ok(caller)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req))
    }
}

impl FromRequest for Agent {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req).map(|caller| caller.agent))
    }
}

/// An agent with `role = "admin"`.
#[derive(Debug, Clone)]
pub struct Admin(pub Agent);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req).and_then(|caller| match caller.agent.role {
            Role::Admin => Ok(Admin(caller.agent)),
            Role::Agent => Err(ApiError::Forbidden),
        }))
    }
}

/// The client's address: the peer's, or the one a trusted proxy forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl FromRequest for ClientAddress {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let resolved = req.extensions().get::<ClientAddress>().copied();
        let peer = req.peer_addr().map(|peer| ClientAddress(peer.ip()));
        ready(Ok(resolved
            .or(peer)
            .unwrap_or(ClientAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))))
    }
}

/// Middleware (through `actix_web::middleware::from_fn`), outermost: resolves the client's
/// address once, from the peer and, if the peer is a trusted proxy, its `X-Forwarded-For`
/// ([`TrustedProxies::client`]). The forwarding headers are replaced by that one address,
/// so whatever reads them later (the request log's client address) sees only it, and a
/// client cannot name itself through a proxy that is not trusted or through `Forwarded`.
pub async fn resolve_client<B: MessageBody>(
    proxies: TrustedProxies,
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    if let Some(peer) = req.peer_addr() {
        let client = {
            let forwarded = req
                .headers()
                .get_all(X_FORWARDED_FOR)
                .filter_map(|value| value.to_str().ok());
            proxies.client(peer.ip(), forwarded)
        };
        let headers = req.headers_mut();
        headers.remove(FORWARDED);
        headers.remove(X_FORWARDED_FOR);
        if let Ok(value) = HeaderValue::from_str(&client.to_string()) {
            headers.insert(X_FORWARDED_FOR, value);
        }
        req.extensions_mut().insert(ClientAddress(client));
    }
    next.call(req).await
}

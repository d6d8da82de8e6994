//! `GET /webhook` (Meta's verification handshake) and `POST /webhook` (ingest, DESIGN §3).

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::deadline;
use super::error::ApiError;
use crate::meta::signature::SIGNATURE_HEADER;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhook")
            .route(web::get().to(verify_subscription))
            .route(web::post().to(receive)),
    );
}

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn verify_subscription(
    query: web::Query<Handshake>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let challenge = state.ingest.auth.handshake(
        query.mode.as_deref(),
        query.verify_token.as_deref(),
        query.challenge.as_deref(),
    );
    match challenge {
        Some(challenge) => HttpResponse::Ok()
            .content_type("text/plain")
            .body(challenge.to_owned()),
        None => {
            tracing::warn!("webhook verification refused");
            HttpResponse::Forbidden().json(json!({
                "error": {"code": "forbidden", "message": "hub.mode or hub.verify_token is wrong"}
            }))
        }
    }
}

async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ingest = &state.ingest;
    // Held until the delivery is stored (or refused): bodies in flight are bounded.
    let _in_flight = ingest
        .admit()
        .map_err(|full| ApiError::Busy(full.to_string()))?;
    let body = match read_limited(&req, payload, ingest.auth.max_body_bytes).await {
        Ok(body) => body,
        Err(Unread::TooLarge(limit)) => {
            ingest.refused_too_large();
            return Err(ApiError::PayloadTooLarge(limit));
        }
        Err(Unread::Late) => {
            // The deadline middleware answers 408 for it.
            ingest.timed_out();
            return Err(ApiError::BadRequest("the body arrived too late".into()));
        }
        Err(Unread::Broken(e)) => {
            return Err(ApiError::BadRequest(format!("cannot read the body: {e}")))
        }
    };
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or_default());
    let receipt = ingest.receive_signed(header, body).await?;
    Ok(HttpResponse::Ok().json(receipt))
}

/// Why a body was not read whole.
enum Unread {
    TooLarge(usize),
    /// Its deadline passed (`http/deadline.rs`).
    Late,
    Broken(actix_web::error::PayloadError),
}

/// Reads the body, refusing it as soon as it passes `limit` (or says it will).
async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<bytes::Bytes, Unread> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(Unread::TooLarge(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            if deadline::is_deadline(&e) {
                Unread::Late
            } else {
                Unread::Broken(e)
            }
        })?;
        if body.len() + chunk.len() > limit {
            return Err(Unread::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

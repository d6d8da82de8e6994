//! `GET /webhook` (Meta's verification handshake) and `POST /webhook` (ingest, DESIGN §3).

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::ingest::Ingest;
use crate::meta::signature::{self, AppSecret, SIGNATURE_HEADER};

/// What the webhook endpoint checks requests against.
pub struct WebhookAuth {
    pub secrets: Vec<AppSecret>,
    pub verify_token: SecretString,
    pub max_body_bytes: usize,
}

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
    auth: web::Data<WebhookAuth>,
) -> HttpResponse {
    let token_matches = query.verify_token.as_deref().is_some_and(|token| {
        bool::from(
            token
                .as_bytes()
                .ct_eq(auth.verify_token.expose_secret().as_bytes()),
        )
    });
    match (&query.mode, &query.challenge) {
        (Some(mode), Some(challenge)) if mode == "subscribe" && token_matches => HttpResponse::Ok()
            .content_type("text/plain")
            .body(challenge.clone()),
        _ => {
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
    auth: web::Data<WebhookAuth>,
    ingest: web::Data<Ingest>,
) -> Result<HttpResponse, ApiError> {
    let outcome = |name: &str| ingest.metrics.deliveries.with_label_values(&[name]).inc();
    let body = match read_limited(&req, payload, auth.max_body_bytes).await {
        Ok(body) => body,
        Err(e) => {
            outcome("too_large");
            return Err(e);
        }
    };
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or_default());
    let delivery = match signature::verify(&auth.secrets, header, body) {
        Ok(delivery) => delivery,
        Err(e) => {
            outcome("bad_signature");
            tracing::warn!(error = %e, "webhook refused");
            return Err(e.into());
        }
    };
    match ingest.receive(delivery).await {
        Ok(receipt) => {
            outcome("accepted");
            Ok(HttpResponse::Ok().json(receipt))
        }
        Err(e) => {
            // Not a 200, so Meta keeps the delivery and sends it again.
            outcome("store_error");
            Err(e.into())
        }
    }
}

/// Reads the body, refusing it as soon as it passes `limit` (or says it will).
async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

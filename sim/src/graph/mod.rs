//! Meta's Graph endpoints under `/{version}/{phone_number_id}/`. Handlers only check the
//! token and the number, parse the body into a domain request, call the platform, and map
//! the result.

pub mod error;
pub mod requests;

use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use switchboard_protocol::graph::{ConnectResponse, IdRef, SuccessResponse, MESSAGING_PRODUCT};

pub use error::GraphApiError;
use requests::CallCommand;

use crate::platform::Platform;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/{version}/{phone_number_id}/calls").route(web::post().to(calls)))
        .service(
            web::resource("/{version}/{phone_number_id}/messages").route(web::post().to(messages)),
        )
        .service(
            web::resource("/{version}/{phone_number_id}/settings")
                .route(web::get().to(get_settings))
                .route(web::post().to(post_settings)),
        )
        .service(
            web::resource("/{version}/{phone_number_id}/call_permissions")
                .route(web::get().to(call_permissions)),
        );
}

#[derive(Deserialize)]
struct NumberPath {
    version: String,
    phone_number_id: String,
}

/// The bearer token, then the version, then the phone number id, in Meta's order.
fn admit(
    request: &HttpRequest,
    path: &NumberPath,
    platform: &Platform,
    method: &'static str,
) -> Result<(), GraphApiError> {
    check_token(request, &platform.config().access_token)?;
    let version_ok = path.version.strip_prefix('v').is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    });
    if !version_ok {
        return Err(GraphApiError::invalid(format!(
            "Unknown path components: /{}",
            path.version
        )));
    }
    if !platform.serves(&path.phone_number_id) {
        return Err(GraphApiError::UnknownObject {
            method,
            object: path.phone_number_id.clone(),
        });
    }
    Ok(())
}

fn check_token(request: &HttpRequest, token: &SecretString) -> Result<(), GraphApiError> {
    let given = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(GraphApiError::InvalidToken)?;
    let expected = token.expose_secret().as_bytes();
    if bool::from(given.as_bytes().ct_eq(expected)) {
        Ok(())
    } else {
        Err(GraphApiError::InvalidToken)
    }
}

fn success() -> HttpResponse {
    HttpResponse::Ok().json(SuccessResponse {
        messaging_product: Some(MESSAGING_PRODUCT.into()),
        success: true,
    })
}

#[tracing::instrument(name = "graph calls", skip_all)]
async fn calls(
    request: HttpRequest,
    path: web::Path<NumberPath>,
    body: web::Bytes,
    platform: web::Data<Platform>,
) -> Result<HttpResponse, GraphApiError> {
    admit(&request, &path, &platform, "post")?;
    match requests::call_command(&body)? {
        CallCommand::Connect(connect) => {
            let id = platform.connect(connect).await?;
            Ok(HttpResponse::Ok().json(ConnectResponse {
                messaging_product: MESSAGING_PRODUCT.into(),
                calls: vec![IdRef { id }],
            }))
        }
        CallCommand::PreAccept { call_id, answer } => {
            platform.pre_accept(&call_id, answer).await?;
            Ok(success())
        }
        CallCommand::Accept {
            call_id,
            answer,
            biz_opaque_callback_data,
        } => {
            platform
                .accept(&call_id, answer, biz_opaque_callback_data)
                .await?;
            Ok(success())
        }
        CallCommand::Reject { call_id } => {
            platform.reject(&call_id)?;
            Ok(success())
        }
        CallCommand::Terminate { call_id } => {
            platform.terminate(&call_id)?;
            Ok(success())
        }
    }
}

#[tracing::instrument(name = "graph messages", skip_all)]
async fn messages(
    request: HttpRequest,
    path: web::Path<NumberPath>,
    body: web::Bytes,
    platform: web::Data<Platform>,
) -> Result<HttpResponse, GraphApiError> {
    admit(&request, &path, &platform, "post")?;
    let message = requests::outbound_message(&body)?;
    Ok(HttpResponse::Ok().json(platform.send_message(message)?))
}

async fn get_settings(
    request: HttpRequest,
    path: web::Path<NumberPath>,
    platform: web::Data<Platform>,
) -> Result<HttpResponse, GraphApiError> {
    admit(&request, &path, &platform, "get")?;
    Ok(HttpResponse::Ok().json(platform.settings()))
}

async fn post_settings(
    request: HttpRequest,
    path: web::Path<NumberPath>,
    body: web::Bytes,
    platform: web::Data<Platform>,
) -> Result<HttpResponse, GraphApiError> {
    admit(&request, &path, &platform, "post")?;
    platform.update_settings(requests::calling_settings(&body)?)?;
    Ok(HttpResponse::Ok().json(SuccessResponse {
        messaging_product: None,
        success: true,
    }))
}

#[derive(Deserialize)]
struct PermissionQuery {
    user_wa_id: Option<String>,
    recipient: Option<String>,
}

async fn call_permissions(
    request: HttpRequest,
    path: web::Path<NumberPath>,
    query: web::Query<PermissionQuery>,
    platform: web::Data<Platform>,
) -> Result<HttpResponse, GraphApiError> {
    admit(&request, &path, &platform, "get")?;
    let who =
        requests::permission_subject(query.user_wa_id.as_deref(), query.recipient.as_deref())?;
    Ok(HttpResponse::Ok().json(platform.call_permissions(&who)))
}

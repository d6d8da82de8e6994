//! The control and inspection API under `/sim/`: make the user call, hang up, set how
//! users behave, and read back calls (with media counters) and delivered webhooks.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use switchboard_protocol::sim::{PlaceCall, SimError, SimErrorBody, UserSetup};

use crate::platform::{ControlError, Platform};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/sim")
            .service(
                web::resource("/calls")
                    .route(web::get().to(list_calls))
                    .route(web::post().to(place_call)),
            )
            .service(web::resource("/calls/{call_id}").route(web::get().to(get_call)))
            .service(web::resource("/calls/{call_id}/hangup").route(web::post().to(hangup)))
            .service(
                web::resource("/users")
                    .route(web::get().to(list_users))
                    .route(web::post().to(setup_user)),
            )
            .service(web::resource("/webhooks").route(web::get().to(list_webhooks))),
    )
    .service(web::resource("/healthz").route(web::get().to(health)));
}

impl ResponseError for ControlError {
    fn status_code(&self) -> StatusCode {
        match self {
            ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ControlError::CallNotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            ControlError::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "control request failed");
                "the simulator failed; see its log".to_owned()
            }
            other => other.to_string(),
        };
        HttpResponse::build(self.status_code()).json(SimError {
            error: SimErrorBody { message },
        })
    }
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(body)
        .map_err(|error| ControlError::BadRequest(format!("invalid JSON body: {error}")))
}

async fn place_call(
    body: web::Bytes,
    platform: web::Data<Platform>,
) -> Result<HttpResponse, ControlError> {
    let request: PlaceCall = json_body(&body)?;
    let placed = platform.place_user_call(request).await?;
    Ok(HttpResponse::Created().json(placed))
}

async fn list_calls(platform: web::Data<Platform>) -> HttpResponse {
    HttpResponse::Ok().json(platform.calls())
}

async fn get_call(
    call_id: web::Path<String>,
    platform: web::Data<Platform>,
) -> Result<HttpResponse, ControlError> {
    let call = platform
        .call(&call_id)
        .ok_or_else(|| ControlError::CallNotFound(call_id.into_inner()))?;
    Ok(HttpResponse::Ok().json(call))
}

async fn hangup(
    call_id: web::Path<String>,
    platform: web::Data<Platform>,
) -> Result<HttpResponse, ControlError> {
    Ok(HttpResponse::Ok().json(platform.hangup(&call_id)?))
}

async fn setup_user(
    body: web::Bytes,
    platform: web::Data<Platform>,
) -> Result<HttpResponse, ControlError> {
    let setup: UserSetup = json_body(&body)?;
    Ok(HttpResponse::Ok().json(platform.setup_user(setup)?))
}

async fn list_users(platform: web::Data<Platform>) -> HttpResponse {
    HttpResponse::Ok().json(platform.users())
}

async fn list_webhooks(platform: web::Data<Platform>) -> HttpResponse {
    HttpResponse::Ok().json(platform.webhooks())
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

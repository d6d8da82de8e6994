//! One place where errors become HTTP responses: `{"error": {"code", "message"}}`.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde_json::json;

use crate::fanout::AdminError;
use crate::meta::signature::SignatureError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    BadSignature(#[from] SignatureError),
    #[error("a valid agent token is required")]
    Unauthorized,
    #[error("this needs an admin")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the store is unavailable; try again")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::BadSignature(_) => "bad_signature",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::BadSignature(_) | ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(e) | ApiError::Internal(e) => {
                tracing::error!(error = ?e, "request failed");
            }
            _ => {}
        }
        // The Display text of 5xx variants is fixed and says nothing internal.
        HttpResponse::build(self.status_code()).json(json!({
            "error": { "code": self.code(), "message": self.to_string() }
        }))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} does not exist")),
            StoreError::Conflict(why) => ApiError::Conflict(why),
            StoreError::Unavailable(e) => ApiError::Unavailable(e),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::UnknownRoute(_) => ApiError::NotFound(e.to_string()),
            AdminError::NoMatchingRoute(_) => ApiError::Conflict(e.to_string()),
            AdminError::Store(e) => e.into(),
        }
    }
}

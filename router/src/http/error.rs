//! One place where errors become HTTP responses: `{"error": {"code", "message"}}`.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde_json::json;

use crate::agents::auth::ForeignOrigin;
use crate::agents::hub::HubFull;
use crate::agents::socket::OpenError;
use crate::calls::CallingError;
use crate::domain::clock::now_secs;
use crate::fanout::admin::AdminError;
use crate::ingest::IngestError;
use crate::meta::graph::GraphError;
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
    #[error("{0}")]
    ForbiddenOrigin(String),
    /// Too many failed sign-ins from one address; it may try again after this many seconds.
    #[error("too many failed sign-ins from this address; try again in {0} s")]
    Throttled(u64),
    #[error("{0}")]
    TooManySockets(String),
    #[error("{0}")]
    Busy(String),
    #[error("{message}")]
    Calling {
        status: u16,
        code: &'static str,
        message: String,
        meta_code: Option<i64>,
        retry_at: Option<i64>,
    },
    #[error("the body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the store is unavailable; try again")]
    Unavailable(#[source] anyhow::Error),
    /// A webhook that could not be stored: Meta sends it again.
    #[error("the delivery could not be stored; send it again")]
    StoreError(#[source] StoreError),
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
            ApiError::ForbiddenOrigin(_) => "forbidden_origin",
            ApiError::Throttled(_) => "throttled",
            ApiError::TooManySockets(_) => "too_many_sockets",
            ApiError::Busy(_) => "busy",
            ApiError::Calling { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::StoreError(_) => "store_error",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::BadSignature(_) | ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::ForbiddenOrigin(_) => StatusCode::FORBIDDEN,
            ApiError::Throttled(_) | ApiError::TooManySockets(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Calling { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::StoreError(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(e) | ApiError::Internal(e) => {
                tracing::error!(error = ?e, "request failed");
            }
            ApiError::StoreError(e) => tracing::error!(error = ?e, "a webhook was not stored"),
            _ => {}
        }
        // The Display text of 5xx variants is fixed and says nothing internal.
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let ApiError::Calling {
            meta_code: Some(code),
            ..
        } = self
        {
            error["meta_code"] = json!(code);
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some((at, wait)) = self.retry() {
            error["retry_at"] = json!(at);
            response.insert_header(("Retry-After", wait.to_string()));
        }
        response.json(json!({ "error": error }))
    }
}

impl ApiError {
    /// When the request may be tried again, if this error says: the time (Unix seconds)
    /// and the wait from now (seconds, at least 1).
    fn retry(&self) -> Option<(i64, i64)> {
        let now = now_secs();
        match self {
            ApiError::Calling {
                retry_at: Some(at), ..
            } => Some((*at, (at - now).max(1))),
            ApiError::Throttled(wait) => {
                let wait = i64::try_from(*wait).unwrap_or(i64::MAX).max(1);
                Some((now.saturating_add(wait), wait))
            }
            _ => None,
        }
    }
}

impl From<ForeignOrigin> for ApiError {
    fn from(e: ForeignOrigin) -> Self {
        ApiError::ForbiddenOrigin(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} does not exist")),
            StoreError::Conflict(why) => ApiError::Conflict(why),
            StoreError::Unavailable(e) => ApiError::Unavailable(e),
            StoreError::Busy(why) => ApiError::Busy(why),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::BadSignature(e) => e.into(),
            IngestError::Store(e) => ApiError::StoreError(e),
        }
    }
}

impl From<OpenError> for ApiError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Full(e @ HubFull::Everyone(_)) => ApiError::Busy(e.to_string()),
            OpenError::Full(e @ HubFull::Agent { .. }) => ApiError::TooManySockets(e.to_string()),
            OpenError::Calling(e) => e.into(),
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

impl From<CallingError> for ApiError {
    fn from(e: CallingError) -> Self {
        let calling = |status: u16, code: &'static str, message: String| ApiError::Calling {
            status,
            code,
            message,
            meta_code: None,
            retry_at: None,
        };
        match e {
            CallingError::Invalid(why) => ApiError::BadRequest(why),
            CallingError::NotFound(what) => ApiError::NotFound(format!("{what} does not exist")),
            CallingError::Conflict(why) => ApiError::Conflict(why),
            CallingError::Claimed { agent } => {
                calling(409, "claimed", format!("this call was taken by {agent}"))
            }
            CallingError::Limited { reason, retry_at } => ApiError::Calling {
                status: 429,
                code: "limited",
                message: reason,
                meta_code: None,
                retry_at: Some(retry_at),
            },
            CallingError::Meta(graph) => graph.into(),
            CallingError::Store(e) => e.into(),
        }
    }
}

/// Meta's refusals become 4xx the agent can act on, keeping Meta's code; Meta's own
/// failures become 502/504.
impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        let message = e.to_string();
        let (status, code) = match &e {
            GraphError::Meta { code, status, .. } => match code {
                138006 => (403, "no_permission"),
                138003 => (409, "duplicate_call"),
                138002 | 138005 | 138009 | 138012 | 613 => (429, "meta_limit"),
                138000 | 138014 | 138015 | 131055 => (409, "calling_unavailable"),
                _ if *status >= 500 => (502, "meta_error"),
                _ => (422, "meta_refused"),
            },
            GraphError::Timeout(_) => (504, "meta_timeout"),
            GraphError::Transport(_)
            | GraphError::Unexpected { .. }
            | GraphError::Redirect { .. }
            | GraphError::TooLarge { .. } => (502, "meta_unreachable"),
        };
        ApiError::Calling {
            status,
            code,
            message,
            meta_code: e.meta_code(),
            retry_at: None,
        }
    }
}

//! Every way a Graph request fails, mapped in one place to Meta's error envelope
//! `{"error":{"message","type","code","error_data":{"details"},"fbtrace_id"}}` and to the
//! HTTP status Meta uses for that code (research file §5.1).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use switchboard_protocol::graph::{ErrorData, ErrorEnvelope, GraphError, MESSAGING_PRODUCT};

use crate::ids::new_trace_id;

#[derive(Debug, thiserror::Error)]
pub enum GraphApiError {
    #[error("Invalid OAuth access token - Cannot parse access token")]
    InvalidToken,
    #[error(
        "Unsupported {method} request. Object with ID '{object}' does not exist, cannot be loaded due to missing permissions, or does not support this operation"
    )]
    UnknownObject {
        method: &'static str,
        object: String,
    },
    /// Missing or malformed fields, including bad SDP (code 100).
    #[error("{0}")]
    InvalidParameter(String),
    #[error("Calling is not enabled for this phone number")]
    CallingDisabled,
    #[error("Concurrent call limit reached for this business phone number")]
    ConcurrentCallLimit,
    #[error("A call with this user is already in progress")]
    DuplicateCall,
    #[error("No approved call permission from the recipient")]
    NoCallPermission,
    #[error(
        "Call permission request limit reached for this user; the next request is allowed at {next_allowed}"
    )]
    PermissionRequestLimit { next_allowed: i64 },
    #[error(
        "Limit of connected business-initiated calls reached; the next call is allowed at {next_allowed}"
    )]
    ConnectedCallLimit { next_allowed: i64 },
    #[error("The user already gave a permanent call permission")]
    PermanentPermissionExists,
    #[error("An unknown error occurred")]
    Unexpected(#[from] anyhow::Error),
}

impl GraphApiError {
    pub fn invalid(details: impl Into<String>) -> Self {
        Self::InvalidParameter(details.into())
    }

    /// Meta's error code.
    pub fn code(&self) -> i64 {
        match self {
            Self::InvalidToken => 190,
            Self::UnknownObject { .. } | Self::InvalidParameter(_) => 100,
            Self::CallingDisabled => 138000,
            Self::ConcurrentCallLimit => 138002,
            Self::DuplicateCall => 138003,
            Self::NoCallPermission => 138006,
            Self::PermissionRequestLimit { .. } => 138009,
            Self::ConnectedCallLimit { .. } => 138012,
            Self::PermanentPermissionExists => 138017,
            Self::Unexpected(_) => 1,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::InvalidToken => "Invalid OAuth access token",
            Self::UnknownObject { .. } => "Unsupported request",
            Self::InvalidParameter(_) => "Invalid parameter",
            Self::CallingDisabled => "Calling not enabled",
            Self::ConcurrentCallLimit => "Concurrent call limit reached",
            Self::DuplicateCall => "Duplicate call",
            Self::NoCallPermission => "No approved call permission",
            Self::PermissionRequestLimit { .. } => "Call permission request limit reached",
            Self::ConnectedCallLimit { .. } => "Business-initiated call limit reached",
            Self::PermanentPermissionExists => "Permanent call permission already exists",
            Self::Unexpected(_) => "An unknown error occurred",
        }
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        let details = match self {
            // Never say anything internal in a 5xx body.
            Self::Unexpected(_) => "Please retry your request later.".to_owned(),
            other => other.to_string(),
        };
        ErrorEnvelope {
            error: GraphError {
                message: format!("(#{}) {}", self.code(), self.title()),
                kind: Some("OAuthException".into()),
                code: self.code(),
                error_subcode: matches!(self, Self::UnknownObject { .. }).then_some(33),
                error_data: Some(ErrorData {
                    messaging_product: Some(MESSAGING_PRODUCT.into()),
                    details,
                }),
                fbtrace_id: Some(new_trace_id()),
            },
        }
    }
}

impl ResponseError for GraphApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidToken | Self::CallingDisabled | Self::NoCallPermission => {
                StatusCode::UNAUTHORIZED
            }
            Self::ConcurrentCallLimit => StatusCode::TOO_MANY_REQUESTS,
            Self::UnknownObject { .. }
            | Self::InvalidParameter(_)
            | Self::DuplicateCall
            | Self::PermissionRequestLimit { .. }
            | Self::ConnectedCallLimit { .. }
            | Self::PermanentPermissionExists => StatusCode::BAD_REQUEST,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(error) = self {
            tracing::error!(error = format!("{error:#}"), "graph request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::InvalidToken) {
            response.insert_header((
                "www-authenticate",
                "OAuth \"Facebook Platform\" \"invalid_token\" \"Invalid OAuth access token\"",
            ));
        }
        response.json(self.envelope())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_come_in_metas_envelope_with_metas_status() {
        let error = GraphApiError::NoCallPermission;
        assert_eq!(error.status_code(), StatusCode::UNAUTHORIZED);
        let json = serde_json::to_value(error.envelope()).unwrap();
        assert_eq!(json["error"]["code"], 138006);
        assert_eq!(json["error"]["type"], "OAuthException");
        assert_eq!(
            json["error"]["message"],
            "(#138006) No approved call permission"
        );
        assert!(json["error"]["error_data"]["details"].is_string());
        assert!(json["error"]["fbtrace_id"].is_string());
        assert_eq!(
            GraphApiError::DuplicateCall.status_code(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn an_unexpected_failure_says_nothing_internal() {
        let error = GraphApiError::from(anyhow::anyhow!("disk full at /secret/path"));
        let json = serde_json::to_string(&error.envelope()).unwrap();
        assert!(!json.contains("secret"));
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}

//! Every way a Graph request fails, the platform's refusals included, mapped in one place
//! to Meta's error envelope
//! `{"error":{"message","type","code","error_data":{"details"},"fbtrace_id"}}` and to the
//! HTTP status Meta uses for that code (research file §5.1).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use switchboard_protocol::graph::{ErrorData, ErrorEnvelope, GraphError, MESSAGING_PRODUCT};

use crate::ids::new_trace_id;
use crate::platform::PlatformError;

/// A failed Graph request: the Graph API's own checks (token, path, body) or the
/// platform's refusal, each with Meta's code, title and HTTP status.
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
    /// What the platform said about a well-formed request.
    #[error(transparent)]
    Platform(#[from] PlatformError),
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
            Self::Platform(refusal) => refusal.code(),
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::InvalidToken => "Invalid OAuth access token",
            Self::UnknownObject { .. } => "Unsupported request",
            Self::InvalidParameter(_) => "Invalid parameter",
            Self::Platform(refusal) => platform_title(refusal),
        }
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        let details = match self {
            // Never say anything internal in a 5xx body.
            Self::Platform(PlatformError::Unexpected(_)) => {
                "Please retry your request later.".to_owned()
            }
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

fn platform_title(refusal: &PlatformError) -> &'static str {
    match refusal {
        PlatformError::InvalidParameter(_) => "Invalid parameter",
        PlatformError::CallingDisabled => "Calling not enabled",
        PlatformError::ConcurrentCallLimit => "Concurrent call limit reached",
        PlatformError::DuplicateCall => "Duplicate call",
        PlatformError::NoCallPermission => "No approved call permission",
        PlatformError::PermissionRequestLimit { .. } => "Call permission request limit reached",
        PlatformError::ConnectedCallLimit { .. } => "Business-initiated call limit reached",
        PlatformError::PermanentPermissionExists => "Permanent call permission already exists",
        PlatformError::Unexpected(_) => "An unknown error occurred",
    }
}

/// The HTTP status Meta answers each refusal with.
fn platform_status(refusal: &PlatformError) -> StatusCode {
    match refusal {
        PlatformError::CallingDisabled | PlatformError::NoCallPermission => {
            StatusCode::UNAUTHORIZED
        }
        PlatformError::ConcurrentCallLimit => StatusCode::TOO_MANY_REQUESTS,
        PlatformError::InvalidParameter(_)
        | PlatformError::DuplicateCall
        | PlatformError::PermissionRequestLimit { .. }
        | PlatformError::ConnectedCallLimit { .. }
        | PlatformError::PermanentPermissionExists => StatusCode::BAD_REQUEST,
        PlatformError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ResponseError for GraphApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::UnknownObject { .. } | Self::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            Self::Platform(refusal) => platform_status(refusal),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Platform(PlatformError::Unexpected(error)) = self {
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
        let error = GraphApiError::from(PlatformError::NoCallPermission);
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
            GraphApiError::from(PlatformError::DuplicateCall).status_code(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn an_unexpected_failure_says_nothing_internal() {
        let error = GraphApiError::from(PlatformError::from(anyhow::anyhow!(
            "disk full at /secret/path"
        )));
        let json = serde_json::to_string(&error.envelope()).unwrap();
        assert!(!json.contains("secret"));
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}

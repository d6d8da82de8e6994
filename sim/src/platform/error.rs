//! How the platform says no: [`PlatformError`] for a business's Graph request that Meta's
//! rules refuse, [`ControlError`] for a `/sim/...` request. Plain values only; `graph` and
//! `control` turn them into HTTP answers.

/// A Graph request the platform refused, one case per rule of Meta's. Meta's error code
/// for each is [`PlatformError::code`]; the HTTP status and the envelope are the Graph
/// API's business (`graph::error`).
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The request names something that does not fit: an unknown call, a call in the
    /// wrong state, an SDP the peer refused, a setting value Meta does not know.
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
    /// `next_allowed` is a Unix second.
    #[error(
        "Call permission request limit reached for this user; the next request is allowed at {next_allowed}"
    )]
    PermissionRequestLimit { next_allowed: i64 },
    /// `next_allowed` is a Unix second.
    #[error(
        "Limit of connected business-initiated calls reached; the next call is allowed at {next_allowed}"
    )]
    ConnectedCallLimit { next_allowed: i64 },
    #[error("The user already gave a permanent call permission")]
    PermanentPermissionExists,
    #[error("An unknown error occurred")]
    Unexpected(#[from] anyhow::Error),
}

impl PlatformError {
    pub fn invalid(details: impl Into<String>) -> Self {
        Self::InvalidParameter(details.into())
    }

    /// Meta's error code for this refusal (research file §5.1).
    pub fn code(&self) -> i64 {
        match self {
            Self::InvalidParameter(_) => 100,
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
}

/// Control-API failures (the `/sim/...` endpoints).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no call with id `{0}`")]
    CallNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the simulator failed: {0:#}")]
    Unexpected(#[from] anyhow::Error),
}
